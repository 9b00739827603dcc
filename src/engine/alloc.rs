//! Allocator tuning for training: keep freed activation buffers instead of returning them to the
//! operating system.
//!
//! Every step allocates and frees the same few hundred multi-megabyte activation and gradient
//! buffers. mimalloc (the binary's global allocator) by default *purges* freed memory after a delay
//! (`purge_delay`, 1000 ms in mimalloc 3),
//! so the next step faults the pages in again and the kernel zeroes them (2 MiB transparent huge
//! pages): measured ~10 % of a v1-20 step in `clear_page_erms`, 10k page faults per 12 steps.
//! With purging off the pages stay mapped and are reused (400 page faults). Peak memory is
//! unchanged: the retained memory is what the previous step already used.

use mimalloc::MiMalloc;
use rayon::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_long};
use std::sync::Once;

/// The binary's global allocator: mimalloc, except that large zeroed allocations made on a rayon
/// worker are zeroed by every pool thread, and that [`watch_zeroed`] can learn the address of one
/// zeroed allocation. dfdx allocates every gradient buffer zeroed, on the thread that runs the
/// backward op, while the other core waits: a serial `memset` there was 3.5 % of a 56-layer
/// step's CPU samples (and about twice that of its wall time).
pub struct Allocator;

/// Below this, one thread zeroes (splitting costs more than it saves).
const PAR_ZERO_MIN: usize = 1 << 20;

/// Whether the system allocator sits underneath instead of mimalloc: `RESVIZ_SYSTEM_ALLOC=1` in
/// the environment, for valgrind's memcheck, which tracks which bytes of a `malloc` block were
/// written but cannot see inside mimalloc's blocks. Decided at the process's first allocation
/// and never changed (a block must be freed by the allocator that made it).
fn system() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
    /// 0: not decided yet; 1: mimalloc; 2: the system's.
    static BASE: AtomicU8 = AtomicU8::new(0);
    match BASE.load(Relaxed) {
        0 => {
            // `getenv` does not allocate (`std::env` would, inside the allocator). Every thread
            // that races here reads the same environment and stores the same answer.
            // SAFETY: a NUL-terminated name; the result is only compared with null.
            let set = unsafe { !getenv(c"RESVIZ_SYSTEM_ALLOC".as_ptr()).is_null() };
            BASE.store(if set { 2 } else { 1 }, Relaxed);
            set
        }
        b => b == 2,
    }
}

/// `base!(alloc(layout))`: the call on the allocator underneath (see [`system`]).
macro_rules! base {
    ($method:ident($($arg:expr),*)) => {
        if system() {
            System.$method($($arg),*)
        } else {
            MiMalloc.$method($($arg),*)
        }
    };
}

// SAFETY: every method forwards to mimalloc's (or the system's), which upholds the `GlobalAlloc`
// contract. `alloc_zeroed` returns zeroed memory on every path: the base's `alloc_zeroed`, or its
// `alloc` block after `zero_parallel` wrote zeros over all of it. Watching only reads the address.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { base!(alloc(layout)) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { base!(dealloc(ptr, layout)) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { base!(realloc(ptr, layout, new_size)) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Only on a pool thread: there the zeroing forks like any other parallel region of the
        // step; elsewhere (UI, runtime threads) it would block on the pool.
        let p = if layout.size() < PAR_ZERO_MIN || rayon::current_thread_index().is_none() {
            // SAFETY: forwarded contract.
            unsafe { base!(alloc_zeroed(layout)) }
        } else {
            // SAFETY: forwarded contract.
            let p = unsafe { base!(alloc(layout)) };
            if !p.is_null() {
                zero_parallel(p, layout.size());
            }
            p
        };
        if !p.is_null() {
            WATCHED.with(|w| {
                if w.get().0 == layout.size() {
                    w.set((usize::MAX, p as usize));
                }
            });
        }
        p
    }
}

thread_local! {
    /// `(size watched for, address of the zeroed block seen)`: see [`watch_zeroed`].
    /// `usize::MAX` is not watching.
    static WATCHED: Cell<(usize, usize)> = const { Cell::new((usize::MAX, 0)) };
    /// Whether [`watch_zeroed`] reports anything on this thread (tests turn it off to run the
    /// accumulating paths).
    static FRESH: Cell<bool> = const { Cell::new(true) };
}

/// Whether new gradient buffers are reported new on this thread (off inside `without_fresh`).
pub(crate) fn fresh_enabled() -> bool {
    FRESH.with(|on| on.get())
}

/// Runs `f` with new-buffer reports turned off on this thread: every backward op accumulates
/// into its gradient buffers, as without this allocator.
#[cfg(test)]
pub(crate) fn without_fresh<R>(f: impl FnOnce() -> R) -> R {
    let before = FRESH.with(|on| on.replace(false));
    let r = f();
    FRESH.with(|on| on.set(before));
    r
}

