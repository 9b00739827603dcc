//! 2-D convolution (NCHW, square kernels, zero padding) as a custom dfdx op: im2col + gemm.
//!
//! Speed layout (the product's main cost): the batch is split into one contiguous range of images
//! per rayon thread; each thread builds the im2col matrix of *one image at a time* in a
//! thread-local scratch buffer (it stays in L2) and calls single-threaded `gemm` on it. In
//! backward each thread keeps its own partial dW / db sum, reduced at the end, and does its own
//! col2im into its images' rows of dX. 1×1 stride-1 unpadded convolutions skip im2col/col2im and
//! multiply the image directly.
//!
//! In f32 on AVX-512, stride-1 convs with a kernel take the direct kernel of `engine::direct`
//! for the forward pass and dX instead (about twice as fast; no im2col matrix), and 3×3 ones the
//! kernel of `engine::dw` for dW; the rest (stride 2, the f64 gradient checks, other CPUs, and
//! any conv with the direct kernels switched off: `engine::simd`) stays here.

mod backward;
mod forward;
mod geom;
mod im2col;
mod prepared;
#[cfg(test)]
mod tests;

pub(crate) use backward::backward;
pub(crate) use forward::forward;
pub(crate) use geom::Geom;
pub use prepared::PreparedConv;

use super::grads::take_grad_or_pending;
use super::tensor::{Float, T1, T4, view};
use backward::DxWrite;
use dfdx::prelude::*;
use std::cell::Cell;

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
    let g = Geom::new(*x.shape(), *w.shape(), cfg);
    if let Some(b) = &bias {
        assert_eq!(
            b.shape().0,
            g.cout,
            "conv2d: bias has {} entries but the weight has {} output channels",
            b.shape().0,
            g.cout
        );
    }
    let (x, xt) = x.split_tape();
    let (w, wt) = w.split_tape();
    let mut tape = xt.merge(wt);
    let bias = bias.map(|b| {
        let (b, bt) = b.split_tape();
        tape = std::mem::take(&mut tape).merge(bt);
        b
    });

    // Zeroed although `forward` overwrites every element: its kernels (gemm, the direct
    // kernel) write through `&mut [E]`, which must not point at uninitialised memory. The
    // zeroing is one parallel write pass (`engine::alloc`), measured in ARCHITECTURE.md.
    let mut out = vec![E::zero(); g.n * g.cout * g.p()];
    forward(
        &g,
        view(&x),
        view(&w),
        bias.as_ref().map(|b| view(b)),
        &mut out,
    );
    let dev = x.device().clone();
    let y = dev.tensor_from_vec(out, (g.n, g.cout, g.ho, g.wo));

    if T::OWNS_TAPE {
        let yg = y.ghost();
        let (xg, wg) = (x.ghost(), w.ghost());
        let bg = bias.as_ref().map(|b| b.ghost());
        let weight_grads = !NO_WEIGHT_GRADS.with(Cell::get);
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&yg)?);
            let mut gw = match weight_grads {
                true => Some(std::mem::take(&mut **grads.get_or_alloc_mut(&wg)?)),
                false => None,
            };
            let mut gb = match &bg {
                Some(bg) if weight_grads => {
                    Some(std::mem::take(&mut **grads.get_or_alloc_mut(bg)?))
                }
                _ => None,
            };
            let mut gx = if cfg.input_grad {
                Some(take_grad_or_pending!(grads, xg)?)
            } else {
                None
            };
            let measured = gx
                .as_mut()
                .is_some_and(|(buf, fresh, pending)| measure_dx(&g, &w, &gy, buf, fresh, pending));
            backward(
                &g,
                view(&x),
                view(&w),
                &gy,
                gx.as_mut()
                    .filter(|_| !measured)
                    .map(|(gx, fresh, _)| (&mut gx[..], *fresh)),
                gw.as_deref_mut(),
                gb.as_deref_mut(),
            );
            if let Some((gx, _, _)) = gx {
                **grads.get_or_alloc_mut(&xg)? = gx;
            }
            if let (Some(bg), Some(gb)) = (&bg, gb) {
                **grads.get_or_alloc_mut(bg)? = gb;
            }
            if let Some(gw) = gw {
                **grads.get_or_alloc_mut(&wg)? = gw;
            }
            // y's entry stays empty: nothing reads it after its producer (see `with_out_grad`).
            drop(gy);
            Ok(())
        });
    }
    y.put_tape(tape)
}

thread_local! {
    /// Set by [`without_weight_grads`] on this thread.
    static NO_WEIGHT_GRADS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the convolutions it records computing neither weight nor bias gradient in
/// backward (their entries stay absent from the gradients): for passes that want ∂/∂x only
/// (gradient shattering), where dW would be about a third of the work, thrown away. The switch
/// is read when a conv is recorded, so `f` covers the forward pass; the backward may run later.
pub fn without_weight_grads<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_WEIGHT_GRADS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(NO_WEIGHT_GRADS.with(|c| c.replace(true)));
    f()
}

/// A residual branch starting with this conv: the shortcut's part of ∂L/∂x waits in `gx`
/// (`pending`), and the direct kernel adds dX onto it while summing eq. 5's terms. True if it
/// did (dX done); otherwise the part is declined and `gx` is the conv's own buffer to write.
fn measure_dx<E: Float>(
    g: &Geom,
    w: &T4<E, NoneTape>,
    gy: &[E],
    gx: &mut Vec<E>,
    fresh: &mut bool,
    pending: &mut Option<super::split::Pending<E>>,
) -> bool {
    let Some(p) = pending.take() else {
        return false;
    };
    match backward::direct_dx(g, view(w), gy, gx, DxWrite::Measured) {
        Some(sums) => {
            #[cfg(test)]
            DX_MEASURED.with(|c| c.set(c.get() + 1));
            p.measured(sums);
            true
        }
        None => {
            (*gx, *fresh) = p.decline(std::mem::take(gx));
            false
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Splits this thread's conv backward ops measured as they wrote dX (for the split tests).
    pub(crate) static DX_MEASURED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
