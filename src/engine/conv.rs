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
//! kernel of `engine::dw` for dW; the rest (stride 2, the f64 gradient checks, other CPUs) stays
//! here.

use super::grads::take_grad;
use super::tensor::{Float, T1, T4, view};
use super::{direct, dw};
use dfdx::prelude::*;
use rayon::prelude::*;
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

    // Not zeroed: `forward` writes every element (zeroing it first cost a memset per conv).
    let len = g.n * g.cout * g.p();
    let mut out: Vec<E> = Vec::with_capacity(len);
    // SAFETY: E is f32 or f64 (no invalid bit patterns, no drop), and `forward` overwrites every
    // element before the buffer is read: gemm with `accumulate = false` (or after the bias fill)
    // on every output row, or the grid / pixel-major copies of every output pixel.
    #[allow(clippy::uninit_vec)] // see SAFETY: written in full before any read
    unsafe {
        out.set_len(len)
    };
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
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&yg)?);
            let mut gw = std::mem::take(&mut **grads.get_or_alloc_mut(&wg)?);
            let mut gb = match &bg {
                Some(bg) => Some(std::mem::take(&mut **grads.get_or_alloc_mut(bg)?)),
                None => None,
            };
            let mut gx = if cfg.input_grad {
                Some(take_grad!(grads, xg)?)
            } else {
                None
            };
            backward(
                &g,
                view(&x),
                view(&w),
                &gy,
                gx.as_mut().map(|(gx, fresh)| (&mut gx[..], *fresh)),
                &mut gw,
                gb.as_deref_mut(),
            );
            if let Some((gx, _)) = gx {
                **grads.get_or_alloc_mut(&xg)? = gx;
            }
            if let (Some(bg), Some(gb)) = (&bg, gb) {
                **grads.get_or_alloc_mut(bg)? = gb;
            }
            **grads.get_or_alloc_mut(&wg)? = gw;
            // y's entry stays empty: nothing reads it after its producer (see `with_out_grad`).
            drop(gy);
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geom {
    /// Checks the shapes (panics with a clear message on a mismatch: a programmer error).
    pub fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        cfg: ConvCfg,
    ) -> Self {
        let (n, cin, h, wd) = x;
        let (cout, wcin, kh, kw) = w;
        assert!(cfg.stride >= 1, "conv2d: stride must be at least 1");
        assert_eq!(
            wcin, cin,
            "conv2d: input has {cin} channels but the weight [{cout}, {wcin}, {kh}, {kw}] expects {wcin}"
        );
        assert_eq!(
            kh, kw,
            "conv2d: only square kernels are supported, got {kh}×{kw}"
        );
        assert!(kh >= 1, "conv2d: empty kernel");
        assert!(
            h + 2 * cfg.pad >= kh && wd + 2 * cfg.pad >= kh,
            "conv2d: kernel {kh}×{kh} larger than the padded input {}×{}",
            h + 2 * cfg.pad,
            wd + 2 * cfg.pad
        );
        Geom {
            n,
            cin,
            h,
            w: wd,
            cout,
            k: kh,
            stride: cfg.stride,
            pad: cfg.pad,
            ho: (h + 2 * cfg.pad - kh) / cfg.stride + 1,
            wo: (wd + 2 * cfg.pad - kh) / cfg.stride + 1,
        }
    }
    /// Output pixels per image.
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// Rows of the im2col matrix: `Cin·K·K`.
    fn kk(&self) -> usize {
        self.cin * self.k * self.k
    }
    fn in_img(&self) -> usize {
        self.cin * self.h * self.w
    }
    fn out_img(&self) -> usize {
        self.cout * self.p()
    }
    /// 1×1, stride 1, no padding: the image itself is the im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
    /// Stride-1 convs with a kernel compute on the *padded-width grid*: output pixel `(oy, ox)`
    /// for `ox < W+2p` (the `ox >= Wo` columns are discarded), so that each im2col row is one
    /// contiguous window of the padded image and col2im is one long vector add per row.
    fn on_grid(&self) -> bool {
        self.stride == 1 && !self.is_pointwise()
    }
    /// Floating-point operations of the forward pass (2 per multiply-add).
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.cout * self.p() * self.kk()) as f64
    }
}

/// Images per rayon task: the batch is split into one contiguous range per thread.
fn imgs_per_task(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads).max(1)
}

/// Forward pass on plain slices: `out [N, Cout, Ho, Wo]` is overwritten.
pub fn forward<E: Float>(g: &Geom, x: &[E], w: &[E], bias: Option<&[E]>, out: &mut [E]) {
    assert_eq!(x.len(), g.n * g.in_img(), "conv2d: input buffer size");
    assert_eq!(w.len(), g.cout * g.kk(), "conv2d: weight buffer size");
    assert_eq!(out.len(), g.n * g.out_img(), "conv2d: output buffer size");
    if g.n == 0 || g.out_img() == 0 {
        return;
    }
    if direct_forward(g, x, w, bias, out) {
        return;
    }
    let per = imgs_per_task(g.n);
    let (p, kk, cout) = (g.p(), g.kk(), g.cout);
    out.par_chunks_mut(per * g.out_img())
        .zip(x.par_chunks(per * g.in_img()))
        .for_each(|(out, x)| {
            if pixel_major_fwd(g) {
                forward_pixel_major(g, x, w, bias, out);
                return;
            }
            if g.on_grid() {
                forward_grid(g, x, w, bias, out);
                return;
            }
            let col_len = if g.is_pointwise() { 0 } else { kk * p };
            with_scratch::<E, _>(col_len, |col| {
                for (y, xi) in out.chunks_mut(g.out_img()).zip(x.chunks(g.in_img())) {
                    let rhs: &[E] = if g.is_pointwise() {
                        xi
                    } else {
                        im2col(g, xi, col);
                        col
                    };
                    weights_times_cols(y, w, rhs, bias, (cout, p, kk)); // y: [Cout, P]
                }
            });
        });
}

