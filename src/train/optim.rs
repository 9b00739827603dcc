//! Optimizers over a network's parameter store: SGD with momentum and Adam, PyTorch semantics,
//! weight decay only on weights (not batch-norm parameters or biases).

use crate::config::OptimizerKind;
use crate::model::params::{ParamKind, ParamStore};
use dfdx::prelude::*;

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

    /// One update of every parameter from `grads` at learning rate `lr`.
    pub fn step(&mut self, store: &mut ParamStore<f32>, grads: &mut Gradients<f32, Cpu>, lr: f64) {
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
        for (i, p) in store.params.iter_mut().enumerate() {
            let wd = if p.kind == ParamKind::Weight {
                self.weight_decay as f32
            } else {
                0.0
            };
            let g: &[f32] = p.grad(grads);
            let w = p.data_mut();
            match self.kind {
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
            }
        }
    }
}

/// PyTorch SGD: d = g + wd·w; b = μ·b + d (b = d on the first step); w -= lr·b.
fn sgd(w: &mut [f32], g: &[f32], b: &mut [f32], lr: f32, mu: f32, wd: f32, first: bool) {
    for ((w, &g), b) in w.iter_mut().zip(g).zip(b.iter_mut()) {
        let d = g + wd * *w;
        *b = if first || mu == 0.0 { d } else { mu * *b + d };
        *w -= lr * *b;
    }
}

/// PyTorch Adam (L2 weight decay folded into the gradient), with bias correction.
fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr: f64, wd: f32, t: u64) {
    let (b1, b2) = ADAM_BETAS;
    let c1 = 1.0 - b1.powi(t as i32);
    let c2 = 1.0 - b2.powi(t as i32);
    let step = (lr / c1) as f32;
    let (b1, b2, c2) = (b1 as f32, b2 as f32, c2 as f32);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let d = g + wd * *w;
        *m = b1 * *m + (1.0 - b1) * d;
        *v = b2 * *v + (1.0 - b2) * d * d;
        *w -= step * *m / ((*v / c2).sqrt() + ADAM_EPS as f32);
    }
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
