//! He et al. 2016, eq. 5, measured: the gradient at a residual block's input split into the part
//! that arrives through the shortcut and the part that comes back through the branch.
//!
//! A block `y = combine(F(x), s(x))` has two kinds of consumers of x: the branch (F, and a gate
//! if any) and the shortcut s. dfdx sums their contributions into one buffer, so the parts are
//! gone by the time anything reads ∂L/∂x. Two zero-size ops keep them apart without copying:
//!
//! - [`Split::enter`] on x before the branch: its backward op runs after every consumer of x.
//! - [`Split::shortcut`] on x after the branch and before the shortcut's ops: its backward op runs
//!   after the shortcut has written its part and before the branch writes anything.
//!
//! Backward order is therefore: shortcut ops write `id` into x's gradient → `shortcut`'s op moves
//! `id` aside and leaves a zeroed buffer, marked new so the branch's first op writes it with
//! `=` (see `grads::take_grad!`) → branch ops write `br` → `enter`'s op adds `id` back while
//! summing ‖id‖², ‖br‖² and ⟨id, br⟩ in the same pass. The producer of x then reads
//! `id + br`, the gradient it always read. The cost is that one pass per residual block; the
//! branch's first op saves the read of an existing buffer in exchange.
//!
//! Where the branch reads x in one op ([`Split::with_one_reader`]), `shortcut` leaves `id` in
//! place as a [`Pending`] split instead: that op adds `br` onto it and sums the three terms as
//! it writes (the direct conv's dX), or declines and the pass above runs.

use super::grads::{mark_new, take_grad, take_mark};
use super::par::par_chunks_sum;
use super::reduce::{add_lanes, sum_squares};
use super::tensor::{Float, T4};
use dfdx::prelude::*;
use std::sync::{Arc, Mutex};

#[cfg(target_arch = "x86_64")]
mod join_avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) use join_avx512::{split_sums, sum_f64};

/// The two parts of ∂L/∂x at one block input, as sums over the whole tensor (batch included).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradSplit {
    /// ‖shortcut part‖²: what s passes back (the identity passes ∂L/∂s unchanged).
    pub shortcut_sq: f64,
    /// ‖branch part‖²: everything else (F, and the gate of gated blocks).
    pub branch_sq: f64,
    /// ⟨shortcut part, branch part⟩.
    pub dot: f64,
}

impl GradSplit {
    pub fn shortcut(&self) -> f64 {
        self.shortcut_sq.max(0.0).sqrt()
    }
    pub fn branch(&self) -> f64 {
        self.branch_sq.max(0.0).sqrt()
    }
    /// ‖shortcut + branch‖ = ‖∂L/∂x‖.
    pub fn total(&self) -> f64 {
        (self.shortcut_sq + self.branch_sq + 2.0 * self.dot)
            .max(0.0)
            .sqrt()
    }
    /// Cosine of the angle between the parts (0 where either is zero).
    pub fn cosine(&self) -> f64 {
        let d = self.shortcut() * self.branch();
        if d > 0.0 { self.dot / d } else { 0.0 }
    }
}

impl std::ops::Add for GradSplit {
    type Output = GradSplit;
    fn add(self, o: GradSplit) -> GradSplit {
        GradSplit {
            shortcut_sq: self.shortcut_sq + o.shortcut_sq,
            branch_sq: self.branch_sq + o.branch_sq,
            dot: self.dot + o.dot,
        }
    }
}

/// Where a split is recorded: shared by the two ops of one block and read after backward.
pub type SplitSink = Arc<Mutex<Option<GradSplit>>>;

/// The shortcut's part of a gradient, moved aside by [`Split::shortcut`] until an op adds it back.
pub type Stash<E> = Arc<Mutex<Option<Vec<E>>>>;

