//! Chunked parallel loops over slices, shared by the element-wise engine ops (batch norm,
//! pooling, probes, the element-wise ops): below [`PAR_MIN`] elements on the calling thread,
//! above it in [`CHUNK`]-sized pieces on rayon's pool; and a pointer for disjoint writes from
//! several threads.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Below this many elements an op runs on the calling thread (rayon's fork/join costs a few µs).
pub(crate) const PAR_MIN: usize = 1 << 15;
/// Elements per parallel work item of an element-wise loop (64 KiB of f32: stays in L2).
pub(crate) const CHUNK: usize = 1 << 14;

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
