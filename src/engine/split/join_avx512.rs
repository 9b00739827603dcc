//! The fused write passes of the eq. 5 split for f32 on AVX-512, in intrinsics: batch norm's
//! joining write pass (see `super::join_planes`) and `super::add_into`. LLVM did not vectorise
//! the three sums beside the masked write from portable code, which left the join costing as
//! much as the rest of the backward; `add_into` waited on the add latency of one set of sums.

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
    plane: impl Fn(usize) -> Plane<'a>,
    k: BnDx<f32>,
    relu: bool,
) -> [f64; 3] {
    // SAFETY: AVX-512F (this function's contract).
    unsafe {
        match (relu, k.train) {
            (true, true) => join::<true, true>(planes, plane, k),
            (true, false) => join::<true, false>(planes, plane, k),
            (false, true) => join::<false, true>(planes, plane, k),
            (false, false) => join::<false, false>(planes, plane, k),
        }
    }
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

    /// `n` more elements are in the lanes: flush them once a block is full.
    #[target_feature(enable = "avx512f")]
    fn counted(&mut self, n: usize) {
        self.count += n;
        if self.count >= BLOCK {
            self.flush();
        }
    }
}

/// `k` in vectors.
#[derive(Clone, Copy)]
struct Coef {
    a: __m512,
    b: __m512,
    c1: __m512,
    c2: __m512,
    mu: __m512,
}

/// One vector's branch part: `a·gm + c1 + c2·(x − μ)` (`a·gm` in evaluation), `gm = g` where
/// !(x·a + b ≤ 0) (NaN included, as the scalar test) if `RELU`.
#[target_feature(enable = "avx512f")]
#[inline]
fn branch<const RELU: bool, const TRAIN: bool>(g: __m512, x: __m512, k: Coef) -> __m512 {
    let gm = if RELU {
        let t = _mm512_add_ps(_mm512_mul_ps(x, k.a), k.b);
        let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(t, _mm512_setzero_ps());
        _mm512_maskz_mov_ps(keep, g)
    } else {
        g
    };
    if TRAIN {
        let t = _mm512_add_ps(_mm512_mul_ps(k.a, gm), k.c1);
        _mm512_add_ps(t, _mm512_mul_ps(k.c2, _mm512_sub_ps(x, k.mu)))
    } else {
        _mm512_mul_ps(k.a, gm)
    }
}

/// [`join_planes_f32`] with the ReLU and the mode fixed, so the loop has no branch, and the
/// coefficients set up once rather than per plane: with the set-up, a dynamic call and a dispatch
/// per plane, the join took 40–74 % longer than the plain write pass on 14×14 and 7×7 planes,
/// now 9–37 % over five runs of `batchnorm::bench::join_speed` (in cache; the machine is noisy).
#[target_feature(enable = "avx512f")]
unsafe fn join<'a, const RELU: bool, const TRAIN: bool>(
    planes: usize,
    plane: impl Fn(usize) -> Plane<'a>,
    k: BnDx<f32>,
) -> [f64; 3] {
    let set = _mm512_set1_ps;
    let kv = Coef {
        a: set(k.a),
        b: set(k.b),
        c1: set(k.c1),
        c2: set(k.c2),
        mu: set(k.mu),
    };
    let mut acc = Acc::new();
    for i in 0..planes {
        let (d, g, x) = plane(i);
        assert!(
            g.len() >= d.len() && x.len() >= d.len(),
            "join: short plane"
        );
        let (gp, xp) = (g.as_ptr(), x.as_ptr());
        let vector = |o: usize, m: __mmask16| {
            // SAFETY: the lanes of `m` at o lie in d (`fused`'s contract), and g and x are as
            // long (checked above); masked-off lanes are not read.
            let (gv, xv) = unsafe {
                let (g, x) = (gp.add(o), xp.add(o));
                (_mm512_maskz_loadu_ps(m, g), _mm512_maskz_loadu_ps(m, x))
            };
            _mm512_maskz_mov_ps(m, branch::<RELU, TRAIN>(gv, xv, kv))
        };
        // SAFETY: as `vector`.
        unsafe { fused(d, &mut acc, vector) }
    }
    acc.flush();
    acc.total
}

