//! Optimizers over a network's parameter store: SGD with momentum and Adam, PyTorch semantics,
//! weight decay only on weights (not batch-norm parameters or biases).
//!
//! The state (buffers and step count) saves to safetensors beside the weights, named after the
//! parameters as PyTorch names its optimizer state: `<param>.momentum_buffer` for SGD,
//! `<param>.exp_avg` and `<param>.exp_avg_sq` for Adam, and `step` (i64), with the optimizer's
//! kind and hyper-parameters in the file's metadata (`optimizer`: e.g. `sgd momentum=0.9
//! weight_decay=0.0001`).

use crate::config::OptimizerKind;
use crate::model::checkpoint::{self, CheckpointError, Entry};
use crate::model::params::{ParamKind, ParamStore};
use dfdx::prelude::*;
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
    /// ‖Δw‖/‖w‖ of this update (relative to the weights after it; 0 for an all-zero tensor).
    pub fn step(
        &mut self,
        store: &mut ParamStore<f32>,
        grads: &mut Gradients<f32, Cpu>,
        lr: f64,
    ) -> Vec<f64> {
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
        let mut ratios = Vec::with_capacity(store.params.len());
        for (i, p) in store.params.iter_mut().enumerate() {
            let wd = if p.kind == ParamKind::Weight {
                self.weight_decay as f32
            } else {
                0.0
            };
            let g: &[f32] = p.grad(grads);
            let w = p.data_mut();
            let [dw, ww] = match self.kind {
                OptimizerKind::Sgd => sgd(
                    w,
                    g,
                    &mut self.m[i],
                    lr as f32,
                    self.momentum as f32,
                    wd,
                    self.t == 1,
                ),
                OptimizerKind::Adam => adam(w, g, &mut self.m[i], &mut self.v[i], lr, wd, self.t),
            };
            ratios.push(if ww > 0.0 { (dw / ww).sqrt() } else { 0.0 });
        }
        ratios
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
        let about = format!(
            "{} momentum={} weight_decay={}",
            self.kind_name(),
            self.momentum,
            self.weight_decay
        );
        let meta = HashMap::from([("optimizer".to_string(), about)]);
        checkpoint::save_entries(path, &self.state_dict(store), Some(meta))
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

/// PyTorch SGD: d = g + wd·w; b = μ·b + d (b = d on the first step); w -= lr·b. Returns
/// [Σ Δw², Σ w²] (w after the update).
fn sgd(
    w: &mut [f32],
    g: &[f32],
    b: &mut [f32],
    lr: f32,
    mu: f32,
    wd: f32,
    first: bool,
) -> [f64; 2] {
    let mut s = UpdateSums::default();
    for ((w, &g), b) in w.iter_mut().zip(g).zip(b.iter_mut()) {
        let d = g + wd * *w;
        *b = if first || mu == 0.0 { d } else { mu * *b + d };
        let step = lr * *b;
        *w -= step;
        s.add(step, *w);
    }
    s.total()
}

/// Σ Δw² and Σ w² of an update, in f32 blocks summed in f64.
#[derive(Default)]
struct UpdateSums {
    block: [f32; 2],
    n: usize,
    total: [f64; 2],
}

impl UpdateSums {
    #[inline]
    fn add(&mut self, dw: f32, w: f32) {
        self.block[0] += dw * dw;
        self.block[1] += w * w;
        self.n += 1;
        if self.n == 256 {
            self.flush();
        }
    }
    fn flush(&mut self) {
        self.total[0] += self.block[0] as f64;
        self.total[1] += self.block[1] as f64;
        (self.block, self.n) = ([0.0; 2], 0);
    }
    fn total(mut self) -> [f64; 2] {
        self.flush();
        self.total
    }
}

/// PyTorch Adam (L2 weight decay folded into the gradient), with bias correction.
fn adam(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f64,
    wd: f32,
    t: u64,
) -> [f64; 2] {
    let (b1, b2) = ADAM_BETAS;
    let c1 = 1.0 - b1.powi(t as i32);
    let c2 = 1.0 - b2.powi(t as i32);
    let step = (lr / c1) as f32;
    let (b1, b2, c2) = (b1 as f32, b2 as f32, c2 as f32);
    let mut s = UpdateSums::default();
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let d = g + wd * *w;
        *m = b1 * *m + (1.0 - b1) * d;
        *v = b2 * *v + (1.0 - b2) * d * d;
        let dw = step * *m / ((*v / c2).sqrt() + ADAM_EPS as f32);
        *w -= dw;
        s.add(dw, *w);
    }
    s.total()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_matches_hand_computation() {
        let (mut w, mut b) = (vec![1.0f32], vec![0.0f32]);
        sgd(&mut w, &[0.5], &mut b, 0.1, 0.9, 0.01, true);
        // d = 0.5 + 0.01·1 = 0.51; b = 0.51; w = 1 − 0.051
        assert!((w[0] - 0.949).abs() < 1e-6 && (b[0] - 0.51).abs() < 1e-6);
        sgd(&mut w, &[0.5], &mut b, 0.1, 0.9, 0.01, false);
        let d = 0.5 + 0.01 * 0.949;
        let b2 = 0.9 * 0.51 + d;
        assert!((w[0] - (0.949 - 0.1 * b2)).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let (mut w, mut m, mut v) = (vec![1.0f32], vec![0.0f32], vec![0.0f32]);
        adam(&mut w, &[0.3], &mut m, &mut v, 0.01, 0.0, 1);
        // With bias correction the first step is lr·sign(g).
        assert!((w[0] - 0.99).abs() < 1e-5, "{}", w[0]);
    }
}
