//! Lesion study (Veit, Wilber, Belongie 2016, §4): a network evaluated with one block deleted
//! at test time, batch norm in evaluation mode and no tape.

use super::layers::Mode;
use super::network::Network;
use crate::engine::{Float, view};
use dfdx::prelude::*;

impl<E: Float> Network<E>
where
    Cpu: Device<E>,
{
    /// Number of blocks (boundaries minus the stem); block `i` produces boundary `i + 1` of
    /// [`Network::block_names`].
    pub fn num_blocks(&self) -> usize {
        self.block_names().len() - 1
    }

    /// [`Network::eval_pass`] with block `deleted` replaced by its shortcut path: `(mean loss,
    /// correct)` over the batch, or `None` if the block cannot be deleted (a plain block that
    /// changes its input's shape).
    pub fn eval_pass_without(
        &mut self,
        x: Vec<E>,
        y: &[usize],
        deleted: usize,
    ) -> Option<(f64, usize)> {
        assert!(deleted < self.num_blocks(), "no block {deleted}");
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(x, self.input_shape(y.len()));
        let logits = self.forward_lesioned(x, Mode::Eval, Some(deleted))?;
        let correct = self.count_correct(view(&logits), y);
        let loss = cross_entropy_with_logits_loss(logits, self.one_hot(y));
        Some((loss.array().to_f64().unwrap_or(f64::NAN), correct))
    }
}