/// `d += s` with `[Σ d², Σ s², Σ d·s]` of the values before the add: `split::add_into` for f32,
/// in the loop of the join (two sets of sixteen-lane sums, multiply-adds).
///
/// # Safety
/// AVX-512F available. (`s` must be at least as long as `d`: checked.)
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn add_into_f32(d: &mut [f32], s: &[f32]) -> [f64; 3] {
    assert!(s.len() >= d.len(), "add_into: short source");
    let sp = s.as_ptr();
    let mut acc = Acc::new();
    // SAFETY: the lanes of `m` at o lie in d, and d.len() ≤ s.len().
    let vector = |o: usize, m: __mmask16| unsafe { _mm512_maskz_loadu_ps(m, sp.add(o)) };
    // SAFETY: as `vector`.
    unsafe { fused(d, &mut acc, vector) };
    acc.flush();
    acc.total
}

/// `d[i] += br(i)` over `d`, adding `d²`, `br²` and `d·br` (values before the add) into `acc`:
/// `br(o, m)` gives the values at `o` in the lanes of `m` and zero in the others. The tail of a
/// plane whose length is not a multiple of 16 (14×14, 7×7) is one masked vector, not a scalar
/// loop in f64.
///
/// # Safety
/// AVX-512F available; `br(o, m)` must be safe to call for every `o` and `m` whose lanes lie in
/// `d`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn fused(d: &mut [f32], acc: &mut Acc, br: impl Fn(usize, __mmask16) -> __m512) {
    let (n, dp) = (d.len(), d.as_mut_ptr());
    // One vector at `o`, lanes `m` (inside d): its sums added to `s`, its `d` written.
    let masked = |o: usize, m: __mmask16, s: [__m512; 3]| {
        // SAFETY: the lanes of m at o lie in d.
        let dv = unsafe { _mm512_maskz_loadu_ps(m, dp.add(o)) };
        let b = br(o, m);
        // SAFETY: as the load.
        unsafe { _mm512_mask_storeu_ps(dp.add(o), m, _mm512_add_ps(dv, b)) };
        split_sums(dv, b, s)
    };
    // One whole vector at `o` (o + 16 ≤ n); the constant mask folds into plain loads.
    let one = |o: usize, s: [__m512; 3]| masked(o, u16::MAX, s);
    let mut i = 0;
    while i + 16 <= n {
        let end = (i + BLOCK - acc.count).min(n - n % 16);
        // Two vectors per step into two sets of sums: one set made the loop wait on the
        // multiply-add latency where the data is in cache.
        let (mut s0, mut s1) = (acc.lanes, [_mm512_setzero_ps(); 3]);
        let start = i;
        while i + 32 <= end {
            s0 = one(i, s0);
            s1 = one(i + 16, s1);
            i += 32;
        }
        if i < end {
            s0 = one(i, s0);
            i += 16;
        }
        acc.lanes = [0, 1, 2].map(|l| _mm512_add_ps(s0[l], s1[l]));
        acc.counted(i - start);
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1; // 1 ≤ n − i ≤ 15
        acc.lanes = masked(i, m, acc.lanes);
        acc.counted(n - i);
    }
}

/// `s + [d², b², d·b]` lane by lane: one vector's eq. 5 terms, `d` the shortcut's part and `b`
/// the branch's (zero in lanes that are not part of the gradient).
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn split_sums(d: __m512, b: __m512, s: [__m512; 3]) -> [__m512; 3] {
    [
        _mm512_fmadd_ps(d, d, s[0]),
        _mm512_fmadd_ps(b, b, s[1]),
        _mm512_fmadd_ps(d, b, s[2]),
    ]
}

/// The sixteen lanes of `v`, summed in f64.
#[target_feature(enable = "avx512f")]
pub(crate) fn sum_f64(v: __m512) -> f64 {
    let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
        _mm512_castps_pd(v),
    )));
    _mm512_reduce_add_pd(_mm512_add_pd(lo, hi))
}
