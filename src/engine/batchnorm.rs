//! Batch normalisation over (N, H, W) per channel, fused with an optional ReLU, as one custom op.
//!
//! Work is split by channel: each channel's N planes are read once from memory for the
//! statistics and again (now from cache) to write the output; backward likewise makes one
//! reduction pass and one gradient pass per channel.

use super::backprop::with_out_grad;
use super::grads::{by_fresh, take_grad};
use super::par::{SharedMut, par_map, written};
use super::probe::{Moments, Tap};
use super::reduce::{from_f64, reduce3_planes, to_f64};
use super::tensor::{Float, T1, T4, view};
use dfdx::prelude::*;
use std::mem::MaybeUninit;

/// PyTorch's conventions: eps 1e-5, momentum 0.1, unbiased running variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnCfg {
    pub eps: f64,
    pub momentum: f64,
    /// Batch statistics (and running-stat update) when true, running statistics when false.
    pub train: bool,
    /// Apply ReLU to the output inside the same op.
    pub relu: bool,
}

impl Default for BnCfg {
    fn default() -> Self {
        Self {
            eps: 1e-5,
            momentum: 0.1,
            train: true,
            relu: false,
        }
    }
}

/// Per-channel statistics used to normalise: `x̂ = (x − mean)·invstd`.
#[derive(Clone, Copy, Debug)]
pub struct ChanNorm {
    pub mean: f64,
    pub invstd: f64,
    /// The forward's shift `β − mean·γ·invstd`: backward recomputes the ReLU mask from x.
    pub shift: f64,
}

/// Σ(x−k) and Σ(x−k)² over channel `c`'s planes, with `k` the channel's first element;
/// returns the channel's mean and biased variance.
fn channel_moments<E: Float>(x: &[E], n: usize, c_all: usize, hw: usize, c: usize) -> (f64, f64) {
    let k = x[c * hw];
    let plane = |b: usize| {
        let p = &x[(b * c_all + c) * hw..][..hw];
        [p, p, p]
    };
    let [s1, s2] = reduce3_planes(n, plane, |v, _, _| {
        let d = v - k;
        [d, d * d]
    });
    let m = (n * hw) as f64;
    let d = s1 / m;
    (to_f64(k) + d, (s2 / m - d * d).max(0.0))
}

/// Writes `y = max?(a·x + b)` for channel `c`.
fn channel_affine<E: Float, const RELU: bool>(
    x: &[E],
    y: SharedMut<MaybeUninit<E>>,
    dims: (usize, usize, usize, usize),
    a: E,
    b: E,
) {
    #[cfg(target_arch = "x86_64")]
    if super::direct::available() {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float, const RELU: bool>(
            x: &[E],
            y: SharedMut<MaybeUninit<E>>,
            dims: (usize, usize, usize, usize),
            a: E,
            b: E,
        ) {
            channel_affine_body::<E, RELU>(x, y, dims, a, b)
        }
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { wide::<E, RELU>(x, y, dims, a, b) };
    }
    channel_affine_body::<E, RELU>(x, y, dims, a, b)
}

/// [`channel_affine`]'s body, compiled for AVX-512 or the SSE2 baseline by its caller; the
/// arithmetic (`x·a + b`, never fused) is the same either way.
#[inline(always)]
fn channel_affine_body<E: Float, const RELU: bool>(
    x: &[E],
    y: SharedMut<MaybeUninit<E>>,
    (n, c_all, hw, c): (usize, usize, usize, usize),
    a: E,
    b: E,
) {
    let zero = E::zero();
    for bi in 0..n {
        let off = (bi * c_all + c) * hw;
        // SAFETY: plane (bi, c) belongs to channel c's task alone.
        let yp = unsafe { y.slice(off, hw) };
        for (o, &v) in yp.iter_mut().zip(&x[off..][..hw]) {
            let t = v * a + b;
            o.write(if RELU && t <= zero { zero } else { t });
        }
    }
}

