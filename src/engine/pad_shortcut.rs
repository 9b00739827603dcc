//! The option-A shortcut of He et al. 2015 §4.2 as a differentiable op: x subsampled at a stride
//! (every `stride`-th row and column, from the first) with zero channels appended up to `cout`.
//! It has no parameters, so a ResNet built with it has exactly its plain counterpart's weights.
//!
//! The zeros follow the input channels, as in the authors' Torch code (a channel concat of the
//! subsampled x and its zeroed copy).

use super::tensor::{Float, T4, view};
use dfdx::prelude::*;
use rayon::prelude::*;

/// Output side of a stride-`s` subsampling of `n` positions: `⌈n / s⌉`, as a 3×3 pad-1 or 1×1
/// pad-0 conv at stride `s` gives.
fn out_side(n: usize, s: usize) -> usize {
    (n - 1) / s + 1
}

/// `[N, C, H, W]` → `[N, cout, ⌈H/stride⌉, ⌈W/stride⌉]`: channel c < C takes x's channel c at
/// rows and columns 0, stride, 2·stride, …; channels C.. are zero.
pub fn pad_shortcut<E: Float, T: Tape<E, Cpu>>(
    x: T4<E, T>,
    cout: usize,
    stride: usize,
) -> T4<E, T> {
    let (n, c, h, w) = *x.shape();
    assert!(
        cout >= c && stride >= 1,
        "engine::pad_shortcut: cannot shrink {c} channels to {cout} (stride {stride})"
    );
    let (ho, wo) = (out_side(h, stride), out_side(w, stride));
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let mut out = vec![E::zero(); n * cout * ho * wo];
    // Each output image reads only its own input image.
    out.par_chunks_mut(cout * ho * wo)
        .zip(xv.par_chunks(c * h * w))
        .for_each(|(yo, xi)| {
            for ch in 0..c {
                let (yp, xp) = (&mut yo[ch * ho * wo..], &xi[ch * h * w..]);
                for i in 0..ho {
                    for j in 0..wo {
                        yp[i * wo + j] = xp[i * stride * w + j * stride];
                    }
                }
            }
        });
    let y = x.device().tensor_from_vec(out, (n, cout, ho, wo));
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            // Taken out of the store so both buffers can be held at once.
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&yg)?);
            let gx = &mut **grads.get_or_alloc_mut(&xg)?;
            // The zero channels pass no gradient; the skipped positions of x get none.
            gx.par_chunks_mut(c * h * w)
                .zip(gy.par_chunks(cout * ho * wo))
                .for_each(|(gi, go)| {
                    for ch in 0..c {
                        let (gp, op) = (&mut gi[ch * h * w..], &go[ch * ho * wo..]);
                        for i in 0..ho {
                            for j in 0..wo {
                                gp[i * stride * w + j * stride] += op[i * wo + j];
                            }
                        }
                    }
                });
            Ok(())
        });
    }
    y.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f64> {
        // A fixed LCG: distinct, reproducible test inputs in [-1, 1).
        let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// The op written as index arithmetic on the definition, element by element.
    fn reference(
        x: &[f64],
        (n, c, h, w): (usize, usize, usize, usize),
        cout: usize,
        s: usize,
    ) -> Vec<f64> {
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let mut y = Vec::new();
        for b in 0..n {
            for ch in 0..cout {
                for i in 0..ho {
                    for j in 0..wo {
                        y.push(if ch < c {
                            x[((b * c + ch) * h + i * s) * w + j * s]
                        } else {
                            0.0
                        });
                    }
                }
            }
        }
        y
    }

    #[test]
    fn matches_the_naive_reference() {
        let dev = Cpu::default();
        for (shape, cout, s) in [
            ((2, 3, 8, 8), 6, 2),
            ((1, 4, 7, 5), 4, 2),
            ((2, 2, 5, 5), 5, 1),
            ((3, 2, 9, 6), 4, 3),
        ] {
            let (n, c, h, w) = shape;
            let xv = values(n * c * h * w, 7);
            let x: T4<f64> = dev.tensor_from_vec(xv.clone(), shape);
            let y = pad_shortcut(x, cout, s);
            assert_eq!(*y.shape(), (n, cout, h.div_ceil(s), w.div_ceil(s)));
            assert_eq!(
                y.as_vec(),
                reference(&xv, shape, cout, s),
                "{shape:?} → {cout}, /{s}"
            );
        }
    }

    /// f64 central differences of L = Σ r ⊙ y² against the op's backward.
    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Cpu::default();
        let (shape, cout, s) = ((2, 3, 5, 6), 5, 2);
        let (n, c, h, w) = shape;
        let xv = values(n * c * h * w, 1);
        let r = values(n * cout * 3 * 3, 2);
        let loss = |x: &[f64]| -> f64 {
            let y = reference(x, shape, cout, s);
            y.iter().zip(&r).map(|(a, b)| a * a * b).sum()
        };
        let x: T4<f64> = dev.tensor_from_vec(xv.clone(), shape);
        let rt: T4<f64> = dev.tensor_from_vec(r.clone(), (n, cout, 3, 3));
        let y = pad_shortcut(x.clone().traced(Gradients::leaky()), cout, s);
        let grads = (y.square() * rt).sum().backward();
        let analytic = grads.get(&x).as_vec();
        let eps = 1e-6;
        let mut xs = xv.clone();
        let mut worst: f64 = 0.0;
        for i in 0..xs.len() {
            let o = xs[i];
            xs[i] = o + eps;
            let p = loss(&xs);
            xs[i] = o - eps;
            let m = loss(&xs);
            xs[i] = o;
            worst = worst.max((analytic[i] - (p - m) / (2.0 * eps)).abs());
        }
        assert!(worst < 1e-7, "max |analytic − numeric| = {worst}");
        // Skipped positions get exactly zero; sampled ones do not (r, x are nonzero).
        assert_eq!(analytic[1], 0.0);
        assert!(analytic[0] != 0.0);
    }

    /// A gradient already present on x (another consumer) is added to, not overwritten.
    #[test]
    fn backward_accumulates() {
        let dev = Cpu::default();
        let x: T4<f64> = dev.tensor_from_vec(values(16, 3), (1, 1, 4, 4));
        let xt = x.clone().traced(Gradients::leaky());
        let y = pad_shortcut(xt.with_empty_tape(), 2, 2);
        let z = y.sum() + xt.sum();
        let g = z.backward().get(&x).as_vec();
        let want: Vec<f64> = (0..16)
            .map(|k| {
                if (k / 4) % 2 == 0 && k % 2 == 0 {
                    2.0
                } else {
                    1.0
                }
            })
            .collect();
        assert_eq!(g, want);
    }
}
