//! Gradient shattering (Balduzzi et al. 2017, "The Shattered Gradients Problem"), in the 1-D
//! setting of the paper: along the line x(t) = x0 + t·(x1 − x0), t ∈ [0, 1], between two test
//! images, g(t) = d logit_k(x(t)) / dt = ⟨∇ₓ logit_k, x1 − x0⟩ computed by backprop, and the
//! autocorrelation of g at lags 1…k. White-noise-like g (lag 1 near 0) is "shattered".
//! One line is one sample: the measurement is averaged over `pairs` image pairs, with the spread
//! ([`spread`]), and [`super::depth_fit`] compares the decay with depth with the paper's laws.
//!
//! Batch norm runs in evaluation mode, so the points of the line never see each other through
//! batch statistics; the running statistics are first re-estimated from training images
//! ([`PreciseBn`]), because at initialisation they are the defaults and describe nothing.

use super::{Experiment, ExperimentError, Passes, Progress, precise_bn, require};
use crate::data::Dataset;
use crate::engine::{self, Float};
use crate::model::Network;
use crate::records::{ShatterParams, ShatterResult};
use dfdx::prelude::{Cpu, Device};
use rand::rngs::StdRng;
use std::sync::atomic::AtomicBool;

impl ShatterParams {
    /// Whether these parameters can run (on `ds`'s test split and classes, if given).
    pub fn validate(&self, ds: Option<&Dataset>) -> Result<(), ExperimentError> {
        let p = self.points;
        require(p >= 2, || {
            format!("the line needs at least 2 points (got {p})")
        })?;
        require(self.lags >= 1 && self.lags < p, || {
            format!("lags must be in 1..{p} for {p} points (got {})", self.lags)
        })?;
        require(self.eval_batch >= 1, || {
            "the eval batch must be at least 1".into()
        })?;
        require(self.pairs >= 1, || "at least 1 image pair".into())?;
        let Some(ds) = ds else { return Ok(()) };
        let n = ds.test.len();
        let last = self.pairs - 1;
        for (what, i) in [("from", self.from_image), ("to", self.to_image)] {
            require(i < n, || {
                format!("the {what}-image {i} is out of range: the test split has {n} images")
            })?;
        }
        let (a, b) = self.pair(last);
        require(a.max(b) < n, || {
            format!(
                "{} pairs need test images up to {}: the test split has {n}",
                self.pairs,
                a.max(b)
            )
        })?;
        match self.class {
            Some(c) => require(c < ds.classes, || {
                format!(
                    "class {c} out of range: the dataset has {} classes",
                    ds.classes
                )
            }),
            None => Ok(()),
        }
    }
}

impl ShatterParams {
    /// Test-split indices of pair `k` (see [`ShatterParams::pairs`]).
    pub fn pair(&self, k: usize) -> (usize, usize) {
        let stride = self.from_image.max(self.to_image) + 1;
        (self.from_image + k * stride, self.to_image + k * stride)
    }
}

/// `(mean, standard deviation with n − 1, interquartile range)` of the finite values; NaN where
/// undefined (no values; one value for the deviation).
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    v.sort_by(f64::total_cmp);
    // The quantile at q by linear interpolation between order statistics (numpy's default).
    let q = |q: f64| {
        let pos = q * (n - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
    };
    let std = if n > 1 { var.sqrt() } else { f64::NAN };
    (mean, std, q(0.75) - q(0.25))
}

/// Autocorrelation of `g` at lags 1..=`lags`: Σₜ (gₜ − ḡ)(gₜ₊ₗ − ḡ) / Σₜ (gₜ − ḡ)², the sums
/// over the pairs that exist (the usual biased estimator). NaN for a constant `g`; lags beyond
/// the series are 0.
pub fn autocorrelation(g: &[f64], lags: usize) -> Vec<f64> {
    let n = g.len();
    let mean = g.iter().sum::<f64>() / n.max(1) as f64;
    let d: Vec<f64> = g.iter().map(|v| v - mean).collect();
    let c0: f64 = d.iter().map(|v| v * v).sum();
    (1..=lags)
        .map(|l| {
            let cl: f64 = d.iter().zip(d.iter().skip(l)).map(|(a, b)| a * b).sum();
            cl / c0
        })
        .collect()
}