/// Backward for channel `c`: accumulates into `gx` (overwrites it when `fresh`) and returns
/// `(Σ gy·x̂, Σ gy, Σ gz²)` = (dγ, dβ, the channel's share of ‖∂L/∂y‖²).
/// `gy` is the output gradient `gz` through the ReLU mask (`y > 0`) when `RELU`; the mask is
/// recomputed from x with the forward's exact arithmetic (`x·a + b > 0` in `E`), so backward
/// neither reads nor keeps the output.
/// What a backward pass over one channel does besides the gradient arithmetic.
#[derive(Clone, Copy, Debug)]
struct Pass {
    /// Batch statistics (training mode) rather than running ones.
    train: bool,
    /// `gx` is a new buffer: overwrite it rather than accumulate.
    fresh: bool,
    /// Also return Σ gz² (a fused probe).
    tapped: bool,
}

fn channel_backward<E: Float, const RELU: bool>(
    x: &[E],
    gz: &[E],
    gx: SharedMut<E>,
    dims: (usize, usize, usize, usize),
    norm: ChanNorm,
    gamma: f64,
    pass: Pass,
) -> (f64, f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if super::direct::available() {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float, const RELU: bool>(
            x: &[E],
            gz: &[E],
            gx: SharedMut<E>,
            dims: (usize, usize, usize, usize),
            norm: ChanNorm,
            gamma: f64,
            pass: Pass,
        ) -> (f64, f64, f64) {
            channel_backward_body::<E, RELU>(x, gz, gx, dims, norm, gamma, pass)
        }
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { wide::<E, RELU>(x, gz, gx, dims, norm, gamma, pass) };
    }
    channel_backward_body::<E, RELU>(x, gz, gx, dims, norm, gamma, pass)
}

/// [`channel_backward`]'s body (see [`channel_affine_body`]).
#[inline(always)]
fn channel_backward_body<E: Float, const RELU: bool>(
    x: &[E],
    gz: &[E],
    gx: SharedMut<E>,
    (n, c_all, hw, c): (usize, usize, usize, usize),
    norm: ChanNorm,
    gamma: f64,
    pass: Pass,
) -> (f64, f64, f64) {
    let zero = E::zero();
    let mu: E = from_f64(norm.mean);
    // The forward's a and b, bit for bit (same f64 values, same conversion).
    let a: E = from_f64(gamma * norm.invstd);
    let b: E = from_f64(norm.shift);
    // `move` closures below: values, not references (see probe::act_stats).
    #[inline(always)]
    fn masked<E: Float, const RELU: bool>(g: E, x: E, a: E, b: E) -> E {
        if RELU && x * a + b <= E::zero() {
            E::zero()
        } else {
            g
        }
    }
    // Plane `bi` of x and gz.
    let planes = |bi: usize| {
        let off = (bi * c_all + c) * hw;
        (off, &x[off..][..hw], &gz[off..][..hw])
    };
    let pair = |bi: usize| {
        let (_, xp, gp) = planes(bi);
        [gp, xp, xp]
    };
    // Σ gz² before the mask is ‖∂L/∂y‖² for a fused probe (see `Tap`): a third sum only then.
    let [sg, sgx, sgg] = if pass.tapped {
        reduce3_planes(n, pair, move |g, xv, _| {
            let gm = masked::<E, RELU>(g, xv, a, b);
            [gm, gm * (xv - mu), g * g]
        })
    } else {
        let [sg, sgx] = reduce3_planes(n, pair, move |g, xv, _| {
            let gm = masked::<E, RELU>(g, xv, a, b);
            [gm, gm * (xv - mu)]
        });
        [sg, sgx, 0.0]
    };
    let Pass { train, fresh, .. } = pass;
    // train: dx = a·(gy − Σgy/M − x̂·Σ(gy·x̂)/M), x̂ = (x − μ)·invstd, = a·gy + c1 + c2·(x − μ);
    // eval: mean and variance are constants, dx = a·gy.
    let m = (n * hw) as f64;
    let (c1, c2): (E, E) = if train {
        (
            from_f64(-gamma * norm.invstd * sg / m),
            from_f64(-gamma * norm.invstd.powi(3) * sgx / m),
        )
    } else {
        (zero, zero)
    };
    for bi in 0..n {
        let (off, xp, gp) = planes(bi);
        // SAFETY: plane (bi, c) belongs to channel c's task alone.
        let dp = unsafe { gx.slice(off, hw) };
        let it = dp.iter_mut().zip(gp).zip(xp);
        by_fresh!(fresh, |put| if train {
            for ((d, &g), &xv) in it {
                put(d, a * masked::<E, RELU>(g, xv, a, b) + c1 + c2 * (xv - mu));
            }
        } else {
            for ((d, &g), &xv) in it {
                put(d, a * masked::<E, RELU>(g, xv, a, b));
            }
        })
    }
    (sgx * norm.invstd, sg, sgg)
}

