//! Small element-wise ops the residual variants need: add, ReLU, scaling, sigmoid, gate mixing,
//! dropout. Custom ops where dfdx's generic kernels would cost a full extra pass.
//!
//! Also holds the slice helpers the other element-wise engine ops (batch norm, pooling, probes)
//! share: chunked parallel loops, lane-split reductions and a disjoint-write pointer.

use super::grads::{by_fresh, take_grad};
use super::probe::{Moments, Tap, chunk_sum_squares};
use super::tensor::{Float, T4, view};
use dfdx::prelude::*;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Below this many elements an op runs on the calling thread (rayon's fork/join costs a few µs).
pub(crate) const PAR_MIN: usize = 1 << 15;
/// Elements per parallel work item of an element-wise loop (64 KiB of f32: stays in L2).
pub(crate) const CHUNK: usize = 1 << 14;
/// Independent accumulators in reductions, so LLVM can vectorise them.
const LANES: usize = 8;
/// Reductions accumulate in `E` over blocks of this many elements, then in f64: 8 sequential f32
/// additions per lane. At 1024 (128 per lane) batch norm's per-channel sums lost enough precision
/// that deep nets' bias-gradient norms differed from a float64 PyTorch reference by ~1e-3
/// (`tests/pytorch/check_probe.py`: plain-20 1.6e-3, relubefore-20 1.2e-3; PyTorch's own float32
/// 1e-4 and 3e-6); at 256 plain-20 still missed by 1.2e-4; at 64 every model agrees to ~1e-6.
const BLOCK: usize = 64;
/// See [`reduce1_coarse`]: 64 values per lane, relative rounding ≲ 4e-6 on sums without
/// cancellation (squares), and on shifted sums relative to the spread.
const BLOCK_COARSE: usize = 1024;

/// Runs `f(offset, chunk)` over `CHUNK`-sized pieces of `out`, in parallel when `out` is large.
pub(crate) fn par_chunks<E: Send>(out: &mut [E], f: impl Fn(usize, &mut [E]) + Sync + Send) {
    par_chunks_sum(out, |o, c| {
        f(o, c);
        Nil
    });
}

/// [`par_chunks`] whose `f` also returns a value per chunk (e.g. statistics of the chunk it just
/// wrote, while it is in cache): their sum.
pub(crate) fn par_chunks_sum<E: Send, R: Send + Default + std::ops::Add<Output = R>>(
    out: &mut [E],
    f: impl Fn(usize, &mut [E]) -> R + Sync + Send,
) -> R {
    if out.len() < PAR_MIN {
        f(0, out)
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(i, c)| f(i * CHUNK, c))
            .reduce(R::default, |a, b| a + b)
    }
}

/// Nothing, summed: lets the plain forms above share the summing ones.
#[derive(Default)]
pub(crate) struct Nil;
impl std::ops::Add for Nil {
    type Output = Nil;
    fn add(self, _: Nil) -> Nil {
        Nil
    }
}

/// Sum over `0..n` of `f(start, end)` evaluated on `CHUNK`-sized ranges, in parallel when `n` is large.
pub(crate) fn par_sum<R: Send + Default + std::ops::Add<Output = R>>(
    n: usize,
    f: impl Fn(usize, usize) -> R + Sync + Send,
) -> R {
    if n < PAR_MIN {
        f(0, n)
    } else {
        (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|i| f(i * CHUNK, ((i + 1) * CHUNK).min(n)))
            .reduce(R::default, |a, b| a + b)
    }
}

/// `(0..count).map(f)` in parallel when `work` (total elements touched) is large.
pub(crate) fn par_map<R: Send>(
    count: usize,
    work: usize,
    f: impl Fn(usize) -> R + Sync + Send,
) -> Vec<R> {
    if work < PAR_MIN || count < 2 {
        (0..count).map(f).collect()
    } else {
        (0..count).into_par_iter().map(f).collect()
    }
}

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
/// 64 elements made the statistics ~2× slower than a plain pass over memory.
#[inline(always)]
pub(crate) fn reduce1_coarse<E: Float, const K: usize>(
    a: &[E],
    f: impl Fn(E) -> [E; K],
) -> [f64; K] {
    reduce_blocks(1, |_| [a, a, a], |x, _, _| f(x), BLOCK_COARSE)
}

