//! Turning long per-step series into what fits on screen: bucketed downsampling and robust axis
//! bounds that survive NaN, infinities and empty data.

/// Average `(x, y)` points into at most `buckets` buckets of consecutive points, skipping
/// non-finite values (a bucket with none is dropped, leaving a gap rather than a spike).
/// Means rather than min/max: per-batch loss is noisy and its trend is what the chart is for.
pub fn mean_buckets(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    let buckets = buckets.max(1);
    if points.len() <= buckets {
        return points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
    }
    (0..buckets)
        .filter_map(|b| {
            let chunk = &points[b * points.len() / buckets..(b + 1) * points.len() / buckets];
            let finite = chunk.iter().filter(|(x, y)| x.is_finite() && y.is_finite());
            let (n, sx, sy) = finite.fold((0.0, 0.0, 0.0), |(n, sx, sy), (x, y)| {
                (n + 1.0, sx + x, sy + y)
            });
            (n > 0.0).then(|| (sx / n, sy / n))
        })
        .collect()
}

/// `[min, max]` of the finite values; `None` without any.
pub fn range(values: impl IntoIterator<Item = f64>) -> Option<[f64; 2]> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo <= hi).then_some([lo, hi])
}

/// [`range`] widened so it is never empty, for chart axes.
pub fn bounds(values: impl IntoIterator<Item = f64>) -> Option<[f64; 2]> {
    let [lo, hi] = range(values)?;
    let pad = if hi > lo {
        0.0
    } else {
        lo.abs().max(1.0) * 0.5
    };
    Some([lo - pad, hi + pad])
}

/// `log10(x)` for positive finite `x`; `None` otherwise, so a zero or NaN gradient is a gap.
pub fn log10(x: f32) -> Option<f64> {
    (x.is_finite() && x > 0.0).then(|| (x as f64).log10())
}

/// Integer decade bounds around `[lo, hi]` (log10 values) and the decades to label: at most
/// `max_labels`, evenly spaced because ratatui spreads axis labels evenly over the bounds.
pub fn decades(lo: f64, hi: f64, max_labels: usize) -> ([f64; 2], Vec<i32>) {
    let lo = lo.floor() as i32;
    let hi = (hi.ceil() as i32).max(lo + 1);
    let intervals = (max_labels.max(2) - 1) as i32;
    let step = (hi - lo + intervals - 1) / intervals;
    let n = (hi - lo + step - 1) / step;
    let hi = lo + n * step;
    (
        [lo as f64, hi as f64],
        (0..=n).map(|i| lo + i * step).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_average_and_skip_nan() {
        let pts: Vec<_> = (0..10)
            .map(|i| (i as f64, if i == 3 { f64::NAN } else { 1.0 }))
            .collect();
        let b = mean_buckets(&pts, 5);
        assert_eq!(b.len(), 5);
        assert_eq!(b[1], (2.0, 1.0));
        assert_eq!(mean_buckets(&pts[..3], 5).len(), 3);
        assert!(mean_buckets(&[], 0).is_empty());
    }

    #[test]
    fn bounds_are_never_empty() {
        assert_eq!(bounds([f64::NAN]), None);
        assert_eq!(bounds([2.0, 2.0]), Some([1.0, 3.0]));
        assert_eq!(bounds([1.0, f64::INFINITY, 3.0]), Some([1.0, 3.0]));
    }

    #[test]
    fn decade_labels_are_even() {
        assert_eq!(
            decades(-1.5, 2.2, 6),
            ([-2.0, 3.0], vec![-2, -1, 0, 1, 2, 3])
        );
        let (b, labels) = decades(-3.0, 9.5, 5);
        assert_eq!(labels.len(), 5);
        assert_eq!(b, [-3.0, 13.0]);
        assert_eq!(decades(1.0, 1.0, 5).1, vec![1, 2]);
    }
}
