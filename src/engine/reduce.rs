//! Lane-split block reductions: sums over slices accumulated in the element type within short
//! blocks (in independent lanes, so they vectorise) and in f64 across blocks, so that batch
//! norm's per-channel sums and the probes' statistics keep their precision in f32.

use super::par::par_sum;
use super::tensor::Float;

/// Independent accumulators in reductions, so LLVM can vectorise them.
const LANES: usize = 8;
/// The coarse reductions' lanes: one AVX-512 register of f32 per sum, two sets of them (see
/// [`coarse_lanes`]). With 8 the three sums of an activation's moments waited on the add latency.
const COARSE_LANES: usize = 16;
/// Reductions accumulate in `E` over blocks of this many elements, then in f64: 8 sequential f32
/// additions per lane. At 1024 (128 per lane) batch norm's per-channel sums lost enough precision
/// that deep nets' bias-gradient norms differed from a float64 PyTorch reference by ~1e-3
/// (`tests/pytorch/check_probe.py`: plain-20 1.6e-3, relubefore-20 1.2e-3; PyTorch's own float32
/// 1e-4 and 3e-6); at 256 plain-20 still missed by 1.2e-4; at 64 every model agrees to ~1e-6.
const BLOCK: usize = 64;
/// See [`reduce1_coarse`]: 64 values per lane (of 16), relative rounding ≲ 4e-6 on sums without
/// cancellation (squares), and on shifted sums relative to the spread.
const BLOCK_COARSE: usize = 1024;

#[inline]
pub(crate) fn to_f64<E: Float>(v: E) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

#[inline]
pub(crate) fn from_f64<E: Float>(v: f64) -> E {
    E::from_f64(v).unwrap_or_else(E::nan)
}

/// Lane-split block reduction over three equally long slices: `Σ_i f(a[i], b[i], c[i])` for an
/// `f` that yields `K` values, accumulated in `E` within blocks of `BLOCK` elements (in `LANES`
/// independent accumulators, so it vectorises) and in f64 lanes across blocks. Pass the same
/// slice again for unused inputs.
#[inline(always)]
pub(crate) fn reduce3<E: Float, const K: usize>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: impl Fn(E, E, E) -> [E; K],
) -> [f64; K] {
    reduce3_planes(1, |_| [a, b, c], f)
}

/// [`reduce3`] over one slice with f32 blocks of [`BLOCK_COARSE`]: for figures that are only
/// displayed or compared to ~1e-4 (activation statistics, gradient norms), where the f64 step per
/// 64 elements made the statistics several times slower than a plain pass over memory.
#[inline(always)]
pub(crate) fn reduce1_coarse<E: Float, const K: usize>(
    a: &[E],
    f: impl Fn(E) -> [E; K],
) -> [f64; K] {
    reduce_blocks::<E, K, COARSE_LANES, true>(1, |_| [a, a, a], |x, _, _| f(x), BLOCK_COARSE)
}