/// [`reduce3`] summed over `planes` triples of slices `plane(i)` (e.g. one channel's planes of a
/// `[N, C, H, W]` tensor). The f64 lane totals carry across planes and are summed horizontally
/// once at the end: a horizontal sum per 64-element block cost ~2 % of a training step.
pub(crate) fn reduce3_planes<'s, E: Float + 's, const K: usize>(
    planes: usize,
    plane: impl Fn(usize) -> [&'s [E]; 3],
    f: impl Fn(E, E, E) -> [E; K],
) -> [f64; K] {
    reduce_blocks(planes, plane, f, BLOCK)
}

/// [`reduce3_planes`] with f32 blocks of `block` elements.
#[inline(always)]
fn reduce_blocks<'s, E: Float + 's, const K: usize>(
    planes: usize,
    plane: impl Fn(usize) -> [&'s [E]; 3],
    f: impl Fn(E, E, E) -> [E; K],
    block: usize,
) -> [f64; K] {
    let mut total = [[0.0f64; LANES]; K];
    for i in 0..planes {
        let [a, b, c] = plane(i);
        reduce_lanes(a, b, c, &f, &mut total, block);
    }
    total.map(|t| t.iter().sum())
}

/// The body of [`reduce3_planes`] for one triple of slices, adding into f64 lane totals.
///
/// Deliberately not inlined: inlined into a caller's loop (e.g. over planes) LLVM stops
/// vectorising the lane loop (checked in the generated assembly); a call per plane is cheap.
/// On AVX-512 CPUs the same code runs compiled for AVX-512 (the crate's baseline is SSE2);
/// the lanes are explicit, so the sums are bit-identical either way.
#[inline(never)]
fn reduce_lanes<E: Float, const K: usize>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; LANES]; K],
    block: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if super::direct::available() {
        // SAFETY: the CPU has AVX-512F (checked at run time by `available`).
        return unsafe { reduce_lanes_avx512(a, b, c, f, total, block) };
    }
    reduce_lanes_body(a, b, c, f, total, block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_lanes_avx512<E: Float, const K: usize>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; LANES]; K],
    block: usize,
) {
    reduce_lanes_body(a, b, c, f, total, block)
}

#[inline(always)]
fn reduce_lanes_body<E: Float, const K: usize>(
    a: &[E],
    b: &[E],
    c: &[E],
    f: &impl Fn(E, E, E) -> [E; K],
    total: &mut [[f64; LANES]; K],
    block: usize,
) {
    let n = a.len();
    let (b, c) = (&b[..n], &c[..n]);
    for ((ba, bb), bc) in a.chunks(block).zip(b.chunks(block)).zip(c.chunks(block)) {
        let mut acc = [[E::zero(); LANES]; K];
        let (ca, ra) = ba.as_chunks::<LANES>();
        let (cb, rb) = bb.as_chunks::<LANES>();
        let (cc, rc) = bc.as_chunks::<LANES>();
        for ((xa, xb), xc) in ca.iter().zip(cb).zip(cc) {
            for l in 0..LANES {
                let v = f(xa[l], xb[l], xc[l]);
                for k in 0..K {
                    acc[k][l] += v[k];
                }
            }
        }
        for ((&xa, &xb), &xc) in ra.iter().zip(rb).zip(rc) {
            let v = f(xa, xb, xc);
            for k in 0..K {
                acc[k][0] += v[k];
            }
        }
        for k in 0..K {
            add_lanes(&mut total[k], &acc[k]);
        }
    }
}

/// `total[l] += acc[l]` in f64. Kept out of line on purpose: inlined, LLVM's SLP vectoriser
/// pairs the K accumulators of one lane instead of the lanes of one accumulator, and the
/// reduction loop goes scalar (measured 2-3x slower with the horizontal sum this replaced).
#[inline(never)]
fn add_lanes<E: Float>(total: &mut [f64; LANES], acc: &[E; LANES]) {
    for (t, &v) in total.iter_mut().zip(acc) {
        *t += to_f64(v);
    }
}

/// [`reduce3`] over one slice.
#[inline(always)]
pub(crate) fn reduce1<E: Float, const K: usize>(a: &[E], f: impl Fn(E) -> [E; K]) -> [f64; K] {
    reduce3(a, a, a, |x, _, _| f(x))
}

/// A `len`-element vector filled by `f(offset, chunk)` over `CHUNK`-sized pieces (in parallel when
/// large), without zeroing it first. `f` must write every element of the chunk it is given.
pub(crate) fn par_build<E: Send>(
    len: usize,
    f: impl Fn(usize, &mut [MaybeUninit<E>]) + Sync + Send,
) -> Vec<E> {
    par_build_sum(len, |o, c| {
        f(o, c);
        Nil
    })
    .0
}

/// [`par_build`] whose `f` also returns a value per chunk: the vector and their sum.
pub(crate) fn par_build_sum<E: Send, R: Send + Default + std::ops::Add<Output = R>>(
    len: usize,
    f: impl Fn(usize, &mut [MaybeUninit<E>]) -> R + Sync + Send,
) -> (Vec<E>, R) {
    let mut v = Vec::with_capacity(len);
    let r = par_chunks_sum(&mut v.spare_capacity_mut()[..len], f);
    // SAFETY: `f` initialised every element of every chunk (its contract, upheld by the zips
    // below, whose inputs are all at least as long as the output), and the chunks cover 0..len.
    unsafe { v.set_len(len) };
    (v, r)
}

/// A chunk a `par_build_sum` closure has just written, for statistics of it.
///
/// # Safety
/// Every element of `c` must have been written.
pub(crate) unsafe fn written<E>(c: &[MaybeUninit<E>]) -> &[E] {
    // SAFETY: MaybeUninit<E> has E's layout, and the caller wrote every element.
    unsafe { &*(c as *const [MaybeUninit<E>] as *const [E]) }
}

