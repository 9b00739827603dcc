//! A per-thread scratch buffer that grows and is kept: the im2col matrices, padded images and
//! partial sums the conv paths (`conv`, `direct`, `dw`) need per image, without an allocation
//! per call.

use super::tensor::Float;
use std::cell::Cell;

thread_local! {
    /// Per-thread scratch that grows and is kept (f64 words: aligned for f32 and f64 alike).
    static SCRATCH: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on `len` elements of this thread's scratch buffer (contents unspecified).
pub(crate) fn with_scratch<E: Float, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    assert!(
        std::mem::size_of::<E>() <= 8 && std::mem::align_of::<E>() <= 8,
        "conv2d scratch holds f32/f64 only"
    );
    // Taken out (not borrowed) so a re-entrant call on this thread just uses a fresh buffer.
    let mut buf = SCRATCH.with(|c| c.take());
    let words = (len * std::mem::size_of::<E>()).div_ceil(8);
    if buf.len() < words {
        buf.resize(words, 0.0);
    }
    // SAFETY: the buffer holds at least `len·size_of::<E>()` initialised bytes, is 8-aligned, and
    // E is f32 or f64 (every bit pattern is a valid value). `buf` outlives the slice.
    let s = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut E, len) };
    let r = f(s);
    SCRATCH.with(|c| {
        let other = c.take();
        c.set(if other.len() > buf.len() { other } else { buf });
    });
    r
}
