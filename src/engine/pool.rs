//! Global average pooling and flattening.

use super::tensor::{Float, T2, T4};
use dfdx::prelude::*;

/// `[N, C, H, W]` → `[N, C]`, the mean over H·W.
pub fn global_avg_pool<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T2<E, T> {
    let _ = x;
    todo!("engine::global_avg_pool")
}

/// `[N, C, H, W]` → `[N, C·H·W]` in NCHW order (the seed presets' Keras-style flatten).
pub fn flatten<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T2<E, T> {
    let _ = x;
    todo!("engine::flatten")
}
