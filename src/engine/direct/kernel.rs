//! The AVX-512 register tiles and row copies of the direct convolution (x86-64 only; the callers
//! in `engine::direct` check for AVX-512F at run time).

use super::Vec16;
use std::arch::x86_64::*;

/// The image side of a tile: the padded image, every tap's offset into it and, if not empty,
/// every tap's lane mask (lanes off read zero).
pub(super) struct Src<'a> {
    pub x: *const f32,
    pub offs: &'a [isize],
    pub masks: &'a [u16],
}

/// How a tile's results reach `dst`.
pub(super) enum Store<'a> {
    /// `=` (plus the bias, if any).
    Set,
    /// `+=`.
    Add,
    /// `+=`, adding `[Σ dst², Σ new², Σ dst·new]` of the values before the add (the eq. 5
    /// sums where `dst` holds a shortcut's part of a gradient and the tile a branch's).
    Measure(&'a mut [f64; 3]),
}

/// `dst[j·dst_cs + v[i].dst + l] (=|+=) Σ_k x[offs[k] + v[i].x + l] · w[k·ws + j] + bias[j]`
/// for `j < N` and the lanes `l` of `v[i].mask` (with `x` read as 0 outside `masks[k]` when
/// `MASKED`). `bias` may be null (no bias); `Add` and `Measure` add onto `dst` instead (and
/// ignore `bias`).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const M: usize, const N: usize, const MASKED: bool>(
    src: &Src<'_>,
    v: &[Vec16; M],
    w: *const f32,
    ws: usize,
    dst: *mut f32,
    dst_cs: usize,
    bias: *const f32,
    store: Store<'_>,
) {
    let add = !matches!(store, Store::Set);
    let measure = matches!(store, Store::Measure(_));
    // SAFETY (whole body): the caller guarantees every address below is in bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); M]; N];
        let mut wk = w;
        for (k, &o) in src.offs.iter().enumerate() {
            let p = src.x.offset(o);
            let mut a = [_mm512_setzero_ps(); M];
            if MASKED {
                let m = *src.masks.get_unchecked(k);
                for (a, v) in a.iter_mut().zip(v) {
                    *a = _mm512_maskz_loadu_ps(m, p.add(v.x));
                }
            } else {
                for (a, v) in a.iter_mut().zip(v) {
                    *a = _mm512_loadu_ps(p.add(v.x));
                }
            }
            for (j, acc) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*wk.add(j));
                for (acc, &a) in acc.iter_mut().zip(&a) {
                    *acc = _mm512_fmadd_ps(a, b, *acc);
                }
            }
            wk = wk.add(ws);
        }
        let mut m = [_mm512_setzero_ps(); 3];
        for (j, acc) in acc.iter().enumerate() {
            let b = if bias.is_null() || add {
                _mm512_setzero_ps()
            } else {
                _mm512_set1_ps(*bias.add(j))
            };
            for (&s, v) in acc.iter().zip(v) {
                let d = dst.add(j * dst_cs + v.dst);
                let old = if add {
                    _mm512_maskz_loadu_ps(v.mask, d)
                } else {
                    b
                };
                _mm512_mask_storeu_ps(d, v.mask, _mm512_add_ps(s, old));
                if measure {
                    // Lanes past the image hold sums of padding: not part of dst.
                    let s = _mm512_maskz_mov_ps(v.mask, s);
                    m = crate::engine::split::split_sums(old, s, m);
                }
            }
        }
        if let Store::Measure(total) = store {
            for (t, m) in total.iter_mut().zip(m) {
                *t += crate::engine::split::sum_f64(m);
            }
        }
    }
}

/// Row `iy < h`: `dst[iy·row ..][..w] = src[iy·w ..][..w]`.
///
/// # Safety
/// AVX-512F available; both ranges in bounds for every row.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn copy_plane(dst: *mut f32, row: usize, src: *const f32, w: usize, h: usize) {
    for iy in 0..h {
        // SAFETY: forwarded from the caller.
        unsafe { copy_row(dst.add(iy * row), src.add(iy * w), w) };
    }
}

/// `dst[..len] = src[..len]` with whole and masked vectors.
///
/// # Safety
/// AVX-512F available; `src` readable and `dst` writable for `len` floats.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn copy_row(dst: *mut f32, src: *const f32, len: usize) {
    // SAFETY (whole body): the masked tail touches only the first `len − i` lanes.
    unsafe {
        let mut i = 0;
        while i + 16 <= len {
            _mm512_storeu_ps(dst.add(i), _mm512_loadu_ps(src.add(i)));
            i += 16;
        }
        if i < len {
            let m: __mmask16 = (1u16 << (len - i)) - 1; // 1 ≤ len − i ≤ 15
            _mm512_mask_storeu_ps(dst.add(i), m, _mm512_maskz_loadu_ps(m, src.add(i)));
        }
    }
}

macro_rules! by_n {
    ($m:literal, $masked:literal, $n:expr, $($a:expr),*) => {
        match $n {
            1 => tile::<$m, 1, $masked>($($a),*),
            2 => tile::<$m, 2, $masked>($($a),*),
            3 => tile::<$m, 3, $masked>($($a),*),
            4 => tile::<$m, 4, $masked>($($a),*),
            5 => tile::<$m, 5, $masked>($($a),*),
            6 => tile::<$m, 6, $masked>($($a),*),
            7 => tile::<$m, 7, $masked>($($a),*),
            8 => tile::<$m, 8, $masked>($($a),*),
            _ => unreachable!("tile width {}", $n),
        }
    };
}

/// [`tile`] for a runtime number of vectors (`1..=3`), `n ∈ 1..=8` channels, masked taps
/// when `src.masks` is not empty.
///
/// # Safety
/// AVX-512F available; reads `x[offs[k] + v.x .. + 16]` for every k and vector, `w[k·ws .. + n]`
/// and, unless null, `bias[..n]`; writes the stored lanes of `dst[j·dst_cs + v.dst ..]` for
/// `j < n`; all must be in bounds. `masks` is empty or as long as `offs`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile_any(
    v: &[Vec16],
    n: usize,
    src: &Src<'_>,
    w: *const f32,
    ws: usize,
    dst: *mut f32,
    dst_cs: usize,
    bias: *const f32,
    store: Store<'_>,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        macro_rules! by_m {
            ($masked:literal) => {
                match v.len() {
                    1 => by_n!(
                        1,
                        $masked,
                        n,
                        src,
                        v.try_into().unwrap(),
                        w,
                        ws,
                        dst,
                        dst_cs,
                        bias,
                        store
                    ),
                    2 => by_n!(
                        2,
                        $masked,
                        n,
                        src,
                        v.try_into().unwrap(),
                        w,
                        ws,
                        dst,
                        dst_cs,
                        bias,
                        store
                    ),
                    3 => by_n!(
                        3,
                        $masked,
                        n,
                        src,
                        v.try_into().unwrap(),
                        w,
                        ws,
                        dst,
                        dst_cs,
                        bias,
                        store
                    ),
                    m => unreachable!("tile height {m}"),
                }
            };
        }
        if src.masks.is_empty() {
            by_m!(false)
        } else {
            by_m!(true)
        }
    }
}
