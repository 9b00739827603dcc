//! Batch normalisation over (N, H, W) per channel, fused with an optional ReLU, as one custom op.

use super::tensor::{Float, T1, T4};
use dfdx::prelude::*;

/// PyTorch's conventions: eps 1e-5, momentum 0.1, unbiased running variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnCfg {
    pub eps: f64,
    pub momentum: f64,
    /// Batch statistics (and running-stat update) when true, running statistics when false.
    pub train: bool,
    /// Apply ReLU to the output inside the same op.
    pub relu: bool,
}

/// `x [N, C, H, W]`, `gamma [C]`, `beta [C]` → `[N, C, H, W]`. In training mode updates
/// `running_mean`/`running_var` in place (`r = (1−m)·r + m·batch`, variance unbiased).
pub fn batch_norm2d<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: T4<E, T>,
    gamma: T1<E, T>,
    beta: T1<E, T>,
    running_mean: &mut [E],
    running_var: &mut [E],
    cfg: BnCfg,
) -> T4<E, T> {
    let _ = (x, gamma, beta, running_mean, running_var, cfg);
    todo!("engine::batch_norm2d")
}
