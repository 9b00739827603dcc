//! The backward pass: dW (and db) and dX, by the direct kernels where they apply and otherwise
//! by gemms over per-thread image ranges.

use super::forward::direct_corr;
use super::geom::{Geom, group_size, imgs_per_task};
use super::im2col::{col2im, col2im_grid, im2col_pixel_major, to_padded_hwc};
use crate::engine::gemm::{Mat, MatRef, matmul};
use crate::engine::scratch::with_scratch;
use crate::engine::tensor::Float;
use crate::engine::{direct, dw};
use rayon::prelude::*;

/// Backward pass on plain slices; accumulates (`+=`) into `gw` and `gb`, and into `gx` if given
/// as `(gx, false)`; `(gx, true)` overwrites all of `gx` instead (a new gradient buffer of
/// zeros, so the read is skipped: see `engine::grads`).
///
/// dW uses a *pixel-major* im2col (`colᵀ [P, K·K·Cin]`, columns ordered (ky, kx, ci), built from
/// a zero-padded HWC copy of the image): gemm then needs no packing of the big operand, which
/// is 3–5× faster than the channel-major layout on this tiny-M, tiny-N, huge-K product. dX uses
/// a channel-major `dcol = wᵀ·gy` and col2im (or a direct gemm for 1×1 stride-1 convs).
pub fn backward<E: Float>(
    g: &Geom,
    x: &[E],
    w: &[E],
    gy: &[E],
    gx: Option<(&mut [E], bool)>,
    mut gw: Option<&mut [E]>,
    gb: Option<&mut [E]>,
) {
    check_sizes(
        g,
        x,
        w,
        gy,
        gx.as_ref().map(|(gx, _)| gx.len()),
        gw.as_deref(),
        gb.as_deref(),
    );
    if g.n == 0 || g.out_img() == 0 {
        return;
    }
    // dX by the direct kernel when it applies; the pass below then computes dW (and db) only,
    // or just db when the direct dW kernel applies too.
    let gx = gx.and_then(|(gx, fresh)| {
        let how = if fresh { DxWrite::Set } else { DxWrite::Add };
        if direct_dx(g, w, gy, gx, how).is_some() {
            return None;
        }
        if fresh {
            gx.fill(E::zero()); // the passes below accumulate
        }
        Some(gx)
    });
    // No dW wanted (`gw` None: an input-gradient pass) counts as done here.
    if gx.is_none() && gw.as_deref_mut().is_none_or(|gw| direct_dw(g, x, gy, gw)) {
        if let Some(gb) = gb {
            for gyi in gy.chunks_exact(g.out_img()) {
                add_bias_grad(gb, gyi, g.p());
            }
        }
        return;
    }
    let partials = gemm_partials(g, x, w, gy, gx, gw.is_some(), gb.is_some());
    reduce_partials(g, &partials, gw, gb);
}

fn check_sizes<E: Float>(
    g: &Geom,
    x: &[E],
    w: &[E],
    gy: &[E],
    gx_len: Option<usize>,
    gw: Option<&[E]>,
    gb: Option<&[E]>,
) {
    assert_eq!(x.len(), g.n * g.in_img(), "conv2d: input buffer size");
    assert_eq!(w.len(), g.cout * g.kk(), "conv2d: weight buffer size");
    assert_eq!(gy.len(), g.n * g.out_img(), "conv2d: output gradient size");
    if let Some(gw) = gw {
        assert_eq!(gw.len(), w.len(), "conv2d: weight gradient size");
    }
    if let Some(n) = gx_len {
        assert_eq!(n, x.len(), "conv2d: input gradient size");
    }
    if let Some(gb) = gb {
        assert_eq!(gb.len(), g.cout, "conv2d: bias gradient size");
    }
}

