//! What the dashboard (`tui`) and the SVG figures draw alike: each run's colour by model family,
//! and the smoothed line over a noisy training loss; [`svg`] holds the figures' one style. Below
//! both, like `numfmt`, so a run looks the same on screen and on a slide.

pub mod svg;

/// A run's colour: one of the terminal's bright ANSI colours (so the dashboard follows the
/// terminal's theme), or an RGB shade for further runs of the same family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swatch {
    /// ANSI colour 9–14 (bright red, green, yellow, blue, magenta, cyan).
    Ansi(u8),
    Rgb(u8, u8, u8),
}

impl Swatch {
    /// RGB for drawing outside a terminal: ANSI colours as a common dark terminal theme (VS
    /// Code's) shows them, so the plot's dark background reads like the dashboard.
    pub fn rgb(self) -> (u8, u8, u8) {
        match self {
            Self::Rgb(r, g, b) => (r, g, b),
            Self::Ansi(9) => (241, 76, 76),
            Self::Ansi(10) => (35, 209, 139),
            Self::Ansi(11) => (245, 245, 67),
            Self::Ansi(12) => (59, 142, 234),
            Self::Ansi(13) => (214, 112, 214),
            _ => (41, 184, 219),
        }
    }
}

/// One family: its first run's ANSI colour, its second run's shade, and the hue (degrees) the
/// further shades vary around.
struct Family {
    first: u8,
    second: (u8, u8, u8),
    hue: f64,
}

const FAMILIES: [Family; 6] = [
    Family {
        first: 9,
        second: (200, 120, 60),
        hue: 5.0,
    },
    Family {
        first: 14,
        second: (70, 130, 220),
        hue: 190.0,
    },
    Family {
        first: 10,
        second: (150, 200, 60),
        hue: 130.0,
    },
    Family {
        first: 11,
        second: (200, 170, 90),
        hue: 55.0,
    },
    Family {
        first: 13,
        second: (170, 120, 220),
        hue: 295.0,
    },
    Family {
        first: 12,
        second: (120, 160, 170),
        hue: 225.0,
    },
];

/// Distinct shades per family (the first two, then hue × lightness steps).
pub const SHADES: usize = 2 + 3 * 4;

/// The colour of run `run` given every run's spec: plain, v1 (and v1a), v2, seed, then the
/// other variants alternating between the last two families. The n-th run of a family takes
/// the family's n-th shade, distinct up to [`SHADES`] runs of one family.
pub fn run_swatch(specs: &[&str], run: usize) -> Swatch {
    let family = |s: &str| match s.split('-').next().unwrap_or("") {
        "plain" => 0,
        "v1" | "v1a" => 1,
        "v2" => 2,
        "seed" => 3,
        _ => 4,
    };
    let Some(spec) = specs.get(run) else {
        return Swatch::Ansi(FAMILIES[4].first);
    };
    let f = family(spec);
    let nth = specs[..run].iter().filter(|s| family(s) == f).count();
    let (row, nth) = match f {
        4 => (4 + nth % 2, nth / 2),
        f => (f, nth),
    };
    shade(&FAMILIES[row], nth % SHADES)
}

fn shade(f: &Family, nth: usize) -> Swatch {
    match nth {
        0 => Swatch::Ansi(f.first),
        1 => Swatch::Rgb(f.second.0, f.second.1, f.second.2),
        n => {
            let k = n - 2;
            let hue = f.hue + [-18.0, 18.0, 0.0][k % 3];
            let light = [0.42, 0.72, 0.55, 0.85][(k / 3) % 4];
            let (r, g, b) = hsl(hue, 0.7, light);
            Swatch::Rgb(r, g, b)
        }
    }
}

/// HSL (hue in degrees, saturation and lightness in [0, 1]) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to(r), to(g), to(b))
}

/// Exponential moving average of `points` (x, y) with a time constant of about a twentieth of
/// the series (at least one point), so a loss curve's trend reads through its noise whatever
/// its length. Non-finite values are skipped, not propagated.
pub fn ema(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let span = (points.len() as f64 / 20.0).max(1.0);
    let alpha = 1.0 / span;
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &(x, y) in points.iter().filter(|p| p.1.is_finite()) {
        let v = match acc {
            None => y,
            Some(a) => a + alpha * (y - a),
        };
        acc = Some(v);
        out.push((x, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_runs_of_one_family_have_twelve_colours() {
        for family in ["plain-20", "v1-20", "v2-20", "gated-20"] {
            let specs = vec![family; 12];
            let mut seen: Vec<(u8, u8, u8)> =
                (0..12).map(|i| run_swatch(&specs, i).rgb()).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 12, "{family}: {seen:?}");
        }
    }

    #[test]
    fn families_keep_their_first_colours() {
        let specs = ["plain-56", "v1-56", "v2-56", "plain-20"];
        assert_eq!(run_swatch(&specs, 0), Swatch::Ansi(9));
        assert_eq!(run_swatch(&specs, 1), Swatch::Ansi(14));
        assert_eq!(run_swatch(&specs, 2), Swatch::Ansi(10));
        assert_eq!(run_swatch(&specs, 3), Swatch::Rgb(200, 120, 60));
    }

    #[test]
    fn ema_follows_the_trend_and_skips_nan() {
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { 3.0 }))
            .collect();
        let s = ema(&pts);
        assert_eq!(s.len(), 100);
        let last = s.last().unwrap().1;
        assert!((last - 2.0).abs() < 0.3, "{last}");
        let with_nan = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 1.0)];
        assert_eq!(ema(&with_nan), vec![(0.0, 1.0), (2.0, 1.0)]);
    }
}
