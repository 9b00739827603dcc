//! Global average pooling and flattening.

use super::backprop::with_out_grad;
use super::par::{CHUNK, PAR_MIN};
use super::reduce::{from_f64, reduce1};
use super::tensor::{Float, T2, T4, view};
use dfdx::prelude::*;

/// `[N, C, H, W]` → `[N, C]`, the mean over H·W.
pub fn global_avg_pool<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T2<E, T> {
    let (n, c, h, w) = *x.shape();
    let hw = h * w;
    assert!(hw > 0, "global_avg_pool: empty planes");
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let mut out = vec![E::zero(); n * c];
    let inv = 1.0 / hw as f64;
    par_units(&mut out, 1, hw, |p0, ch| {
        for (j, d) in ch.iter_mut().enumerate() {
            *d = from_f64(reduce1(&xv[(p0 + j) * hw..][..hw], |v| [v])[0] * inv);
        }
    });
    let y = x.device().tensor_from_vec(out, (n, c));
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        let k: E = from_f64(inv);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let gx = &mut **grads.get_or_alloc_mut(&xg)?;
                par_units(gx, hw, hw, |p0, ch| {
                    for (plane, &g) in ch.chunks_exact_mut(hw).zip(&gy[p0..]) {
                        let v = g * k;
                        plane.iter_mut().for_each(|d| *d += v);
                    }
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// Runs `f(first_unit, chunk)` over chunks of `buf` made of whole units of `unit` elements, each
/// unit costing `work` elements of memory traffic; in parallel when the total work is large.
fn par_units<E: Float>(
    buf: &mut [E],
    unit: usize,
    work: usize,
    f: impl Fn(usize, &mut [E]) + Sync + Send,
) {
    use rayon::prelude::*;
    let units = buf.len() / unit.max(1);
    let per = (CHUNK / work.max(1)).max(1);
    if units * work < PAR_MIN {
        f(0, buf);
    } else {
        buf.par_chunks_mut(per * unit)
            .enumerate()
            .for_each(|(i, c)| f(i * per, c));
    }
}

/// `[N, C, H, W]` → `[N, C·H·W]` in NCHW order (the seed presets' Keras-style flatten).
///
/// dfdx's reshape of a contiguous tensor is zero-copy and keeps the tensor's id and tape, so the
/// gradient flows through unchanged (it is the same gradient entry).
pub fn flatten<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T2<E, T> {
    let (n, c, h, w) = *x.shape();
    x.reshape_like(&(n, c * h * w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::gradcheck::{grad_check, t4};

    #[test]
    fn global_avg_pool_matches_reference_and_gradcheck() {
        for s in [(2, 3, 4, 5), (8, 32, 16, 16)] {
            let (n, c, h, w) = s;
            let x = rand_vec(n * c * h * w, 1);
            let y = global_avg_pool(t4(&x, s)).as_vec();
            assert_eq!(y.len(), n * c);
            for p in 0..n * c {
                let want = x[p * h * w..(p + 1) * h * w].iter().sum::<f64>() / (h * w) as f64;
                assert!((y[p] - want).abs() < 1e-14);
            }
        }
        // Through a T2 output: reshape back to rank 4 for the shared checker.
        let s = (2, 3, 4, 5);
        let to4 = |t: T2<f64>| {
            let (n, c) = *t.shape();
            t.reshape_like(&(n, c, 1, 1))
        };
        grad_check(
            &[rand_vec(120, 2)],
            s,
            |v| to4(global_avg_pool(v[0].clone())),
            |v| {
                let y = global_avg_pool(v.into_iter().next().unwrap());
                let (n, c) = *y.shape();
                y.reshape_like(&(n, c, 1, 1))
            },
        );
    }

    #[test]
    fn global_avg_pool_parallel_backward() {
        let s = (8, 32, 16, 16);
        let len = 8 * 32 * 16 * 16;
        let x = t4(&rand_vec(len, 3), s);
        let r = rand_vec(8 * 32, 4);
        let rt: T2<f64> = Cpu::default().tensor_from_vec(r.clone(), (8, 32));
        let g = (global_avg_pool(x.leaky_trace()) * rt).sum().backward();
        let gx = g.get(&x).as_vec();
        for (i, v) in gx.iter().enumerate() {
            assert!((v - r[i / 256] / 256.0).abs() < 1e-15);
        }
    }

    #[test]
    fn flatten_is_zero_copy_nchw_and_passes_gradients() {
        let s = (2, 3, 4, 5);
        let xv = rand_vec(120, 5);
        let x = t4(&xv, s);
        let y = flatten(x.clone());
        assert_eq!(*y.shape(), (2, 60));
        assert_eq!(view(&y).as_ptr(), view(&x).as_ptr(), "no copy");
        assert_eq!(y.as_vec(), xv);
        let r = rand_vec(120, 6);
        let rt: T2<f64> = Cpu::default().tensor_from_vec(r.clone(), (2, 60));
        let g = (flatten(x.leaky_trace()) * rt).sum().backward();
        assert_eq!(g.get(&x).as_vec(), r);
    }
}