/// Forward on plain slices: writes all of `out` (`y = ReLU?(γ·x̂ + β)`), updates the running
/// statistics in training mode, and returns the per-channel normalisation for [`backward`].
#[allow(clippy::too_many_arguments)]
pub fn forward<E: Float>(
    xv: &[E],
    (n, c_all, hw): (usize, usize, usize),
    gamma_f: &[f64],
    bv: &[E],
    running_mean: &mut [E],
    running_var: &mut [E],
    cfg: BnCfg,
    out: &mut [MaybeUninit<E>],
    tapped: bool,
) -> (Vec<ChanNorm>, Moments) {
    let len = n * c_all * hw;
    assert_eq!(xv.len(), len, "batch_norm2d: input size");
    assert_eq!(out.len(), len, "batch_norm2d: output size");
    let yp = SharedMut::new(out);
    let (rm, rv) = (&*running_mean, &*running_var);
    // Per channel: statistics, then the output planes; returns (norm, biased batch variance,
    // the output planes' moments if tapped).
    let per_chan: Vec<(ChanNorm, f64, Moments)> = par_map(c_all, len, |c| {
        let (mean, var) = if cfg.train {
            channel_moments(xv, n, c_all, hw, c)
        } else {
            (to_f64(rm[c]), to_f64(rv[c]))
        };
        let invstd = 1.0 / (var + cfg.eps).sqrt();
        let a = gamma_f[c] * invstd;
        let b = to_f64(bv[c]) - mean * a;
        let dims = (n, c_all, hw, c);
        if cfg.relu {
            channel_affine::<E, true>(xv, yp, dims, from_f64(a), from_f64(b));
        } else {
            channel_affine::<E, false>(xv, yp, dims, from_f64(a), from_f64(b));
        }
        let norm = ChanNorm {
            mean,
            invstd,
            shift: b,
        };
        (
            norm,
            var,
            if tapped {
                plane_moments(yp, dims)
            } else {
                Moments::default()
            },
        )
    });
    if cfg.train {
        let m = n * hw;
        // PyTorch: the running variance takes the unbiased batch variance.
        let unbias = if m > 1 {
            m as f64 / (m - 1) as f64
        } else {
            1.0
        };
        let mo = cfg.momentum;
        for (c, (norm, var, _)) in per_chan.iter().enumerate() {
            running_mean[c] = from_f64((1.0 - mo) * to_f64(running_mean[c]) + mo * norm.mean);
            running_var[c] = from_f64((1.0 - mo) * to_f64(running_var[c]) + mo * var * unbias);
        }
    }
    let moments = per_chan.iter().fold(Moments::default(), |a, p| a + p.2);
    (per_chan.into_iter().map(|(c, ..)| c).collect(), moments)
}

/// The moments of channel `c`'s output planes, just written by [`channel_affine`] (in cache).
fn plane_moments<E: Float>(
    y: SharedMut<MaybeUninit<E>>,
    (n, c_all, hw, c): (usize, usize, usize, usize),
) -> Moments {
    (0..n).fold(Moments::default(), |acc, bi| {
        // SAFETY: plane (bi, c) belongs to channel c's task alone, and channel_affine wrote it.
        let plane = unsafe { written(y.slice((bi * c_all + c) * hw, hw)) };
        acc + Moments::of(plane)
    })
}

/// Backward on plain slices: accumulates into `gx` (overwrites it when given as new) and returns
/// `(dγ, dβ, Σ gz²)` per channel (Σ gz² only if `tapped`, else 0); `gz` is the output's
/// gradient (the ReLU mask is recomputed from `xv` and `norms`).
#[allow(clippy::too_many_arguments)]
pub fn backward<E: Float>(
    xv: &[E],
    gz: &[E],
    (gx, fresh): (&mut [E], bool),
    (n, c_all, hw): (usize, usize, usize),
    norms: &[ChanNorm],
    gamma_f: &[f64],
    cfg: BnCfg,
    tapped: bool,
) -> Vec<(f64, f64, f64)> {
    let len = n * c_all * hw;
    assert!(xv.len() == len && gz.len() == len && gx.len() == len);
    let gx = SharedMut::new(gx);
    let pass = Pass {
        train: cfg.train,
        fresh,
        tapped,
    };
    par_map(c_all, len, |c| {
        let dims = (n, c_all, hw, c);
        let (nm, g) = (norms[c], gamma_f[c]);
        if cfg.relu {
            channel_backward::<E, true>(xv, gz, gx, dims, nm, g, pass)
        } else {
            channel_backward::<E, false>(xv, gz, gx, dims, nm, g, pass)
        }
    })
}

