//! Input-gradient buffers for backward ops, taken out of dfdx's gradient store together with
//! whether they are new.
//!
//! dfdx gives a tensor that has no gradient yet a zeroed buffer, which the op then `+=`s into.
//! Most activations have one consumer, so most input gradients are new: writing them with `=`
//! saves the read of the zeros, one of the memory passes a backward op makes. The buffer is new
//! when the zeroed allocation [`super::alloc::watch_zeroed`] saw is the one the store now holds.
//! A new buffer is zeros like any other (nothing here hands out unwritten memory); an op may
//! overwrite it with `=` because `0 + v` and `v` are the same value.

use dfdx::prelude::*;

/// The element size of a gradient store's buffers.
pub(crate) fn elem_bytes<E, D: Storage<E>>(_: &Gradients<E, D>) -> usize {
    std::mem::size_of::<E>()
}

/// `take_grad!(grads, ghost)`: `Result<(Vec<E>, bool), CpuError>`, the tensor's gradient taken out
/// of the store (its entry left empty) and whether it is *new*. A new buffer holds zeros and the
/// op may write it with `=` (every element it writes; the rest stay zero); an old one is
/// accumulated into. Put it back with `**grads.get_or_alloc_mut(&ghost)? = buf` (the emptied
/// entry exists, so that allocates nothing).
///
/// A buffer holding a shortcut's part of ∂L/∂x that waits to be measured (see
/// `split::Pending`) is declined here: the part is set aside and the op gets a new buffer. An op
/// that can measure the split takes it with [`take_grad_or_pending!`] instead.
///
/// A macro because dfdx's `Tensorlike` bound on `get_or_alloc_mut` cannot be named outside dfdx.
macro_rules! take_grad {
    ($grads:ident, $t:expr) => {
        $crate::engine::grads::take_grad_or_pending!($grads, $t).map(|(buf, fresh, pending)| {
            match pending {
                Some(p) => p.decline(buf),
                None => (buf, fresh),
            }
        })
    };
}
pub(crate) use take_grad;

/// [`take_grad!`] that hands a pending split to the op: `Result<(Vec<E>, bool,
/// Option<split::Pending<E>>), CpuError>`. The op must either measure it
/// (`Pending::measured`, adding its part onto the buffer) or `Pending::decline` it.
macro_rules! take_grad_or_pending {
    ($grads:ident, $t:expr) => {{
        let len = dfdx::shapes::HasShape::shape(&$t).num_elements();
        let bytes = len * $crate::engine::grads::elem_bytes(&$grads);
        let (slot, addr) =
            $crate::engine::alloc::watch_zeroed(bytes, || $grads.get_or_alloc_mut(&$t));
        slot.map(|slot| {
            let buf = std::mem::take(&mut **slot);
            let ptr = buf.as_ptr() as usize;
            let fresh = addr == Some(ptr) || $crate::engine::grads::take_mark(ptr);
            let pending = if fresh {
                None
            } else {
                $crate::engine::split::take_pending(buf.as_slice())
            };
            (buf, fresh, pending)
        })
    }};
}
pub(crate) use take_grad_or_pending;