/// [`reduce3`] summed over `planes` triples of slices `plane(i)` (e.g. one channel's planes of a
/// `[N, C, H, W]` tensor). The f64 lane totals carry across planes and are summed horizontally
/// once at the end: a horizontal sum per 64-element block showed up in a training step's profile.
pub(crate) fn reduce3_planes<'s, E: Float + 's, const K: usize>(
    planes: usize,
    plane: impl Fn(usize) -> [&'s [E]; 3],
    f: impl Fn(E, E, E) -> [E; K],
) -> [f64; K] {
    reduce_blocks::<E, K, LANES, false>(planes, plane, f, BLOCK)
}

/// [`reduce3_planes`] with the coarse blocks of [`reduce1_coarse`]: for figures that are only
/// displayed or compared to ~1e-4.
pub(crate) fn reduce3_planes_coarse<'s, E: Float + 's, const K: usize>(
    planes: usize,
    plane: impl Fn(usize) -> [&'s [E]; 3],
    f: impl Fn(E, E, E) -> [E; K],
) -> [f64; K] {
    reduce_blocks::<E, K, COARSE_LANES, true>(planes, plane, f, BLOCK_COARSE)
}

/// [`reduce3_planes`] with f32 blocks of `block` elements. `CARRY`: the blocks run on across
/// planes (a block may span several small planes), so an 8×8 plane is not a block of its own
/// with its own flush to f64; without it every plane starts a block (the fine sums batch norm's
/// numbers rest on, kept as they were).
#[inline(always)]
fn reduce_blocks<'s, E: Float + 's, const K: usize, const L: usize, const CARRY: bool>(
    planes: usize,
    plane: impl Fn(usize) -> [&'s [E]; 3],
    f: impl Fn(E, E, E) -> [E; K],
    block: usize,
) -> [f64; K] {
    let mut total = [[0.0f64; L]; K];
    let mut part = Part {
        acc: [[E::zero(); L]; K],
        count: 0,
    };
    for i in 0..planes {
        let [a, b, c] = plane(i);
        reduce_lanes::<E, K, L, CARRY>(a, b, c, &f, &mut total, &mut part, block);
    }
    if CARRY {
        for (t, a) in total.iter_mut().zip(&part.acc) {
            add_lanes(t, a);
        }
    }
    total.map(|t| t.iter().sum())
}

/// The block being summed in `E`: its lane sums and how many elements it holds.
struct Part<E, const K: usize, const L: usize> {
    acc: [[E; L]; K],
    count: usize,
}

/// The body of [`reduce3_planes`] for one triple of slices, adding into f64 lane totals.
///
/// Deliberately not inlined: inlined into a caller's loop (e.g. over planes) LLVM stops
/// vectorising the lane loop (checked in the generated assembly); a call per plane is cheap.
/// On AVX-512 CPUs the same code runs compiled for AVX-512 (the crate's baseline is SSE2);
/// the lanes are explicit, so the sums are bit-identical either way.
#[inline(never)]
fn reduce_lanes<E: Float, const K: usize, const L: usize, const CARRY: bool>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; L]; K],
    part: &mut Part<E, K, L>,
    block: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time by `avx512`).
        return unsafe { reduce_lanes_avx512::<E, K, L, CARRY>(a, b, c, f, total, part, block) };
    }
    reduce_lanes_body::<E, K, L, CARRY>(a, b, c, f, total, part, block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_lanes_avx512<E: Float, const K: usize, const L: usize, const CARRY: bool>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; L]; K],
    part: &mut Part<E, K, L>,
    block: usize,
) {
    reduce_lanes_body::<E, K, L, CARRY>(a, b, c, f, total, part, block)
}

#[inline(always)]
fn reduce_lanes_body<E: Float, const K: usize, const L: usize, const CARRY: bool>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; L]; K],
    part: &mut Part<E, K, L>,
    block: usize,
) {
    let n = a.len();
    let (b, c) = (&b[..n], &c[..n]);
    let mut i = 0;
    while i < n {
        // Without CARRY `count` stays 0: blocks of `block` from the plane's start, as always.
        let len = (block - part.count).min(n - i);
        let (ba, bb, bc) = (&a[i..i + len], &b[i..i + len], &c[i..i + len]);
        i += len;
        let acc = &mut part.acc;
        let (ca, ra) = ba.as_chunks::<L>();
        let (cb, rb) = bb.as_chunks::<L>();
        let (cc, rc) = bc.as_chunks::<L>();
        if CARRY {
            coarse_lanes(acc, [ca, cb, cc], f);
        } else {
            lanes(acc, [ca, cb, cc], f);
        }
        for ((&xa, &xb), &xc) in ra.iter().zip(rb).zip(rc) {
            let v = f(xa, xb, xc);
            for k in 0..K {
                acc[k][0] += v[k];
            }
        }
        if CARRY {
            part.count += len;
            if part.count < block {
                continue;
            }
        }
        for k in 0..K {
            add_lanes(&mut total[k], &acc[k]);
        }
        *acc = [[E::zero(); L]; K];
        part.count = 0;
    }
}

