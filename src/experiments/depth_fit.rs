//! How gradient shattering decays with depth, against Balduzzi et al. 2017's two laws: the lag-1
//! autocorrelation of a feedforward net falls like 2^−L, a ResNet's like 1/√L. Each law gets its
//! least-squares scale c (the laws fix the shape, not the level), and the root-mean-square residual
//! says which shape the measured means follow. L is the spec's depth in layers.

use crate::records::ShatterResult;
use crate::records::experiments::DepthFit;

/// `(family, depth)` of a `VARIANT-DEPTH[:KNOBS]` spec: the spec with its depth written `L`
/// (`v2-56:bn=off` → `v2-L:bn=off`, 56); `None` for presets.
pub fn family(model: &str) -> Option<(String, usize)> {
    let (head, knobs) = match model.split_once(':') {
        Some((h, k)) => (h, format!(":{k}")),
        None => (model, String::new()),
    };
    let (variant, depth) = head.rsplit_once('-')?;
    let depth = depth.parse().ok()?;
    Some((format!("{variant}-L{knobs}"), depth))
}

/// The least-squares scale c of `y ≈ c·f` and the RMS residual: c = Σ y f / Σ f².
pub fn scale_fit(y: &[f64], f: &[f64]) -> (f64, f64) {
    let c = y.iter().zip(f).map(|(a, b)| a * b).sum::<f64>() / f.iter().map(|b| b * b).sum::<f64>();
    let ss: f64 = y.iter().zip(f).map(|(a, b)| (a - c * b).powi(2)).sum();
    (c, (ss / y.len().max(1) as f64).sqrt())
}

/// One fit per family with at least two depths among `results` (in first-seen order; a depth
/// measured twice keeps its first result), on each result's mean lag-1 autocorrelation.
pub fn depth_fits(results: &[ShatterResult]) -> Vec<DepthFit> {
    let means: Vec<(&str, f64)> = results
        .iter()
        .map(|r| (r.model.as_str(), r.lag1_mean))
        .collect();
    fits_of(&means)
}

/// [`depth_fits`] on `(model, mean lag-1 autocorrelation)` pairs (means taken elsewhere, e.g.
/// over several seeds).
pub fn fits_of(means: &[(&str, f64)]) -> Vec<DepthFit> {
    let mut families: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for &(model, mean) in means {
        let Some((fam, depth)) = family(model) else {
            continue;
        };
        if !mean.is_finite() {
            continue;
        }
        match families.iter_mut().find(|(f, _)| *f == fam) {
            Some((_, pts)) if pts.iter().any(|(d, _)| *d == depth) => {}
            Some((_, pts)) => pts.push((depth, mean)),
            None => families.push((fam, vec![(depth, mean)])),
        }
    }
    families
        .into_iter()
        .filter(|(_, pts)| pts.len() >= 2)
        .map(|(family, mut pts)| {
            pts.sort_by_key(|p| p.0);
            let depths: Vec<usize> = pts.iter().map(|p| p.0).collect();
            let y: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let exp2: Vec<f64> = depths.iter().map(|&l| 2f64.powi(-(l as i32))).collect();
            let inv: Vec<f64> = depths.iter().map(|&l| 1.0 / (l as f64).sqrt()).collect();
            let (exp2_scale, exp2_rms) = scale_fit(&y, &exp2);
            let (inv_sqrt_scale, inv_sqrt_rms) = scale_fit(&y, &inv);
            let closer = if exp2_rms < inv_sqrt_rms {
                "2^-L"
            } else {
                "1/sqrt(L)"
            };
            DepthFit {
                family,
                depths,
                lag1_means: y,
                exp2_scale,
                exp2_rms,
                inv_sqrt_scale,
                inv_sqrt_rms,
                closer: closer.into(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_drop_the_depth_and_keep_the_knobs() {
        assert_eq!(family("plain-56"), Some(("plain-L".into(), 56)));
        assert_eq!(family("v2-20:bn=off"), Some(("v2-L:bn=off".into(), 20)));
        assert_eq!(family("seed-v1"), None);
    }

    /// The scale against a brute-force scan of c, and an exact law recovered with zero residual.
    #[test]
    fn scale_fit_is_the_least_squares_scale() {
        let y = [0.9, 0.5, 0.2, 0.15];
        let f = [1.0, 0.6, 0.3, 0.1];
        let (c, rms) = scale_fit(&y, &f);
        let sse = |c: f64| {
            y.iter()
                .zip(&f)
                .map(|(a, b)| (a - c * b).powi(2))
                .sum::<f64>()
        };
        let best = (0..=20_000)
            .map(|i| i as f64 * 1e-4)
            .min_by(|a, b| sse(*a).total_cmp(&sse(*b)))
            .unwrap();
        assert!((c - best).abs() < 1e-4, "{c} vs scanned {best}");
        assert!((rms - (sse(c) / 4.0).sqrt()).abs() < 1e-12);
        let exact: Vec<f64> = [8.0f64, 20.0, 56.0]
            .iter()
            .map(|l| 0.7 / l.sqrt())
            .collect();
        let inv: Vec<f64> = [8.0f64, 20.0, 56.0]
            .iter()
            .map(|l| 1.0 / l.sqrt())
            .collect();
        let (c, rms) = scale_fit(&exact, &inv);
        assert!((c - 0.7).abs() < 1e-12 && rms < 1e-12);
    }
}
