//! Batch norm's joining write pass (see `super::join_planes`) for f32 on AVX-512, in intrinsics:
//! LLVM did not vectorise the three eq. 5 sums beside the masked write from portable code, and
//! that left the join costing as much as the rest of the backward.

use super::BnDx;
use std::arch::x86_64::*;

/// Sixteen-lane f32 partial sums are flushed to f64 after about this many elements (as the
/// engine's coarse reductions), across planes: a flush per 64-element plane (8×8 images) cost as
/// much as the plane.
const BLOCK: usize = 1024;

/// One plane's `(d, g, x)`.
pub(super) type Plane<'a> = (&'a mut [f32], &'a [f32], &'a [f32]);

/// Over planes `0..planes`: `d[i] += br[i]`, `br = a·gm + c1 + c2·(x − μ)` with `gm = g` masked
/// where `x·a + b ≤ 0` (if `relu`), evaluated in the order and rounding of batch norm's scalar
/// write pass (no fused multiply-add), so `d` ends bit for bit as it would there. Returns
/// `[Σ d², Σ br², Σ d·br]` of the values before the add.
///
/// # Safety
/// AVX-512F available. (Each plane's `g` and `x` must be at least as long as its `d`: checked.)
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn join_planes_f32<'a>(
    planes: usize,
    plane: &dyn Fn(usize) -> Plane<'a>,
    k: BnDx<f32>,
    relu: bool,
) -> [f64; 3] {
    let mut acc = Acc::new();
    for i in 0..planes {
        let (d, g, x) = plane(i);
        assert!(
            g.len() >= d.len() && x.len() >= d.len(),
            "join: short plane"
        );
        // SAFETY: AVX-512F (this function's contract); lengths checked above.
        unsafe {
            match (relu, k.train) {
                (true, true) => join::<true, true>(d, g, x, k, &mut acc),
                (true, false) => join::<true, false>(d, g, x, k, &mut acc),
                (false, true) => join::<false, true>(d, g, x, k, &mut acc),
                (false, false) => join::<false, false>(d, g, x, k, &mut acc),
            }
        }
    }
    acc.flush();
    acc.total
}

/// Sixteen-lane f32 sums `[Σ d², Σ br², Σ d·br]` and their f64 totals.
struct Acc {
    lanes: [__m512; 3],
    count: usize,
    total: [f64; 3],
}

impl Acc {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        Self {
            lanes: [_mm512_setzero_ps(); 3],
            count: 0,
            total: [0.0; 3],
        }
    }

    #[target_feature(enable = "avx512f")]
    fn flush(&mut self) {
        for (t, v) in self.total.iter_mut().zip(&mut self.lanes) {
            *t += sum_f64(*v);
            *v = _mm512_setzero_ps();
        }
        self.count = 0;
    }
}

/// One plane of [`join_planes_f32`] with the ReLU and the mode fixed, so the loop has no branch.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn join<const RELU: bool, const TRAIN: bool>(
    d: &mut [f32],
    g: &[f32],
    x: &[f32],
    k: BnDx<f32>,
    acc: &mut Acc,
) {
    let n = d.len();
    let (dp, gp, xp) = (d.as_mut_ptr(), g.as_ptr(), x.as_ptr());
    let (va, vb, vc1, vc2, vmu) = (
        _mm512_set1_ps(k.a),
        _mm512_set1_ps(k.b),
        _mm512_set1_ps(k.c1),
        _mm512_set1_ps(k.c2),
        _mm512_set1_ps(k.mu),
    );
    let zero = _mm512_setzero_ps();
    // One vector's part: its branch value, and its new `d`.
    let part = |gv: __m512, xv: __m512| {
        let gm = if RELU {
            // Kept where !(x·a + b ≤ 0), NaN included, as the scalar test.
            let t = _mm512_add_ps(_mm512_mul_ps(xv, va), vb);
            _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(t, zero), gv)
        } else {
            gv
        };
        if TRAIN {
            let t = _mm512_add_ps(_mm512_mul_ps(va, gm), vc1);
            _mm512_add_ps(t, _mm512_mul_ps(vc2, _mm512_sub_ps(xv, vmu)))
        } else {
            _mm512_mul_ps(va, gm)
        }
    };
    let mut i = 0;
    while i + 16 <= n {
        let end = (i + BLOCK - acc.count).min(n - n % 16);
        // Two vectors per step into two sets of sums: one set made the loop wait on the
        // multiply-add latency where the data is in cache.
        let [mut ii, mut bb, mut ib] = acc.lanes;
        let [mut ii2, mut bb2, mut ib2] = [zero; 3];
        let start = i;
        while i + 32 <= end {
            // SAFETY: i + 32 ≤ n, and every slice holds at least n elements.
            let (g0, x0, d0, g1, x1, d1) = unsafe {
                (
                    _mm512_loadu_ps(gp.add(i)),
                    _mm512_loadu_ps(xp.add(i)),
                    _mm512_loadu_ps(dp.add(i)),
                    _mm512_loadu_ps(gp.add(i + 16)),
                    _mm512_loadu_ps(xp.add(i + 16)),
                    _mm512_loadu_ps(dp.add(i + 16)),
                )
            };
            let (b0, b1) = (part(g0, x0), part(g1, x1));
            ii = _mm512_fmadd_ps(d0, d0, ii);
            bb = _mm512_fmadd_ps(b0, b0, bb);
            ib = _mm512_fmadd_ps(d0, b0, ib);
            ii2 = _mm512_fmadd_ps(d1, d1, ii2);
            bb2 = _mm512_fmadd_ps(b1, b1, bb2);
            ib2 = _mm512_fmadd_ps(d1, b1, ib2);
            // SAFETY: as the loads.
            unsafe {
                _mm512_storeu_ps(dp.add(i), _mm512_add_ps(d0, b0));
                _mm512_storeu_ps(dp.add(i + 16), _mm512_add_ps(d1, b1));
            }
            i += 32;
        }
        while i < end {
            // SAFETY: i + 16 ≤ n, and every slice holds at least n elements.
            let (gv, xv, dv) = unsafe {
                (
                    _mm512_loadu_ps(gp.add(i)),
                    _mm512_loadu_ps(xp.add(i)),
                    _mm512_loadu_ps(dp.add(i)),
                )
            };
            let br = part(gv, xv);
            ii = _mm512_fmadd_ps(dv, dv, ii);
            bb = _mm512_fmadd_ps(br, br, bb);
            ib = _mm512_fmadd_ps(dv, br, ib);
            // SAFETY: as the loads.
            unsafe { _mm512_storeu_ps(dp.add(i), _mm512_add_ps(dv, br)) };
            i += 16;
        }
        acc.lanes = [
            _mm512_add_ps(ii, ii2),
            _mm512_add_ps(bb, bb2),
            _mm512_add_ps(ib, ib2),
        ];
        acc.count += i - start;
        if acc.count >= BLOCK {
            acc.flush();
        }
    }
    for j in i..n {
        let br = k.dx(g[j], x[j], RELU);
        let id = d[j];
        acc.total[0] += f64::from(id * id);
        acc.total[1] += f64::from(br * br);
        acc.total[2] += f64::from(id * br);
        d[j] = id + br;
    }
}

/// The sixteen lanes of `v`, summed in f64.
#[target_feature(enable = "avx512f")]
fn sum_f64(v: __m512) -> f64 {
    let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
        _mm512_castps_pd(v),
    )));
    _mm512_reduce_add_pd(_mm512_add_pd(lo, hi))
}
