//! One pass of a network over a batch: mean cross-entropy, accuracy, and (when training) the
//! backward pass with per-block and per-parameter gradient norms.

use super::layers::Mode;
use super::network::{Network, argmax_rows};
use crate::engine::{ActStats, Float, GradSplit, view};
use dfdx::prelude::*;

/// What one training pass measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Mean cross-entropy over the batch.
    pub loss: f64,
    pub correct: usize,
    pub batch: usize,
    /// Per block boundary: activation statistics and ‖∂L/∂x‖ (NaN if backward did not reach it).
    pub blocks: Vec<(ActStats, f64)>,
    /// Per block boundary, the eq. 5 split at the input of the block producing it (He 2016):
    /// `None` for the stem and for blocks without a shortcut.
    pub splits: Vec<Option<GradSplit>>,
    /// Per parameter, in store order.
    pub param_grad_norms: Vec<f64>,
}

impl<E: Float> Network<E>
where
    Cpu: Device<E>,
{
    /// Forward with BN in training mode, mean cross-entropy, backward. Returns the statistics and
    /// the gradients for the optimizer. `x` is `[N, C, H, W]` flattened, `y` the N labels.
    pub fn train_pass(&mut self, x: Vec<E>, y: &[usize]) -> (PassStats, Gradients<E, Cpu>) {
        self.train_pass_with(x, y, true)
    }

    /// [`Network::train_pass`]; with `param_norms` false the per-parameter gradient norms are
    /// skipped (left empty) — with probes disabled, the statistics-free baseline of `bench`.
    pub fn train_pass_with(
        &mut self,
        x: Vec<E>,
        y: &[usize],
        param_norms: bool,
    ) -> (PassStats, Gradients<E, Cpu>) {
        crate::engine::alloc::keep_freed_memory();
        let n = y.len();
        let dev = Cpu::default();
        let x = dev
            .tensor_from_vec(x, self.input_shape(n))
            .traced(Gradients::leaky());
        let logits = self.forward(x, Mode::Train); // [N, classes]
        let correct = self.count_correct(view(&logits), y);
        let loss = cross_entropy_with_logits_loss(logits, self.one_hot(y));
        let loss_value = loss.array().to_f64().unwrap_or(f64::NAN);
        let mut grads = loss.backward();
        let param_grad_norms = if param_norms {
            self.store.grad_norms(&mut grads)
        } else {
            Vec::new()
        };
        let (stats, splits) = self.probe_stats_and_splits();
        let blocks = (stats.into_iter())
            .map(|(a, g)| (a, g.unwrap_or(f64::NAN)))
            .collect();
        let stats = PassStats {
            loss: loss_value,
            correct,
            batch: n,
            blocks,
            splits,
            param_grad_norms,
        };
        (stats, grads)
    }

    /// Forward with BN in evaluation mode (the forward-only path, [`Network::infer`]):
    /// `(mean loss, correct)` over the batch.
    pub fn eval_pass(&self, x: Vec<E>, y: &[usize]) -> (f64, usize) {
        self.eval_batch(&x, y)
    }

    /// [`Network::eval_pass`] on a borrowed batch.
    pub fn eval_batch(&self, x: &[E], y: &[usize]) -> (f64, usize) {
        let logits = self.infer(x, y.len());
        self.loss_and_correct(&logits, y)
    }

    /// Mean cross-entropy (in f64) and correct predictions of `logits [N, classes]`.
    pub(super) fn loss_and_correct(&self, logits: &[E], y: &[usize]) -> (f64, usize) {
        let k = self.opts.classes;
        let total: f64 = logits
            .chunks_exact(k)
            .zip(y)
            .map(|(row, &t)| {
                assert!(t < k, "label {t} out of range for {k} classes");
                let row: Vec<f64> = row.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).collect();
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - row[t]
            })
            .sum();
        (total / y.len().max(1) as f64, self.count_correct(logits, y))
    }

    pub(super) fn input_shape(&self, n: usize) -> (usize, usize, usize, usize) {
        (n, self.opts.in_channels, self.opts.height, self.opts.width)
    }

    pub(super) fn one_hot(&self, y: &[usize]) -> Tensor<(usize, usize), E, Cpu> {
        let k = self.opts.classes;
        let mut t = vec![E::zero(); y.len() * k];
        for (i, &c) in y.iter().enumerate() {
            assert!(c < k, "label {c} out of range for {k} classes");
            t[i * k + c] = E::one();
        }
        Cpu::default().tensor_from_vec(t, (y.len(), k))
    }

    pub(super) fn count_correct(&self, logits: &[E], y: &[usize]) -> usize {
        argmax_rows(logits, self.opts.classes)
            .iter()
            .zip(y)
            .filter(|(p, t)| p == t)
            .count()
    }
}

/// L2 norm accumulated in f64.
pub fn l2<E: Float>(v: &[E]) -> f64 {
    v.iter()
        .map(|x| x.to_f64().unwrap_or(f64::NAN).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::infer::tests::SPECS;
    use super::super::network::SUM_EVERY_NORM;
    use super::super::{ModelSpec, NetOptions, Network};
    use crate::engine::Float;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::simd::test_switch::without_avx512;
    use dfdx::prelude::*;

    /// ‖∂L/∂x‖ per boundary as the taps record it: read from the next block's split where it
    /// measures one, else summed by the producing op; and with every op summing its own.
    fn norms<E: Float>(spec: &str) -> [Vec<f64>; 2]
    where
        Cpu: Device<E>,
    {
        let opts = NetOptions {
            in_channels: 3,
            height: 16,
            width: 16,
            classes: 5,
            base_width: 4,
        };
        let spec: ModelSpec = spec.parse().expect("spec");
        let x: Vec<E> = rand_vec(6 * 3 * 16 * 16, 7)
            .into_iter()
            .map(|v| E::from_f64(v).unwrap())
            .collect();
        let y = [0, 1, 2, 3, 4, 0];
        [false, true].map(|every| {
            SUM_EVERY_NORM.with(|s| s.set(every));
            let mut net = Network::<E>::new(spec, opts, 3);
            let (stats, _) = net.train_pass(x.clone(), &y);
            SUM_EVERY_NORM.with(|s| s.set(false));
            stats.blocks.iter().map(|b| b.1).collect()
        })
    }

    #[test]
    fn norms_read_from_the_next_split_equal_the_summed_ones() {
        let check = |spec: &str, [read, summed]: [Vec<f64>; 2], tol: f64| {
            assert_eq!(read.len(), summed.len());
            for (i, (r, s)) in read.iter().zip(&summed).enumerate() {
                assert!(
                    *s > 0.0 && (r - s).abs() <= tol * s,
                    "{spec} boundary {i}: read {r} vs summed {s}"
                );
            }
        };
        for &spec in SPECS {
            check(spec, norms::<f64>(spec), 1e-12);
            check(spec, norms::<f32>(spec), 1e-5);
            check(spec, without_avx512(|| norms::<f32>(spec)), 1e-5);
        }
    }
}
