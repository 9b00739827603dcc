//! How much memory an experiment will need, estimated from its shape before anything is
//! allocated, so that `--width 100000` or a config listing millions of models is refused with a
//! message instead of allocating until the kernel kills the process (or overflowing a size).
//!
//! The estimate counts, per model, four f32 copies of the parameters (weights, gradients, two
//! optimizer moments) and, per 3×3 convolution, three activation-sized tensors of the batch kept
//! for the backward pass; stage `s` has `2^s · width` channels on `(H/2^s) × (W/2^s)` pixels.
//! On the README's benchmark (v1-56, batch 64) it gives about 0.4 GB, the measured peak.

use crate::model::ModelSpec;

/// Why an experiment is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "the experiment would need about {} of memory ({models} model(s), width {width}, batch \
     {batch}), more than the {} available; use a smaller --width or --batch, or fewer or \
     shallower models",
    gb(*need),
    gb(*available)
)]
pub struct TooBig {
    pub need: f64,
    pub available: f64,
    pub models: usize,
    pub width: usize,
    pub batch: usize,
}

fn gb(bytes: f64) -> String {
    match bytes / 1e9 {
        g if g < 1e6 => format!("{g:.1} GB"),
        g => format!("{g:.1e} GB"),
    }
}

/// The input a network sees: channels, height, width.
#[derive(Clone, Copy, Debug)]
pub struct Input {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Estimated peak bytes of training `specs` at base width `width` and batch `batch` (f64: the
/// product of absurd options must not overflow).
pub fn estimate_bytes(specs: &[ModelSpec], width: usize, batch: usize, input: Input) -> f64 {
    let w = width as f64;
    let pixels = (input.height as f64) * (input.width as f64);
    specs
        .iter()
        .map(|s| {
            // Seed presets are small toy nets: count them as one block per stage.
            let n = s.blocks_per_stage().unwrap_or(1).max(1) as f64;
            let convs = 2.0 * n;
            // Channels² of the three stages: w², (2w)², (4w)².
            let params = 9.0 * convs * w * w * (1.0 + 4.0 + 16.0) + 9.0 * input.channels as f64 * w;
            // Activations: w·HW, then 2w·HW/4 and 4w·HW/16.
            let acts = batch as f64 * pixels * w * convs * 3.0 * (1.0 + 0.5 + 0.25);
            4.0 * (4.0 * params + acts)
        })
        .sum()
}

/// Memory this process may use: `MemAvailable` from `/proc/meminfo`, else 16 GB.
pub fn available_bytes() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(16e9, |kb| kb * 1024.0)
}

/// Refuse an experiment whose estimate exceeds the memory available.
pub fn check(specs: &[ModelSpec], width: usize, batch: usize, input: Input) -> Result<(), TooBig> {
    let need = estimate_bytes(specs, width, batch, input);
    let available = available_bytes();
    if need.is_finite() && need <= available {
        return Ok(());
    }
    Err(TooBig {
        need,
        available,
        models: specs.len(),
        width,
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIFAR: Input = Input {
        channels: 3,
        height: 32,
        width: 32,
    };

    #[test]
    fn the_benchmark_net_is_about_what_it_measures() {
        let v1_56: ModelSpec = "v1-56".parse().unwrap();
        let gb = estimate_bytes(&[v1_56], 16, 64, CIFAR) / 1e9;
        assert!((0.2..0.8).contains(&gb), "{gb}");
    }

    #[test]
    fn absurd_options_are_refused_without_overflow() {
        let v1_8: ModelSpec = "v1-8".parse().unwrap();
        assert!(check(&[v1_8], 4_611_686_018_427_387_904, 8, CIFAR).is_err());
        assert!(check(&[v1_8], 100_000, 8, CIFAR).is_err());
        assert!(check(&vec![v1_8; 2_300_000], 16, 8, CIFAR).is_err());
        assert!(check(&[v1_8], 16, 8, CIFAR).is_ok());
    }
}
