//! Optimizers over a network's parameter store: SGD with momentum and Adam, PyTorch semantics,
//! weight decay only on weights (not batch-norm parameters or biases).
//!
//! The state (buffers and step count) saves to safetensors beside the weights, named after the
//! parameters as PyTorch names its optimizer state: `<param>.momentum_buffer` for SGD,
//! `<param>.exp_avg` and `<param>.exp_avg_sq` for Adam, and `step` (i64), with the optimizer's
//! kind and hyper-parameters in the file's metadata (`optimizer`: e.g. `sgd momentum=0.9
//! weight_decay=0.0001`).

use super::update::{Adam, Moved, Rule, Sgd};
use crate::config::OptimizerKind;
use crate::model::checkpoint::{self, CheckpointError, Entry};
use crate::model::params::{ParamKind, ParamStore};
use dfdx::prelude::*;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// SGD momentum buffers, or Adam's first moments; one per parameter.
    m: Vec<Vec<f32>>,
    /// Adam's second moments.
    v: Vec<Vec<f32>>,
    t: u64,
}

const ADAM_BETAS: (f64, f64) = (0.9, 0.999);
const ADAM_EPS: f64 = 1e-8;

impl Optimizer {
    pub fn new(kind: OptimizerKind, momentum: f64, weight_decay: f64) -> Self {
        Self {
            kind,
            momentum,
            weight_decay,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// One update of every parameter from `grads` at learning rate `lr`. Returns, per parameter,
    /// ‖Δw‖/‖w‖ of this update and ‖w‖, both of the weights after it.
    pub fn step(
        &mut self,
        store: &mut ParamStore<f32>,
        grads: &mut Gradients<f32, Cpu>,
        lr: f64,
    ) -> Vec<Moved> {
        self.step_with(store, grads, lr, true)
    }

    /// [`Optimizer::step`]; with `ratios` false they are not summed and the result is empty
    /// (the statistics-free baseline of `resviz bench`). The parameters update in parallel, each
    /// on one thread, so the result does not depend on the scheduling.
    pub fn step_with(
        &mut self,
        store: &mut ParamStore<f32>,
        grads: &mut Gradients<f32, Cpu>,
        lr: f64,
        ratios: bool,
    ) -> Vec<Moved> {
        if self.m.len() != store.params.len() {
            self.m = store
                .params
                .iter()
                .map(|p| vec![0.0; p.data().len()])
                .collect();
            self.v = if self.kind == OptimizerKind::Adam {
                self.m.clone()
            } else {
                Vec::new()
            };
            self.t = 0;
        }
        self.t += 1;
        let rule = self.rule(lr);
        let wd = self.weight_decay as f32;
        let gs = store.take_grads(grads);
        // SGD has no second buffer: each parameter gets an empty one.
        let vs = (self.v.iter_mut().map(Vec::as_mut_slice))
            .chain(std::iter::repeat_with(|| -> &mut [f32] { &mut [] }));
        let work: Vec<_> = (store.params.iter_mut().zip(&gs))
            .zip(self.m.iter_mut().zip(vs))
            .collect();
        let out: Vec<Moved> = work
            .into_par_iter()
            .map(|((p, g), (m, v))| {
                let wd = if p.kind == ParamKind::Weight { wd } else { 0.0 };
                rule.update(p.data_mut(), g, m, v, wd, ratios)
            })
            .collect();
        store.put_grads(grads, gs);
        if ratios { out } else { Vec::new() }
    }

    /// This step's update rule (`t` already counts it).
    fn rule(&self, lr: f64) -> Rule {
        match self.kind {
            OptimizerKind::Sgd => Rule::Sgd(Sgd {
                lr: lr as f32,
                mu: self.momentum as f32,
                first: self.t == 1,
            }),
            OptimizerKind::Adam => {
                let (b1, b2) = ADAM_BETAS;
                let t = self.t as i32;
                Rule::Adam(Adam {
                    step: (lr / (1.0 - b1.powi(t))) as f32,
                    b1: b1 as f32,
                    b2: b2 as f32,
                    c2: (1.0 - b2.powi(t)) as f32,
                    eps: ADAM_EPS as f32,
                })
            }
        }
    }
}

impl Optimizer {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    /// Buffer suffixes for this kind: each buffer list with its name suffix.
    fn buffers(&self) -> Vec<(&'static str, &Vec<Vec<f32>>)> {
        match self.kind {
            OptimizerKind::Sgd => vec![("momentum_buffer", &self.m)],
            OptimizerKind::Adam => vec![("exp_avg", &self.m), ("exp_avg_sq", &self.v)],
        }
    }

    /// Buffers by `<param>.<buffer>` name and the step count as `step`; no buffers before the
    /// first step.
    pub fn state_dict(&self, store: &ParamStore<f32>) -> BTreeMap<String, Entry> {
        let mut out = BTreeMap::new();
        out.insert("step".to_string(), Entry::I64(self.t as i64));
        for (suffix, bufs) in self.buffers() {
            for (p, b) in store.params.iter().zip(bufs) {
                let e = Entry::F32 {
                    shape: p.shape(),
                    data: b.clone(),
                };
                out.insert(format!("{}.{suffix}", p.name), e);
            }
        }
        out
    }

    /// Write the state for the parameters of `store` to `path`.
    pub fn save(&self, store: &ParamStore<f32>, path: &Path) -> Result<(), CheckpointError> {
        // One key: safetensors writes metadata in hash order, and equal states should give
        // byte-identical files.
        let meta = HashMap::from([(Self::METADATA_KEY.to_string(), self.about())]);
        checkpoint::save_entries(path, &self.state_dict(store), Some(meta))
    }

    /// The file metadata key under which [`about`](Self::about) is saved.
    pub const METADATA_KEY: &str = "optimizer";

    /// Kind and hyper-parameters, e.g. `sgd momentum=0.9 weight_decay=0.0001`; [`load`]
    /// (Self::load) reads the first word and ignores words after the hyper-parameters.
    pub fn about(&self) -> String {
        format!(
            "{} momentum={} weight_decay={}",
            self.kind_name(),
            self.momentum,
            self.weight_decay
        )
    }

    /// Optimizer steps taken (the `step` entry of the saved state).
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Replace the state with the file's, which must be for this kind of optimizer and the
    /// parameters of `store` (names and shapes).
    pub fn load(&mut self, store: &ParamStore<f32>, path: &Path) -> Result<(), CheckpointError> {
        let file = checkpoint::load_entries(path)?;
        let about = file.metadata.get("optimizer").map_or("", String::as_str);
        let found = about.split(' ').next().unwrap_or("");
        if found != self.kind_name() {
            let m = match found {
                "" => "not a resviz optimizer state (no `optimizer` metadata)".to_string(),
                _ => format!(
                    "optimizer state for {found}, but the experiment uses {}",
                    self.kind_name()
                ),
            };
            return Err(CheckpointError::mismatch(path, m));
        }
        let t = match file.entries.get("step") {
            Some(Entry::I64(t)) if *t >= 0 => *t as u64,
            _ => return Err(CheckpointError::mismatch(path, "missing step count `step`")),
        };
        let read = |suffix: &str| -> Result<Vec<Vec<f32>>, CheckpointError> {
            if t == 0 {
                return Ok(Vec::new());
            }
            store
                .params
                .iter()
                .map(|p| {
                    let name = format!("{}.{suffix}", p.name);
                    checkpoint::take_f32(&file.entries, &name, &p.shape(), path)
                })
                .collect()
        };
        if t > 0 {
            let names: Vec<String> = self
                .buffers()
                .iter()
                .flat_map(|(suffix, _)| store.params.iter().map(move |p| (p, suffix)))
                .map(|(p, suffix)| format!("{}.{suffix}", p.name))
                .chain(["step".to_string()])
                .collect();
            checkpoint::check_no_extra(&file.entries, names.iter().map(String::as_str), path)?;
        }
        let (m, v) = match self.kind {
            OptimizerKind::Sgd => (read("momentum_buffer")?, Vec::new()),
            OptimizerKind::Adam => (read("exp_avg")?, read("exp_avg_sq")?),
        };
        (self.m, self.v, self.t) = (m, v, t);
        Ok(())
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::model::{ModelSpec, NetOptions, Network};

    /// `cargo test --release --lib train::optim::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn step_speed() {
        let spec = ModelSpec::parse_list("v2-56").unwrap()[0];
        let mut net = Network::<f32>::new(spec, NetOptions::default(), 0);
        let n = 8;
        let x: Vec<f32> = (0..n * 3 * 32 * 32).map(|i| (i % 7) as f32 * 0.1).collect();
        let y: Vec<usize> = (0..n).map(|i| i % 10).collect();
        let (_, mut grads) = net.train_pass(x, &y);
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam] {
            let mut opt = Optimizer::new(kind, 0.9, 1e-4);
            let mut time = |ratios| {
                crate::engine::best_ms(30, &mut || {
                    let (store, grads) = (&mut net.store, &mut grads);
                    crate::engine::on_pool(|| opt.step_with(store, grads, 1e-3, ratios));
                })
            };
            let (with, without) = (time(true), time(false));
            let n = net.num_params();
            println!(
                "{kind:?}: {with:.3} ms per step of v2-56 ({n} parameters), {without:.3} without ratios"
            );
        }
    }
}