/// The [`Moments`] of a chunk just written, if tapped.
///
/// # Safety
/// As [`written`].
unsafe fn chunk_moments<E: Float>(tapped: bool, c: &[MaybeUninit<E>]) -> Moments {
    if tapped {
        // SAFETY: the caller's contract.
        Moments::of(unsafe { written(c) })
    } else {
        Moments::default()
    }
}

/// `y[i] = f(a[i], b[i])` over two equally long slices, in parallel when large; with a tap, the
/// output's [`Moments`] are summed chunk by chunk as each is written and recorded.
fn zip_build<E: Float>(
    a: &[E],
    b: &[E],
    tap: Option<&Tap>,
    f: impl Fn(E, E) -> E + Sync + Send,
) -> Vec<E> {
    let tapped = tap.is_some();
    let (out, m) = par_build_sum(a.len(), |o, c| {
        for ((y, &p), &q) in c.iter_mut().zip(&a[o..]).zip(&b[o..]) {
            y.write(f(p, q));
        }
        // SAFETY: the loop wrote all of c (a and b are at least as long as the output).
        unsafe { chunk_moments(tapped, c) }
    });
    if let Some(t) = tap {
        t.forward(m);
    }
    out
}

/// The backward of a two-input op `y = op(a, b)`: takes both input gradients out of the store
/// (`take_grad!`: bound to `$ga`, `$gb` with their fresh flags), runs `$body`, which returns
/// Σ g² of the output gradient (0 when untapped), records that in `$tap`, and puts the buffers
/// back. When a and b are one tensor, b's is the emptied entry (`$gb` shorter than `$ga`): the
/// body must then add into `$ga` twice over, and b is put back first so a's buffer is kept.
macro_rules! with_input_grads {
    ($grads:ident, $ag:expr, $bg:expr, $tap:expr,
     |$ga:ident, $fa:ident, $gb:ident, $fb:ident| $body:block) => {{
        let (mut $ga, $fa) = take_grad!($grads, $ag)?;
        let (mut $gb, $fb) = take_grad!($grads, $bg)?;
        let sum_sq: f64 = $body;
        if let Some(t) = &$tap {
            t.backward(sum_sq);
        }
        **$grads.get_or_alloc_mut(&$bg)? = $gb;
        **$grads.get_or_alloc_mut(&$ag)? = $ga;
    }};
}

/// Σ v² over a slice (f64 result), in parallel when large.
pub fn sum_squares<E: Float>(v: &[E]) -> f64 {
    par_sum(v.len(), |s, e| reduce1_coarse(&v[s..e], |x| [x * x])[0])
}

/// A raw pointer to a buffer whose disjoint parts several threads write at once.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<E>(*mut E, usize);
// SAFETY: only used to hand disjoint sub-slices of one buffer to different threads (see `slice`).
unsafe impl<E: Send> Send for SharedMut<E> {}
unsafe impl<E: Send> Sync for SharedMut<E> {}

impl<E> SharedMut<E> {
    pub(crate) fn new(buf: &mut [E]) -> Self {
        Self(buf.as_mut_ptr(), buf.len())
    }
    /// # Safety
    /// Callers must not create overlapping slices that are alive at the same time, and the
    /// buffer `new` was given must outlive them and not be otherwise accessed meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [E] {
        assert!(start + len <= self.1, "SharedMut slice out of bounds");
        // SAFETY: in bounds (checked); disjointness is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// Runs a backward body with the output gradient `gy` taken out of the gradient store.
///
/// The output's producer runs after every consumer of the output (dfdx runs backward ops in
/// reverse order), so nothing reads `gy` afterwards: it is freed here rather than kept to the end
/// of backward (its entry is left empty). That halves the memory a backward pass holds and lets
/// the allocator reuse the buffer for the next gradient while it is still in cache.
macro_rules! with_out_grad {
    ($grads:ident, $yg:expr, |$gy:ident| $body:block) => {{
        let $gy = std::mem::take(&mut **$grads.get_or_alloc_mut(&$yg)?);
        let r: Result<(), CpuError> = (|| $body)();
        drop($gy);
        r
    }};
}
pub(crate) use with_out_grad;

fn same_shape<E: Float, T1, T2>(a: &T4<E, T1>, b: &T4<E, T2>, op: &str) {
    assert_eq!(a.shape(), b.shape(), "engine::{op}: shapes differ");
}

/// `g = src` for a new gradient buffer, `g += src` for an existing one; returns Σ src² if
/// `tapped` (else 0), summed chunk by chunk while each is in cache.
fn accumulate<E: Float>(g: &mut [E], fresh: bool, src: &[E], tapped: bool) -> f64 {
    par_chunks_sum(g, |o, c| {
        let s = &src[o..][..c.len()];
        if fresh {
            c.copy_from_slice(s);
        } else {
            for (d, &v) in c.iter_mut().zip(s) {
                *d += v;
            }
        }
        chunk_sum_squares(tapped, s)
    })
}

/// `a + b`, same shape.
pub fn add<E: Float, T: Tape<E, Cpu> + Merge<T>>(a: T4<E, T>, b: T4<E, T>) -> T4<E, T> {
    add_tapped(a, b, None)
}

/// [`add`] with a probe of its output fused in (see [`Tap`]).
pub fn add_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    a: T4<E, T>,
    b: T4<E, T>,
    tap: Option<&Tap>,
) -> T4<E, T> {
    same_shape(&a, &b, "add");
    let (a, at) = a.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = at.merge(bt);
    let out = zip_build(view(&a), view(&b), tap, |p, q| p + q);
    let y = a.device().tensor_from_vec(out, *a.shape());
    if T::OWNS_TAPE {
        let (ag, bg, yg, tap) = (a.ghost(), b.ghost(), y.ghost(), tap.cloned());
        let tapped = tap.is_some();
        drop((a, b));
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&yg)?);
            with_input_grads!(grads, ag, bg, tap, |ga, fresh_a, gb, fresh_b| {
                if gb.len() != gy.len() {
                    // One tensor twice: its gradient gets gy twice.
                    by_fresh!(fresh_a, |put| par_chunks_sum(&mut ga, |o, c| {
                        let g = &gy[o..][..c.len()];
                        for (d, &v) in c.iter_mut().zip(g) {
                            put(d, v + v);
                        }
                        chunk_sum_squares(tapped, g)
                    }))
                } else {
                    let sum_sq = accumulate(&mut gb, fresh_b, &gy, tapped);
                    if fresh_a {
                        ga = gy; // a new gradient *is* gy: no pass at all
                    } else {
                        accumulate(&mut ga, false, &gy, false);
                    }
                    sum_sq
                }
            });
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// `max(a + b, 0)`: the post-activation residual join `relu(f + s)` as one op, so the sum is
/// never stored and backward makes one pass writing both input gradients (instead of a ReLU
/// gradient buffer that `add` then reads twice).
pub fn add_relu<E: Float, T: Tape<E, Cpu> + Merge<T>>(a: T4<E, T>, b: T4<E, T>) -> T4<E, T> {
    add_relu_tapped(a, b, None)
}

