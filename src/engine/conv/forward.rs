//! The forward strategies: the direct kernel (f32, AVX-512, stride 1), pixel-major im2col for
//! small outputs, the padded-width grid for stride-1 convs, and plain im2col + gemm (or the image
//! itself for 1×1 stride-1 convs).

use super::geom::{Geom, group_size, imgs_per_task};
use super::im2col::{im2col, im2col_pixel_major, to_padded_chw, to_padded_hwc};
use crate::engine::gemm::{Mat, MatRef, matmul};
use crate::engine::scratch::with_scratch;
use crate::engine::tensor::Float;
use crate::engine::{direct, simd};
use rayon::prelude::*;

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
pub(super) fn direct_corr(g: &Geom) -> Option<direct::Corr> {
    let ok = g.on_grid() && g.pad < g.k && g.cin > 0 && g.cout > 0 && simd::direct_conv();
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

/// `y [Cout, P] = w [Cout, KK] · cols [KK, P]`, plus `bias[co]` on row `co` when given.
pub(super) fn weights_times_cols<E: Float>(
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
/// Up to 10×10 outputs: it wins clearly at 8×8 and is already slightly slower at 16×16.
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
