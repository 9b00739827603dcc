//! Gradient shattering (Balduzzi et al. 2017, "The Shattered Gradients Problem"), in the 1-D
//! setting of the paper: along the line x(t) = x0 + t·(x1 − x0), t ∈ [0, 1], between two test
//! images, g(t) = d logit_k(x(t)) / dt = ⟨∇ₓ logit_k, x1 − x0⟩ computed by backprop, and the
//! autocorrelation of g at lags 1…k. White-noise-like g (lag 1 near 0) is "shattered".
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
        let Some(ds) = ds else { return Ok(()) };
        let n = ds.test.len();
        for (what, i) in [("from", self.from_image), ("to", self.to_image)] {
            require(i < n, || {
                format!("the {what}-image {i} is out of range: the test split has {n} images")
            })?;
        }
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

/// Forward passes [`shatter_images`] makes for these parameters.
pub fn passes_needed(params: &ShatterParams, bn_batches: usize) -> usize {
    bn_batches + params.points.div_ceil(params.eval_batch.max(1))
}

/// The measurement on a copy of `net` (its running statistics re-estimated from `bn_batches`,
/// each `[n, C, H, W]`) between the images `x0` and `x1`; `class` must be resolved.
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
    params.validate(None)?;
    require(class < net.opts.classes, || {
        format!(
            "class {class} out of range: the net has {} classes",
            net.opts.classes
        )
    })?;
    let mut passes = Passes::new(passes_needed(params, bn_batches.len()), progress, cancel);
    let mut net = net.clone();
    precise_bn(&mut net, bn_batches, &mut passes)?;
    let probes = net.probes_enabled();
    net.set_probes_enabled(false);
    let line = along_line(
        &mut net,
        (x0, x1),
        class,
        params.points,
        params.eval_batch,
        &mut passes,
    );
    net.set_probes_enabled(probes);
    let (logit, grad) = line?;
    let autocorr = autocorrelation(&grad, params.lags);
    Ok(ShatterResult {
        model: net.spec.to_string(),
        params: params.clone(),
        class,
        logit,
        grad,
        lag1: autocorr[0],
        autocorr,
    })
}

/// Shattering prepared on a dataset: the two test images, the class, the batch-norm batches.
pub struct Shatter {
    pub params: ShatterParams,
    /// x0 then x1, `[C, H, W]` each.
    pub images: Vec<f32>,
    pub class: usize,
    pub bn: Vec<Vec<f32>>,
}

impl Shatter {
    /// `params` checked against `ds` and its images gathered.
    pub fn new(ds: &Dataset, params: &ShatterParams) -> Result<Self, ExperimentError> {
        params.validate(Some(ds))?;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let idx = [params.from_image, params.to_image];
        ds.gather(&ds.test, &idx, None::<&mut StdRng>, &mut x, &mut y);
        Ok(Self {
            params: params.clone(),
            images: x,
            class: params.class.unwrap_or(y[1]),
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
        let pair = self.images.split_at(self.images.len() / 2);
        let p = (&self.params, self.class);
        shatter_images(net, pair, &self.bn, p, progress, cancel)
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