/// The gemm paths over one contiguous range of images per rayon task: per task a partial dW (in
/// (ky, kx, ci) column order) and db, and its images' rows of dX written in place.
fn gemm_partials<E: Float>(
    g: &Geom,
    x: &[E],
    w: &[E],
    gy: &[E],
    gx: Option<&mut [E]>,
    want_gw: bool,
    want_gb: bool,
) -> Vec<(Vec<E>, Vec<E>)> {
    let per = imgs_per_task(g.n);
    let tasks = g.n.div_ceil(per);
    let mut gx_chunks: Vec<Option<&mut [E]>> = match gx {
        Some(gx) => gx.chunks_mut(per * g.in_img()).map(Some).collect(),
        None => (0..tasks).map(|_| None).collect(),
    };
    gx_chunks
        .par_iter_mut()
        .zip(x.par_chunks(per * g.in_img()))
        .zip(gy.par_chunks(per * g.out_img()))
        .map(|((gx, x), gy)| task_partials(g, x, w, gy, gx.as_deref_mut(), want_gw, want_gb))
        .collect()
}

/// How dW is computed on a task's images.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DwPath {
    /// Stride-1 convs with few input channels: K gemms over strided views of the padded HWC
    /// image on the padded-width grid, no im2col (see [`implicit_dw`]).
    Implicit,
    /// 1×1 stride-1 convs: the padded HWC image is the pixel-major im2col.
    Pointwise,
    /// An explicit pixel-major im2col, images grouped so each gemm reduces over ~512 pixels: at
    /// 8×8 one image's 64 pixels were too short a reduction for the `[Cout, K·K·Cin]`
    /// accumulator it reads and writes back.
    Explicit,
}

/// How dX is computed: `dcol = wᵀ·gy`, then col2im.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DxPath {
    /// 1×1 stride-1 convs: `dx = wᵀ·gy` directly.
    Pointwise,
    /// Stride-1 convs: on the padded-width grid, col2im through a padded scratch image.
    Grid,
    /// The rest: channel-major col2im.
    Im2col,
}

/// The paths of one task and the lengths of the scratch buffers they need.
struct Plan {
    dw: DwPath,
    dx: Option<DxPath>,
    /// Images per dW gemm (1 unless [`DwPath::Explicit`]).
    group: usize,
    need_gyp: bool,
    /// `[xh, colt, gyg, dcol, gyp, gxpad]`.
    lens: [usize; 6],
}

impl Plan {
    fn new(g: &Geom, imgs: usize, with_dx: bool) -> Plan {
        let (p, kk, cin, cout) = (g.p(), g.kk(), g.cin, g.cout);
        let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
        let pg = g.ho * wp;
        let dw = if g.on_grid() && implicit_dw(g) {
            DwPath::Implicit
        } else if g.is_pointwise() {
            DwPath::Pointwise
        } else {
            DwPath::Explicit
        };
        let dx = with_dx.then(|| {
            if g.is_pointwise() {
                DxPath::Pointwise
            } else if g.on_grid() {
                DxPath::Grid
            } else {
                DxPath::Im2col
            }
        });
        let group = if dw == DwPath::Explicit {
            group_size(p).min(imgs).max(1)
        } else {
            1
        };
        let need_gyp = dx == Some(DxPath::Grid) || dw == DwPath::Implicit;
        let lens = [
            (hp * wp + g.k) * cin,
            if dw == DwPath::Explicit {
                group * p * kk
            } else {
                0
            },
            if group > 1 { cout * group * p } else { 0 },
            match dx {
                None | Some(DxPath::Pointwise) => 0,
                Some(DxPath::Im2col) => kk * p,
                Some(DxPath::Grid) => kk * pg,
            },
            if need_gyp { cout * pg } else { 0 },
            if dx == Some(DxPath::Grid) {
                cin * hp * wp + g.k
            } else {
                0
            },
        ];
        Plan {
            dw,
            dx,
            group,
            need_gyp,
            lens,
        }
    }
}

