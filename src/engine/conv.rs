//! 2-D convolution (NCHW, square kernels, zero padding) as a custom dfdx op: im2col + gemm.

use super::tensor::{Float, T1, T4};
use dfdx::prelude::*;

/// Stride and zero padding of a convolution, and whether the input needs a gradient
/// (the first conv's input is data, so its col2im can be skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCfg {
    pub stride: usize,
    pub pad: usize,
    pub input_grad: bool,
}

/// `x [N, Cin, H, W]`, `w [Cout, Cin, K, K]`, optional `bias [Cout]` → `[N, Cout, Ho, Wo]` with
/// `Ho = (H + 2·pad − K) / stride + 1`. Gradients accumulate into x (if `cfg.input_grad`), w, bias.
pub fn conv2d<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: T4<E, T>,
    w: T4<E, T>,
    bias: Option<T1<E, T>>,
    cfg: ConvCfg,
) -> T4<E, T> {
    let _ = (x, w, bias, cfg);
    todo!("engine::conv2d")
}
