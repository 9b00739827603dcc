//! Small element-wise ops the residual variants need: add, ReLU, scaling, sigmoid, gate mixing,
//! dropout. Custom ops where dfdx's generic kernels would cost a full extra pass.

use super::tensor::{Float, T4};
use dfdx::prelude::*;

/// `a + b`, same shape.
pub fn add<E: Float, T: Tape<E, Cpu> + Merge<T>>(a: T4<E, T>, b: T4<E, T>) -> T4<E, T> {
    let _ = (a, b);
    todo!()
}

/// `max(x, 0)`.
pub fn relu<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let _ = x;
    todo!()
}

/// `s · x` for a constant `s`.
pub fn scale<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, s: f64) -> T4<E, T> {
    let _ = (x, s);
    todo!()
}

/// Logistic sigmoid.
pub fn sigmoid<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let _ = x;
    todo!()
}

/// Gated sum with gate `g` (already in (0,1)): `g·f + (1−g)·s` when `exclusive`, else `f + (1−g)·s`.
pub fn gate_mix<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    g: T4<E, T>,
    f: T4<E, T>,
    s: T4<E, T>,
    exclusive: bool,
) -> T4<E, T> {
    let _ = (g, f, s, exclusive);
    todo!()
}

/// Inverted dropout with drop probability `p` (identity when `!train`), mask drawn from `seed`.
pub fn dropout<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, p: f64, train: bool, seed: u64) -> T4<E, T> {
    let _ = (x, p, train, seed);
    todo!()
}