/// The direct kernel's view of a stride-1 conv with a kernel, when it applies: f32 on AVX-512
/// (checked by the caller's `as_f32`) and padding below the kernel size (so dX's adjoint
/// padding `K−1−p` is non-negative).
fn direct_corr(g: &Geom) -> Option<direct::Corr> {
    let ok = g.on_grid() && g.pad < g.k && g.cin > 0 && g.cout > 0 && direct::available();
    ok.then_some(direct::Corr {
        cin: g.cin,
        cout: g.cout,
        h: g.h,
        w: g.w,
        k: g.k,
        pad: g.pad,
    })
}

/// The forward pass by the direct kernel (see `engine::direct`). Returns false (and does
/// nothing) where the kernel does not apply.
fn direct_forward<E: Float>(g: &Geom, x: &[E], w: &[E], bias: Option<&[E]>, out: &mut [E]) -> bool {
    let (Some(c), Some(x32), Some(w32), Some(out32)) = (
        direct_corr(g),
        E::as_f32(x),
        E::as_f32(w),
        E::as_f32_mut(out),
    ) else {
        return false;
    };
    let b32 = bias.map(|b| E::as_f32(b).expect("bias has the input's type"));
    let set = direct::Write::Set(b32);
    direct::correlate_batch(
        &c,
        &direct::pack(w32, &c),
        x32,
        out32,
        imgs_per_task(g.n),
        set,
    );
    true
}

/// dX by the direct kernel (see `engine::direct`): `gx += corr(pad(gy, K−1−p), flipped wᵀ)`, or
/// `gx =` when `fresh`.
/// Returns false (and does nothing) where the kernel does not apply.
fn direct_dx<E: Float>(g: &Geom, w: &[E], gy: &[E], gx: &mut [E], fresh: bool) -> bool {
    let (Some(c), Some(w32), Some(gy32), Some(gx32)) = (
        direct_corr(g),
        E::as_f32(w),
        E::as_f32(gy),
        E::as_f32_mut(gx),
    ) else {
        return false;
    };
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
    direct::correlate_batch(
        &adj,
        &packed,
        gy32,
        gx32,
        imgs_per_task(g.n),
        if fresh {
            direct::Write::Set(None)
        } else {
            direct::Write::Add
        },
    );
    true
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

/// `y [Cout, P] = w [Cout, KK] · cols [KK, P]`, plus `bias[co]` on row `co` when given.
fn weights_times_cols<E: Float>(
    y: &mut [E],
    w: &[E],
    cols: &[E],
    bias: Option<&[E]>,
    (cout, p, kk): (usize, usize, usize),
) {
    if let Some(b) = bias {
        for (row, &bv) in y.chunks_mut(p).zip(b) {
            row.fill(bv);
        }
    }
    matmul(
        cout,
        p,
        kk,
        Mat::new(y, 1, p as isize),
        bias.is_some(),
        MatRef::new(w, 1, kk as isize),
        MatRef::new(cols, 1, p as isize),
    );
}

/// Whether the forward pass uses [`forward_pixel_major`]: for small outputs, where the grid's
/// discarded columns (25 % at 8×8) and gemm's per-image overhead dominate.
fn pixel_major_fwd(g: &Geom) -> bool {
    !g.is_pointwise() && g.p() <= PIXEL_MAJOR_MAX
}
// Measured at batch 64: 64 channels at 8×8 1.70 -> 1.35 ms; 32 at 16×16 slightly slower (1.55
// -> 1.62 ms), so only outputs up to 10×10.
const PIXEL_MAJOR_MAX: usize = 100;

/// Forward for small images: several images' pixel-major im2col (`colᵀ [G·P, K·K·Cin]`, exact
/// output pixels, from the padded HWC image as in dW) in one gemm `yᵀ = colᵀ · w'ᵀ` with the
/// weight's columns reordered to (ky, kx, ci); the `[G·P, Cout]` result is transposed into place.
fn forward_pixel_major<E: Float>(g: &Geom, x: &[E], w: &[E], bias: Option<&[E]>, out: &mut [E]) {
    let (p, kk, cout, cin, k2) = (g.p(), g.kk(), g.cout, g.cin, g.k * g.k);
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let gs = group_size(p).min(x.len() / g.in_img()).max(1);
    let xh_len = (hp * wp + g.k) * cin;
    with_scratch::<E, _>(xh_len + kk * cout + 2 * gs * p * kk.max(cout), |buf| {
        let (xh, rest) = buf.split_at_mut(xh_len);
        let (wt, rest) = rest.split_at_mut(kk * cout);
        let (colt, yt) = rest.split_at_mut(gs * p * kk.max(cout));
        xh.fill(E::zero()); // borders stay zero; interiors are rewritten per image
        // wt [(t, ci), co] = w [co, ci, t], t = ky·K + kx
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..k2 {
                    wt[(t * cin + ci) * cout + co] = w[co * kk + ci * k2 + t];
                }
            }
        }
        for (yg, xg) in out
            .chunks_mut(gs * g.out_img())
            .zip(x.chunks(gs * g.in_img()))
        {
            let m = xg.len() / g.in_img();
            for (i, xi) in xg.chunks_exact(g.in_img()).enumerate() {
                to_padded_hwc(g, xi, xh);
                im2col_pixel_major(g, xh, &mut colt[i * p * kk..][..p * kk]);
            }
            let yt = &mut yt[..m * p * cout];
            matmul(
                m * p,
                cout,
                kk,
                Mat::new(yt, 1, cout as isize),
                false,
                MatRef::new(&colt[..m * p * kk], 1, kk as isize),
                MatRef::new(wt, 1, cout as isize),
            );
            for (y, yti) in yg
                .chunks_exact_mut(g.out_img())
                .zip(yt.chunks_exact(p * cout))
            {
                for (co, yc) in y.chunks_exact_mut(p).enumerate() {
                    let b = bias.map_or(E::zero(), |b| b[co]);
                    for (pix, v) in yc.iter_mut().enumerate() {
                        *v = yti[pix * cout + co] + b;
                    }
                }
            }
        }
    });
}