/// [`add_relu`] with a probe of its output fused in (see [`Tap`]).
pub fn add_relu_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    a: T4<E, T>,
    b: T4<E, T>,
    tap: Option<&Tap>,
) -> T4<E, T> {
    same_shape(&a, &b, "add_relu");
    let (a, at) = a.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = at.merge(bt);
    let zero = E::zero();
    // `move`: a value, not a reference, so the select vectorises (see `probe::Moments::of`).
    let out = zip_build(view(&a), view(&b), tap, move |p, q| {
        let s = p + q;
        if s > zero { s } else { zero }
    });
    let y = a.device().tensor_from_vec(out, *a.shape());
    if T::OWNS_TAPE {
        let (ag, bg, yg, ys) = (a.ghost(), b.ghost(), y.ghost(), y.clone());
        let tap = tap.cloned();
        let tapped = tap.is_some();
        drop((a, b));
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let yv = view(&ys);
                with_input_grads!(grads, ag, bg, tap, |ga, fresh_a, gb, fresh_b| {
                    if gb.len() == ga.len() {
                        let gbp = SharedMut::new(&mut gb);
                        par_chunks_sum(&mut ga, |o, c| {
                            // SAFETY: par_chunks hands out disjoint ranges of ga; the same ranges
                            // of gb are disjoint too, and gb is not otherwise touched meanwhile.
                            let d = unsafe { gbp.slice(o, c.len()) };
                            let g = &gy[o..][..c.len()];
                            let it = c.iter_mut().zip(d).zip(g).zip(&yv[o..]);
                            by_fresh!(fresh_a, |put_a| by_fresh!(fresh_b, |put_b| {
                                for (((p, q), &g), &v) in it {
                                    let m = if v > zero { g } else { zero };
                                    put_a(p, m);
                                    put_b(q, m);
                                }
                            }));
                            chunk_sum_squares(tapped, g)
                        })
                    } else {
                        // One tensor twice: its gradient gets the masked gy twice.
                        by_fresh!(fresh_a, |put| par_chunks_sum(&mut ga, |o, c| {
                            let g = &gy[o..][..c.len()];
                            for ((p, &g), &v) in c.iter_mut().zip(g).zip(&yv[o..]) {
                                put(p, if v > zero { g + g } else { zero });
                            }
                            chunk_sum_squares(tapped, g)
                        }))
                    }
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// `max(x, 0)`.
pub fn relu<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let zero = E::zero();
    by_output(
        x,
        move |v| if v > zero { v } else { zero },
        move |g, y| if y > zero { g } else { zero },
    )
}

/// An element-wise `y = f(x)` whose derivative is a function of its output, so backward keeps
/// `y` rather than `x`: `∂L/∂x += d(∂L/∂y, y)`.
fn by_output<E: Float, T: Tape<E, Cpu>>(
    x: T4<E, T>,
    f: impl Fn(E) -> E + Sync + Send,
    d: impl Fn(E, E) -> E + Sync + Send + 'static,
) -> T4<E, T> {
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        for (y, &v) in c.iter_mut().zip(&xv[o..]) {
            y.write(f(v));
        }
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg, ys) = (x.ghost(), y.ghost(), y.clone());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let yv = view(&ys);
                let (mut gx, fresh) = take_grad!(grads, xg)?;
                by_fresh!(fresh, |put| par_chunks(&mut gx, |o, c| {
                    for ((dx, &g), &v) in c.iter_mut().zip(&gy[o..]).zip(&yv[o..]) {
                        put(dx, d(g, v));
                    }
                }));
                **grads.get_or_alloc_mut(&xg)? = gx;
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// `s · x` for a constant `s`.
pub fn scale<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, s: f64) -> T4<E, T> {
    let (x, mut tape) = x.split_tape();
    let k: E = from_f64(s);
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        for (y, &v) in c.iter_mut().zip(&xv[o..]) {
            y.write(v * k);
        }
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let gx = &mut **grads.get_or_alloc_mut(&xg)?;
                par_chunks(gx, |o, c| {
                    for (d, &g) in c.iter_mut().zip(&gy[o..]) {
                        *d += g * k;
                    }
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// Logistic sigmoid.
pub fn sigmoid<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>) -> T4<E, T> {
    let one = E::one();
    by_output(
        x,
        move |v| one / (one + (-v).exp()),
        move |g, y| g * y * (one - y),
    )
}

/// Gated sum with gate `g` (already in (0,1)): `g·f + (1−g)·s` when `exclusive`, else `f + (1−g)·s`.
pub fn gate_mix<E: Float, T: Tape<E, Cpu> + Merge<T>>(
    g: T4<E, T>,
    f: T4<E, T>,
    s: T4<E, T>,
    exclusive: bool,
) -> T4<E, T> {
    same_shape(&g, &f, "gate_mix");
    same_shape(&g, &s, "gate_mix");
    let (g, gt) = g.split_tape();
    let (f, ft) = f.split_tape();
    let (s, st) = s.split_tape();
    let mut tape = gt.merge(ft).merge(st);
    let (gv, fv, sv) = (view(&g), view(&f), view(&s));
    let one = E::one();
    let out = par_build(gv.len(), |o, c| {
        let it = c.iter_mut().zip(&gv[o..]).zip(&fv[o..]).zip(&sv[o..]);
        if exclusive {
            for (((y, &gg), &ff), &ss) in it {
                y.write(gg * ff + (one - gg) * ss);
            }
        } else {
            for (((y, &gg), &ff), &ss) in it {
                y.write(ff + (one - gg) * ss);
            }
        }
    });
    let y = g.device().tensor_from_vec(out, *g.shape());
    if T::OWNS_TAPE {
        let (gg, fg, sg, yg) = (g.ghost(), f.ghost(), s.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let (gv, fv, sv) = (view(&g), view(&f), view(&s));
                {
                    // ∂/∂g = gy·(f − s) (exclusive) or −gy·s.
                    let dg = &mut **grads.get_or_alloc_mut(&gg)?;
                    par_chunks(dg, |o, c| {
                        let it = c.iter_mut().zip(&gy[o..]).zip(&fv[o..]).zip(&sv[o..]);
                        if exclusive {
                            for (((d, &gr), &ff), &ss) in it {
                                *d += gr * (ff - ss);
                            }
                        } else {
                            for (((d, &gr), &_ff), &ss) in it {
                                *d -= gr * ss;
                            }
                        }
                    });
                }
                {
                    // ∂/∂f = gy·g (exclusive) or gy.
                    let df = &mut **grads.get_or_alloc_mut(&fg)?;
                    par_chunks(df, |o, c| {
                        let it = c.iter_mut().zip(&gy[o..]).zip(&gv[o..]);
                        if exclusive {
                            for ((d, &gr), &ga) in it {
                                *d += gr * ga;
                            }
                        } else {
                            for ((d, &gr), &_ga) in it {
                                *d += gr;
                            }
                        }
                    });
                }
                {
                    // ∂/∂s = gy·(1 − g).
                    let ds = &mut **grads.get_or_alloc_mut(&sg)?;
                    par_chunks(ds, |o, c| {
                        for ((d, &gr), &ga) in c.iter_mut().zip(&gy[o..]).zip(&gv[o..]) {
                            *d += gr * (one - ga);
                        }
                    });
                }
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

/// Counter-based hash (SplitMix64 finaliser) of `(seed, i)`: the dropout mask is a pure function
/// of the seed and the element index, so forward and backward agree without storing it and the
/// result does not depend on how the work is split across threads.
#[inline(always)]
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Calls `f(j, factor)` for `j` in `0..len`, the mask factors of elements `o..o+len` (`o` a
/// multiple of 4): 0 when dropped, `keep` when kept. One hash covers four elements, 16 bits
/// each; element i is dropped iff its 16 bits are below `thresh` (of 65536).
#[inline(always)]
fn for_mask<E: Float>(
    seed: u64,
    o: usize,
    len: usize,
    thresh: u64,
    keep: E,
    mut f: impl FnMut(usize, E),
) {
    debug_assert_eq!(o % 4, 0);
    // Branch-free 0/1 indicator: for integer r, clamp(r − thresh + 1, 0, 1) is 1 iff r ≥ thresh.
    // (A select on `r >= thresh` compiles to a branch that mispredicts half the time.)
    let (zero, one) = (E::zero(), E::one());
    let t1: E = from_f64(thresh as f64 - 1.0);
    for g in 0..len.div_ceil(4) {
        let h = mix(seed, ((o / 4) + g) as u64);
        for l in 0..4 {
            let j = 4 * g + l;
            if j < len {
                let r: E = from_f64(((h >> (16 * l)) & 0xFFFF) as f64);
                f(j, keep * (r - t1).min(one).max(zero));
            }
        }
    }
}

/// Inverted dropout with drop probability `p` (identity when `!train`), mask drawn from `seed`.
///
/// `p` is quantised to a multiple of 2⁻¹⁶ (exact for 0.5); kept values are scaled by
/// 1/(1 − p_quantised), so E[y] = x exactly.
pub fn dropout<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, p: f64, train: bool, seed: u64) -> T4<E, T> {
    assert!(
        (0.0..=1.0).contains(&p),
        "engine::dropout: p = {p} is not in [0, 1]"
    );
    let thresh = (p * 65536.0).round() as u64;
    if !train || thresh == 0 {
        return x;
    }
    let keep: E = if thresh >= 65536 {
        E::zero()
    } else {
        from_f64(65536.0 / (65536 - thresh) as f64)
    };
    let (x, mut tape) = x.split_tape();
    let xv = view(&x);
    let out = par_build(xv.len(), |o, c| {
        let src = &xv[o..][..c.len()];
        for_mask(seed, o, c.len(), thresh, keep, |j, k| {
            c[j].write(src[j] * k);
        });
    });
    let y = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            with_out_grad!(grads, yg, |gy| {
                let gx = &mut **grads.get_or_alloc_mut(&xg)?;
                par_chunks(gx, |o, c| {
                    let src = &gy[o..][..c.len()];
                    for_mask(seed, o, c.len(), thresh, keep, |j, k| c[j] += src[j] * k);
                });
                Ok(())
            })
        });
    }
    y.put_tape(tape)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::gradcheck::{numeric_grad, rand_vec, rel_err};
    use crate::engine::tensor::Shape4;

    pub(crate) type TT = OwnedTape<f64, Cpu>;

    pub(crate) fn t4(v: &[f64], s: Shape4) -> T4<f64> {
        Cpu::default().tensor_from_vec(v.to_vec(), s)
    }

    pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Max relative error between the analytic gradients of L = Σ y·r (r random) w.r.t. every
    /// input and their central differences. `fwd` and `bwd` are the same op without / with a tape.
    pub(crate) fn grad_check(
        xs: &[Vec<f64>],
        s: Shape4,
        fwd: impl Fn(Vec<T4<f64>>) -> T4<f64>,
        bwd: impl Fn(Vec<T4<f64, TT>>) -> T4<f64, TT>,
    ) -> f64 {
        let ts: Vec<T4<f64>> = xs.iter().map(|v| t4(v, s)).collect();
        let y0 = fwd(ts.clone());
        let r = rand_vec(y0.shape().num_elements(), 99);
        let rt: T4<f64> = Cpu::default().tensor_from_vec(r.clone(), *y0.shape());
        let traced: Vec<T4<f64, TT>> = ts
            .iter()
            .enumerate()
            .map(|(i, t)| if i == 0 { t.leaky_trace() } else { t.retaped() })
            .collect();
        let g = (bwd(traced) * rt).sum().backward();
        let mut worst = 0.0f64;
        for i in 0..xs.len() {
            let analytic = g.get(&ts[i]).as_vec();
            let numeric = numeric_grad(
                |xi| {
                    let mut inp = ts.clone();
                    inp[i] = t4(xi, s);
                    dot(&fwd(inp).as_vec(), &r)
                },
                &xs[i],
                1e-6,
            );
            let e = rel_err(&analytic, &numeric);
            assert!(e <= 1e-5, "input {i}: rel err {e:e}");
            worst = worst.max(e);
        }
        worst
    }

    const S: Shape4 = (2, 3, 4, 5);

    fn n() -> usize {
        S.0 * S.1 * S.2 * S.3
    }

    /// Inputs kept away from 0 so ReLU's kink is never within ±h.
    fn away_from_zero(v: Vec<f64>) -> Vec<f64> {
        v.into_iter()
            .map(|x| if x.abs() < 0.05 { x + 0.1 } else { x })
            .collect()
    }

    fn two(v: Vec<T4<f64, TT>>) -> (T4<f64, TT>, T4<f64, TT>) {
        let mut it = v.into_iter();
        (it.next().unwrap(), it.next().unwrap())
    }

    #[test]
    fn add_matches_reference_and_gradcheck() {
        let (a, b) = (rand_vec(n(), 1), rand_vec(n(), 2));
        let y = add(t4(&a, S), t4(&b, S)).as_vec();
        for i in 0..n() {
            assert_eq!(y[i], a[i] + b[i]);
        }
        grad_check(
            &[a, b],
            S,
            |v| add(v[0].clone(), v[1].clone()),
            |v| {
                let (a, b) = two(v);
                add(a, b)
            },
        );
    }

    #[test]
    fn add_of_a_tensor_with_itself_doubles_the_gradient() {
        let a = rand_vec(n(), 3);
        let t = t4(&a, S);
        let y = add(t.leaky_trace(), t.retaped());
        let g = y.sum().backward();
        assert!(g.get(&t).as_vec().iter().all(|&v| v == 2.0));
    }

    #[test]
    fn add_relu_matches_reference_and_gradcheck() {
        let (a, b) = (rand_vec(n(), 14), rand_vec(n(), 15));
        // Sums kept away from 0 so ReLU's kink is never within ±h.
        let b: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&p, &q)| if (p + q).abs() < 0.05 { q + 0.1 } else { q })
            .collect();
        let y = add_relu(t4(&a, S), t4(&b, S)).as_vec();
        for i in 0..n() {
            assert_eq!(y[i], (a[i] + b[i]).max(0.0));
        }
        grad_check(
            &[a, b],
            S,
            |v| add_relu(v[0].clone(), v[1].clone()),
            |v| {
                let (a, b) = two(v);
                add_relu(a, b)
            },
        );
    }

    #[test]
    fn add_relu_matches_relu_of_add_in_parallel_and_with_itself() {
        let sh = (4, 16, 32, 32);
        let len = 4 * 16 * 32 * 32;
        let (a, b, r) = (rand_vec(len, 16), rand_vec(len, 17), rand_vec(len, 18));
        let (ta, tb, tr) = (t4(&a, sh), t4(&b, sh), t4(&r, sh));
        let g1 = (add_relu(ta.leaky_trace(), tb.retaped()) * tr.clone())
            .sum()
            .backward();
        let g2 = (relu(add(ta.leaky_trace(), tb.retaped())) * tr.clone())
            .sum()
            .backward();
        assert_eq!(g1.get(&ta).as_vec(), g2.get(&ta).as_vec());
        assert_eq!(g1.get(&tb).as_vec(), g2.get(&tb).as_vec());
        let g1 = (add_relu(ta.leaky_trace(), ta.retaped()) * tr.clone())
            .sum()
            .backward();
        let g2 = (relu(add(ta.leaky_trace(), ta.retaped())) * tr)
            .sum()
            .backward();
        assert_eq!(g1.get(&ta).as_vec(), g2.get(&ta).as_vec());
    }

    #[test]
    fn relu_matches_reference_and_gradcheck() {
        let a = away_from_zero(rand_vec(n(), 4));
        let y = relu(t4(&a, S)).as_vec();
        for i in 0..n() {
            assert_eq!(y[i], a[i].max(0.0));
        }
        grad_check(
            &[a],
            S,
            |v| relu(v[0].clone()),
            |v| relu(v.into_iter().next().unwrap()),
        );
    }

    #[test]
    fn scale_matches_reference_and_gradcheck() {
        let a = rand_vec(n(), 5);
        let y = scale(t4(&a, S), 0.5).as_vec();
        for i in 0..n() {
            assert_eq!(y[i], 0.5 * a[i]);
        }
        grad_check(
            &[a],
            S,
            |v| scale(v[0].clone(), -1.7),
            |v| scale(v.into_iter().next().unwrap(), -1.7),
        );
    }

    #[test]
    fn sigmoid_matches_reference_and_gradcheck() {
        let a: Vec<f64> = rand_vec(n(), 6).iter().map(|x| 4.0 * x).collect();
        let y = sigmoid(t4(&a, S)).as_vec();
        for i in 0..n() {
            assert!((y[i] - 1.0 / (1.0 + (-a[i]).exp())).abs() < 1e-15);
        }
        grad_check(
            &[a],
            S,
            |v| sigmoid(v[0].clone()),
            |v| sigmoid(v.into_iter().next().unwrap()),
        );
    }

    #[test]
    fn gate_mix_matches_reference_and_gradcheck() {
        let g: Vec<f64> = rand_vec(n(), 7).iter().map(|x| 0.5 + 0.45 * x).collect();
        let (f, s) = (rand_vec(n(), 8), rand_vec(n(), 9));
        for exclusive in [true, false] {
            let y = gate_mix(t4(&g, S), t4(&f, S), t4(&s, S), exclusive).as_vec();
            for i in 0..n() {
                let want = if exclusive {
                    g[i] * f[i] + (1.0 - g[i]) * s[i]
                } else {
                    f[i] + (1.0 - g[i]) * s[i]
                };
                assert!((y[i] - want).abs() < 1e-15);
            }
            grad_check(
                &[g.clone(), f.clone(), s.clone()],
                S,
                |v| gate_mix(v[0].clone(), v[1].clone(), v[2].clone(), exclusive),
                |v| {
                    let mut it = v.into_iter();
                    let (a, b, c) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
                    gate_mix(a, b, c, exclusive)
                },
            );
        }
    }

    #[test]
    fn dropout_scales_is_seeded_and_eval_is_identity() {
        let sh = (8, 16, 32, 32); // big enough to take the parallel path
        let len = 8 * 16 * 32 * 32;
        let x = vec![1.0f64; len];
        let p = 0.3;
        let y1 = dropout(t4(&x, sh), p, true, 42).as_vec();
        let y2 = dropout(t4(&x, sh), p, true, 42).as_vec();
        let y3 = dropout(t4(&x, sh), p, true, 43).as_vec();
        assert_eq!(y1, y2, "same seed, same mask");
        assert_ne!(y1, y3, "different seed, different mask");
        // p is quantised to 2^-16: kept values are scaled by 1/(1 − p_q), E[y] = x exactly.
        let pq = (p * 65536.0).round() / 65536.0;
        let keep = 1.0 / (1.0 - pq);
        assert!((keep - 1.0 / (1.0 - p)).abs() < 1e-4);
        assert!(y1.iter().all(|&v| v == 0.0 || (v - keep).abs() < 1e-12));
        let dropped = y1.iter().filter(|&&v| v == 0.0).count() as f64 / len as f64;
        // Binomial std ≈ sqrt(0.21/131072) ≈ 0.0013.
        assert!((dropped - p).abs() < 0.01, "drop fraction {dropped}");
        let mean = y1.iter().sum::<f64>() / len as f64;
        assert!((mean - 1.0).abs() < 0.02, "E[y] = {mean}, want E[x] = 1");
        // Eval and p = 0 are the identity (the very same buffer).
        let xt = t4(&rand_vec(len, 1), sh);
        assert_eq!(dropout(xt.clone(), p, false, 42).as_vec(), xt.as_vec());
        assert_eq!(dropout(xt.clone(), 0.0, true, 42).as_vec(), xt.as_vec());
        // p = 1 drops everything.
        assert!(
            dropout(xt.clone(), 1.0, true, 1)
                .as_vec()
                .iter()
                .all(|&v| v == 0.0)
        );
        // f32 uses the same mask.
        let x32: T4<f32> = Cpu::default().tensor_from_vec(vec![1.0f32; len], sh);
        let y32 = dropout(x32, p, true, 42).as_vec();
        assert!(y32.iter().zip(&y1).all(|(&a, &b)| (a == 0.0) == (b == 0.0)));
    }

    #[test]
    fn dropout_gradcheck() {
        let a = rand_vec(n(), 10);
        grad_check(
            &[a],
            S,
            |v| dropout(v[0].clone(), 0.4, true, 7),
            |v| dropout(v.into_iter().next().unwrap(), 0.4, true, 7),
        );
    }

    #[test]
    fn large_tensors_take_the_parallel_path_correctly() {
        let sh = (4, 16, 32, 32);
        let len = 4 * 16 * 32 * 32;
        let (a, b) = (rand_vec(len, 11), rand_vec(len, 12));
        let ta = t4(&a, sh);
        let tb = t4(&b, sh);
        let y = add(ta.leaky_trace(), tb.retaped());
        let r = rand_vec(len, 13);
        let g = (relu(y) * t4(&r, sh)).sum().backward();
        let ga = g.get(&ta).as_vec();
        let gb = g.get(&tb).as_vec();
        for i in 0..len {
            let want = if a[i] + b[i] > 0.0 { r[i] } else { 0.0 };
            assert_eq!(ga[i], want);
            assert_eq!(gb[i], want);
        }
        assert!((sum_squares(&a) - a.iter().map(|v| v * v).sum::<f64>()).abs() < 1e-9);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::engine::gradcheck::rand_vec;

    /// `cargo test --release --lib engine::misc::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn misc_speed() {
        let dev = Cpu::default();
        let s = (64, 16, 32, 32);
        let len = 64 * 16 * 32 * 32;
        let mk = |seed| -> T4<f32> {
            dev.tensor_from_vec(rand_vec(len, seed).iter().map(|&v| v as f32).collect(), s)
        };
        let (a, b, g) = (mk(1), mk(2), mk(3));
        let time = |f: &mut dyn FnMut()| crate::engine::best_ms(20, f);
        let base = time(&mut || {
            std::hint::black_box(a.leaky_trace().sum().backward());
        });
        let row = |name: &str, f: &mut dyn FnMut() -> T4<f32, OwnedTape<f32, Cpu>>| {
            let fwd = time(&mut || {
                std::hint::black_box(f().retaped::<NoneTape>());
            });
            let all = time(&mut || {
                std::hint::black_box(f().sum().backward());
            });
            println!("{name:10} fwd {fwd:.3} ms, fwd+bwd {:.3} ms", all - base);
        };
        row("add", &mut || add(a.leaky_trace(), b.retaped()));
        row("relu", &mut || relu(a.leaky_trace()));
        row("relu(add)", &mut || relu(add(a.leaky_trace(), b.retaped())));
        row("add_relu", &mut || add_relu(a.leaky_trace(), b.retaped()));
        row("scale", &mut || scale(a.leaky_trace(), 0.5));
        row("sigmoid", &mut || sigmoid(a.leaky_trace()));
        row("gate_mix", &mut || {
            gate_mix(g.leaky_trace(), a.retaped(), b.retaped(), true)
        });
        row("dropout", &mut || dropout(a.leaky_trace(), 0.5, true, 9));
        row("probe", &mut || {
            crate::engine::probe(a.leaky_trace(), &crate::engine::ProbeRecorder::new(1), 0)
        });
        println!("(sum+backward baseline {base:.3} ms subtracted)");
    }
}