/// A task's scratch, carved from one block (see [`Plan::lens`]).
struct Scratch<'a, E> {
    /// The zero-padded HWC image.
    xh: &'a mut [E],
    /// A group's pixel-major im2col, `colᵀ [G·P, K·K·Cin]`.
    colt: &'a mut [E],
    /// A group's output gradients side by side, `[Cout, G·P]`.
    gyg: &'a mut [E],
    /// `dcol = wᵀ·gy`.
    dcol: &'a mut [E],
    /// The output gradient on the padded-width grid (discarded columns zero).
    gyp: &'a mut [E],
    /// The padded image col2im on the grid accumulates into.
    gxpad: &'a mut [E],
}

impl<'a, E: Float> Scratch<'a, E> {
    fn carve(buf: &'a mut [E], lens: [usize; 6]) -> Self {
        let (xh, rest) = buf.split_at_mut(lens[0]);
        let (colt, rest) = rest.split_at_mut(lens[1]);
        let (gyg, rest) = rest.split_at_mut(lens[2]);
        let (dcol, rest) = rest.split_at_mut(lens[3]);
        let (gyp, gxpad) = rest.split_at_mut(lens[4]);
        xh.fill(E::zero()); // borders stay zero; interiors are rewritten per image
        gyp.fill(E::zero()); // likewise the discarded grid columns
        Scratch {
            xh,
            colt,
            gyg,
            dcol,
            gyp,
            gxpad,
        }
    }
}

/// One task's images: its partial dW (in (ky, kx, ci) column order, permuted back by
/// [`reduce_partials`]; empty unless `want_gw`) and db, and its rows of dX (`gx`) accumulated
/// in place.
fn task_partials<E: Float>(
    g: &Geom,
    x: &[E],
    w: &[E],
    gy: &[E],
    mut gx: Option<&mut [E]>,
    want_gw: bool,
    want_gb: bool,
) -> (Vec<E>, Vec<E>) {
    let mut pw = vec![E::zero(); if want_gw { g.cout * g.kk() } else { 0 }];
    let mut pb = vec![E::zero(); if want_gb { g.cout } else { 0 }];
    let imgs = x.len() / g.in_img();
    let plan = Plan::new(g, imgs, gx.is_some());
    let total = plan.lens.iter().sum();
    with_scratch::<E, _>(total, |buf| {
        let mut s = Scratch::carve(buf, plan.lens);
        for (i, (xi, gyi)) in x.chunks(g.in_img()).zip(gy.chunks(g.out_img())).enumerate() {
            if want_gb {
                add_bias_grad(&mut pb, gyi, g.p());
            }
            if plan.need_gyp {
                to_grid(g, gyi, s.gyp);
            }
            if want_gw {
                to_padded_hwc(g, xi, s.xh);
                match plan.dw {
                    DwPath::Implicit => dw_implicit(g, s.xh, s.gyp, &mut pw),
                    DwPath::Pointwise => dw_pointwise(g, s.xh, gyi, &mut pw),
                    DwPath::Explicit => {
                        let last = i + 1 == imgs;
                        dw_explicit(g, plan.group, (i, last), gyi, &mut s, &mut pw)
                    }
                }
            }
            if let (Some(gx), Some(path)) = (gx.as_deref_mut(), plan.dx) {
                let gxi = &mut gx[i * g.in_img()..][..g.in_img()];
                dx_image(g, path, w, gyi, &mut s, gxi);
            }
        }
    });
    (pw, pb)
}

/// One image's output gradient `[Cout, Ho, Wo]` → the padded-width grid `[Cout, Ho, W+2p]`
/// (the discarded columns are left as they are: zero).
fn to_grid<E: Float>(g: &Geom, gyi: &[E], gyp: &mut [E]) {
    let wp = g.w + 2 * g.pad;
    let pg = g.ho * wp;
    for (gpc, gc) in gyp.chunks_exact_mut(pg).zip(gyi.chunks_exact(g.p())) {
        for (gpr, gr) in gpc.chunks_exact_mut(wp).zip(gc.chunks_exact(g.wo)) {
            gpr[..g.wo].copy_from_slice(gr);
        }
    }
}

