//! Direct weight gradient of stride-1 3×3 convolutions for f32 on AVX-512.
//!
//! `dW[co, ci, ky, kx] = Σ_n Σ_(oy,ox) gy[n, co, oy, ox] · xpad[n, ci, oy + ky, ox + kx]` is a
//! product with a tiny result (`Cout × 9·Cin`) and a huge reduction (every pixel of the batch).
//! The register tile puts *output channels* in the vector lanes: per output pixel it loads `gy`
//! for 16–48 channels (from a pixel-major copy `[P, Cout]`) and broadcasts the 9 taps of 1–3 input
//! channels straight from the zero-padded CHW image. The pixel reduction then stays in the
//! accumulators, with no horizontal sums, no im2col (9× the image) and no gemm packing (another
//! 9×), which is where the im2col + gemm path spent its time (~95 GFLOP/s per core in place).

use super::direct::{self, Corr};
use super::scratch::with_scratch;
use super::simd;
use rayon::prelude::*;

const LANES: usize = 16;
/// Taps of the 3×3 kernel.
const T: usize = 9;

/// Output pixels of one image.
fn p(d: &Corr) -> usize {
    d.ho() * d.wo()
}

/// Output channels rounded up to whole vectors (the pixel-major `gy` rows and the partials).
fn cpad(d: &Corr) -> usize {
    d.cout.next_multiple_of(LANES)
}

/// `gw [Cout, Cin, 3, 3] += dW` over the batch `x [N, Cin, H, W]`, `gy [N, Cout, Ho, Wo]`, with
/// `per` images per rayon task.
///
/// Panics if [`simd::direct_conv`] is false, `d` is not a 3×3 conv with `pad < 3` and a
/// non-empty output, or a buffer has the wrong size.
pub fn weight_grad(d: &Corr, x: &[f32], gy: &[f32], gw: &mut [f32], per: usize) {
    assert!(simd::direct_conv(), "direct dW needs AVX-512F");
    assert!(
        d.k == 3
            && d.pad < 3
            && d.cin > 0
            && d.cout > 0
            && d.h + 2 * d.pad >= 3
            && d.w + 2 * d.pad >= 3,
        "direct dW: {d:?}"
    );
    let n = x.len() / d.in_img();
    assert_eq!(x.len(), n * d.in_img(), "direct dW: input size");
    assert_eq!(gy.len(), n * d.out_img(), "direct dW: output gradient size");
    assert_eq!(
        gw.len(),
        d.cout * d.cin * T,
        "direct dW: weight gradient size"
    );
    let per = per.max(1);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per * d.in_img())
        .zip(gy.par_chunks(per * d.out_img()))
        .map(|(x, gy)| task(d, x, gy))
        .collect();
    // gw [co, ci, t] += Σ_tasks pw [(ci, t), co]
    let cpad = cpad(d);
    for (co, gwc) in gw.chunks_exact_mut(d.cin * T).enumerate() {
        for (j, g) in gwc.iter_mut().enumerate() {
            *g += partials.iter().map(|pw| pw[j * cpad + co]).sum::<f32>();
        }
    }
}

/// One task's images → its partial `pw [(ci, t), Cpad]`.
fn task(d: &Corr, x: &[f32], gy: &[f32]) -> Vec<f32> {
    let (plane, cpad) = (d.plane(), cpad(d));
    let mut pw = vec![0.0f32; d.cin * T * cpad];
    let xpad_len = d.cin * plane;
    with_scratch::<f32, _>(xpad_len + p(d) * cpad, |buf| {
        let (xpad, gyh) = buf.split_at_mut(xpad_len);
        xpad.fill(0.0); // borders stay zero; interiors are rewritten per image
        gyh.fill(0.0); // likewise the lanes past Cout
        for (xi, gi) in x.chunks_exact(d.in_img()).zip(gy.chunks_exact(d.out_img())) {
            direct::copy_image(d, direct::Layout::Grid, xi, xpad);
            transpose(gi, d.cout, p(d), gyh, cpad);
            image(d, xpad, gyh, &mut pw);
        }
    });
    pw
}

