//! Deterministic made-up run histories with realistic shapes and sizes, for tests, fixtures and
//! demos of replay and compare without training anything.

use super::{FORMAT_VERSION, RunSnapshot};
use crate::config::ExperimentConfig;
use crate::model::spec::{block_name, blocks_per_stage, boundary_names};
use crate::model::{ModelSpec, Variant};
use crate::records::record::{BlockStat, EvalRecord, RunHistory, RunInfo, RunStatus, StepRecord};

/// Block-boundary and trainable-parameter names for a `VARIANT-DEPTH` CIFAR-style spec
/// (`DEPTH = 6n + 2`, stages of n blocks, projection shortcuts where stages 2 and 3 start).
/// Specs that are not a ResNet (presets, or text that does not parse) are drawn as depth 20.
pub fn names(spec: &str) -> (Vec<String>, Vec<String>) {
    let (depth, plain) = shape(spec);
    let n = blocks_per_stage(depth).max(1);
    let blocks = boundary_names(&[n; 3]);
    let mut params: Vec<String> = ["stem.conv.weight", "stem.bn.weight", "stem.bn.bias"]
        .map(String::from)
        .to_vec();
    for s in 0..3 {
        for b in 0..n {
            let p = block_name(s, b);
            for leaf in [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "conv2.weight",
                "bn2.weight",
                "bn2.bias",
            ] {
                params.push(format!("{p}.{leaf}"));
            }
            if s > 0 && b == 0 && !plain {
                for leaf in [
                    "shortcut.conv.weight",
                    "shortcut.bn.weight",
                    "shortcut.bn.bias",
                ] {
                    params.push(format!("{p}.{leaf}"));
                }
            }
        }
    }
    params.push("fc.weight".into());
    params.push("fc.bias".into());
    (blocks, params)
}

/// `(depth, no shortcuts)` of `spec`, parsed by `model::spec`; depth 20 with shortcuts for
/// anything that is not a ResNet.
fn shape(spec: &str) -> (usize, bool) {
    match spec.parse::<ModelSpec>() {
        Ok(ModelSpec::Resnet { variant, depth, .. }) => (depth, variant == Variant::Plain),
        _ => (20, false),
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// One run of `steps` steps of `spec`, pushed through [`RunHistory::push`] (so long runs are
/// downsampled as in real use), evaluated every `steps / 10` steps, finished.
pub fn run(spec: &str, steps: u64, seed: u64) -> RunHistory {
    let (block_names, param_names) = names(spec);
    let info = RunInfo {
        spec: spec.to_string(),
        num_params: 270_000 + 1_000 * param_names.len(),
        block_names,
        param_names,
        init_weight_norms: Vec::new(),
    };
    let mut rng = Rng(seed
        ^ spec
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let plain = shape(spec).1;
    let nb = info.block_names.len();
    let np = info.param_names.len();
    let mut h = RunHistory::new(info);
    let eval_every = (steps / 10).max(1);
    for step in 1..=steps {
        let t = step as f32;
        let floor = if plain { 0.9 } else { 0.2 };
        let loss = floor + (2.3 - floor) * (-t / 1500.0).exp() + 0.1 * rng.unit();
        let blocks = (0..nb)
            .map(|l| {
                let depth_from_top = (nb - 1 - l) as f32;
                let growth: f32 = if plain { 1.46 } else { 1.04 };
                BlockStat {
                    grad_norm: 1e-3 * growth.powf(depth_from_top) * (0.8 + 0.4 * rng.unit()),
                    act_mean: 0.3 + 0.2 * rng.unit(),
                    act_std: 0.6 + 0.3 * rng.unit(),
                    act_zero_frac: 0.4 + 0.2 * rng.unit(),
                    ..BlockStat::default()
                }
            })
            .collect();
        let param_grad_norms = (0..np).map(|_| 1e-2 * (0.1 + rng.unit())).collect();
        h.push(StepRecord {
            step,
            epoch: (step / 156) as u32,
            loss,
            acc: (1.0 - loss / 2.5).clamp(0.0, 1.0),
            lr: 0.1,
            img_per_s: 150.0 + 10.0 * rng.unit(),
            blocks,
            param_grad_norms,
            update_ratios: Vec::new(),
            weight_norms: Vec::new(),
            grad_hists: Vec::new(),
        });
        if step % eval_every == 0 {
            h.evals.push(EvalRecord {
                step,
                loss: loss + 0.1,
                acc: (0.95 - loss / 2.5).max(0.0),
            });
        }
    }
    h.status = RunStatus::Finished;
    h.wall_secs = steps as f64 * 0.4;
    h
}

/// A snapshot of one [`run`] per spec, with a fixed creation time (`2026-01-01T00:00:00+00:00`)
/// so that its text is reproducible.
pub fn snapshot(specs: &[&str], steps: u64, seed: u64) -> RunSnapshot {
    let config = ExperimentConfig {
        models: specs.iter().map(|s| s.to_string()).collect(),
        dataset: "synthetic".into(),
        seed,
        // The records' rate, and the figures the fixture files were written with.
        batch: 64,
        lr: 0.1,
        eval_every: 100,
        ..Default::default()
    };
    RunSnapshot {
        format_version: FORMAT_VERSION,
        resviz_version: env!("CARGO_PKG_VERSION").to_string(),
        created: "2026-01-01T00:00:00+00:00".into(),
        config,
        dataset: "synthetic".into(),
        step: steps,
        runs: specs.iter().map(|s| run(s, steps, seed)).collect(),
        resume: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_model_contract() {
        let (b, p) = names("v1-56");
        assert_eq!(b.len(), 28);
        assert_eq!(b[1], "stages.0.0");
        assert_eq!(b[27], "stages.2.8");
        assert_eq!(p.len(), 3 + 27 * 6 + 2 * 3 + 2);
        assert_eq!(names("plain-20").0.len(), 10);
    }

    #[test]
    fn runs_are_deterministic() {
        assert_eq!(run("v2-20", 50, 1), run("v2-20", 50, 1));
        assert_ne!(run("v2-20", 50, 1), run("v2-20", 50, 2));
    }
}
