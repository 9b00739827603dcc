//! The ops dfdx 0.13 lacks on stable Rust, as custom differentiable ops over runtime-shaped
//! tensors: convolution, fused batch-norm(+ReLU), pooling, gating, dropout and zero-size probes.
//!
//! Every op follows the same pattern: compute on plain slices (see [`tensor::view`]), wrap the
//! output with `tensor_from_vec`, and register a backward closure on the merged tape that adds
//! into the input gradients, or writes those that are new (`grads`; ARCHITECTURE.md, "Anatomy of
//! an engine op", also maps the modules). The engine knows nothing of ResNets.

pub mod alloc;
mod backprop;
pub mod batchnorm;
pub mod conv;
pub(crate) mod direct;
pub(crate) mod dw;
pub mod elementwise;
mod gemm;
#[cfg(test)]
pub mod gradcheck;
pub(crate) mod grads;
pub mod pad_shortcut;
pub(crate) mod par;
pub mod pool;
pub mod probe;
pub(crate) mod reduce;
mod scratch;
pub mod simd;
pub mod split;
#[cfg(test)]
mod tap_tests;
pub mod tensor;
pub mod timing;

pub use batchnorm::{BnCfg, BnSplit, batch_norm2d, batch_norm2d_probed, batch_norm2d_tapped};
pub use conv::{ConvCfg, PreparedConv, conv2d, without_weight_grads};
pub use elementwise::{
    add, add_relu, add_relu_tapped, add_tapped, dropout, gate_mix, relu, scale, sigmoid,
};
pub use pad_shortcut::pad_shortcut;
pub use pool::{flatten, global_avg_pool};
pub use probe::{ActStats, ProbeRecorder, Slots, Tap, dead_channels, probe};
pub use reduce::sum_squares;
pub use split::{GradSplit, Split, SplitSink, Stash};
pub use tensor::{Float, Shape4, T1, T2, T4, view, view_mut};

/// Runs `f` on a thread of rayon's pool and waits for it. Call a whole training step (or any
/// sequence of engine ops) through this: each op's parallel region then forks from inside the pool
/// instead of waking the pool from outside and blocking on it, several hundred times a step.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Milliseconds of the fastest of `reps` runs of `f`, after one untimed warm-up run: the minimum
/// is what other processes on a shared machine disturb least. For [`timing`] (`resviz bench
/// --kernels`) and the ignored speed tests.
pub(crate) fn best_ms(reps: usize, f: &mut dyn FnMut()) -> f64 {
    f();
    (0..reps.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}