/// Images per gemm: small images are grouped so that the gemm's pixel dimension reaches about
/// [`GROUP_PIXELS`].
fn group_size(pixels: usize) -> usize {
    GROUP_PIXELS.div_ceil(pixels.max(1)).max(1)
}
const GROUP_PIXELS: usize = 512;

/// Forward of stride-1 convs on the padded-width grid (see [`Geom::on_grid`]): every im2col row
/// is one long contiguous window of the zero-padded CHW image, so im2col is `Cin·K·K` memcpys.
fn forward_grid<E: Float>(g: &Geom, x: &[E], w: &[E], bias: Option<&[E]>, out: &mut [E]) {
    let (p, kk, cout, cin, k) = (g.p(), g.kk(), g.cout, g.cin, g.k);
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let pg = g.ho * wp;
    let xpad_len = cin * hp * wp + k;
    with_scratch::<E, _>(xpad_len + kk * pg + cout * pg, |buf| {
        let (xpad, rest) = buf.split_at_mut(xpad_len);
        let (col, yp) = rest.split_at_mut(kk * pg);
        xpad.fill(E::zero()); // borders stay zero; interiors are rewritten per image
        for (y, xi) in out.chunks_mut(g.out_img()).zip(x.chunks(g.in_img())) {
            to_padded_chw(g, xi, xpad);
            for (j, row) in col.chunks_exact_mut(pg).enumerate() {
                let (ci, ky, kx) = (j / (k * k), (j / k) % k, j % k);
                row.copy_from_slice(&xpad[ci * hp * wp + ky * wp + kx..][..pg]);
            }
            weights_times_cols(yp, w, col, bias, (cout, pg, kk)); // yp: [Cout, PG]
            for (yc, ypc) in y.chunks_exact_mut(p).zip(yp.chunks_exact(pg)) {
                for (yr, ypr) in yc.chunks_exact_mut(g.wo).zip(ypc.chunks_exact(wp)) {
                    yr.copy_from_slice(&ypr[..g.wo]);
                }
            }
        }
    });
}

/// One image `[Cin, H, W]` → the interior of a zero-padded CHW buffer `[Cin, H+2p, W+2p]`.
fn to_padded_chw<E: Float>(g: &Geom, x: &[E], xpad: &mut [E]) {
    let (hp, wp, pad) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.pad);
    for (ci, xc) in x.chunks_exact(g.h * g.w).enumerate() {
        for (iy, xr) in xc.chunks_exact(g.w).enumerate() {
            xpad[ci * hp * wp + (iy + pad) * wp + pad..][..g.w].copy_from_slice(xr);
        }
    }
}

