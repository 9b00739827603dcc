//! Element-wise ops the residual variants need: add (and the fused post-activation join
//! add + ReLU), ReLU, scaling, sigmoid, gate mixing and dropout. Custom ops where dfdx's generic
//! kernels would cost a full extra pass; add and add + ReLU can record a fused probe ([`Tap`]).

use super::backprop::{with_input_grads, with_out_grad};
use super::grads::{by_fresh, take_grad};
use super::par::{SharedMut, par_build, par_build_sum, par_chunks, par_chunks_sum, written};
use super::probe::{L1_PIECE, Moments, Tap, chunk_sum_squares};
use super::reduce::from_f64;
use super::tensor::{Float, T4, view};
use dfdx::prelude::*;
use std::mem::MaybeUninit;

/// The [`Moments`] of a chunk just written, if tapped.
///
/// # Safety
/// As [`written`].
unsafe fn chunk_moments<E: Float>(tapped: bool, c: &[MaybeUninit<E>]) -> Moments {
    if tapped {
        // SAFETY: the caller's contract.
        Moments::of(unsafe { written(c) })
    } else {
        Moments::default()
    }
}

/// `y[i] = f(a[i], b[i])` over two equally long slices, in parallel when large; with a tap, the
/// output's [`Moments`] are summed chunk by chunk as each is written and recorded.
fn zip_build<E: Float>(
    a: &[E],
    b: &[E],
    tap: Option<&Tap>,
    f: impl Fn(E, E) -> E + Sync + Send,
) -> Vec<E> {
    let tapped = tap.is_some();
    let (out, m) = par_build_sum(a.len(), |o, c| {
        let mut m = Moments::default();
        for (k, c) in c.chunks_mut(L1_PIECE).enumerate() {
            let o = o + k * L1_PIECE;
            for ((y, &p), &q) in c.iter_mut().zip(&a[o..]).zip(&b[o..]) {
                y.write(f(p, q));
            }
            // SAFETY: the loop wrote all of c (a and b are at least as long as the output).
            m = m + unsafe { chunk_moments(tapped, c) };
        }
        m
    });
    if let Some(t) = tap {
        t.forward(m);
    }
    out
}

fn same_shape<E: Float, T1, T2>(a: &T4<E, T1>, b: &T4<E, T2>, op: &str) {
    assert_eq!(a.shape(), b.shape(), "engine::{op}: shapes differ");
}

/// `g = src` for a new gradient buffer, `g += src` for an existing one; returns Σ src² if
/// `tapped` (else 0), summed chunk by chunk while each is in cache.
fn accumulate<E: Float>(g: &mut [E], fresh: bool, src: &[E], tapped: bool) -> f64 {
    par_chunks_sum(g, |o, c| {
        let s = &src[o..][..c.len()];
        if fresh {
            c.copy_from_slice(s);
        } else {
            for (d, &v) in c.iter_mut().zip(s) {
                *d += v;
            }
        }
        chunk_sum_squares(tapped, s)
    })
}

/// `a + b`, same shape.
pub fn add<E: Float, T: Tape<E, Cpu> + Merge<T>>(a: T4<E, T>, b: T4<E, T>) -> T4<E, T> {
    add_tapped(a, b, None)
}

/// [`add`] with a probe of its output fused in (see [`Tap`]).
pub fn add_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    a: T4<E, T>,
    b: T4<E, T>,
    tap: Option<&Tap>,
) -> T4<E, T> {
    same_shape(&a, &b, "add");
    let (a, at) = a.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = at.merge(bt);
    let out = zip_build(view(&a), view(&b), tap, |p, q| p + q);
    let y = a.device().tensor_from_vec(out, *a.shape());
    if T::OWNS_TAPE {
        let (ag, bg, yg, tap) = (a.ghost(), b.ghost(), y.ghost(), tap.cloned());
        let tapped = tap.as_ref().is_some_and(Tap::sums_grad);
        drop((a, b));
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&yg)?);
            with_input_grads!(grads, ag, bg, tap, |ga, fresh_a, gb, fresh_b| {
                if gb.len() != gy.len() {
                    // One tensor twice: its gradient gets gy twice.
                    by_fresh!(fresh_a, |put| par_chunks_sum(&mut ga, |o, c| {
                        let g = &gy[o..][..c.len()];
                        for (d, &v) in c.iter_mut().zip(g) {
                            put(d, v + v);
                        }
                        chunk_sum_squares(tapped, g)
                    }))
                } else {
                    let sum_sq = accumulate(&mut gb, fresh_b, &gy, tapped);
                    if fresh_a {
                        ga = gy; // a new gradient *is* gy: no pass at all
                    } else {
                        accumulate(&mut ga, false, &gy, false);
                    }
                    sum_sq
                }
            });
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// `max(a + b, 0)`: the post-activation residual join `relu(f + s)` as one op, so the sum is
/// never stored and backward makes one pass writing both input gradients (instead of a ReLU
/// gradient buffer that `add` then reads twice).
pub fn add_relu<E: Float, T: Tape<E, Cpu> + Merge<T>>(a: T4<E, T>, b: T4<E, T>) -> T4<E, T> {
    add_relu_tapped(a, b, None)
}