/// The pair of ops around one block's input (see the module docs). Create one per block and
/// pass, in forward order: `enter(x)` before the branch, `shortcut(x')` before the shortcut.
pub struct Split<E> {
    sink: SplitSink,
    stash: Stash<E>,
    /// The branch has one reader of x, which may measure the split itself (see [`Pending`]).
    one_reader: bool,
}

impl<E: Float> Split<E> {
    pub fn new(sink: SplitSink) -> Self {
        *lock(&sink) = None;
        Self {
            sink,
            stash: Arc::default(),
            one_reader: false,
        }
    }

    /// The branch reads x in one op only (a conv, or an op that declines): the shortcut's part
    /// stays in x's gradient for that op to add onto while it measures the split, where it can
    /// (the direct conv's dX), instead of being moved aside and added back in a pass of its own.
    pub fn with_one_reader(mut self, one: bool) -> Self {
        self.one_reader = one;
        self
    }

    /// Where the split is recorded, and where [`Split::shortcut`] leaves the shortcut's part:
    /// for an op that takes the place of [`Split::enter`] (`engine::BnSplit::Through`).
    pub fn parts(&self) -> (SplitSink, Stash<E>) {
        (self.sink.clone(), self.stash.clone())
    }

    /// Before the branch's ops: records the split once every consumer of x has written.
    pub fn enter<T: Tape<E, Cpu>>(&self, x: T4<E, T>) -> T4<E, T> {
        if !T::OWNS_TAPE {
            return x;
        }
        let (x, mut tape) = x.split_tape();
        let (xg, stash, sink) = (x.ghost(), self.stash.clone(), self.sink.clone());
        tape.add_backward_op(move |grads| {
            // The entry exists: `shortcut`'s op put a buffer there.
            let mut g = std::mem::take(&mut **grads.get_or_alloc_mut(&xg)?);
            let untouched = take_mark(g.as_ptr() as usize);
            if let Some(p) = take_pending(g.as_slice()) {
                // No op of the branch took x's gradient: all of it came through the shortcut.
                p.measured([sum_squares(&g), 0.0, 0.0]);
            } else if lock(&sink).is_none() {
                let id = lock(&stash).take();
                let split = merge(&mut g, untouched, id.as_deref());
                *lock(&sink) = Some(split);
            } // else the branch's reader measured it (`Pending::measured`).
            **grads.get_or_alloc_mut(&xg)? = g;
            Ok(())
        });
        x.put_tape(tape)
    }