/// Backward pass on plain slices; accumulates (`+=`) into `gw` and `gb`, and into `gx` if given
/// as `(gx, false)`; `(gx, true)` overwrites all of `gx` instead (a new gradient buffer, whose
/// contents are arbitrary: see `engine::grads`).
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
    gw: &mut [E],
    gb: Option<&mut [E]>,
) {
    assert_eq!(x.len(), g.n * g.in_img(), "conv2d: input buffer size");
    assert_eq!(w.len(), g.cout * g.kk(), "conv2d: weight buffer size");
    assert_eq!(gy.len(), g.n * g.out_img(), "conv2d: output gradient size");
    assert_eq!(gw.len(), w.len(), "conv2d: weight gradient size");
    if let Some((gx, _)) = &gx {
        assert_eq!(gx.len(), x.len(), "conv2d: input gradient size");
    }
    if let Some(gb) = &gb {
        assert_eq!(gb.len(), g.cout, "conv2d: bias gradient size");
    }
    if g.n == 0 || g.out_img() == 0 {
        return;
    }
    // dX by the direct kernel when it applies; the pass below then computes dW (and db) only,
    // or just db when the direct dW kernel applies too.
    let gx = gx.and_then(|(gx, fresh)| {
        if direct_dx(g, w, gy, gx, fresh) {
            return None;
        }
        if fresh {
            gx.fill(E::zero()); // the passes below accumulate
        }
        Some(gx)
    });
    if gx.is_none() && direct_dw(g, x, gy, gw) {
        if let Some(gb) = gb {
            for gyi in gy.chunks_exact(g.out_img()) {
                add_bias_grad(gb, gyi, g.p());
            }
        }
        return;
    }
    let per = imgs_per_task(g.n);
    let (p, kk, cout, cin, k2) = (g.p(), g.kk(), g.cout, g.cin, g.k * g.k);
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let want_gb = gb.is_some();
    let tasks = g.n.div_ceil(per);
    // Each task: its images' x, gy, and (optionally) its rows of gx.
    let mut gx_chunks: Vec<Option<&mut [E]>> = match gx {
        Some(gx) => gx.chunks_mut(per * g.in_img()).map(Some).collect(),
        None => (0..tasks).map(|_| None).collect(),
    };
    let partials: Vec<(Vec<E>, Vec<E>)> = gx_chunks
        .par_iter_mut()
        .zip(x.par_chunks(per * g.in_img()))
        .zip(gy.par_chunks(per * g.out_img()))
        .map(|((gx, x), gy)| {
            // dW in (ky, kx, ci) column order, permuted back at the reduction.
            let mut pw = vec![E::zero(); cout * kk];
            let mut pb = vec![E::zero(); if want_gb { cout } else { 0 }];
            let pointwise = g.is_pointwise();
            let grid_dx = g.on_grid() && gx.is_some();
            let implicit = g.on_grid() && implicit_dw(g);
            let need_gyp = grid_dx || implicit;
            let pg = g.ho * wp;
            let xh_len = (hp * wp + g.k) * cin;
            // The explicit pixel-major dW groups images so each gemm reduces over ~GROUP_PIXELS
            // pixels: at 8×8 one image's 64 pixels were too short a reduction for the
            // [Cout, K·K·Cin] accumulator it reads and writes back.
            let explicit = !pointwise && !implicit;
            let imgs = x.len() / g.in_img();
            let gsz = if explicit {
                group_size(p).min(imgs).max(1)
            } else {
                1
            };
            let colt_len = if explicit { gsz * p * kk } else { 0 };
            let gyg_len = if gsz > 1 { cout * gsz * p } else { 0 };
            let dcol_len = match (gx.is_some(), pointwise, grid_dx) {
                (false, _, _) | (_, true, _) => 0,
                (true, false, false) => kk * p,
                (true, false, true) => kk * pg,
            };
            let gyp_len = if need_gyp { cout * pg } else { 0 };
            let gxpad_len = if grid_dx { cin * hp * wp + g.k } else { 0 };
            let total = xh_len + colt_len + gyg_len + dcol_len + gyp_len + gxpad_len;
            with_scratch::<E, _>(total, |buf| {
                let (xh, rest) = buf.split_at_mut(xh_len);
                let (colt, rest) = rest.split_at_mut(colt_len);
                let (gyg, rest) = rest.split_at_mut(gyg_len);
                let (dcol, rest) = rest.split_at_mut(dcol_len);
                let (gyp, gxpad) = rest.split_at_mut(gyp_len);
                xh.fill(E::zero()); // borders stay zero; interiors are rewritten per image
                gyp.fill(E::zero()); // likewise the discarded grid columns
                for (i, (xi, gyi)) in x.chunks(g.in_img()).zip(gy.chunks(g.out_img())).enumerate() {
                    if want_gb {
                        add_bias_grad(&mut pb, gyi, p);
                    }
                    to_padded_hwc(g, xi, xh);
                    if need_gyp {
                        for (gpc, gc) in gyp.chunks_exact_mut(pg).zip(gyi.chunks_exact(p)) {
                            for (gpr, gr) in gpc.chunks_exact_mut(wp).zip(gc.chunks_exact(g.wo)) {
                                gpr[..g.wo].copy_from_slice(gr);
                            }
                        }
                    }
                    if implicit {
                        // For a fixed ky, the pixel-major im2col on the grid is a strided view
                        // of the padded HWC image: row p' at p'·Cin, columns (kx, ci) contiguous.
                        let run = g.k * cin;
                        for ky in 0..g.k {
                            matmul(
                                cout,
                                run,
                                pg,
                                Mat::new(&mut pw[ky * run..], 1, kk as isize),
                                true,
                                MatRef::new(&*gyp, 1, pg as isize),
                                MatRef::new(&xh[ky * wp * cin..], 1, cin as isize),
                            );
                        }
                    } else if pointwise {
                        // dW [Cout, Cin] += gy [Cout, P] · xᵀ [P, Cin]
                        matmul(
                            cout,
                            kk,
                            p,
                            Mat::new(&mut pw, 1, kk as isize),
                            true,
                            MatRef::new(gyi, 1, p as isize),
                            MatRef::new(&*xh, 1, kk as isize),
                        );
                    } else {
                        let slot = i % gsz;
                        im2col_pixel_major(g, xh, &mut colt[slot * p * kk..][..p * kk]);
                        if gsz > 1 {
                            for (co, row) in gyi.chunks_exact(p).enumerate() {
                                gyg[co * gsz * p + slot * p..][..p].copy_from_slice(row);
                            }
                        }
                        if slot + 1 == gsz || i + 1 == imgs {
                            // dW' [Cout, KK] += gy [Cout, m·P] · colᵀ [m·P, KK] over the group
                            let (gsrc, rs): (&[E], usize) =
                                if gsz > 1 { (gyg, gsz * p) } else { (gyi, p) };
                            matmul(
                                cout,
                                kk,
                                (slot + 1) * p,
                                Mat::new(&mut pw, 1, kk as isize),
                                true,
                                MatRef::new(gsrc, 1, rs as isize),
                                MatRef::new(&*colt, 1, kk as isize),
                            );
                        }
                    }
                    if let Some(gx) = gx.as_deref_mut() {
                        let gxi = &mut gx[i * g.in_img()..][..g.in_img()];
                        // dcol [KK, P] = wᵀ [KK, Cout] · gy [Cout, P]
                        let wt = MatRef::new(w, kk as isize, 1);
                        let gym = MatRef::new(gyi, 1, p as isize);
                        if pointwise {
                            matmul(kk, p, cout, Mat::new(gxi, 1, p as isize), true, wt, gym);
                        } else if grid_dx {
                            let gypm = MatRef::new(&*gyp, 1, pg as isize);
                            matmul(
                                kk,
                                pg,
                                cout,
                                Mat::new(dcol, 1, pg as isize),
                                false,
                                wt,
                                gypm,
                            );
                            col2im_grid(g, dcol, gxpad, gxi);
                        } else {
                            matmul(kk, p, cout, Mat::new(dcol, 1, p as isize), false, wt, gym);
                            col2im(g, dcol, gxi);
                        }
                    }
                }
            });
            (pw, pb)
        })
        .collect();
    // gw [co, ci, t] += Σ_tasks pw [co, t, ci]
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..k2 {
                let mut acc = gw[co * kk + ci * k2 + t];
                for (pw, _) in &partials {
                    acc += pw[co * kk + t * cin + ci];
                }
                gw[co * kk + ci * k2 + t] = acc;
            }
        }
    }
    if let Some(gb) = gb {
        for (_, pb) in &partials {
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

/// Adjoint of the grid im2col: `gx [Cin, H, W] += col2im(dcol [K·K·Cin, Ho·(W+2p)])`, through the
/// padded scratch image `gxpad`. The discarded grid columns of `dcol` are zero (they come from
/// zero columns of the padded output gradient).
fn col2im_grid<E: Float>(g: &Geom, dcol: &[E], gxpad: &mut [E], gx: &mut [E]) {
    let k = g.k;
    let (hp, wp, pad) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.pad);
    let pg = g.ho * wp;
    gxpad.fill(E::zero());
    for (j, row) in dcol.chunks_exact(pg).enumerate() {
        let (ci, ky, kx) = (j / (k * k), (j / k) % k, j % k);
        for (a, &b) in gxpad[ci * hp * wp + ky * wp + kx..][..pg]
            .iter_mut()
            .zip(row)
        {
            *a += b;
        }
    }
    for (ci, gc) in gx.chunks_exact_mut(g.h * g.w).enumerate() {
        for (iy, gr) in gc.chunks_exact_mut(g.w).enumerate() {
            let src = &gxpad[ci * hp * wp + (iy + pad) * wp + pad..][..g.w];
            for (a, &b) in gr.iter_mut().zip(src) {
                *a += b;
            }
        }
    }
}

/// Whether dW of a stride-1 conv is computed from strided views of the padded HWC image (K gemms
/// over `Ho·(W+2p)` grid pixels, no im2col) rather than from an explicit pixel-major im2col.
fn implicit_dw(g: &Geom) -> bool {
    // Measured at batch 64: ~1.5× faster dW at Cin = 16; no gain from Cin = 32 on (gemm's
    // n = K·Cin gets long enough that the explicit im2col's single product wins).
    g.cin <= 16
}

/// One image `[Cin, H, W]` → the interior of a zero-padded HWC buffer `[H+2p, W+2p, Cin]`.
fn to_padded_hwc<E: Float>(g: &Geom, x: &[E], xh: &mut [E]) {
    let (cin, h, w, pad) = (g.cin, g.h, g.w, g.pad);
    let wp = w + 2 * pad;
    let hw = h * w;
    for iy in 0..h {
        let dst = &mut xh[((iy + pad) * wp + pad) * cin..][..w * cin];
        for (ix, px) in dst.chunks_exact_mut(cin).enumerate() {
            let src = iy * w + ix;
            for (ci, v) in px.iter_mut().enumerate() {
                *v = x[ci * hw + src];
            }
        }
    }
}

/// Pixel-major im2col from a padded HWC image: `colᵀ [Ho·Wo, K·K·Cin]`, columns (ky, kx, ci).
fn im2col_pixel_major<E: Float>(g: &Geom, xh: &[E], colt: &mut [E]) {
    let (k, s, cin, wo, kk) = (g.k, g.stride, g.cin, g.wo, g.kk());
    let wp = g.w + 2 * g.pad;
    let run = k * cin;
    for (pix, row) in colt.chunks_exact_mut(kk).enumerate() {
        let (oy, ox) = (pix / wo, pix % wo);
        for (ky, seg) in row.chunks_exact_mut(run).enumerate() {
            let src = ((oy * s + ky) * wp + ox * s) * cin;
            seg.copy_from_slice(&xh[src..src + run]);
        }
    }
}

/// Valid output-column range `[lo, hi)` for kernel offset `kx` (input column inside the image).
fn valid_range(kx: usize, pad: usize, stride: usize, w: usize, wo: usize) -> (usize, usize) {
    let lo = if kx >= pad {
        0
    } else {
        (pad - kx).div_ceil(stride)
    }
    .min(wo);
    let hi = if w + pad > kx {
        ((w + pad - kx - 1) / stride + 1).min(wo)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// One image `[Cin, H, W]` → `col [Cin·K·K, Ho·Wo]` (channel-major rows, zero padding).
fn im2col<E: Float>(g: &Geom, x: &[E], col: &mut [E]) {
    let (k, s, pad, w, wo, p) = (g.k, g.stride, g.pad, g.w, g.wo, g.p());
    let zero = E::zero();
    for (ci, xc) in x.chunks(g.h * w).enumerate() {
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut col[((ci * k + ky) * k + kx) * p..][..p];
                let (lo, hi) = valid_range(kx, pad, s, w, wo);
                for (oy, r) in row.chunks_mut(wo).enumerate() {
                    let iy = oy * s + ky;
                    if iy < pad || iy - pad >= g.h {
                        r.fill(zero);
                        continue;
                    }
                    let xr = &xc[(iy - pad) * w..][..w];
                    r[..lo].fill(zero);
                    r[hi..].fill(zero);
                    if s == 1 {
                        let ix0 = lo + kx - pad;
                        r[lo..hi].copy_from_slice(&xr[ix0..ix0 + hi - lo]);
                    } else {
                        for (ox, v) in r[lo..hi].iter_mut().enumerate() {
                            *v = xr[(ox + lo) * s + kx - pad];
                        }
                    }
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: `gx [Cin, H, W] += col2im(dcol)`.
fn col2im<E: Float>(g: &Geom, dcol: &[E], gx: &mut [E]) {
    let (k, s, pad, w, wo, p) = (g.k, g.stride, g.pad, g.w, g.wo, g.p());
    for (ci, gc) in gx.chunks_mut(g.h * w).enumerate() {
        for ky in 0..k {
            for kx in 0..k {
                let row = &dcol[((ci * k + ky) * k + kx) * p..][..p];
                let (lo, hi) = valid_range(kx, pad, s, w, wo);
                for (oy, r) in row.chunks(wo).enumerate() {
                    let iy = oy * s + ky;
                    if iy < pad || iy - pad >= g.h {
                        continue;
                    }
                    let gr = &mut gc[(iy - pad) * w..][..w];
                    if s == 1 {
                        let ix0 = lo + kx - pad;
                        for (a, &b) in gr[ix0..ix0 + hi - lo].iter_mut().zip(&r[lo..hi]) {
                            *a += b;
                        }
                    } else {
                        for (ox, &b) in r[lo..hi].iter().enumerate() {
                            gr[(ox + lo) * s + kx - pad] += b;
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch buffers and the gemm wrapper.

thread_local! {
    /// Per-thread scratch that grows and is kept (f64 words: aligned for f32 and f64 alike).
    static SCRATCH: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on `len` elements of this thread's scratch buffer (contents unspecified).
pub(super) fn with_scratch<E: Float, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
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

/// A strided matrix view: element `(r, c)` at `r·rs + c·cs`.
struct MatRef<'a, E> {
    data: &'a [E],
    cs: isize,
    rs: isize,
}
impl<'a, E> MatRef<'a, E> {
    fn new(data: &'a [E], cs: isize, rs: isize) -> Self {
        MatRef { data, cs, rs }
    }
}
struct Mat<'a, E> {
    data: &'a mut [E],
    cs: isize,
    rs: isize,
}
impl<'a, E> Mat<'a, E> {
    fn new(data: &'a mut [E], cs: isize, rs: isize) -> Self {
        Mat { data, cs, rs }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: isize, cs: isize) -> bool {
    rows == 0 || cols == 0 || {
        let last = (rows - 1) as isize * rs + (cols - 1) as isize * cs;
        rs >= 0 && cs >= 0 && (last as usize) < len
    }
}

/// `dst [m, n] = (accumulate ? dst : 0) + lhs [m, k] · rhs [k, n]`, single-threaded gemm.
fn matmul<E: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: Mat<'_, E>,
    accumulate: bool,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
) {
    assert!(
        fits(dst.data.len(), m, n, dst.rs, dst.cs),
        "matmul: dst out of bounds"
    );
    assert!(
        fits(lhs.data.len(), m, k, lhs.rs, lhs.cs),
        "matmul: lhs out of bounds"
    );
    assert!(
        fits(rhs.data.len(), k, n, rhs.rs, rhs.cs),
        "matmul: rhs out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst.data[(r as isize * dst.rs + c as isize * dst.cs) as usize] = E::zero();
                }
            }
        }
        return;
    }
    // SAFETY: all three views were checked to lie inside their slices; dst is borrowed mutably
    // and cannot alias lhs/rhs. E is f32 or f64, which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs,
            dst.rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            E::one(),
            E::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::{numeric_grad, rand_vec, rel_err};

    /// Naive 7-loop cross-correlation with zero padding.
    fn reference(g: &Geom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.cout * g.ho * g.wo];
        for n in 0..g.n {
            for co in 0..g.cout {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut acc = b.map_or(0.0, |b| b[co]);
                        for ci in 0..g.cin {
                            for ky in 0..g.k {
                                for kx in 0..g.k {
                                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * g.cin + ci) * g.h + iy as usize) * g.w
                                        + ix as usize];
                                    let wv = w[((co * g.cin + ci) * g.k + ky) * g.k + kx];
                                    acc += xv * wv;
                                }
                            }
                        }
                        y[((n * g.cout + co) * g.ho + oy) * g.wo + ox] = acc;
                    }
                }
            }
        }
        y
    }

    /// (k, stride, pad) configurations of the tests.
    const CASES: [(usize, usize, usize); 5] =
        [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (3, 1, 0)];

    fn cfg(stride: usize, pad: usize) -> ConvCfg {
        ConvCfg {
            stride,
            pad,
            input_grad: true,
        }
    }

    #[test]
    fn forward_matches_reference() {
        let dev = Cpu::default();
        for &(k, s, p) in &CASES {
            for &(n, cin, cout, h, wd) in &[
                (3, 2, 5, 7, 6),
                (5, 3, 4, 6, 9),
                (1, 1, 1, 3, 3),
                (3, 17, 3, 5, 4),
                // more than PIXEL_MAJOR_MAX output pixels: the grid / im2col forward paths
                (3, 3, 4, 12, 11),
            ] {
                for with_bias in [false, true] {
                    let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
                    let xv = rand_vec(n * cin * h * wd, 1);
                    let wv = rand_vec(cout * cin * k * k, 2);
                    let bv = rand_vec(cout, 3);
                    let want = reference(&g, &xv, &wv, with_bias.then_some(&bv[..]));
                    let x: T4<f64> = dev.tensor_from_vec(xv, (n, cin, h, wd));
                    let w: T4<f64> = dev.tensor_from_vec(wv, (cout, cin, k, k));
                    let b: T1<f64> = dev.tensor_from_vec(bv, (cout,));
                    let y = conv2d(x, w, with_bias.then_some(b), cfg(s, p));
                    assert_eq!(*y.shape(), (n, cout, g.ho, g.wo));
                    let err = rel_err(&y.as_vec(), &want);
                    assert!(
                        err < 1e-12,
                        "k{k} s{s} p{p} n{n} bias {with_bias}: err {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn forward_f32_matches_reference() {
        let dev = Cpu::default();
        let (n, cin, cout, h, wd) = (4, 3, 6, 9, 8);
        for &(k, s, p) in &CASES {
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let xv = rand_vec(n * cin * h * wd, 4);
            let wv = rand_vec(cout * cin * k * k, 5);
            let bv = rand_vec(cout, 6);
            let want = reference(&g, &xv, &wv, Some(&bv));
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            let x: T4<f32> = dev.tensor_from_vec(f(&xv), (n, cin, h, wd));
            let w: T4<f32> = dev.tensor_from_vec(f(&wv), (cout, cin, k, k));
            let b: T1<f32> = dev.tensor_from_vec(f(&bv), (cout,));
            let y: Vec<f64> = conv2d(x, w, Some(b), cfg(s, p))
                .as_vec()
                .iter()
                .map(|&a| a as f64)
                .collect();
            let err = rel_err(&y, &want);
            assert!(err < 1e-5, "k{k} s{s} p{p}: err {err}");
        }
    }

    /// Loss `L = Σ conv(x, w, b) · r` and its analytic gradients (x, w, b).
    fn analytic(
        dims: (usize, usize, usize, usize, usize, usize),
        xv: &[f64],
        wv: &[f64],
        bv: Option<&[f64]>,
        r: &[f64],
        c: ConvCfg,
    ) -> (f64, Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
        let (n, cin, cout, h, wd, k) = dims;
        let dev = Cpu::default();
        let x: T4<f64> = dev.tensor_from_vec(xv.to_vec(), (n, cin, h, wd));
        let w: T4<f64> = dev.tensor_from_vec(wv.to_vec(), (cout, cin, k, k));
        let b: Option<T1<f64>> = bv.map(|bv| dev.tensor_from_vec(bv.to_vec(), (cout,)));
        let y = conv2d(
            x.leaky_trace(),
            w.retaped(),
            b.as_ref().map(|b| b.retaped()),
            c,
        );
        let rt: T4<f64> = dev.tensor_from_vec(r.to_vec(), *y.shape());
        let loss = (y * rt).sum();
        let lv = loss.array();
        let mut grads = loss.backward();
        let gb = b.as_ref().map(|b| grads.get(b).as_vec());
        // x's gradient may be absent (input_grad = false): read it as zeros then.
        let gx = grads.get_or_alloc_mut(&x).unwrap().to_vec();
        (lv, gx, grads.get(&w).as_vec(), gb)
    }

    fn loss_plain(
        dims: (usize, usize, usize, usize, usize, usize),
        xv: &[f64],
        wv: &[f64],
        bv: Option<&[f64]>,
        r: &[f64],
        c: ConvCfg,
    ) -> f64 {
        let (n, cin, cout, h, wd, k) = dims;
        let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), c);
        let mut y = vec![0.0; n * cout * g.p()];
        forward(&g, xv, wv, bv, &mut y);
        y.iter().zip(r).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn gradients_match_central_differences() {
        // Cin = 17 also exercises the explicit-im2col dW path of stride-1 convs.
        let sizes = [
            (3, 2, 5, 7, 6, false),
            (3, 2, 5, 7, 6, true),
            (3, 17, 3, 5, 4, true),
        ];
        for &(k, s, p) in &CASES {
            for (n, cin, cout, h, wd, with_bias) in sizes {
                let dims = (n, cin, cout, h, wd, k);
                let c = cfg(s, p);
                let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), c);
                let xv = rand_vec(n * cin * h * wd, 11);
                let wv = rand_vec(cout * cin * k * k, 12);
                let bv = rand_vec(cout, 13);
                let r = rand_vec(n * cout * g.p(), 14);
                let bo = with_bias.then_some(&bv[..]);
                let (lv, gx, gw, gb) = analytic(dims, &xv, &wv, bo, &r, c);
                assert!((lv - loss_plain(dims, &xv, &wv, bo, &r, c)).abs() < 1e-9);
                let h_ = 1e-5;
                let nx = numeric_grad(|xs| loss_plain(dims, xs, &wv, bo, &r, c), &xv, h_);
                let nw = numeric_grad(|ws| loss_plain(dims, &xv, ws, bo, &r, c), &wv, h_);
                let tag = format!("k{k} s{s} p{p} bias {with_bias}");
                assert!(
                    rel_err(&gx, &nx) <= 1e-5,
                    "{tag}: dx err {}",
                    rel_err(&gx, &nx)
                );
                assert!(
                    rel_err(&gw, &nw) <= 1e-5,
                    "{tag}: dw err {}",
                    rel_err(&gw, &nw)
                );
                if with_bias {
                    let nb =
                        numeric_grad(|bs| loss_plain(dims, &xv, &wv, Some(bs), &r, c), &bv, h_);
                    let gb = gb.unwrap();
                    assert!(
                        rel_err(&gb, &nb) <= 1e-5,
                        "{tag}: db err {}",
                        rel_err(&gb, &nb)
                    );
                }
            }
        }
    }

    /// The f32 path (direct kernels on AVX-512 for stride-1 convs) against the f64 path, which
    /// the central-difference checks above verify.
    #[test]
    fn f32_gradients_match_f64() {
        let dev = Cpu::default();
        let sizes = [(3, 2, 5, 7, 6), (2, 16, 16, 8, 8), (2, 3, 20, 12, 11)];
        for &(k, s, p) in &CASES {
            for (n, cin, cout, h, wd) in sizes {
                let dims = (n, cin, cout, h, wd, k);
                let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
                let xv = rand_vec(n * cin * h * wd, 41);
                let wv = rand_vec(cout * cin * k * k, 42);
                let bv = rand_vec(cout, 43);
                let r = rand_vec(n * cout * g.p(), 44);
                let (_, gx, gw, gb) = analytic(dims, &xv, &wv, Some(&bv), &r, cfg(s, p));
                let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
                let x: T4<f32> = dev.tensor_from_vec(f(&xv), (n, cin, h, wd));
                let w: T4<f32> = dev.tensor_from_vec(f(&wv), (cout, cin, k, k));
                let b: T1<f32> = dev.tensor_from_vec(f(&bv), (cout,));
                let rt: T4<f32> = dev.tensor_from_vec(f(&r), (n, cout, g.ho, g.wo));
                let y = conv2d(x.leaky_trace(), w.retaped(), Some(b.retaped()), cfg(s, p));
                let grads = (y * rt).sum().backward();
                let d = |t: Vec<f32>| t.into_iter().map(|a| a as f64).collect::<Vec<f64>>();
                let tag = format!("k{k} s{s} p{p} n{n} cin{cin} cout{cout}");
                let ex = rel_err(&d(grads.get(&x).as_vec()), &gx);
                let ew = rel_err(&d(grads.get(&w).as_vec()), &gw);
                let eb = rel_err(&d(grads.get(&b).as_vec()), &gb.unwrap());
                assert!(ex < 1e-5 && ew < 1e-5 && eb < 1e-5, "{tag}: {ex} {ew} {eb}");
            }
        }
    }

    /// dW over a batch (images grouped per gemm, with a short last group) equals the sum of
    /// one-image dWs (no grouping), for every configuration; Cin = 17 takes the explicit
    /// pixel-major path at stride 1 too.
    #[test]
    fn batched_weight_grad_is_the_sum_of_per_image_ones() {
        for &(k, s, p) in &CASES {
            let (n, cin, cout, h, wd) = (37, 17, 3, 12, 11);
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let xv = rand_vec(n * cin * h * wd, 51);
            let wv = rand_vec(cout * cin * k * k, 52);
            let gy = rand_vec(n * g.out_img(), 53);
            let mut gw = vec![0.0; wv.len()];
            backward(&g, &xv, &wv, &gy, None, &mut gw, None);
            let g1 = Geom::new((1, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let mut want = vec![0.0; wv.len()];
            for (xi, gi) in xv.chunks(g.in_img()).zip(gy.chunks(g.out_img())) {
                backward(&g1, xi, &wv, gi, None, &mut want, None);
            }
            let err = rel_err(&gw, &want);
            assert!(err < 1e-12, "k{k} s{s} p{p}: err {err}");
        }
    }

    #[test]
    fn no_input_grad_leaves_x_alone_and_same_w_grad() {
        for &(k, s, p) in &CASES {
            let dims @ (n, cin, cout, h, wd, _) = (3, 2, 5, 7, 6, k);
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let xv = rand_vec(n * cin * h * wd, 21);
            let wv = rand_vec(cout * cin * k * k, 22);
            let bv = rand_vec(cout, 23);
            let r = rand_vec(n * cout * g.p(), 24);
            let (_, _, gw1, gb1) = analytic(dims, &xv, &wv, Some(&bv), &r, cfg(s, p));
            let c = ConvCfg {
                stride: s,
                pad: p,
                input_grad: false,
            };
            let (_, gx2, gw2, gb2) = analytic(dims, &xv, &wv, Some(&bv), &r, c);
            assert!(gx2.iter().all(|&v| v == 0.0), "x grad must stay zero");
            assert_eq!(gw1, gw2);
            assert_eq!(gb1, gb2);
        }
    }

    #[test]
    fn gradients_accumulate_over_two_uses() {
        let dev = Cpu::default();
        let (n, cin, cout, h, wd, k) = (3, 2, 5, 7, 6, 3);
        let c = cfg(1, 1);
        let xv = rand_vec(n * cin * h * wd, 31);
        let wv = rand_vec(cout * cin * k * k, 32);
        let bv = rand_vec(cout, 33);
        let r = rand_vec(n * cout * h * wd, 34);
        let dims = (n, cin, cout, h, wd, k);
        let (_, gx1, gw1, gb1) = analytic(dims, &xv, &wv, Some(&bv), &r, c);

        let x: T4<f64> = dev.tensor_from_vec(xv, (n, cin, h, wd));
        let w: T4<f64> = dev.tensor_from_vec(wv, (cout, cin, k, k));
        let b: T1<f64> = dev.tensor_from_vec(bv, (cout,));
        let rt: T4<f64> = dev.tensor_from_vec(r, (n, cout, h, wd));
        let xt = x.leaky_trace();
        let y1 = conv2d(xt.with_empty_tape(), w.retaped(), Some(b.retaped()), c);
        let y2 = conv2d(xt, w.retaped(), Some(b.retaped()), c);
        let loss = (y1 * rt.clone()).sum() + (y2 * rt).sum();
        let grads = loss.backward();
        let twice = |v: Vec<f64>| v.into_iter().map(|a| 2.0 * a).collect::<Vec<_>>();
        assert!(rel_err(&grads.get(&x).as_vec(), &twice(gx1)) < 1e-12);
        assert!(rel_err(&grads.get(&w).as_vec(), &twice(gw1)) < 1e-12);
        assert!(rel_err(&grads.get(&b).as_vec(), &twice(gb1.unwrap())) < 1e-12);
    }

    #[test]
    #[should_panic(expected = "channels")]
    fn channel_mismatch_panics() {
        let dev = Cpu::default();
        let x: T4<f32> = dev.zeros_like(&(1, 3, 4, 4));
        let w: T4<f32> = dev.zeros_like(&(2, 2, 3, 3));
        let _ = conv2d(x, w, None, cfg(1, 1));
    }

    /// `cargo test --release --lib engine::conv::tests::conv_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn conv_speed() {
        let dev = Cpu::default();
        let shapes = [
            ("16->16 32x32 s1", 16, 16, 32, 3, 1, 1),
            ("16->32 32x32 s2", 16, 32, 32, 3, 2, 1),
            ("32->32 16x16 s1", 32, 32, 16, 3, 1, 1),
            ("64->64 8x8 s1  ", 64, 64, 8, 3, 1, 1),
            ("16->32 1x1 s2  ", 16, 32, 32, 1, 2, 0),
            ("32->64 1x1 s1  ", 32, 64, 16, 1, 1, 0),
        ];
        let n = 64;
        println!("threads: {}", rayon::current_num_threads());
        for (name, cin, cout, hw, k, s, p) in shapes {
            let c = cfg(s, p);
            let g = Geom::new((n, cin, hw, hw), (cout, cin, k, k), c);
            let xv: Vec<f32> = rand_vec(n * cin * hw * hw, 1)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let wv: Vec<f32> = rand_vec(cout * cin * k * k, 2)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let x: T4<f32> = dev.tensor_from_vec(xv, (n, cin, hw, hw));
            let w: T4<f32> = dev.tensor_from_vec(wv, (cout, cin, k, k));
            let gyv: Vec<f32> = rand_vec(n * cout * g.p(), 3)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let reps = 20;
            // Best of 5 rounds: the machine may be shared.
            let time = |f: &mut dyn FnMut()| {
                f();
                (0..5)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        for _ in 0..reps {
                            f();
                        }
                        t.elapsed().as_secs_f64() / reps as f64
                    })
                    .fold(f64::MAX, f64::min)
            };
            let tf = time(&mut || {
                let y = conv2d(x.clone(), w.clone(), None, c);
                std::hint::black_box(y);
            });
            let mut gx = vec![0f32; x.shape().num_elements()];
            let mut gw = vec![0f32; w.shape().num_elements()];
            let tb = time(&mut || {
                backward(
                    &g,
                    view(&x),
                    view(&w),
                    &gyv,
                    Some((&mut gx, false)),
                    &mut gw,
                    None,
                )
            });
            let tw = time(&mut || backward(&g, view(&x), view(&w), &gyv, None, &mut gw, None));
            let tfb = time(&mut || {
                let y = conv2d(x.leaky_trace(), w.retaped(), None, c);
                let grads = y.sum().backward();
                std::hint::black_box(grads);
            });
            let f = g.flops() / 1e9;
            println!(
                "{name}: fwd {:6.1} GFLOP/s ({:6.2} ms) | bwd dX+dW {:6.1} ({:6.2} ms) | bwd dW only {:6.1} ({:6.2} ms) | fwd+bwd via tape {:6.1} GFLOP/s ({:6.2} ms)",
                f / tf,
                tf * 1e3,
                2.0 * f / tb,
                tb * 1e3,
                f / tw,
                tw * 1e3,
                3.0 * f / tfb,
                tfb * 1e3
            );
        }
    }
}