/// `src [rows, cols]` → `dst [cols, dst_rs]` (`dst[c·dst_rs + r] = src[r·cols + c]`): whole
/// 16×16 blocks in registers, the edges element by element. A plain element loop cost a third of
/// the kernel's own time at 16 channels.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], dst_rs: usize) {
    assert!(src.len() >= rows * cols && rows <= dst_rs && dst.len() >= cols * dst_rs);
    let (rb, cb) = (rows - rows % LANES, cols - cols % LANES);
    for r0 in (0..rb).step_by(LANES) {
        for c0 in (0..cb).step_by(LANES) {
            // SAFETY: AVX-512F (checked by `weight_grad`); the block's 16 rows of 16 reads lie in
            // `src` and its 16 rows of 16 writes in `dst` (asserted sizes, r0 + 16 ≤ rows ≤ dst_rs).
            unsafe {
                kernel::transpose16(
                    src.as_ptr().add(r0 * cols + c0),
                    cols,
                    dst.as_mut_ptr().add(c0 * dst_rs + r0),
                    dst_rs,
                );
            }
        }
    }
    let mut edge = |r: usize, c: usize| dst[c * dst_rs + r] = src[r * cols + c];
    for r in 0..rows {
        for c in cb..cols {
            edge(r, c);
        }
    }
    for r in rb..rows {
        for c in 0..cb {
            edge(r, c);
        }
    }
}

