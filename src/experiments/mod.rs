//! What the experiments on a run's weights (lesion, gradient shattering, loss landscape) share:
//! one shape ([`Experiment`]: prepared once per dataset, then measured net by net, with a
//! progress callback and a cancel flag, returning `Result<_, ExperimentError>`), running one over
//! several nets ([`each`]), cancellation between forward passes, progress counting, and the
//! batch-norm statistics re-estimated from training images ("precise BN") where a net's running
//! statistics do not describe it (at initialisation they are the defaults, mean 0 and variance 1).

pub mod depth_fit;
pub mod hessian;
pub mod landscape;
pub mod lesion;
pub mod shatter;

use crate::data::Dataset;
use crate::engine::{self, Float};
use crate::model::Network;
use crate::records::PreciseBn;
use dfdx::prelude::{Cpu, Device};
use rand::rngs::StdRng;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ExperimentError {
    /// The cancel flag was set; nothing is returned.
    #[error("cancelled")]
    Cancelled,
    /// A parameter the experiment cannot run with (says which and why).
    #[error("{0}")]
    Invalid(String),
}

/// Called with `(done, total)` forward passes after each one.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// An experiment on a run's weights, prepared for one dataset (parameters checked, images
/// gathered): the CLI and the dashboard run every kind through [`each`].
pub trait Experiment {
    /// One net's result.
    type Output;
    /// What one unit of progress is, in words ("passes", "evaluations").
    const UNIT: &'static str;
    /// Units of progress [`Experiment::measure`] reports on `net`.
    fn units(&self, net: &Network<f32>) -> usize;
    /// The measurement on `net` (left as it is: the experiment works on a copy), named `model`
    /// in the result; `progress` gets `(done, units)`; stops with `Cancelled` at `cancel`.
    fn measure(
        &self,
        net: &Network<f32>,
        model: &str,
        progress: Progress,
        cancel: &AtomicBool,
    ) -> Result<Self::Output, ExperimentError>;
}

/// `x` on each of `nets` (name, net) in turn; `progress` gets `(net index, done, total)` in
/// units over all the nets.
pub fn each<X: Experiment>(
    x: &X,
    nets: &[(&str, &Network<f32>)],
    progress: &mut dyn FnMut(usize, usize, usize),
    cancel: &AtomicBool,
) -> Result<Vec<X::Output>, ExperimentError> {
    let units: Vec<usize> = nets.iter().map(|(_, n)| x.units(n)).collect();
    let total = units.iter().sum();
    let mut out = Vec::with_capacity(nets.len());
    let mut base = 0;
    for (i, (name, net)) in nets.iter().enumerate() {
        progress(i, base, total);
        out.push(x.measure(net, name, &mut |d, _| progress(i, base + d, total), cancel)?);
        base += units[i];
    }
    Ok(out)
}

/// Counts forward passes against a total, reports them, and stops at the cancel flag.
pub struct Passes<'a> {
    done: usize,
    total: usize,
    progress: Progress<'a>,
    cancel: &'a AtomicBool,
}

impl<'a> Passes<'a> {
    pub fn new(total: usize, progress: Progress<'a>, cancel: &'a AtomicBool) -> Self {
        progress(0, total);
        Self {
            done: 0,
            total,
            progress,
            cancel,
        }
    }

    /// `Err(Cancelled)` if the flag is set: call before each pass.
    pub fn check(&self) -> Result<(), ExperimentError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(ExperimentError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// One pass done.
    pub fn tick(&mut self) {
        self.skip(1);
    }

    /// `n` passes done, or counted as done (an iteration that stopped before its cap).
    pub fn skip(&mut self, n: usize) {
        self.done += n;
        (self.progress)(self.done.min(self.total), self.total);
    }

    /// Passes counted so far.
    pub fn done(&self) -> usize {
        self.done
    }
}

impl PreciseBn {
    /// Gather [`PreciseBn::indices`] from `ds`'s training split: one `[batch, C, H, W]` each.
    pub fn gather(&self, ds: &Dataset) -> Vec<Vec<f32>> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        self.indices(ds.train.len())
            .iter()
            .map(|idx| {
                ds.gather(&ds.train, idx, None::<&mut StdRng>, &mut x, &mut y);
                std::mem::take(&mut x)
            })
            .collect()
    }
}

/// Re-estimate `net`'s batch-norm running statistics from `batches` (each `[n, C, H, W]` with
/// `n = len / image_len`), one counted pass each; a no-op without batches.
pub fn precise_bn<E: Float>(
    net: &mut Network<E>,
    batches: &[Vec<E>],
    passes: &mut Passes,
) -> Result<(), ExperimentError>
where
    Cpu: Device<E>,
{
    let image = net.opts.in_channels * net.opts.height * net.opts.width;
    let probes = net.probes_enabled();
    net.set_probes_enabled(false);
    let mut run = || {
        for (k, x) in batches.iter().enumerate() {
            passes.check()?;
            let n = x.len() / image;
            engine::on_pool(|| net.precise_bn_batch(x.clone(), n, k));
            passes.tick();
        }
        Ok(())
    };
    let done = run();
    net.set_probes_enabled(probes);
    done
}

/// `Err(Invalid)` with `msg` unless `ok`.
pub fn require(ok: bool, msg: impl FnOnce() -> String) -> Result<(), ExperimentError> {
    if ok {
        Ok(())
    } else {
        Err(ExperimentError::Invalid(msg()))
    }
}