/// The points t of the line.
pub fn line(points: usize) -> Vec<f64> {
    let last = (points.max(2) - 1) as f64;
    (0..points).map(|i| i as f64 / last).collect()
}

/// `(logit, g)` along the line from `x0` to `x1` (`[C, H, W]` each) on `net` as it stands
/// (batch norm in evaluation mode), `chunk` points per pass, each pass counted in `passes`.
pub fn along_line<E: Float>(
    net: &mut Network<E>,
    (x0, x1): (&[E], &[E]),
    class: usize,
    points: usize,
    chunk: usize,
    passes: &mut Passes,
) -> Result<(Vec<f64>, Vec<f64>), ExperimentError>
where
    Cpu: Device<E>,
{
    let dir: Vec<E> = x1.iter().zip(x0).map(|(&b, &a)| b - a).collect();
    let ts = line(points);
    let (mut logit, mut grad) = (Vec::with_capacity(points), Vec::with_capacity(points));
    for ts in ts.chunks(chunk.max(1)) {
        passes.check()?;
        let mut x = Vec::with_capacity(ts.len() * x0.len());
        for &t in ts {
            let t = E::from_f64(t).expect("t is finite");
            x.extend(x0.iter().zip(&dir).map(|(&a, &d)| a + t * d));
        }
        let (l, g) = engine::on_pool(|| net.logit_input_grads(x, ts.len(), class));
        logit.extend(l.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)));
        grad.extend(g.chunks(x0.len()).map(|gi| {
            gi.iter()
                .zip(&dir)
                .map(|(&a, &b)| a.to_f64().unwrap_or(f64::NAN) * b.to_f64().unwrap_or(f64::NAN))
                .sum::<f64>()
        }));
        passes.tick();
    }
    Ok((logit, grad))
}

/// Forward passes [`Shatter`] makes for these parameters: precise BN, then per pair its line.
pub fn passes_needed(params: &ShatterParams, bn_batches: usize) -> usize {
    bn_batches + params.pairs.max(1) * line_passes(params)
}

fn line_passes(params: &ShatterParams) -> usize {
    params.points.div_ceil(params.eval_batch.max(1))
}