/// [`DwPath::Implicit`]: for a fixed ky, the pixel-major im2col on the grid is a strided view of
/// the padded HWC image: row p' at p'·Cin, columns (kx, ci) contiguous.
fn dw_implicit<E: Float>(g: &Geom, xh: &[E], gyp: &[E], pw: &mut [E]) {
    let (cin, cout, kk) = (g.cin, g.cout, g.kk());
    let wp = g.w + 2 * g.pad;
    let pg = g.ho * wp;
    let run = g.k * cin;
    for ky in 0..g.k {
        matmul(
            cout,
            run,
            pg,
            Mat::new(&mut pw[ky * run..], 1, kk as isize),
            true,
            MatRef::new(gyp, 1, pg as isize),
            MatRef::new(&xh[ky * wp * cin..], 1, cin as isize),
        );
    }
}

/// [`DwPath::Pointwise`]: `dW [Cout, Cin] += gy [Cout, P] · xᵀ [P, Cin]`.
fn dw_pointwise<E: Float>(g: &Geom, xh: &[E], gyi: &[E], pw: &mut [E]) {
    let (p, kk) = (g.p(), g.kk());
    matmul(
        g.cout,
        kk,
        p,
        Mat::new(pw, 1, kk as isize),
        true,
        MatRef::new(gyi, 1, p as isize),
        MatRef::new(xh, 1, kk as isize),
    );
}

/// [`DwPath::Explicit`] for image `i` of the task: its im2col goes to slot `i % group`; when the
/// group is full (or `last`), `dW' [Cout, KK] += gy [Cout, m·P] · colᵀ [m·P, KK]` over it.
fn dw_explicit<E: Float>(
    g: &Geom,
    group: usize,
    (i, last): (usize, bool),
    gyi: &[E],
    s: &mut Scratch<'_, E>,
    pw: &mut [E],
) {
    let (p, kk, cout) = (g.p(), g.kk(), g.cout);
    let slot = i % group;
    im2col_pixel_major(g, s.xh, &mut s.colt[slot * p * kk..][..p * kk]);
    if group > 1 {
        for (co, row) in gyi.chunks_exact(p).enumerate() {
            s.gyg[co * group * p + slot * p..][..p].copy_from_slice(row);
        }
    }
    if slot + 1 == group || last {
        let (gsrc, rs): (&[E], usize) = if group > 1 {
            (s.gyg, group * p)
        } else {
            (gyi, p)
        };
        matmul(
            cout,
            kk,
            (slot + 1) * p,
            Mat::new(pw, 1, kk as isize),
            true,
            MatRef::new(gsrc, 1, rs as isize),
            MatRef::new(s.colt, 1, kk as isize),
        );
    }
}

/// One image's dX: `gxi += col2im(wᵀ [KK, Cout] · gy [Cout, P])` by `path`.
fn dx_image<E: Float>(
    g: &Geom,
    path: DxPath,
    w: &[E],
    gyi: &[E],
    s: &mut Scratch<'_, E>,
    gxi: &mut [E],
) {
    let (p, kk, cout) = (g.p(), g.kk(), g.cout);
    let wt = MatRef::new(w, kk as isize, 1);
    let gym = MatRef::new(gyi, 1, p as isize);
    match path {
        DxPath::Pointwise => matmul(kk, p, cout, Mat::new(gxi, 1, p as isize), true, wt, gym),
        DxPath::Grid => {
            let pg = g.ho * (g.w + 2 * g.pad);
            let gypm = MatRef::new(&*s.gyp, 1, pg as isize);
            let dcol = Mat::new(s.dcol, 1, pg as isize);
            matmul(kk, pg, cout, dcol, false, wt, gypm);
            col2im_grid(g, s.dcol, s.gxpad, gxi);
        }
        DxPath::Im2col => {
            matmul(kk, p, cout, Mat::new(s.dcol, 1, p as isize), false, wt, gym);
            col2im(g, s.dcol, gxi);
        }
    }
}