    /// After the branch's ops, before the shortcut's: moves the shortcut's part aside.
    pub fn shortcut<T: Tape<E, Cpu>>(&self, x: T4<E, T>) -> T4<E, T> {
        if !T::OWNS_TAPE {
            return x;
        }
        let (x, mut tape) = x.split_tape();
        let (xg, stash, sink) = (x.ghost(), self.stash.clone(), self.sink.clone());
        let (len, one_reader) = (x.shape().num_elements(), self.one_reader);
        tape.add_backward_op(move |grads| {
            let (id, fresh) = take_grad!(grads, xg)?;
            if one_reader && !fresh {
                PENDING.with(|p| {
                    let pending = Pending { sink, stash };
                    p.borrow_mut()
                        .push((id.as_ptr() as usize, Box::new(pending)));
                });
                **grads.get_or_alloc_mut(&xg)? = id;
                return Ok(());
            }
            // New means nothing on the shortcut side wrote it: it is still zeros, and serves as
            // the branch's new buffer itself.
            let branch = if fresh {
                mark_new(id.as_ptr() as usize);
                id
            } else {
                *lock(&stash) = Some(id);
                new_buffer(len)
            };
            **grads.get_or_alloc_mut(&xg)? = branch;
            Ok(())
        });
        x.put_tape(tape)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// Gradient buffers (by address) that hold a shortcut's part waiting for the branch's reader,
    /// each with its [`Pending`] (type-erased: `E` varies). Backward runs its ops on one thread.
    static PENDING: std::cell::RefCell<Vec<(usize, Box<dyn std::any::Any>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The shortcut's part of ∂L/∂x, left in x's gradient buffer by [`Split::shortcut`] for the one
/// op of the branch that reads x: it takes the buffer with `take_grad_or_pending!` and either
/// adds its own part while summing eq. 5's terms ([`Pending::measured`]) or declines
/// ([`Pending::decline`]); `take_grad!` declines for every other op.
pub(crate) struct Pending<E> {
    sink: SplitSink,
    stash: Stash<E>,
}

impl<E: Float> Pending<E> {
    /// The reader added its part onto the shortcut's: `[Σ shortcut², Σ branch², Σ shortcut·branch]`.
    pub(crate) fn measured(self, [ii, bb, ib]: [f64; 3]) {
        *lock(&self.sink) = Some(GradSplit {
            shortcut_sq: ii,
            branch_sq: bb,
            dot: ib,
        });
    }

    /// The reader cannot measure: the shortcut's part goes aside (to be added back by
    /// [`Split::enter`]'s op) and the reader gets a buffer of its own, `(buffer, new)`.
    pub(crate) fn decline(self, id: Vec<E>) -> (Vec<E>, bool) {
        let len = id.len();
        *lock(&self.stash) = Some(id);
        own_buffer(len)
    }
}

/// The [`Pending`] split of the buffer `buf`, if one waits (and removes it).
pub(crate) fn take_pending<E: Float>(buf: &[E]) -> Option<Pending<E>> {
    let addr = buf.as_ptr() as usize;
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().position(|(a, _)| *a == addr)?;
        p.swap_remove(i).1.downcast::<Pending<E>>().ok().map(|b| *b)
    })
}

/// A zeroed buffer the next `take_grad!` of it reports new (written with `=`, not read) when
/// new-buffer writes are on; otherwise not reported new (ops accumulate into it as usual).
fn new_buffer<E: Float>(len: usize) -> Vec<E> {
    let (v, new) = own_buffer(len);
    if new {
        // `take_grad!` reports it new; `merge` treats a buffer still marked as never written.
        mark_new(v.as_ptr() as usize);
    }
    v
}

/// `(buffer, new)` for an op to write: zeroed, and new when new-buffer writes are on (the op
/// may then write it with `=`).
///
/// Zeroed, not left unwritten: an unwritten `Vec<f32>` claims initialised memory it does not
/// have, which is undefined behaviour in Rust whatever the bits. The zeroing runs in parallel
/// on the pool (`engine::alloc`) and costs one write pass; the op still saves the read.
fn own_buffer<E: Float>(len: usize) -> (Vec<E>, bool) {
    (vec![E::zero(); len], super::alloc::fresh_enabled())
}

/// `g = br + id` in place, with the split's three sums. `untouched`: the branch wrote nothing
/// (g is still the zeros it was given); `id` is `None` where the shortcut wrote nothing.
fn merge<E: Float>(g: &mut [E], untouched: bool, id: Option<&[E]>) -> GradSplit {
    match (id, untouched) {
        (Some(id), false) => par_chunks_sum(g, |o, c| {
            let [bb, ii, ib] = add_into(c, &id[o..][..c.len()]);
            GradSplit {
                shortcut_sq: ii,
                branch_sq: bb,
                dot: ib,
            }
        }),
        (Some(id), true) => {
            g.copy_from_slice(id);
            GradSplit {
                shortcut_sq: sum_squares(id),
                ..GradSplit::default()
            }
        }
        (None, false) => GradSplit {
            branch_sq: sum_squares(g),
            ..GradSplit::default()
        },
        (None, true) => GradSplit::default(),
    }
}

/// `d += s` over two equally long slices, returning `[Σ d², Σ s², Σ d·s]` of the values before
/// the add: the eq. 5 sums with `d` the shortcut's part and `s` the branch's.
///
/// Out of line, with AVX-512 builds: the crate's SSE2 baseline made the merge pass of every v1
/// block cost about 2 % of a 56-layer step. f32 runs the join's intrinsics loop (multiply-adds:
/// its sums differ from the portable ones in rounding, not in `d`); f64 the portable body
/// compiled for AVX-512, whose explicit lanes give the same sums as the SSE2 build.
#[inline(never)]
pub(crate) fn add_into<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        if let (Some(d), Some(s)) = (E::as_f32_mut(d), E::as_f32(s)) {
            // SAFETY: the CPU has AVX-512F (checked at run time).
            return unsafe { join_avx512::add_into_f32(d, s) };
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
            add_into_body(d, s)
        }
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { wide(d, s) };
    }
    add_into_body(d, s)
}

