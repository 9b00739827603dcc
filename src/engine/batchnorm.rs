//! Batch normalisation over (N, H, W) per channel, fused with an optional ReLU, as one custom op.
//!
//! Work is split by channel: each channel's N planes are read once from memory for the
//! statistics and again (now from cache) to write the output; backward likewise makes one
//! reduction pass and one gradient pass per channel.

use super::backprop::with_out_grad;
use super::grads::{by_fresh, take_grad};
use super::par::{SharedMut, par_map, written};
use super::probe::{L1_PIECE, Moments, Tap};
use super::reduce::{from_f64, reduce3_planes, to_f64};
use super::split::{BnDx, SplitSink, Stash, join_planes};
use super::tensor::{Float, T1, T4, view};
use dfdx::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;
use through::through;

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
pub(crate) struct ChanNorm {
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

/// Writes `y = max?(a·x + b)` for channel `c`, in the planes of examples `batch`.
fn channel_affine<E: Float, const RELU: bool>(
    x: &[E],
    y: SharedMut<MaybeUninit<E>>,
    dims: (usize, usize, usize, usize),
    batch: Range<usize>,
    (a, b): (E, E),
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float, const RELU: bool>(
            x: &[E],
            y: SharedMut<MaybeUninit<E>>,
            dims: (usize, usize, usize, usize),
            batch: Range<usize>,
            ab: (E, E),
        ) {
            channel_affine_body::<E, RELU>(x, y, dims, batch, ab)
        }
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { wide::<E, RELU>(x, y, dims, batch, (a, b)) };
    }
    channel_affine_body::<E, RELU>(x, y, dims, batch, (a, b))
}