/// `acc[k][l] += f(a, b, c)[k]` over whole chunks of `L` lanes: one set of lane sums.
#[inline(always)]
fn lanes<E: Float, const K: usize, const L: usize>(
    acc: &mut [[E; L]; K],
    [ca, cb, cc]: [&[[E; L]]; 3],
    f: &impl Fn(E, E, E) -> [E; K],
) {
    for ((xa, xb), xc) in ca.iter().zip(cb).zip(cc) {
        for l in 0..L {
            let v = f(xa[l], xb[l], xc[l]);
            for k in 0..K {
                acc[k][l] += v[k];
            }
        }
    }
}

/// The coarse reductions' lane loop: two sets of lane sums, over alternate chunks, added at the
/// end. With one set each sum waited on the previous chunk's add (its latency): 0.13 ns per
/// element for an activation's moments in L1, 0.086 with two (AVX-512; SSE2 0.25 → 0.24).
#[inline(always)]
fn coarse_lanes<E: Float, const K: usize, const L: usize>(
    acc: &mut [[E; L]; K],
    [ca, cb, cc]: [&[[E; L]]; 3],
    f: &impl Fn(E, E, E) -> [E; K],
) {
    let mut acc2 = [[E::zero(); L]; K];
    let (pa, pb, pc) = (ca.chunks_exact(2), cb.chunks_exact(2), cc.chunks_exact(2));
    let (qa, qb, qc) = (pa.remainder(), pb.remainder(), pc.remainder());
    for ((xa, xb), xc) in pa.zip(pb).zip(pc) {
        for l in 0..L {
            let v = f(xa[0][l], xb[0][l], xc[0][l]);
            let w = f(xa[1][l], xb[1][l], xc[1][l]);
            for k in 0..K {
                acc[k][l] += v[k];
                acc2[k][l] += w[k];
            }
        }
    }
    lanes(acc, [qa, qb, qc], f);
    for (a, b) in acc.iter_mut().zip(&acc2) {
        for (x, &y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
}

/// `total[l] += acc[l]` in f64. Kept out of line on purpose: inlined, LLVM's SLP vectoriser
/// pairs the K accumulators of one lane instead of the lanes of one accumulator, and the
/// reduction loop goes scalar (checked in the generated assembly).
#[inline(never)]
pub(crate) fn add_lanes<E: Float, const L: usize>(total: &mut [f64; L], acc: &[E; L]) {
    for (t, &v) in total.iter_mut().zip(acc) {
        *t += to_f64(v);
    }
}

/// [`reduce3`] over one slice.
#[inline(always)]
pub(crate) fn reduce1<E: Float, const K: usize>(a: &[E], f: impl Fn(E) -> [E; K]) -> [f64; K] {
    reduce3(a, a, a, |x, _, _| f(x))
}

/// Σ v² over a slice (f64 result), in parallel when large.
pub fn sum_squares<E: Float>(v: &[E]) -> f64 {
    par_sum(v.len(), |s, e| reduce1_coarse(&v[s..e], |x| [x * x])[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::simd::test_switch::without_avx512;

    /// The AVX-512 build of the lane loop sums in the same order as the SSE2 one: same bits.
    #[test]
    fn sums_are_precise_and_the_same_without_avx512() {
        let v: Vec<f32> = rand_vec(100_003, 7)
            .iter()
            .map(|&x| x as f32 + 0.5)
            .collect();
        let sums = || {
            let [s, sq] = reduce3(&v, &v, &v, |a, b, c| [a, b * c]);
            let [coarse] = reduce1_coarse(&v, |x| [x]);
            (s, sq, coarse, sum_squares(&v))
        };
        let with = sums();
        assert_eq!(with, without_avx512(sums));
        let exact: f64 = v.iter().map(|&x| x as f64).sum();
        let exact_sq: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        assert!(
            (with.0 - exact).abs() < 1e-6 * exact.abs(),
            "{} vs {exact}",
            with.0
        );
        assert!(
            (with.1 - exact_sq).abs() < 1e-6 * exact_sq,
            "{} vs {exact_sq}",
            with.1
        );
        assert!((with.2 - exact).abs() < 1e-5 * exact.abs());
        assert!((with.3 - exact_sq).abs() < 1e-5 * exact_sq);
    }
}