/// [`add_relu`] with a probe of its output fused in (see [`Tap`]).
pub fn add_relu_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    a: T4<E, T>,
    b: T4<E, T>,
    tap: Option<&Tap>,
) -> T4<E, T> {
    same_shape(&a, &b, "add_relu");
    let (a, at) = a.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = at.merge(bt);
    let zero = E::zero();
    // `move`: a value, not a reference, so the select vectorises (see `probe::Moments::of`).
    let out = zip_build(view(&a), view(&b), tap, move |p, q| {
        let s = p + q;
        if s > zero { s } else { zero }
    });
    let y = a.device().tensor_from_vec(out, *a.shape());
    if T::OWNS_TAPE {
        let (ag, bg, yg, ys) = (a.ghost(), b.ghost(), y.ghost(), y.clone());
        let tap = tap.cloned();
        let tapped = tap.as_ref().is_some_and(Tap::sums_grad);
        drop((a, b));
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let yv = view(&ys);
                with_input_grads!(grads, ag, bg, tap, |ga, fresh_a, gb, fresh_b| {
                    if gb.len() == ga.len() {
                        let gbp = SharedMut::new(&mut gb);
                        par_chunks_sum(&mut ga, |o, c| {
                            // SAFETY: par_chunks hands out disjoint ranges of ga; the same ranges
                            // of gb are disjoint too, and gb is not otherwise touched meanwhile.
                            let d = unsafe { gbp.slice(o, c.len()) };
                            let g = &gy[o..][..c.len()];
                            let it = c.iter_mut().zip(d).zip(g).zip(&yv[o..]);
                            by_fresh!(fresh_a, |put_a| by_fresh!(fresh_b, |put_b| {
                                for (((p, q), &g), &v) in it {
                                    let m = if v > zero { g } else { zero };
                                    put_a(p, m);
                                    put_b(q, m);
                                }
                            }));
                            chunk_sum_squares(tapped, g)
                        })
                    } else {
                        // One tensor twice: its gradient gets the masked gy twice.
                        by_fresh!(fresh_a, |put| par_chunks_sum(&mut ga, |o, c| {
                            let g = &gy[o..][..c.len()];
                            for ((p, &g), &v) in c.iter_mut().zip(g).zip(&yv[o..]) {
                                put(p, if v > zero { g + g } else { zero });
                            }
                            chunk_sum_squares(tapped, g)
                        }))
                    }
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// `max(x, 0)`.
pub fn relu<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let zero = E::zero();
    by_output(
        x,
        move |v| if v > zero { v } else { zero },
        move |g, y| if y > zero { g } else { zero },
    )
}

/// An element-wise `y = f(x)` whose derivative is a function of its output, so backward keeps
/// `y` rather than `x`: `∂L/∂x += d(∂L/∂y, y)`.
fn by_output<E: Float, T: Tape<E, Cpu>>(
    x: T4<E, T>,
    f: impl Fn(E) -> E + Sync + Send,
    d: impl Fn(E, E) -> E + Sync + Send + 'static,
) -> T4<E, T> {
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        for (y, &v) in c.iter_mut().zip(&xv[o..]) {
            y.write(f(v));
        }
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg, ys) = (x.ghost(), y.ghost(), y.clone());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let yv = view(&ys);
                let (mut gx, fresh) = take_grad!(grads, xg)?;
                by_fresh!(fresh, |put| par_chunks(&mut gx, |o, c| {
                    for ((dx, &g), &v) in c.iter_mut().zip(&gy[o..]).zip(&yv[o..]) {
                        put(dx, d(g, v));
                    }
                }));
                **grads.get_or_alloc_mut(&xg)? = gx;
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// `s · x` for a constant `s`.
pub fn scale<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, s: f64) -> T4<E, T> {
    let (x, mut tape) = x.split_tape();
    let k: E = from_f64(s);
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        for (y, &v) in c.iter_mut().zip(&xv[o..]) {
            y.write(v * k);
        }
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let gx = &mut **grads.get_or_alloc_mut(&xg)?;
                par_chunks(gx, |o, c| {
                    for (d, &g) in c.iter_mut().zip(&gy[o..]) {
                        *d += g * k;
                    }
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// Logistic sigmoid.
pub fn sigmoid<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let one = E::one();
    by_output(
        x,
        move |v| one / (one + (-v).exp()),
        move |g, y| g * y * (one - y),
    )
}

/// Gated sum with gate `g` (already in (0,1)): `g·f + (1−g)·s` when `exclusive`, else `f + (1−g)·s`.
pub fn gate_mix<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    g: T4<E, T>,
    f: T4<E, T>,
    s: T4<E, T>,
    exclusive: bool,
) -> T4<E, T> {
    same_shape(&g, &f, "gate_mix");
    same_shape(&g, &s, "gate_mix");
    let (g, gt) = g.split_tape();
    let (f, ft) = f.split_tape();
    let (s, st) = s.split_tape();
    let mut tape = gt.merge(ft).merge(st);
    let (gv, fv, sv) = (view(&g), view(&f), view(&s));
    let one = E::one();
    let out = par_build(gv.len(), |o, c| {
        let it = c.iter_mut().zip(&gv[o..]).zip(&fv[o..]).zip(&sv[o..]);
        if exclusive {
            for (((y, &gg), &ff), &ss) in it {
                y.write(gg * ff + (one - gg) * ss);
            }
        } else {
            for (((y, &gg), &ff), &ss) in it {
                y.write(ff + (one - gg) * ss);
            }
        }
    });
    let y = g.device().tensor_from_vec(out, *g.shape());
    if T::OWNS_TAPE {
        let (gg, fg, sg, yg) = (g.ghost(), f.ghost(), s.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let (gv, fv, sv) = (view(&g), view(&f), view(&s));
                {
                    // ∂/∂g = gy·(f − s) (exclusive) or −gy·s.
                    let dg = &mut **grads.get_or_alloc_mut(&gg)?;
                    par_chunks(dg, |o, c| {
                        let it = c.iter_mut().zip(&gy[o..]).zip(&fv[o..]).zip(&sv[o..]);
                        if exclusive {
                            for (((d, &gr), &ff), &ss) in it {
                                *d += gr * (ff - ss);
                            }
                        } else {
                            for (((d, &gr), &_ff), &ss) in it {
                                *d -= gr * ss;
                            }
                        }
                    });
                }
                {
                    // ∂/∂f = gy·g (exclusive) or gy.
                    let df = &mut **grads.get_or_alloc_mut(&fg)?;
                    par_chunks(df, |o, c| {
                        let it = c.iter_mut().zip(&gy[o..]).zip(&gv[o..]);
                        if exclusive {
                            for ((d, &gr), &ga) in it {
                                *d += gr * ga;
                            }
                        } else {
                            for ((d, &gr), &_ga) in it {
                                *d += gr;
                            }
                        }
                    });
                }
                {
                    // ∂/∂s = gy·(1 − g).
                    let ds = &mut **grads.get_or_alloc_mut(&sg)?;
                    par_chunks(ds, |o, c| {
                        for ((d, &gr), &ga) in c.iter_mut().zip(&gy[o..]).zip(&gv[o..]) {
                            *d += gr * (one - ga);
                        }
                    });
                }
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// Counter-based hash (SplitMix64 finaliser) of `(seed, i)`: the dropout mask is a pure function
/// of the seed and the element index, so forward and backward agree without storing it and the
/// result does not depend on how the work is split across threads.
#[inline(always)]
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Calls `f(j, factor)` for `j` in `0..len`, the mask factors of elements `o..o+len` (`o` a
/// multiple of 4): 0 when dropped, `keep` when kept. One hash covers four elements, 16 bits
/// each; element i is dropped iff its 16 bits are below `thresh` (of 65536).
#[inline(always)]
fn for_mask<E: Float>(
    seed: u64,
    o: usize,
    len: usize,
    thresh: u64,
    keep: E,
    mut f: impl FnMut(usize, E),
) {
    debug_assert_eq!(o % 4, 0);
    // Branch-free 0/1 indicator: for integer r, clamp(r − thresh + 1, 0, 1) is 1 iff r ≥ thresh.
    // (A select on `r >= thresh` compiles to a branch that mispredicts half the time.)
    let (zero, one) = (E::zero(), E::one());
    let t1: E = from_f64(thresh as f64 - 1.0);
    for g in 0..len.div_ceil(4) {
        let h = mix(seed, ((o / 4) + g) as u64);
        for l in 0..4 {
            let j = 4 * g + l;
            if j < len {
                let r: E = from_f64(((h >> (16 * l)) & 0xFFFF) as f64);
                f(j, keep * (r - t1).min(one).max(zero));
            }
        }
    }
}

/// Inverted dropout with drop probability `p` (identity when `!train`), mask drawn from `seed`.
///
/// `p` is quantised to a multiple of 2⁻¹⁶ (exact for 0.5); kept values are scaled by
/// 1/(1 − p_quantised), so E[y] = x exactly.
pub fn dropout<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, p: f64, train: bool, seed: u64) -> T4<E, T> {
    assert!(
        (0.0..=1.0).contains(&p),
        "engine::dropout: p = {p} is not in [0, 1]"
    );
    let thresh = (p * 65536.0).round() as u64;
    if !train || thresh == 0 {
        return x;
    }
    let keep: E = if thresh >= 65536 {
        E::zero()
    } else {
        from_f64(65536.0 / (65536 - thresh) as f64)
    };
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        let src = &xv[o..][..c.len()];
        for_mask(seed, o, c.len(), thresh, keep, |j, k| {
            c[j].write(src[j] * k);
        });
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let gx = &mut **grads.get_or_alloc_mut(&xg)?;
                par_chunks(gx, |o, c| {
                    let src = &gy[o..][..c.len()];
                    for_mask(seed, o, c.len(), thresh, keep, |j, k| c[j] += src[j] * k);
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench {
    use super::*;
    use crate::engine::gradcheck::rand_vec;

    /// `cargo test --release --lib engine::elementwise::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn misc_speed() {
        let dev = Cpu::default();
        let s = (64, 16, 32, 32);
        let len = 64 * 16 * 32 * 32;
        let mk = |seed| -> T4<f32> {
            dev.tensor_from_vec(rand_vec(len, seed).iter().map(|&v| v as f32).collect(), s)
        };
        let (a, b, g) = (mk(1), mk(2), mk(3));
        let time = |f: &mut dyn FnMut()| crate::engine::best_ms(20, f);
        let base = time(&mut || {
            std::hint::black_box(a.leaky_trace().sum().backward());
        });
        let row = |name: &str, f: &mut dyn FnMut() -> T4<f32, OwnedTape<f32, Cpu>>| {
            let fwd = time(&mut || {
                std::hint::black_box(f().retaped::<NoneTape>());
            });
            let all = time(&mut || {
                std::hint::black_box(f().sum().backward());
            });
            println!("{name:10} fwd {fwd:.3} ms, fwd+bwd {:.3} ms", all - base);
        };
        row("add", &mut || add(a.leaky_trace(), b.retaped()));
        row("relu", &mut || relu(a.leaky_trace()));
        row("relu(add)", &mut || relu(add(a.leaky_trace(), b.retaped())));
        row("add_relu", &mut || add_relu(a.leaky_trace(), b.retaped()));
        row("scale", &mut || scale(a.leaky_trace(), 0.5));
        row("sigmoid", &mut || sigmoid(a.leaky_trace()));
        row("gate_mix", &mut || {
            gate_mix(g.leaky_trace(), a.retaped(), b.retaped(), true)
        });
        row("dropout", &mut || dropout(a.leaky_trace(), 0.5, true, 9));
        row("probe", &mut || {
            crate::engine::probe(a.leaky_trace(), &crate::engine::ProbeRecorder::new(1), 0)
        });
        println!("(sum+backward baseline {base:.3} ms subtracted)");
        let rec = crate::engine::ProbeRecorder::new(1);
        let tap = rec.tap(0);
        for t in [None, tap.as_ref()] {
            let ms = time(&mut || {
                std::hint::black_box(add_relu_tapped(a.clone(), b.clone(), t));
            });
            let one = time(&mut || {
                crate::engine::on_pool(|| {
                    std::hint::black_box(add_relu_tapped(a.clone(), b.clone(), t))
                });
            });
            println!(
                "add_relu_tapped fwd, tap {}: {ms:.3} ms ({one:.3} on pool)",
                t.is_some()
            );
        }
    }
}