/// The measurement on a copy of `net` (its running statistics re-estimated from `bn_batches`,
/// each `[n, C, H, W]`) between the images `x0` and `x1` alone; `class` must be resolved.
pub fn shatter_images<E: Float>(
    net: &Network<E>,
    (x0, x1): (&[E], &[E]),
    bn_batches: &[Vec<E>],
    (params, class): (&ShatterParams, usize),
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<ShatterResult, ExperimentError>
where
    Cpu: Device<E>,
{
    let pair: Vec<E> = x0.iter().chain(x1).copied().collect();
    let one = ShatterParams {
        pairs: 1,
        ..params.clone()
    };
    shatter_pairs(net, &[(pair, class)], bn_batches, &one, progress, cancel)
}

/// The measurement on a copy of `net` (its running statistics re-estimated from `bn_batches`)
/// along each of `pairs` (x0 then x1 concatenated, and the class), with the spread over them.
pub fn shatter_pairs<E: Float>(
    net: &Network<E>,
    pairs: &[(Vec<E>, usize)],
    bn_batches: &[Vec<E>],
    params: &ShatterParams,
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<ShatterResult, ExperimentError>
where
    Cpu: Device<E>,
{
    params.validate(None)?;
    require(!pairs.is_empty(), || "at least 1 image pair".into())?;
    for &(_, class) in pairs {
        require(class < net.opts.classes, || {
            format!(
                "class {class} out of range: the net has {} classes",
                net.opts.classes
            )
        })?;
    }
    let total = bn_batches.len() + pairs.len() * line_passes(params);
    let mut passes = Passes::new(total, progress, cancel);
    let mut net = net.clone();
    precise_bn(&mut net, bn_batches, &mut passes)?;
    let probes = net.probes_enabled();
    net.set_probes_enabled(false);
    let mut lines = Vec::with_capacity(pairs.len());
    for (x, class) in pairs {
        let (x0, x1) = x.split_at(x.len() / 2);
        let line = along_line(
            &mut net,
            (x0, x1),
            *class,
            params.points,
            params.eval_batch,
            &mut passes,
        );
        match line {
            Ok(l) => lines.push(l),
            Err(e) => {
                net.set_probes_enabled(probes);
                return Err(e);
            }
        }
    }
    net.set_probes_enabled(probes);
    let autocorrs: Vec<Vec<f64>> = lines
        .iter()
        .map(|(_, g)| autocorrelation(g, params.lags))
        .collect();
    let lag1_pairs: Vec<f64> = autocorrs.iter().map(|a| a[0]).collect();
    let (lag1_mean, lag1_std, lag1_iqr) = spread(&lag1_pairs);
    let autocorr_mean = (0..params.lags)
        .map(|l| spread(&autocorrs.iter().map(|a| a[l]).collect::<Vec<_>>()).0)
        .collect();
    let (logit, grad) = lines.swap_remove(0);
    let autocorr = autocorrs[0].clone();
    Ok(ShatterResult {
        model: net.spec.to_string(),
        params: params.clone(),
        class: pairs[0].1,
        logit,
        grad,
        lag1: autocorr[0],
        autocorr,
        lag1_pairs,
        lag1_mean,
        lag1_std,
        lag1_iqr,
        autocorr_mean,
    })
}

/// Shattering prepared on a dataset: the image pairs with their classes, the batch-norm batches.
pub struct Shatter {
    pub params: ShatterParams,
    /// Per pair x0 then x1 (`[C, H, W]` each), and the class differentiated.
    pub pairs: Vec<(Vec<f32>, usize)>,
    pub bn: Vec<Vec<f32>>,
}

impl Shatter {
    /// `params` checked against `ds` and its image pairs gathered.
    pub fn new(ds: &Dataset, params: &ShatterParams) -> Result<Self, ExperimentError> {
        params.validate(Some(ds))?;
        let pairs = (0..params.pairs)
            .map(|k| {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                let (a, b) = params.pair(k);
                ds.gather(&ds.test, &[a, b], None::<&mut StdRng>, &mut x, &mut y);
                (x, params.class.unwrap_or(y[1]))
            })
            .collect();
        Ok(Self {
            params: params.clone(),
            pairs,
            bn: params.bn.gather(ds),
        })
    }
}

impl Experiment for Shatter {
    type Output = ShatterResult;
    const UNIT: &'static str = "passes";

    fn units(&self, _: &Network<f32>) -> usize {
        passes_needed(&self.params, self.bn.len())
    }

    fn measure(
        &self,
        net: &Network<f32>,
        _model: &str,
        progress: Progress,
        cancel: &AtomicBool,
    ) -> Result<ShatterResult, ExperimentError> {
        shatter_pairs(net, &self.pairs, &self.bn, &self.params, progress, cancel)
    }
}

/// The measurement on `net` between the test images `params` names, on `ds`.
pub fn shatter(
    net: &Network<f32>,
    ds: &Dataset,
    params: &ShatterParams,
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<ShatterResult, ExperimentError> {
    Shatter::new(ds, params)?.measure(net, "", progress, cancel)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against numpy: mean, std(ddof=1), and the IQR by linear interpolation.
    #[test]
    fn spread_matches_the_textbook_formulas() {
        let (m, s, iqr) = spread(&[4.0, 1.0, f64::NAN, 3.0, 2.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((iqr - 1.5).abs() < 1e-12, "{iqr}");
        let (m, s, iqr) = spread(&[0.3]);
        assert!(m == 0.3 && s.is_nan() && iqr == 0.0);
    }

    #[test]
    fn pairs_do_not_share_an_image() {
        let p = ShatterParams {
            from_image: 0,
            to_image: 5,
            ..ShatterParams::default()
        };
        assert_eq!(
            (p.pair(0), p.pair(1), p.pair(2)),
            ((0, 5), (6, 11), (12, 17))
        );
        let d = ShatterParams::default();
        assert_eq!((d.pair(0), d.pair(15)), ((0, 1), (30, 31)));
    }
}