/// `gw [co, ci, t] += Σ_tasks pw [co, t, ci]` and `gb += Σ_tasks pb`.
fn reduce_partials<E: Float>(
    g: &Geom,
    partials: &[(Vec<E>, Vec<E>)],
    gw: Option<&mut [E]>,
    gb: Option<&mut [E]>,
) {
    if let Some(gw) = gw {
        let (kk, cin, k2) = (g.kk(), g.cin, g.k * g.k);
        for co in 0..g.cout {
            for ci in 0..cin {
                for t in 0..k2 {
                    let mut acc = gw[co * kk + ci * k2 + t];
                    for (pw, _) in partials {
                        acc += pw[co * kk + t * cin + ci];
                    }
                    gw[co * kk + ci * k2 + t] = acc;
                }
            }
        }
    }
    if let Some(gb) = gb {
        for (_, pb) in partials {
            for (a, &b) in gb.iter_mut().zip(pb) {
                *a += b;
            }
        }
    }
}

/// `gb[co] += Σ_p gy[co, p]` for one image's output gradient `gy [Cout, P]`.
fn add_bias_grad<E: Float>(gb: &mut [E], gy: &[E], p: usize) {
    for (b, row) in gb.iter_mut().zip(gy.chunks(p)) {
        *b += row.iter().copied().fold(E::zero(), |a, v| a + v);
    }
}

/// Whether dW of a stride-1 conv is computed from strided views of the padded HWC image (K gemms
/// over `Ho·(W+2p)` grid pixels, no im2col) rather than from an explicit pixel-major im2col.
fn implicit_dw(g: &Geom) -> bool {
    // Faster while gemm's n = K·Cin is short (Cin = 16); from Cin = 32 the explicit im2col's
    // single product wins.
    g.cin <= 16
}

/// How [`direct_dx`] writes dX.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DxWrite {
    /// `gx =` (a new buffer).
    Set,
    /// `gx +=`.
    Add,
    /// `gx +=`, with the eq. 5 sums of the two parts (`direct::correlate_batch_measured`).
    Measured,
}

/// dX by the direct kernel (see `engine::direct`): `gx (=|+=) corr(pad(gy, K−1−p), flipped
/// wᵀ)`. `None` (and nothing done) where the kernel does not apply; otherwise the sums
/// `[Σ gx², Σ dX², Σ gx·dX]` when `Measured` (zeros else).
pub(super) fn direct_dx<E: Float>(
    g: &Geom,
    w: &[E],
    gy: &[E],
    gx: &mut [E],
    how: DxWrite,
) -> Option<[f64; 3]> {
    let (c, w32, gy32, gx32) = (
        direct_corr(g)?,
        E::as_f32(w)?,
        E::as_f32(gy)?,
        E::as_f32_mut(gx)?,
    );
    let adj = direct::Corr {
        cin: c.cout,
        cout: c.cin,
        h: g.ho,
        w: g.wo,
        k: g.k,
        pad: g.k - 1 - g.pad,
    };
    debug_assert_eq!((adj.ho(), adj.wo()), (g.h, g.w));
    let packed = direct::pack_adjoint(w32, &adj);
    let per = imgs_per_task(g.n);
    let write = match how {
        DxWrite::Set => direct::Write::Set(None),
        DxWrite::Add => direct::Write::Add,
        DxWrite::Measured => {
            return Some(direct::correlate_batch_measured(
                &adj, &packed, gy32, gx32, per,
            ));
        }
    };
    direct::correlate_batch(&adj, &packed, gy32, gx32, per, write);
    Some([0.0; 3])
}

/// dW by the direct kernel (see `engine::dw`): stride-1 3×3 f32 convs on AVX-512. Returns false
/// (and does nothing) where the kernel does not apply.
fn direct_dw<E: Float>(g: &Geom, x: &[E], gy: &[E], gw: &mut [E]) -> bool {
    let (Some(c), Some(x32), Some(gy32), Some(gw32)) = (
        direct_corr(g).filter(|_| g.k == 3),
        E::as_f32(x),
        E::as_f32(gy),
        E::as_f32_mut(gw),
    ) else {
        return false;
    };
    dw::weight_grad(&c, x32, gy32, gw32, imgs_per_task(g.n));
    true
}
