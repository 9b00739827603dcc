//! A heatmap widget: columns of values (one column per time bucket, one value per row) drawn with
//! upper-half blocks, so each terminal cell shows two rows (foreground above, background below)
//! and the map has twice the vertical resolution of the text grid. Rows are resampled to the
//! area's height; columns past its width are cut, so callers bucket time to the width first.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

/// Colour of NaN or infinite cells: red is not on the ramp, so it cannot be mistaken for a value.
pub const NON_FINITE: Color = Color::Red;

/// A cell with nothing measured by design (the stem has no shortcut share): drawn blank, not in
/// the alarm red of [`NON_FINITE`].
pub const NOT_MEASURED: f64 = f64::NEG_INFINITY;

/// Viridis anchors: perceptually even and readable for colour-blind viewers.
const RAMP: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

/// The ramp colour for `t` in [0, 1] (clamped).
pub fn ramp(t: f64) -> Color {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (RAMP.len() - 1) as f64;
    let i = (pos.floor() as usize).min(RAMP.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    Color::Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

pub struct Heatmap<'a> {
    /// `columns[x][row]`; NaN marks a non-finite measurement.
    columns: &'a [Vec<f64>],
    /// Values mapped to the ends of the ramp.
    range: [f64; 2],
}

impl<'a> Heatmap<'a> {
    pub fn new(columns: &'a [Vec<f64>], range: [f64; 2]) -> Self {
        Self { columns, range }
    }

    fn color(&self, value: f64) -> Color {
        if value == NOT_MEASURED {
            return Color::Reset;
        }
        if !value.is_finite() {
            return NON_FINITE;
        }
        let [lo, hi] = self.range;
        let span = hi - lo;
        ramp(if span > 0.0 { (value - lo) / span } else { 0.5 })
    }
}

/// Mean of `rows[a..b]` for half-row `h` of `halves`: shrinking averages, stretching repeats.
/// Any non-finite value in the range makes the result NaN, so an alarm is never averaged away.
fn resample(rows: &[f64], h: usize, halves: usize) -> Option<f64> {
    let n = rows.len();
    if n == 0 {
        return None;
    }
    let a = (h * n / halves).min(n - 1);
    let b = ((h + 1) * n / halves).clamp(a + 1, n);
    // Rows not measured by design do not blank the measured rows they are merged with.
    let measured: Vec<f64> = rows[a..b]
        .iter()
        .copied()
        .filter(|&v| v != NOT_MEASURED)
        .collect();
    if measured.is_empty() {
        return Some(NOT_MEASURED);
    }
    Some(measured.iter().sum::<f64>() / measured.len() as f64)
}

impl Widget for Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let halves = area.height as usize * 2;
        if halves == 0 {
            return;
        }
        for (x, column) in self.columns.iter().take(area.width as usize).enumerate() {
            for y in 0..area.height {
                let (Some(top), Some(bottom)) = (
                    resample(column, 2 * y as usize, halves),
                    resample(column, 2 * y as usize + 1, halves),
                ) else {
                    continue;
                };
                if let Some(cell) = buf.cell_mut((area.x + x as u16, area.y + y)) {
                    cell.set_char('▀')
                        .set_fg(self.color(top))
                        .set_bg(self.color(bottom));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_ends_and_clamps() {
        assert_eq!(ramp(0.0), Color::Rgb(68, 1, 84));
        assert_eq!(ramp(1.0), Color::Rgb(253, 231, 37));
        assert_eq!(ramp(7.0), ramp(1.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
    }

    #[test]
    fn resample_keeps_non_finite() {
        let rows = [1.0, f64::NAN, 3.0, 5.0];
        assert!(resample(&rows, 0, 2).unwrap().is_nan());
        assert_eq!(resample(&rows, 1, 2), Some(4.0));
        // Stretching: 8 half-rows over 4 values repeat each one.
        assert_eq!(resample(&rows, 7, 8), Some(5.0));
        assert_eq!(resample(&[], 0, 2), None);
    }

    #[test]
    fn renders_half_blocks_and_survives_tiny_areas() {
        let columns = vec![vec![0.0, 1.0, f64::NAN], vec![2.0; 3]];
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
        Heatmap::new(&columns, [0.0, 2.0]).render(buf.area, &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "▀");
        assert_eq!(buf[(2, 0)].symbol(), " ");
        assert_eq!(buf[(0, 1)].bg, NON_FINITE);
        Heatmap::new(&columns, [f64::NAN, f64::NAN]).render(Rect::new(0, 0, 0, 0), &mut buf);
        Heatmap::new(&columns, [1.0, 1.0]).render(Rect::new(3, 1, 1, 1), &mut buf);
    }
}
