//! The image layouts the conv paths multiply: zero-padded CHW and HWC copies of an image, the
//! channel-major im2col matrix and the pixel-major one, and the adjoints (col2im) dX uses.

use super::geom::Geom;
use crate::engine::tensor::Float;

/// One image `[Cin, H, W]` → the interior of a zero-padded CHW buffer `[Cin, H+2p, W+2p]`.
pub(super) fn to_padded_chw<E: Float>(g: &Geom, x: &[E], xpad: &mut [E]) {
    let (hp, wp, pad) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.pad);
    for (ci, xc) in x.chunks_exact(g.h * g.w).enumerate() {
        for (iy, xr) in xc.chunks_exact(g.w).enumerate() {
            xpad[ci * hp * wp + (iy + pad) * wp + pad..][..g.w].copy_from_slice(xr);
        }
    }
}

/// Adjoint of the grid im2col: `gx [Cin, H, W] += col2im(dcol [K·K·Cin, Ho·(W+2p)])`, through the
/// padded scratch image `gxpad`. The discarded grid columns of `dcol` are zero (they come from
/// zero columns of the padded output gradient).
pub(super) fn col2im_grid<E: Float>(g: &Geom, dcol: &[E], gxpad: &mut [E], gx: &mut [E]) {
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

/// One image `[Cin, H, W]` → the interior of a zero-padded HWC buffer `[H+2p, W+2p, Cin]`.
pub(super) fn to_padded_hwc<E: Float>(g: &Geom, x: &[E], xh: &mut [E]) {
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
pub(super) fn im2col_pixel_major<E: Float>(g: &Geom, xh: &[E], colt: &mut [E]) {
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
pub(super) fn im2col<E: Float>(g: &Geom, x: &[E], col: &mut [E]) {
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
pub(super) fn col2im<E: Float>(g: &Geom, dcol: &[E], gx: &mut [E]) {
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
