//! What the experiments on a network's weights need besides a loss: the gradient of one logit
//! with respect to the input (gradient shattering), plain eval-mode logits, and batch-norm running
//! statistics re-estimated from training-mode passes ("precise BN").

use super::layers::Mode;
use super::network::Network;
use crate::engine::{Float, view};
use dfdx::prelude::*;

impl<E: Float> Network<E>
where
    Cpu: Device<E>,
{
    /// For `n` inputs `x [n, C, H, W]`: logit `class` of each, and ∂logit/∂x per input
    /// (`[n, C, H, W]`), batch norm in evaluation mode so that inputs do not interact. The first
    /// conv computes its input gradient for this pass only; statistics are off during it.
    pub fn logit_input_grads(&mut self, x: Vec<E>, n: usize, class: usize) -> (Vec<E>, Vec<E>) {
        let k = self.opts.classes;
        assert!(class < k, "class {class} out of range for {k} classes");
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(x, self.input_shape(n));
        let traced = x.clone().traced(Gradients::leaky());
        let probes = self.probes_enabled();
        self.set_probes_enabled(false);
        self.input_grad = true;
        // Only ∂/∂x is read: the convs skip dW, a third of the backward's work.
        let logits = crate::engine::without_weight_grads(|| self.forward(traced, Mode::Eval)); // [n, k]
        self.input_grad = false;
        self.set_probes_enabled(probes);
        let picked: Vec<E> = view(&logits).chunks(k).map(|row| row[class]).collect();
        let mut mask = vec![E::zero(); n * k];
        (0..n).for_each(|i| mask[i * k + class] = E::one());
        let mask = dev.tensor_from_vec(mask, (n, k));
        // Σ_i logit_class(x_i): example i's input gradient is its own logit's gradient.
        let total = (logits * mask).sum::<(), _>();
        let grads = total.backward();
        (picked, grads.get(&x).as_vec())
    }

    /// Logits `[n, classes]` of `x [n, C, H, W]`, batch norm in evaluation mode.
    pub fn eval_logits(&mut self, x: Vec<E>, n: usize) -> Vec<E> {
        let x = Cpu::default().tensor_from_vec(x, self.input_shape(n));
        view(&self.forward(x, Mode::Eval)).to_vec()
    }

    /// Batch `index` (from 0) of a precise-BN re-estimation: a training-mode forward pass of the
    /// `n` inputs `x` without backward, every batch norm averaging this batch's statistics into
    /// its running ones with weight 1/(index + 1), i.e. after batches 0..K the running mean and
    /// (unbiased) variance are the plain averages of the K batches' statistics. Weights are
    /// untouched; running statistics of earlier passes are forgotten at index 0.
    pub fn precise_bn_batch(&mut self, x: Vec<E>, n: usize, index: usize) {
        let weight = 1.0 / (index + 1) as f64;
        let saved: Vec<f64> = self
            .bns_mut()
            .into_iter()
            .map(|bn| std::mem::replace(&mut bn.momentum, weight))
            .collect();
        let x = Cpu::default().tensor_from_vec(x, self.input_shape(n));
        let _ = self.forward(x, Mode::Train);
        for (bn, m) in self.bns_mut().into_iter().zip(saved) {
            bn.momentum = m;
        }
    }
}
