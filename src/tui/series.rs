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

/// Exponential moving average of the finite `y`s with a span of `window` × the points (at least
/// one): [`crate::plotting::ema`]'s rule with the window a parameter, so the dashboard can change
/// it.
pub fn ema(points: &[(f64, f64)], window: f64) -> Vec<(f64, f64)> {
    let alpha = 1.0 / (points.len() as f64 * window).max(1.0);
    let mut acc: Option<f64> = None;
    points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(x, y)| {
            let v = acc.map_or(y, |a| a + alpha * (y - a));
            acc = Some(v);
            (x, v)
        })
        .collect()
}

/// Training seconds at each record: the batch over the record's throughput, counted once for
/// every step since the previous record (the first record counts from step 0). A record without
/// a throughput adds nothing.
pub fn elapsed(steps: &[crate::records::record::StepRecord], batch: f64) -> Vec<f64> {
    let mut prev = 0;
    let mut total = 0.0;
    steps
        .iter()
        .map(|r| {
            let per_step = batch / r.img_per_s as f64;
            if per_step.is_finite() && per_step > 0.0 {
                total += per_step * r.step.saturating_sub(prev) as f64;
            }
            prev = r.step;
            total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_matches_the_plots_and_widens() {
        let pts: Vec<_> = (0..100).map(|i| (i as f64, (i % 2) as f64)).collect();
        assert_eq!(ema(&pts, 0.05), crate::plotting::ema(&pts));
        let spread = |w| {
            let e = ema(&pts, w);
            (e[99].1 - e[98].1).abs()
        };
        assert!(spread(0.2) < spread(0.01));
        assert_eq!(ema(&pts, 0.0)[99], (99.0, 1.0));
    }

    #[test]
    fn elapsed_counts_the_steps_between_records() {
        use crate::records::record::StepRecord;
        let rec = |step, img_per_s| StepRecord {
            step,
            img_per_s,
            ..Default::default()
        };
        // 32 images at 64 img/s: half a second a step; the record at 10 stands for 8 steps.
        let t = elapsed(
            &[rec(1, 64.0), rec(2, 64.0), rec(10, 32.0), rec(11, 0.0)],
            32.0,
        );
        assert_eq!(t, vec![0.5, 1.0, 9.0, 9.0]);
    }

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
