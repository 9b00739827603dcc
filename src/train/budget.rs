//! How much memory an experiment will need, estimated from its shape before anything is
//! allocated, so that `--width 100000` or a config listing millions of models is refused with a
//! message instead of allocating until the kernel kills the process (or overflowing a size).
//!
//! The estimate counts, per model, four f32 copies of the parameters (weights, gradients, two
//! optimizer moments) and, per 3×3 convolution, 3.5 activation-sized tensors of the batch kept
//! for the backward pass; stage `s` of a ResNet has `2^s · width` channels on
//! `(H/2^s) × (W/2^s)` pixels, the seed presets their own fixed layout at full resolution.

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

/// f32 values a 3×3 convolution keeps per output value for the backward pass and its
/// neighbours (its output, the BN and ReLU outputs, the column buffer's share), calibrated on
/// measured peaks at batch 1000 (`/usr/bin/time -v`, minus the batch-1 baseline): 2.5 to 3.5
/// for v1-8, v1-20, seed-v1 and seed-v2 on mnist and synthetic.
const KEPT_PER_CONV: f64 = 3.5;

/// Convolution outputs per input pixel of one image (channels × relative resolution, summed
/// over every 3×3 conv and the 1×1 projections), and the parameter count.
fn conv_footprint(spec: &ModelSpec, width: usize, in_channels: f64) -> (f64, f64) {
    let Some(n) = spec.blocks_per_stage() else {
        // Seed presets (model::network): a 16-channel stem, a 16 → 16 block and a 16 → 32 block
        // with a 1×1 projection, all at full resolution, whatever --width says.
        let outputs = 16.0 + 2.0 * 16.0 + 2.0 * 32.0 + 32.0;
        let params = 9.0 * (in_channels * 16.0 + 3.0 * 16.0 * 16.0 + 32.0 * 32.0) + 16.0 * 32.0;
        return (outputs, params);
    };
    let (n, w) = (n.max(1) as f64, width as f64);
    let convs = 2.0 * n;
    // The stem at w, then per stage 2n convs: w·HW, 2w·HW/4, 4w·HW/16.
    let outputs = w + w * convs * (1.0 + 0.5 + 0.25);
    // Channels² of the three stages: w², (2w)², (4w)².
    let params = 9.0 * convs * w * w * (1.0 + 4.0 + 16.0) + 9.0 * in_channels * w;
    (outputs, params)
}

/// Estimated peak bytes of training `specs` at base width `width` and batch `batch` (f64: the
/// product of absurd options must not overflow): four f32 copies of the parameters (weights,
/// gradients, two optimizer moments) and [`KEPT_PER_CONV`] f32 per convolution output.
pub fn estimate_bytes(specs: &[ModelSpec], width: usize, batch: usize, input: Input) -> f64 {
    let pixels = (input.height as f64) * (input.width as f64);
    specs
        .iter()
        .map(|s| {
            let (outputs, params) = conv_footprint(s, width, input.channels as f64);
            let acts = batch as f64 * pixels * outputs * KEPT_PER_CONV;
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

    /// The seed presets ignore --width and keep full resolution: at batch 1000 on MNIST seed-v1
    /// peaked at 1.21 GB (1.11 GB above batch 1), which the estimate must not undercut.
    #[test]
    fn seed_nets_are_not_underestimated() {
        let mnist = Input {
            channels: 1,
            height: 28,
            width: 28,
        };
        let seed: ModelSpec = "seed-v1".parse().unwrap();
        for width in [4, 16] {
            let gb = estimate_bytes(&[seed], width, 1000, mnist) / 1e9;
            assert!((1.0..2.0).contains(&gb), "width {width}: {gb}");
        }
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