/// `x [N, C, H, W]`, `gamma [C]`, `beta [C]` → `[N, C, H, W]`. In training mode updates
/// `running_mean`/`running_var` in place (`r = (1−m)·r + m·batch`, variance unbiased).
pub fn batch_norm2d<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: T4<E, T>,
    gamma: T1<E, T>,
    beta: T1<E, T>,
    running_mean: &mut [E],
    running_var: &mut [E],
    cfg: BnCfg,
) -> T4<E, T> {
    batch_norm2d_tapped(x, gamma, beta, running_mean, running_var, cfg, None)
}

/// [`batch_norm2d`] with a probe of its output fused in (see [`Tap`]).
pub fn batch_norm2d_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: T4<E, T>,
    gamma: T1<E, T>,
    beta: T1<E, T>,
    running_mean: &mut [E],
    running_var: &mut [E],
    cfg: BnCfg,
    tap: Option<&Tap>,
) -> T4<E, T> {
    let (n, c_all, h, w) = *x.shape();
    let hw = h * w;
    let len = n * c_all * hw;
    assert_eq!(
        gamma.shape().0,
        c_all,
        "batch_norm2d: gamma has the wrong length"
    );
    assert_eq!(
        beta.shape().0,
        c_all,
        "batch_norm2d: beta has the wrong length"
    );
    assert_eq!(
        running_mean.len(),
        c_all,
        "batch_norm2d: running_mean has the wrong length"
    );
    assert_eq!(
        running_var.len(),
        c_all,
        "batch_norm2d: running_var has the wrong length"
    );
    assert!(len > 0, "batch_norm2d: empty input");
    let (x, xt) = x.split_tape();
    let (gamma, gt) = gamma.split_tape();
    let (beta, bt) = beta.split_tape();
    let mut tape = xt.merge(gt).merge(bt);

    let (xv, gv, bv) = (view(&x), view(&gamma), view(&beta));
    let gamma_f: Vec<f64> = gv.iter().map(|&g| to_f64(g)).collect();
    let mut out: Vec<E> = Vec::with_capacity(len);
    let (norms, moments) = forward(
        xv,
        (n, c_all, hw),
        &gamma_f,
        bv,
        running_mean,
        running_var,
        cfg,
        &mut out.spare_capacity_mut()[..len],
        tap.is_some(),
    );
    if let Some(t) = tap {
        t.forward(moments);
    }
    // SAFETY: `forward` wrote every element.
    unsafe { out.set_len(len) };

    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, gg, bg, yg) = (x.ghost(), gamma.ghost(), beta.ghost(), y.ghost());
        let tap = tap.cloned();
        drop((gamma, beta));
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gz| {
                let xv = view(&x);
                let (mut gx, fresh) = take_grad!(grads, xg)?;
                let dims = (n, c_all, hw);
                let tapped = tap.is_some();
                let dgb = backward(
                    xv,
                    &gz,
                    (&mut gx, fresh),
                    dims,
                    &norms,
                    &gamma_f,
                    cfg,
                    tapped,
                );
                **grads.get_or_alloc_mut(&xg)? = gx;
                if let Some(t) = &tap {
                    t.backward(dgb.iter().map(|p| p.2).sum());
                }
                let dg = grads.get_or_alloc_mut(&gg)?;
                for (d, &(s, ..)) in dg.iter_mut().zip(&dgb) {
                    *d += from_f64::<E>(s);
                }
                let db = grads.get_or_alloc_mut(&bg)?;
                for (d, &(_, s, _)) in db.iter_mut().zip(&dgb) {
                    *d += from_f64::<E>(s);
                }
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::{TT, dot, t4};
    use crate::engine::gradcheck::{numeric_grad, rand_vec, rel_err};
    use crate::engine::tensor::Shape4;

    fn t1(v: &[f64]) -> T1<f64> {
        Cpu::default().tensor_from_vec(v.to_vec(), (v.len(),))
    }

    fn cfg(train: bool, relu: bool) -> BnCfg {
        BnCfg {
            train,
            relu,
            ..BnCfg::default()
        }
    }

    /// Naive reference: output, and the (mean, biased var) used per channel.
    fn reference(
        x: &[f64],
        s: Shape4,
        g: &[f64],
        b: &[f64],
        rm: &[f64],
        rv: &[f64],
        cfg: BnCfg,
    ) -> (Vec<f64>, Vec<(f64, f64)>) {
        let (n, c, h, w) = s;
        let mut y = vec![0.0; x.len()];
        let mut st = vec![];
        for ch in 0..c {
            let idx: Vec<usize> = (0..n)
                .flat_map(|bi| (0..h * w).map(move |i| (bi * c + ch) * h * w + i))
                .collect();
            let m = idx.len() as f64;
            let (mean, var) = if cfg.train {
                let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / m;
                (
                    mean,
                    idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / m,
                )
            } else {
                (rm[ch], rv[ch])
            };
            for &i in &idx {
                let v = g[ch] * (x[i] - mean) / (var + cfg.eps).sqrt() + b[ch];
                y[i] = if cfg.relu { v.max(0.0) } else { v };
            }
            st.push((mean, var));
        }
        (y, st)
    }

    struct Case {
        s: Shape4,
        x: Vec<f64>,
        g: Vec<f64>,
        b: Vec<f64>,
        rm: Vec<f64>,
        rv: Vec<f64>,
    }

    fn case(s: Shape4, seed: u64) -> Case {
        let len = s.0 * s.1 * s.2 * s.3;
        let c = s.1;
        Case {
            s,
            // Non-zero channel means, so mean handling is exercised.
            x: rand_vec(len, seed)
                .iter()
                .enumerate()
                .map(|(i, v)| 2.0 * v + (i / (s.2 * s.3) % c) as f64)
                .collect(),
            g: rand_vec(c, seed + 1)
                .iter()
                .map(|v| 1.0 + 0.5 * v)
                .collect(),
            b: rand_vec(c, seed + 2).iter().map(|v| 0.3 * v).collect(),
            rm: rand_vec(c, seed + 3).iter().map(|v| 0.5 * v).collect(),
            rv: rand_vec(c, seed + 4)
                .iter()
                .map(|v| 1.0 + 0.5 * v)
                .collect(),
        }
    }

    fn run(k: &Case, cfg: BnCfg) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
        let y = batch_norm2d(t4(&k.x, k.s), t1(&k.g), t1(&k.b), &mut rm, &mut rv, cfg);
        (y.as_vec(), rm, rv)
    }

    #[test]
    fn forward_and_running_stats_match_reference() {
        for (shape, seed) in [((2, 3, 4, 5), 10), ((8, 16, 16, 16), 20)] {
            let k = case(shape, seed);
            for train in [true, false] {
                for relu in [false, true] {
                    let c = cfg(train, relu);
                    let (y, rm, rv) = run(&k, c);
                    let (want, st) = reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, c);
                    let e = rel_err(&y, &want);
                    assert!(e < 1e-12, "train {train} relu {relu}: {e:e}");
                    let m = (shape.0 * shape.2 * shape.3) as f64;
                    for ch in 0..shape.1 {
                        let (want_m, want_v) = if train {
                            let (mu, var) = st[ch];
                            (
                                0.9 * k.rm[ch] + 0.1 * mu,
                                0.9 * k.rv[ch] + 0.1 * var * m / (m - 1.0),
                            )
                        } else {
                            (k.rm[ch], k.rv[ch])
                        };
                        assert!((rm[ch] - want_m).abs() < 1e-12 && (rv[ch] - want_v).abs() < 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn running_stats_hand_computed() {
        // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3.
        let x = t4(&[1.0, 2.0, 3.0, 4.0], (2, 1, 1, 2));
        let (mut rm, mut rv) = (vec![0.0], vec![1.0]);
        let y = batch_norm2d(
            x,
            t1(&[1.0]),
            t1(&[0.0]),
            &mut rm,
            &mut rv,
            cfg(true, false),
        );
        assert!((rm[0] - 0.25).abs() < 1e-15);
        assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-15);
        let inv = 1.0 / (1.25f64 + 1e-5).sqrt();
        let want = [-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv];
        assert!(
            y.as_vec()
                .iter()
                .zip(want)
                .all(|(a, b)| (a - b).abs() < 1e-15)
        );
        // f32 running stats too.
        let x32: T4<f32> = Cpu::default().tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], (2, 1, 1, 2));
        let g32: T1<f32> = Cpu::default().tensor_from_vec(vec![1.0], (1,));
        let (mut rm, mut rv) = (vec![0.0f32], vec![1.0f32]);
        let _ = batch_norm2d(
            x32,
            g32.clone(),
            g32 * 0.0,
            &mut rm,
            &mut rv,
            cfg(true, false),
        );
        assert!((rm[0] - 0.25).abs() < 1e-7 && (rv[0] - 1.0666667).abs() < 1e-6);
    }

    #[test]
    fn gradcheck_train_and_eval_with_and_without_relu() {
        let k = case((3, 2, 3, 4), 30);
        for train in [true, false] {
            for relu in [false, true] {
                let c = cfg(train, relu);
                if relu {
                    // Pre-activations must stay on one side of the kink under ±h.
                    let (pre, _) =
                        reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, cfg(train, false));
                    let margin = pre.iter().map(|v| v.abs()).fold(f64::MAX, f64::min);
                    assert!(margin > 1e-3, "pick another seed: margin {margin}");
                    assert!(
                        pre.iter().filter(|&&v| v <= 0.0).count() > 5,
                        "ReLU must clip some"
                    );
                }
                let r = rand_vec(k.x.len(), 31);
                let loss = |x: &[f64], g: &[f64], b: &[f64]| {
                    let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
                    let y = batch_norm2d(t4(x, k.s), t1(g), t1(b), &mut rm, &mut rv, c);
                    dot(&y.as_vec(), &r)
                };
                let (x, g, b) = (t4(&k.x, k.s), t1(&k.g), t1(&k.b));
                let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
                let y = batch_norm2d(
                    x.leaky_trace(),
                    g.retaped::<TT>(),
                    b.retaped::<TT>(),
                    &mut rm,
                    &mut rv,
                    c,
                );
                let grads = (y * t4(&r, k.s)).sum().backward();
                let h = 1e-6;
                let nx = numeric_grad(|v| loss(v, &k.g, &k.b), &k.x, h);
                let ng = numeric_grad(|v| loss(&k.x, v, &k.b), &k.g, h);
                let nb = numeric_grad(|v| loss(&k.x, &k.g, v), &k.b, h);
                for (name, a, nu) in [
                    ("x", grads.get(&x).as_vec(), nx),
                    ("gamma", grads.get(&g).as_vec(), ng),
                    ("beta", grads.get(&b).as_vec(), nb),
                ] {
                    let e = rel_err(&a, &nu);
                    assert!(
                        e <= 1e-5,
                        "train {train} relu {relu} d{name}: rel err {e:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn gradients_accumulate_and_parallel_path_matches_closed_form() {
        // Large enough to run channels in parallel; x feeds BN and also a second consumer, so
        // BN must add to (not overwrite) x's gradient.
        let k = case((8, 16, 16, 16), 40);
        let (n, c, h, w) = k.s;
        let r = rand_vec(k.x.len(), 41);
        let x = t4(&k.x, k.s);
        let (g, b) = (t1(&k.g), t1(&k.b));
        let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
        let y = batch_norm2d(
            x.leaky_trace(),
            g.retaped::<TT>(),
            b.retaped::<TT>(),
            &mut rm,
            &mut rv,
            cfg(true, true),
        );
        let y = crate::engine::add(y, x.retaped::<TT>() * 3.0);
        let grads = (y * t4(&r, k.s)).sum().backward();
        let (gx, gg, gb) = (
            grads.get(&x).as_vec(),
            grads.get(&g).as_vec(),
            grads.get(&b).as_vec(),
        );
        let (out, st) = reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, cfg(true, true));
        let m = (n * h * w) as f64;
        for ch in 0..c {
            let (mu, var) = st[ch];
            let inv = 1.0 / (var + 1e-5).sqrt();
            let idx: Vec<usize> = (0..n)
                .flat_map(|bi| (0..h * w).map(move |i| (bi * c + ch) * h * w + i))
                .collect();
            let gy = |i: usize| if out[i] > 0.0 { r[i] } else { 0.0 };
            let db: f64 = idx.iter().map(|&i| gy(i)).sum();
            let dg: f64 = idx.iter().map(|&i| gy(i) * (k.x[i] - mu) * inv).sum();
            assert!((gb[ch] - db).abs() < 1e-9 * (1.0 + db.abs()));
            assert!((gg[ch] - dg).abs() < 1e-9 * (1.0 + dg.abs()));
            for &i in &idx {
                let xh = (k.x[i] - mu) * inv;
                let want = k.g[ch] * inv / m * (m * gy(i) - db - xh * dg) + 3.0 * r[i];
                assert!((gx[i] - want).abs() < 1e-9, "gx[{i}] {} vs {want}", gx[i]);
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let k = case((8, 16, 16, 16), 50);
        let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let dev = Cpu::default();
        let x32: T4<f32> = dev.tensor_from_vec(to32(&k.x), k.s);
        let g32: T1<f32> = dev.tensor_from_vec(to32(&k.g), (k.s.1,));
        let b32: T1<f32> = dev.tensor_from_vec(to32(&k.b), (k.s.1,));
        let r = rand_vec(k.x.len(), 51);
        let (mut rm, mut rv) = (to32(&k.rm), to32(&k.rv));
        let y = batch_norm2d(
            x32.leaky_trace(),
            g32.retaped(),
            b32.retaped(),
            &mut rm,
            &mut rv,
            cfg(true, true),
        );
        let y32 = y.retaped::<NoneTape>().as_vec();
        let grads = (y * dev.tensor_from_vec(to32(&r), k.s)).sum().backward();
        let gx32: Vec<f64> = grads.get(&x32).as_vec().iter().map(|&v| v as f64).collect();

        let x = t4(&k.x, k.s);
        let (mut rm64, mut rv64) = (k.rm.clone(), k.rv.clone());
        let y = batch_norm2d(
            x.leaky_trace(),
            t1(&k.g).retaped(),
            t1(&k.b).retaped(),
            &mut rm64,
            &mut rv64,
            cfg(true, true),
        );
        let y64 = y.retaped::<NoneTape>().as_vec();
        let grads = (y * t4(&r, k.s)).sum().backward();
        let gx64 = grads.get(&x).as_vec();
        let y32: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
        assert!(rel_err(&y32, &y64) < 1e-5);
        assert!(rel_err(&gx32, &gx64) < 1e-4, "{:e}", rel_err(&gx32, &gx64));
        let rv32: Vec<f64> = rv.iter().map(|&v| v as f64).collect();
        assert!(rel_err(&rv32, &rv64) < 1e-5);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::engine::gradcheck::rand_vec;

    /// `cargo test --release --lib engine::batchnorm::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bn_speed() {
        let dev = Cpu::default();
        println!("threads: {}", rayon::current_num_threads());
        for s in [(64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8)] {
            let len = s.0 * s.1 * s.2 * s.3;
            let xv: Vec<f32> = rand_vec(len, 1).iter().map(|&v| v as f32).collect();
            let x: T4<f32> = dev.tensor_from_vec(xv, s);
            let g: T1<f32> = dev.ones_like(&(s.1,));
            let b: T1<f32> = dev.zeros_like(&(s.1,));
            let (mut rm, mut rv) = (vec![0.0f32; s.1], vec![1.0f32; s.1]);
            let cfg = BnCfg {
                relu: true,
                ..BnCfg::default()
            };
            let reps = 30;
            // Minimum over repetitions: robust to other processes sharing the machine.
            let time = |f: &mut dyn FnMut()| crate::engine::best_ms(reps, f);
            let tf = time(&mut || {
                let y = batch_norm2d(x.clone(), g.clone(), b.clone(), &mut rm, &mut rv, cfg);
                std::hint::black_box(y);
            });
            let tsum = time(&mut || {
                std::hint::black_box(x.leaky_trace().sum().backward());
            });
            let tfb = time(&mut || {
                let y = batch_norm2d(
                    x.leaky_trace(),
                    g.retaped(),
                    b.retaped(),
                    &mut rm,
                    &mut rv,
                    cfg,
                );
                std::hint::black_box(y.sum().backward());
            });
            let tcopy = time(&mut || {
                std::hint::black_box(view(&x).to_vec());
            });
            println!(
                "{s:?}: fwd {tf:.3} ms, fwd+bwd {:.3} ms (sum+backward alone {tsum:.3}), memcpy {tcopy:.3} ms",
                tfb - tsum
            );
        }
    }
}