thread_local! {
    /// The address of one zeroed buffer put into the store as new (see [`mark_new`]), or 0.
    static MARKED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The buffer at `addr`, just put into the store zeroed, is new: the next `take_grad!` that
/// takes it reports it so (and may write it with `=`). One at a time: backward runs its ops in
/// sequence on one thread, and the op that marks a buffer is followed by the one that takes it.
pub(crate) fn mark_new(addr: usize) {
    MARKED.with(|m| m.set(addr));
}

/// Whether `addr` is the marked buffer; unmarks it if so.
pub(crate) fn take_mark(addr: usize) -> bool {
    MARKED.with(|m| {
        let hit = addr != 0 && m.get() == addr;
        if hit {
            m.set(0);
        }
        hit
    })
}

/// `by_fresh!(fresh, |put| body)`: `body` instantiated twice, with `put(&mut d, v)` meaning
/// `*d = v` when `fresh` and `*d += v` otherwise, so each loop inside is branch-free and the
/// fresh one never reads the buffer.
macro_rules! by_fresh {
    ($fresh:expr, |$put:ident| $body:expr) => {{
        if $fresh {
            #[inline(always)]
            fn $put<E: $crate::engine::tensor::Float>(d: &mut E, v: E) {
                *d = v;
            }
            $body
        } else {
            #[inline(always)]
            fn $put<E: $crate::engine::tensor::Float>(d: &mut E, v: E) {
                *d += v;
            }
            $body
        }
    }};
}
pub(crate) use by_fresh;

#[cfg(test)]
mod tests {
    use crate::engine::alloc::without_fresh;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::{BnCfg, ConvCfg, add, add_relu, batch_norm2d, conv2d, relu};
    use dfdx::prelude::*;

    type Tp = OwnedTape<f32, Cpu>;

    fn t(
        dev: &Cpu,
        n: usize,
        seed: u64,
        s: (usize, usize, usize, usize),
    ) -> Tensor<(usize, usize, usize, usize), f32, Cpu> {
        let v = rand_vec(n, seed).iter().map(|&x| x as f32).collect();
        dev.tensor_from_vec(v, s)
    }

    /// Every input and parameter gradient of a small graph in which each op meets both new and
    /// existing input gradients: x feeds a conv (dX accumulates, written second) and the
    /// `add_relu` shortcut (new); `add(y, y)` is one tensor twice; the stride-2 conv takes the
    /// im2col path, the stride-1 ones the direct kernel.
    fn gradients() -> Vec<Vec<f32>> {
        let dev = Cpu::default();
        let s = (8, 16, 16, 16); // 32768 elements: the parallel paths
        let x = t(&dev, 8 * 16 * 256, 1, s);
        let w1 = t(&dev, 16 * 16 * 9, 2, (16, 16, 3, 3));
        let w2 = t(&dev, 16 * 16 * 9, 3, (16, 16, 3, 3));
        let w3 = t(&dev, 8 * 16 * 9, 4, (8, 16, 3, 3));
        let gamma: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(vec![1.5; 16], (16,));
        let beta: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(vec![0.1; 16], (16,));
        let r = t(&dev, 8 * 8 * 64, 5, (8, 8, 8, 8));
        let (mut rm, mut rv) = (vec![0.0; 16], vec![1.0; 16]);
        let c1 = ConvCfg {
            stride: 1,
            pad: 1,
            input_grad: true,
        };
        let c2 = ConvCfg {
            stride: 2,
            pad: 1,
            input_grad: true,
        };
        let bn = BnCfg {
            relu: true,
            ..BnCfg::default()
        };
        let xt = x.clone().traced(Gradients::leaky());
        let h = conv2d(xt.with_empty_tape(), w1.clone().retaped::<Tp>(), None, c1);
        let h = batch_norm2d(
            h,
            gamma.clone().retaped(),
            beta.clone().retaped(),
            &mut rm,
            &mut rv,
            bn,
        );
        let f = conv2d(h, w2.clone().retaped::<Tp>(), None, c1);
        let y = add_relu(f, xt);
        let z = relu(add(y.with_empty_tape(), y));
        let out = conv2d(z, w3.clone().retaped::<Tp>(), None, c2); // [8, 8, 8, 8]
        let grads = (out * r).sum().backward();
        let all: [&dyn Fn() -> Vec<f32>; 6] = [
            &|| grads.get(&x).as_vec(),
            &|| grads.get(&w1).as_vec(),
            &|| grads.get(&w2).as_vec(),
            &|| grads.get(&w3).as_vec(),
            &|| grads.get(&gamma).as_vec(),
            &|| grads.get(&beta).as_vec(),
        ];
        all.iter().map(|g| g()).collect()
    }

    /// New buffers written with `=` give the gradients accumulating into zeroed ones gives.
    #[test]
    fn new_buffers_match_accumulation() {
        let fresh = gradients();
        let zeroed = without_fresh(gradients);
        for (i, (a, b)) in fresh.iter().zip(&zeroed).enumerate() {
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            let scale = b.iter().map(|q| q.abs()).fold(0.0, f32::max);
            assert!(scale > 0.0, "gradient {i} is all zero");
            assert!(
                worst <= 1e-5 * scale,
                "gradient {i}: {worst} (scale {scale})"
            );
        }
    }

    /// The mechanism engages: a new gradient comes back reported new, and zeroed; an existing
    /// one does not; with it turned off nothing is reported new.
    #[test]
    fn new_gradient_buffers_are_detected() {
        let dev = Cpu::default();
        let x = t(&dev, 4096, 7, (4, 4, 16, 16));
        let mut grads: Gradients<f32, Cpu> = Gradients::leaky();
        let (buf, fresh) = take_grad!(grads, x).unwrap();
        assert!(fresh && buf.len() == 4096);
        assert!(buf.iter().all(|&v| v == 0.0), "a new buffer is not zeroed");
        **grads.get_or_alloc_mut(&x).unwrap() = buf;
        let (buf, fresh) = take_grad!(grads, x).unwrap();
        assert!(!fresh && buf.len() == 4096);
        let y = t(&dev, 4096, 8, (4, 4, 16, 16));
        let (buf, fresh) = without_fresh(|| take_grad!(grads, y).unwrap());
        assert!(!fresh && buf.iter().all(|&v| v == 0.0));
    }
}