/// [`add_into`]'s body: sixteen lanes in `E` over blocks of 1024 (as `reduce1_coarse`), then f64.
#[inline(always)]
fn add_into_body<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
    const LANES: usize = 16;
    const BLOCK: usize = 1024;
    let s = &s[..d.len()];
    let mut total = [[0.0f64; LANES]; 3];
    for (db, sb) in d.chunks_mut(BLOCK).zip(s.chunks(BLOCK)) {
        let mut acc = [[E::zero(); LANES]; 3];
        let (dc, dr) = db.as_chunks_mut::<LANES>();
        let (sc, sr) = sb.as_chunks::<LANES>();
        for (p, q) in dc.iter_mut().zip(sc) {
            for l in 0..LANES {
                acc[0][l] += p[l] * p[l];
                acc[1][l] += q[l] * q[l];
                acc[2][l] += p[l] * q[l];
                p[l] += q[l];
            }
        }
        for (p, &q) in dr.iter_mut().zip(sr) {
            acc[0][0] += *p * *p;
            acc[1][0] += q * q;
            acc[2][0] += *p * q;
            *p += q;
        }
        for (t, a) in total.iter_mut().zip(&acc) {
            add_lanes(t, a);
        }
    }
    total.map(|t| t.iter().sum())
}

/// Batch norm's backward for one channel, as its write pass evaluates it (so that a joining
/// pass writes the same bits): `dx = a·gm + c1 + c2·(x − μ)` in training, `a·gm` in evaluation,
/// with `gm = g` masked where `x·a + b ≤ 0` when a ReLU follows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BnDx<E> {
    pub a: E,
    pub b: E,
    pub c1: E,
    pub c2: E,
    pub mu: E,
    pub train: bool,
}

impl<E: Float> BnDx<E> {
    #[inline(always)]
    pub(crate) fn dx(&self, g: E, x: E, relu: bool) -> E {
        let gm = if relu && x * self.a + self.b <= E::zero() {
            E::zero()
        } else {
            g
        };
        if self.train {
            self.a * gm + self.c1 + self.c2 * (x - self.mu)
        } else {
            self.a * gm
        }
    }

    fn to_f32(self) -> Option<BnDx<f32>> {
        let f = |v: E| v.to_f32();
        Some(BnDx {
            a: f(self.a)?,
            b: f(self.b)?,
            c1: f(self.c1)?,
            c2: f(self.c2)?,
            mu: f(self.mu)?,
            train: self.train,
        })
    }
}