/// [`channel_affine`]'s body, compiled for AVX-512 or the SSE2 baseline by its caller; the
/// arithmetic (`x·a + b`, never fused) is the same either way.
#[inline(always)]
fn channel_affine_body<E: Float, const RELU: bool>(
    x: &[E],
    y: SharedMut<MaybeUninit<E>>,
    (_, c_all, hw, c): (usize, usize, usize, usize),
    batch: Range<usize>,
    (a, b): (E, E),
) {
    let zero = E::zero();
    for bi in batch {
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
    /// `gx` holds the shortcut's part of a split (He 2016 eq. 5) and this op is the branch's
    /// only consumer of x: add onto it and return the split's sums (see [`super::split`]).
    join: bool,
}

/// One channel's backward results: `(Σ gy·x̂, Σ gy, Σ gz²)` and, when joining, the eq. 5 sums
/// `[Σ id², Σ br², Σ id·br]`.
type ChanGrad = ((f64, f64, f64), [f64; 3]);

fn channel_backward<E: Float, const RELU: bool>(
    x: &[E],
    gz: &[E],
    gx: SharedMut<E>,
    dims: (usize, usize, usize, usize),
    norm: ChanNorm,
    gamma: f64,
    pass: Pass,
) -> ChanGrad {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float, const RELU: bool>(
            x: &[E],
            gz: &[E],
            gx: SharedMut<E>,
            dims: (usize, usize, usize, usize),
            norm: ChanNorm,
            gamma: f64,
            pass: Pass,
        ) -> ChanGrad {
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
) -> ChanGrad {
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
    let Pass {
        train,
        fresh,
        tapped,
        join,
    } = pass;
    // Σ gz² before the mask is ‖∂L/∂y‖² for a fused probe (see `Tap`): a third sum only then.
    let [sg, sgx, sgg] = if tapped {
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
    let k = BnDx {
        a,
        b,
        c1,
        c2,
        mu,
        train,
    };
    if join && !fresh {
        let plane = |bi: usize| {
            let (off, xp, gp) = planes(bi);
            // SAFETY: plane (bi, c) belongs to channel c's task alone; each is taken once.
            (unsafe { gx.slice(off, hw) }, gp, xp)
        };
        let sums = join_planes(n, plane, k, RELU);
        return ((sgx * norm.invstd, sg, sgg), sums);
    }
    for bi in 0..n {
        let (off, xp, gp) = planes(bi);
        // SAFETY: plane (bi, c) belongs to channel c's task alone.
        let dp = unsafe { gx.slice(off, hw) };
        let it = dp.iter_mut().zip(gp).zip(xp);
        // `train` outside the loop: a branch inside it kept the loop from vectorising.
        by_fresh!(fresh, |put| if train {
            let k = BnDx { train: true, ..k };
            for ((d, &g), &xv) in it {
                put(d, k.dx(g, xv, RELU));
            }
        } else {
            let k = BnDx { train: false, ..k };
            for ((d, &g), &xv) in it {
                put(d, k.dx(g, xv, RELU));
            }
        })
    }
    ((sgx * norm.invstd, sg, sgg), [0.0; 3])
}

/// Forward on plain slices: writes all of `out` (`y = ReLU?(γ·x̂ + β)`), updates the running
/// statistics in training mode, and returns the per-channel normalisation for [`backward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<E: Float>(
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
        let ab = (from_f64(a), from_f64(b));
        let norm = ChanNorm {
            mean,
            invstd,
            shift: b,
        };
        (norm, var, channel_write(xv, yp, dims, ab, cfg.relu, tapped))
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

/// Writes channel `c`'s output planes ([`channel_affine`]) and, if `tapped`, returns their
/// moments: summed a few planes at a time, right after those are written, so that they are
/// read back from L1 (a whole channel of a batch, 100–250 KB, came back from L2).
fn channel_write<E: Float>(
    x: &[E],
    y: SharedMut<MaybeUninit<E>>,
    dims: (usize, usize, usize, usize),
    ab: (E, E),
    relu: bool,
    tapped: bool,
) -> Moments {
    let (n, c_all, hw, c) = dims;
    let write = |batch: Range<usize>| match relu {
        true => channel_affine::<E, true>(x, y, dims, batch, ab),
        false => channel_affine::<E, false>(x, y, dims, batch, ab),
    };
    if !tapped {
        write(0..n);
        return Moments::default();
    }
    let group = (L1_PIECE / hw.max(1)).max(1);
    let mut m = Moments::default();
    for start in (0..n).step_by(group) {
        let end = (start + group).min(n);
        write(start..end);
        // SAFETY: plane (bi, c) belongs to channel c's task alone, and `write` just wrote it.
        m = m + Moments::of_planes(end - start, |i| unsafe {
            written(y.slice(((start + i) * c_all + c) * hw, hw))
        });
    }
    m
}

/// Backward on plain slices: accumulates into `gx` (overwrites it when given as new) and returns
/// `(dγ, dβ, Σ gz²)` per channel (Σ gz² only if `tapped`, else 0); `gz` is the output's
/// gradient (the ReLU mask is recomputed from `xv` and `norms`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<E: Float>(
    xv: &[E],
    gz: &[E],
    (gx, fresh): (&mut [E], bool),
    (n, c_all, hw): (usize, usize, usize),
    norms: &[ChanNorm],
    gamma_f: &[f64],
    cfg: BnCfg,
    tapped: bool,
) -> Vec<(f64, f64, f64)> {
    backward_with(
        xv,
        gz,
        (gx, fresh),
        (n, c_all, hw),
        norms,
        gamma_f,
        cfg,
        (tapped, false),
    )
    .into_iter()
    .map(|(g, _)| g)
    .collect()
}

/// [`backward`], optionally joining a split (see `Pass::join`): then also the split's sums per
/// channel.
#[allow(clippy::too_many_arguments)]
fn backward_with<E: Float>(
    xv: &[E],
    gz: &[E],
    (gx, fresh): (&mut [E], bool),
    (n, c_all, hw): (usize, usize, usize),
    norms: &[ChanNorm],
    gamma_f: &[f64],
    cfg: BnCfg,
    (tapped, join): (bool, bool),
) -> Vec<ChanGrad> {
    let len = n * c_all * hw;
    assert!(xv.len() == len && gz.len() == len && gx.len() == len);
    let gx = SharedMut::new(gx);
    let pass = Pass {
        train: cfg.train,
        fresh,
        tapped,
        join,
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
    let stats = (running_mean, running_var);
    batch_norm2d_probed(x, gamma, beta, stats, cfg, tap, None)
}

/// How a batch norm reading a residual block's input x measures the eq. 5 split there (He 2016),
/// recording ‖shortcut part‖², ‖branch part‖² and their dot product into the sink.
pub enum BnSplit<E> {
    /// The batch norm is the branch's only reader of x, and x's gradient already holds the
    /// shortcut's part: backward adds its own onto it with the three sums in the same pass, so
    /// the block needs no [`super::Split`] ops and no extra pass over the gradient.
    Onto(SplitSink),
    /// Both sides read the batch norm's output (a pre-activation shared with a projection
    /// shortcut), whose shortcut part [`super::Split::shortcut`] moved into the stash: the split
    /// is of each part through this backward (see `through`).
    Through(SplitSink, Stash<E>),
}

/// [`batch_norm2d_tapped`] that also measures the split at its input, if `join` says how.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_probed<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: T4<E, T>,
    gamma: T1<E, T>,
    beta: T1<E, T>,
    (running_mean, running_var): (&mut [E], &mut [E]),
    cfg: BnCfg,
    tap: Option<&Tap>,
    join: Option<BnSplit<E>>,
) -> T4<E, T> {
    let (n, c_all, h, w) = *x.shape();
    let hw = h * w;
    let len = n * c_all * hw;
    let lengths = [
        ("gamma", gamma.shape().0),
        ("beta", beta.shape().0),
        ("running_mean", running_mean.len()),
        ("running_var", running_var.len()),
    ];
    for (what, l) in lengths {
        assert_eq!(l, c_all, "batch_norm2d: {what} has the wrong length");
    }
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
                let (sum, split) = match &join {
                    Some(BnSplit::Through(_, stash)) => {
                        let mode = (cfg.relu, cfg.train);
                        let (sum, split) = through(stash, &gz, xv, dims, &norms, &gamma_f, mode);
                        (Some(sum), Some(split))
                    }
                    _ => (None, None),
                };
                let gz = sum.as_deref().unwrap_or(&gz);
                let sums_grad = tap.as_ref().is_some_and(Tap::sums_grad);
                let probes = (sums_grad, matches!(join, Some(BnSplit::Onto(_))));
                let grad_x = (&mut gx[..], fresh);
                let res = backward_with(xv, gz, grad_x, dims, &norms, &gamma_f, cfg, probes);
                let dgb: Vec<_> = res.iter().map(|r| r.0).collect();
                match &join {
                    Some(BnSplit::Onto(sink)) => {
                        let sums = res.iter().map(|r| r.1);
                        super::split::record_join(sink, sums, fresh, &gx);
                    }
                    Some(BnSplit::Through(sink, _)) => *super::split::lock(sink) = split,
                    None => {}
                }
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

mod through;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;
