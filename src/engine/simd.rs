//! Which SIMD code paths run, decided once per process from the CPU and two environment switches:
//!
//! - `RESVIZ_AVX512=0` turns off every AVX-512 path: the direct conv kernels (`direct`, `dw`) and
//!   the AVX-512 builds of the batch-norm and reduction loops, which then run their SSE2 build
//!   (the crate's baseline). CPUs without AVX-512F always run that way.
//! - `RESVIZ_DIRECT_CONV=0` turns off only the direct conv kernels: every conv goes through
//!   im2col + gemm, while batch norm and the reductions keep their AVX-512 build.
//!
//! The loops with an AVX-512 build compute the same sums in the same order either way (their
//! lanes are explicit), so `RESVIZ_AVX512=0` changes their speed, not their results. The direct
//! conv kernels round differently from im2col + gemm (`tests/suite/cli_probe.rs` compares the two).

use std::sync::OnceLock;

/// Whether the AVX-512 paths may run: the CPU has AVX-512F and `RESVIZ_AVX512=0` is not set.
pub fn avx512() -> bool {
    #[cfg(test)]
    if test_switch::forced_off() {
        return false;
    }
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| cpu_has_avx512f() && !switched_off("RESVIZ_AVX512"))
}

/// Whether the direct conv kernels run: [`avx512`], and `RESVIZ_DIRECT_CONV=0` is not set.
pub fn direct_conv() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    avx512() && *ON.get_or_init(|| !switched_off("RESVIZ_DIRECT_CONV"))
}

fn switched_off(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "0")
}

fn cpu_has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Forcing the non-AVX-512 paths inside one test while other tests run in the same process: the
/// switch is per thread, set on every thread of a rayon pool built for the purpose.
#[cfg(test)]
pub(crate) mod test_switch {
    use std::cell::Cell;

    thread_local! {
        static OFF: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn forced_off() -> bool {
        OFF.with(Cell::get)
    }

    /// Runs `f` with every AVX-512 path off (as under `RESVIZ_AVX512=0`), on a two-thread rayon
    /// pool of its own, so the engine's parallel loops inside `f` see the switch too.
    pub(crate) fn without_avx512<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .start_handler(|_| OFF.with(|o| o.set(true)))
            .build()
            .expect("a test thread pool")
            .install(|| {
                assert!(!super::avx512() && !super::direct_conv());
                f()
            })
    }

    /// Runs `f` as the process is configured, then with every AVX-512 path off.
    pub(crate) fn both_ways(f: impl Fn() + Send + Sync) {
        f();
        without_avx512(&f);
    }

    #[test]
    fn the_switch_is_per_pool() {
        let on = super::avx512();
        assert!(without_avx512(|| !super::avx512()));
        assert_eq!(super::avx512(), on, "the calling thread keeps its setting");
    }
}
