//! The ops dfdx 0.13 lacks on stable Rust, as custom differentiable ops over runtime-shaped
//! tensors: convolution, fused batch-norm(+ReLU), pooling, gating, dropout and zero-size probes.
//!
//! Every op follows the same pattern: compute on plain slices (see [`tensor::view`]), wrap the
//! output with `tensor_from_vec`, and register a backward closure on the merged tape that
//! *accumulates* (`+=`) into the input gradients. The engine knows nothing of ResNets.

pub mod alloc;
pub mod batchnorm;
pub mod conv;
pub mod direct;
#[cfg(test)]
pub mod gradcheck;
pub mod misc;
pub mod pool;
pub mod probe;
pub mod tensor;

pub use batchnorm::{BnCfg, batch_norm2d};
pub use conv::{ConvCfg, conv2d};
pub use misc::{add, add_relu, dropout, gate_mix, relu, scale, sigmoid, sum_squares};
pub use pool::{flatten, global_avg_pool};
pub use probe::{ActStats, ProbeRecorder, probe};
pub use tensor::{Float, Shape4, T1, T2, T4, view, view_mut};