/// `d += k.dx(g, x)` over planes `0..planes` (`plane(i)` gives one plane's `(d, g, x)`),
/// returning [`add_into`]'s sums with `dx` as the branch's part: batch norm's write pass over one
/// channel when it joins a split. f32 on AVX-512 runs one fused loop in intrinsics; elsewhere
/// the branch's part goes through a small buffer (that loop vectorises on its own) and
/// [`add_into`] adds it with the sums.
pub(crate) fn join_planes<'a, E: Float>(
    planes: usize,
    plane: impl Fn(usize) -> (&'a mut [E], &'a [E], &'a [E]),
    k: BnDx<E>,
    relu: bool,
) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512()
        && E::as_f32(&[]).is_some()
        && let Some(k) = k.to_f32()
    {
        let f32_plane = |i| {
            let (d, g, x) = plane(i);
            let f32_of = "E is f32: checked above";
            let d = E::as_f32_mut(d).expect(f32_of);
            (d, E::as_f32(g).expect(f32_of), E::as_f32(x).expect(f32_of))
        };
        // SAFETY: the CPU has AVX-512F (checked at run time); the kernel checks the lengths.
        return unsafe { join_avx512::join_planes_f32(planes, f32_plane, k, relu) };
    }
    const CHUNK: usize = 512;
    let mut buf = [E::zero(); CHUNK];
    let mut sums = [0.0; 3];
    for i in 0..planes {
        let (d, gp, xp) = plane(i);
        for ((dc, gc), xc) in d
            .chunks_mut(CHUNK)
            .zip(gp.chunks(CHUNK))
            .zip(xp.chunks(CHUNK))
        {
            let br = &mut buf[..dc.len()];
            if relu {
                for ((o, &g), &xv) in br.iter_mut().zip(gc).zip(xc) {
                    *o = k.dx(g, xv, true);
                }
            } else {
                for ((o, &g), &xv) in br.iter_mut().zip(gc).zip(xc) {
                    *o = k.dx(g, xv, false);
                }
            }
            for (s, v) in sums.iter_mut().zip(add_into(dc, br)) {
                *s += v;
            }
        }
    }
    sums
}

/// The split a joining backward measured: its per-channel sums, or (if the shortcut wrote
/// nothing, so the branch wrote a new buffer) all of the gradient as the branch's part.
pub(crate) fn record_join<E: Float>(
    sink: &SplitSink,
    sums: impl Iterator<Item = [f64; 3]>,
    fresh: bool,
    gx: &[E],
) {
    let split = if fresh {
        GradSplit {
            branch_sq: sum_squares(gx),
            ..GradSplit::default()
        }
    } else {
        sums.fold(GradSplit::default(), |acc, [ii, bb, ib]| {
            acc + GradSplit {
                shortcut_sq: ii,
                branch_sq: bb,
                dot: ib,
            }
        })
    };
    *lock(sink) = Some(split);
}

/// Test check: `got` holds ‖gs‖², ‖gb‖² and ⟨gs, gb⟩ of a reference computed on separate inputs
/// (shortcut's part `gs`, branch's `gb`) to `tol` relative (the dot product relative to
/// ‖gs‖·‖gb‖), both parts are non-zero, and the gradient actually seen, `total`, is gs + gb to
/// `add_tol` relative (1e-12 for f64; the rounding of one add for f32).
#[cfg(test)]
pub(crate) fn assert_split_is(
    got: GradSplit,
    (gs, gb): (&[f64], &[f64]),
    total: &[f64],
    (tol, add_tol): (f64, f64),
) {
    use super::gradcheck::dot;
    let (ss, bb, sb) = (dot(gs, gs), dot(gb, gb), dot(gs, gb));
    let close = |a: f64, b: f64| (a - b).abs() <= tol * b.abs().max(1e-30);
    assert!(close(got.shortcut_sq, ss), "{got:?} vs ‖gs‖² {ss}");
    assert!(close(got.branch_sq, bb), "{got:?} vs ‖gb‖² {bb}");
    assert!(
        (got.dot - sb).abs() <= tol * (ss * bb).sqrt(),
        "{got:?} vs {sb}"
    );
    assert!(got.shortcut_sq > 0.0 && got.branch_sq > 0.0 && got.dot != 0.0);
    for (t, (b, s)) in total.iter().zip(gb.iter().zip(gs)) {
        assert!((t - (b + s)).abs() <= add_tol * (1.0 + t.abs()));
    }
}

#[cfg(test)]
mod tests;