/// Adds one image's dW to `pw [(ci, t), Cpad]`, tile by tile: up to 3 vectors of output channels
/// × (3 / vectors) input channels × 9 taps, at most 27 accumulators.
fn image(d: &Corr, xpad: &[f32], gyh: &[f32], pw: &mut [f32]) {
    let cpad = cpad(d);
    let vecs = cpad / LANES;
    let mut v0 = 0;
    while v0 < vecs {
        let mv = (vecs - v0).min(3);
        let nc = 3 / mv;
        let mut ci = 0;
        while ci < d.cin {
            let ncur = (d.cin - ci).min(nc);
            // SAFETY: AVX-512F was checked by `weight_grad`; the tile reads planes ci..ci+ncur of
            // `xpad` ([Cin, plane]) at pixel + tap offsets inside each plane, lanes
            // v0·16 .. (v0+mv)·16 ≤ Cpad of every `gyh` row, and reads and writes rows
            // ci·9 .. (ci+ncur)·9 of `pw` at the same lanes.
            unsafe {
                kernel::tile_any(
                    mv,
                    ncur,
                    xpad.as_ptr().add(ci * d.plane()),
                    d,
                    gyh.as_ptr().add(v0 * LANES),
                    pw.as_mut_ptr().add(ci * T * cpad + v0 * LANES),
                );
            }
            ci += ncur;
        }
        v0 += mv;
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::{Corr, LANES, T, cpad};
    use std::arch::x86_64::*;

    /// `acc[(c, t), v·16 + l] += Σ_p x[c·plane + p' + off(t)] · gy[p·Cpad + v·16 + l]` over every
    /// output pixel `p = (oy, ox)`, `p' = oy·Wp + ox`, for `c < NC`, `v < MV`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const MV: usize, const NC: usize>(
        x: *const f32,
        d: &Corr,
        gy: *const f32,
        acc_mem: *mut f32,
    ) {
        let (wp, plane, cpad) = (d.wp(), d.plane(), cpad(d));
        // SAFETY (whole body): the caller guarantees every address below is in bounds.
        unsafe {
            let mut acc = [[[_mm512_setzero_ps(); MV]; T]; NC];
            for (c, acc) in acc.iter_mut().enumerate() {
                for (t, acc) in acc.iter_mut().enumerate() {
                    for (v, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_loadu_ps(acc_mem.add((c * T + t) * cpad + v * LANES));
                    }
                }
            }
            for oy in 0..d.ho() {
                let grow = gy.add(oy * d.wo() * cpad);
                let xrow = x.add(oy * wp);
                for ox in 0..d.wo() {
                    let mut g = [_mm512_setzero_ps(); MV];
                    for (v, g) in g.iter_mut().enumerate() {
                        *g = _mm512_loadu_ps(grow.add(ox * cpad + v * LANES));
                    }
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let xp = xrow.add(c * plane + ox);
                        for (t, acc) in acc.iter_mut().enumerate() {
                            let b = _mm512_set1_ps(*xp.add((t / 3) * wp + t % 3));
                            for (a, &g) in acc.iter_mut().zip(&g) {
                                *a = _mm512_fmadd_ps(g, b, *a);
                            }
                        }
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                for (t, acc) in acc.iter().enumerate() {
                    for (v, &a) in acc.iter().enumerate() {
                        _mm512_storeu_ps(acc_mem.add((c * T + t) * cpad + v * LANES), a);
                    }
                }
            }
        }
    }

    /// Transposes the 16×16 block at `src` (row stride `src_rs`) into `dst` (row stride `dst_rs`).
    ///
    /// # Safety
    /// AVX-512F available; 16 rows of 16 floats readable at `src` and writable at `dst`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16(src: *const f32, src_rs: usize, dst: *mut f32, dst_rs: usize) {
        // SAFETY (whole body): in bounds by the caller's contract.
        unsafe {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, r) in r.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(src.add(i * src_rs));
            }
            // t[2k], t[2k+1]: rows 2k and 2k+1 interleaved, per 128-bit lane L:
            // (a[4L], b[4L], a[4L+1], b[4L+1]) and (a[4L+2], b[4L+2], a[4L+3], b[4L+3]).
            let mut t = [_mm512_setzero_ps(); 16];
            for k in 0..8 {
                t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
                t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
            }
            // u[4m + c], lane L: column 4L + c of rows 4m .. 4m+3.
            let (lo, hi) = (
                |a: __m512, b: __m512| {
                    _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
                },
                |a: __m512, b: __m512| {
                    _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
                },
            );
            let mut u = [_mm512_setzero_ps(); 16];
            for m in 0..4 {
                let t = &t[4 * m..4 * m + 4];
                u[4 * m] = lo(t[0], t[2]);
                u[4 * m + 1] = hi(t[0], t[2]);
                u[4 * m + 2] = lo(t[1], t[3]);
                u[4 * m + 3] = hi(t[1], t[3]);
            }
            // Column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
            for c in 0..4 {
                let (u0, u1, u2, u3) = (u[c], u[4 + c], u[8 + c], u[12 + c]);
                let v0 = _mm512_shuffle_f32x4::<0x44>(u0, u1);
                let v1 = _mm512_shuffle_f32x4::<0xEE>(u0, u1);
                let v2 = _mm512_shuffle_f32x4::<0x44>(u2, u3);
                let v3 = _mm512_shuffle_f32x4::<0xEE>(u2, u3);
                _mm512_storeu_ps(dst.add(c * dst_rs), _mm512_shuffle_f32x4::<0x88>(v0, v2));
                _mm512_storeu_ps(
                    dst.add((4 + c) * dst_rs),
                    _mm512_shuffle_f32x4::<0xDD>(v0, v2),
                );
                _mm512_storeu_ps(
                    dst.add((8 + c) * dst_rs),
                    _mm512_shuffle_f32x4::<0x88>(v1, v3),
                );
                _mm512_storeu_ps(
                    dst.add((12 + c) * dst_rs),
                    _mm512_shuffle_f32x4::<0xDD>(v1, v3),
                );
            }
        }
    }

    /// [`tile`] for runtime `mv ∈ 1..=3` vectors and `nc ≤ 3 / mv` input channels.
    ///
    /// # Safety
    /// AVX-512F available; `x` points at `nc` whole padded planes, `gy` at a `[P, Cpad]` buffer
    /// (offset by the first vector), `acc_mem` at `9·nc` rows of `Cpad` (same offset).
    pub(super) unsafe fn tile_any(
        mv: usize,
        nc: usize,
        x: *const f32,
        d: &Corr,
        gy: *const f32,
        acc_mem: *mut f32,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match (mv, nc) {
                (1, 1) => tile::<1, 1>(x, d, gy, acc_mem),
                (1, 2) => tile::<1, 2>(x, d, gy, acc_mem),
                (1, 3) => tile::<1, 3>(x, d, gy, acc_mem),
                (2, 1) => tile::<2, 1>(x, d, gy, acc_mem),
                (3, 1) => tile::<3, 1>(x, d, gy, acc_mem),
                _ => unreachable!("dW tile {mv}×{nc}"),
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::Corr;
    pub(super) unsafe fn tile_any(
        _: usize,
        _: usize,
        _: *const f32,
        _: &Corr,
        _: *const f32,
        _: *mut f32,
    ) {
        unreachable!("direct dW needs AVX-512F (checked by `weight_grad`)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::rand_vec;

    /// Naive dW in f64: `[Cout, Cin, 3, 3]`.
    fn reference(d: &Corr, x: &[f64], gy: &[f64], n: usize) -> Vec<f64> {
        let (ho, wo) = (d.ho(), d.wo());
        let mut gw = vec![0.0; d.cout * d.cin * T];
        for i in 0..n {
            for co in 0..d.cout {
                for ci in 0..d.cin {
                    for t in 0..T {
                        let (ky, kx) = (t / 3, t % 3);
                        let mut acc = 0.0;
                        for oy in 0..ho {
                            for ox in 0..wo {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < d.pad
                                    || ix < d.pad
                                    || iy - d.pad >= d.h
                                    || ix - d.pad >= d.w
                                {
                                    continue;
                                }
                                let (iy, ix) = (iy - d.pad, ix - d.pad);
                                acc += gy[((i * d.cout + co) * ho + oy) * wo + ox]
                                    * x[((i * d.cin + ci) * d.h + iy) * d.w + ix];
                            }
                        }
                        gw[(co * d.cin + ci) * T + t] += acc;
                    }
                }
            }
        }
        gw
    }

    /// Every tile shape (1–3 channel vectors, 1–3 input channels, tails of both), channel counts
    /// that are not whole vectors, every padding, images narrower and wider than a vector, and
    /// batches split into uneven tasks; `gw` is accumulated onto, not overwritten.
    #[test]
    fn matches_naive_weight_gradient() {
        if !simd::direct_conv() {
            eprintln!("skipped: no AVX-512F on this CPU");
            return;
        }
        for (cin, cout, h, w) in [
            (1, 1, 3, 3),
            (3, 16, 8, 8),
            (4, 17, 5, 9),
            (2, 33, 7, 6),
            (5, 48, 4, 20),
            (7, 64, 6, 5),
            (16, 70, 3, 4),
        ] {
            for pad in 0..3 {
                let d = Corr {
                    cin,
                    cout,
                    h,
                    w,
                    k: 3,
                    pad,
                };
                if d.h + 2 * pad < 3 || d.w + 2 * pad < 3 {
                    continue;
                }
                let n = 3;
                let x = rand_vec(n * d.in_img(), 1);
                let gy = rand_vec(n * d.out_img(), 2);
                let want = reference(&d, &x, &gy, n);
                let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
                for per in [1, 2, 3] {
                    let mut gw = vec![1.0f32; want.len()];
                    weight_grad(&d, &f32s(&x), &f32s(&gy), &mut gw, per);
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    for (j, (&g, &r)) in gw.iter().zip(&want).enumerate() {
                        let err = (g as f64 - 1.0 - r).abs() / scale;
                        assert!(err < 1e-5, "{d:?} per {per} [{j}]: {g} vs 1 + {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_matches_naive() {
        if !simd::direct_conv() {
            return;
        }
        for (rows, cols, dst_rs) in [
            (16, 16, 16),
            (32, 48, 32),
            (17, 35, 20),
            (3, 40, 16),
            (64, 64, 64),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![-1.0f32; cols * dst_rs];
            transpose(&src, rows, cols, &mut dst, dst_rs);
            for c in 0..cols {
                for r in 0..dst_rs {
                    let want = if r < rows { src[r * cols + c] } else { -1.0 };
                    assert_eq!(dst[c * dst_rs + r], want, "{rows}×{cols} at ({r}, {c})");
                }
            }
        }
    }

    /// Single-thread speed of one image's dW, in cache:
    /// `cargo test --release --lib engine::dw::tests::dw_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn dw_speed() {
        if !simd::direct_conv() {
            return;
        }
        for (cin, cout, hw) in [(16, 16, 32), (32, 32, 16), (64, 64, 8)] {
            let d = Corr {
                cin,
                cout,
                h: hw,
                w: hw,
                k: 3,
                pad: 1,
            };
            let n = 4;
            let x: Vec<f32> = rand_vec(n * d.in_img(), 1)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let gy: Vec<f32> = rand_vec(n * d.out_img(), 2)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let s = crate::engine::best_ms(50, &mut || {
                std::hint::black_box(task(&d, &x, &gy));
            });
            let flops = 2.0 * (n * cout * cin * T * p(&d)) as f64;
            let xpad = vec![0.5f32; d.cin * d.plane()];
            let gyh = vec![0.25f32; p(&d) * cpad(&d)];
            let mut pw = vec![0.0f32; d.cin * T * cpad(&d)];
            let k = crate::engine::best_ms(50, &mut || image(&d, &xpad, &gyh, &mut pw));
            println!(
                "  kernel alone {:.1} us/img, {:.1} GFLOP/s",
                k * 1e3,
                flops / n as f64 / k / 1e6
            );
            println!(
                "{cin}->{cout} {hw}x{hw}: {:.1} us/img, {:.1} GFLOP/s",
                s * 1e3 / n as f64,
                flops / s / 1e6
            );
        }
    }
}