/// Runs `f` and returns its result with the address of the first zeroed allocation of exactly
/// `bytes` bytes it made on this thread, if any. The block is zeroed like every other: this only
/// watches.
///
/// Why: dfdx hands a backward op a zeroed gradient buffer when the tensor has none yet, and the
/// op then `+=`s into it. An op that knows the buffer is new (all zeros) can write it with `=`
/// instead, saving the read of the zeros. Only `engine::grads::take_grad!` calls this, with
/// `f` = dfdx's `get_or_alloc_mut`, whose only zeroed allocation is that buffer; the address
/// tells the caller whether it got the new block or an existing one. Without this allocator as
/// the global one nothing is watched and `None` comes back (ops then accumulate).
pub(crate) fn watch_zeroed<R>(bytes: usize, f: impl FnOnce() -> R) -> (R, Option<usize>) {
    if bytes == 0 || !FRESH.with(|on| on.get()) {
        return (f(), None);
    }
    /// Stops watching even if `f` unwinds, so no later allocation is taken for `f`'s.
    struct Unwatch;
    impl Drop for Unwatch {
        fn drop(&mut self) {
            WATCHED.with(|w| w.set((usize::MAX, 0)));
        }
    }
    WATCHED.with(|w| w.set((bytes, 0)));
    let guard = Unwatch;
    let r = f();
    let (watching, addr) = WATCHED.with(|w| w.get());
    drop(guard);
    (r, (watching == usize::MAX && addr != 0).then_some(addr))
}

/// Writes `len` zero bytes at `p`, split across the rayon pool.
fn zero_parallel(p: *mut u8, len: usize) {
    const PIECE: usize = 1 << 18;
    let (addr, pieces) = (p as usize, len.div_ceil(PIECE));
    (0..pieces).into_par_iter().for_each(|i| {
        let start = i * PIECE;
        let n = PIECE.min(len - start);
        // SAFETY: [start, start + n) lies in the caller's fresh `len`-byte block; the pieces
        // are disjoint.
        unsafe { (addr as *mut u8).add(start).write_bytes(0, n) };
    });
}

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn getenv(name: *const c_char) -> *mut c_char;
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys 0.1.49): milliseconds
/// before freed memory is purged, −1 for never.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Turns mimalloc's purging of freed memory off, once per process (a no-op for the allocation
/// behaviour if mimalloc is not the global allocator). `MIMALLOC_PURGE_DELAY` in the environment
/// still wins when set.
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: a plain setter of a global option; valid option index for this mimalloc.
            unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }

    /// Guards the hard-coded option index against a mimalloc upgrade: index 15 must be the purge
    /// delay, whose default in mimalloc 3 (`options.c`) is 1000 ms, and the setter must turn it off.
    /// Large zeroed blocks on a pool thread (the parallel path), small ones and ones off the
    /// pool, each allocated where a dirtied block of the same size was just freed.
    #[test]
    fn zeroed_allocations_are_zero() {
        let check = |size: usize| {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size; every block is freed with its own layout.
            unsafe {
                let dirty = Allocator.alloc(layout);
                assert!(!dirty.is_null());
                dirty.write_bytes(0xab, size);
                Allocator.dealloc(dirty, layout);
                let p = Allocator.alloc_zeroed(layout);
                assert!(!p.is_null());
                let s = std::slice::from_raw_parts(p, size);
                assert!(s.iter().all(|&b| b == 0), "{size} bytes not zeroed");
                Allocator.dealloc(p, layout);
            }
        };
        for size in [
            100,
            PAR_ZERO_MIN - 1,
            PAR_ZERO_MIN,
            3 * PAR_ZERO_MIN + 12_345,
        ] {
            check(size);
            rayon::scope(|_| check(size));
            // Watched, the block is zeroed all the same (the watch only learns its address).
            let (_, addr) = watch_zeroed(size, || check(size));
            assert!(
                addr.is_some(),
                "{size}: the watched allocation was not seen"
            );
            rayon::scope(|_| assert!(watch_zeroed(size, || check(size)).1.is_some()));
        }
    }

    /// A watch reports only an allocation of its own size, and nothing once `f` returned.
    #[test]
    fn watch_sees_only_its_size() {
        let (v, addr) = watch_zeroed(4096, || vec![0f32; 512]);
        assert_eq!(
            addr, None,
            "a 2048-byte block was taken for a 4096-byte one"
        );
        drop(v);
        let (v, addr) = watch_zeroed(4096, || vec![0f32; 1024]);
        assert_eq!(addr, Some(v.as_ptr() as usize));
        let w = vec![0f32; 1024];
        assert_eq!(WATCHED.with(|s| s.get()).0, usize::MAX, "still watching");
        drop((v, w));
    }

    #[test]
    fn option_15_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: plain getter of a global option.
        let before = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert!(before == 1000 || before == -1, "option 15 reads {before}");
        keep_freed_memory();
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, -1);
    }
}
