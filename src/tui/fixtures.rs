//! Deterministic fake training histories for tests: a plain-56-like run whose gradient norm grows
//! geometrically toward the input (first/last ≈ 10⁴, as `resviz probe` measures on plain-56), and a v1-like run
//! whose profile stays flat. A tiny LCG keeps them reproducible without an RNG dependency.

use crate::config::ExperimentConfig;
use crate::model::block_names;
use crate::records::record::{BlockStat, Eq5, EvalRecord, RunHistory, RunInfo, StepRecord};

struct Lcg(u64);

impl Lcg {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// The shape of a fake run.
struct Shape {
    seed: u64,
    /// Block `l` of `L`'s log10 gradient norm at step 1.
    log_norm: fn(usize, usize) -> f32,
    /// The last `dead` blocks have more than half their ReLUs dead: an alarm to show.
    dead: usize,
    /// Where the loss and accuracy curves head.
    final_loss: f32,
    final_acc: f32,
}

fn history(spec: &str, depth: usize, steps: u64, shape: Shape) -> RunHistory {
    let Shape {
        seed,
        log_norm,
        dead,
        final_loss,
        final_acc,
    } = shape;
    let names = block_names(depth);
    let blocks = names.len();
    let mut rng = Lcg(seed);
    let mut h = RunHistory::new(RunInfo {
        spec: spec.into(),
        block_names: names.clone(),
        param_names: names
            .iter()
            .map(|n| match n.as_str() {
                "stem" => "stem.conv.weight".to_string(),
                b => format!("{b}.conv1.weight"),
            })
            .collect(),
        num_params: 0,
        init_weight_norms: vec![1.0; blocks],
    });
    for step in 1..=steps {
        let t = step as f32 / steps as f32;
        let progress = 1.0 - (-4.0 * t).exp();
        let stats = (0..blocks)
            .map(|l| {
                // The profile relaxes a little as training goes on.
                let g = 10f32.powf(log_norm(l, blocks) * (1.0 - 0.3 * t) + 0.1 * rng.next());
                // Residual runs: the shortcut's share rises from about a half as training goes on.
                let share = if spec.starts_with("plain") {
                    0.0
                } else {
                    0.5 + 0.3 * t
                };
                // Plain runs: the input blocks' weights grow and their update ratio falls, as
                // measured on plain-56; residual runs learn evenly across depth.
                let from_out = 1.0 - l as f32 / (blocks - 1).max(1) as f32;
                let (update_ratio, weight_norm) = if spec.starts_with("plain") {
                    (
                        3e-3 * 10f32.powf(-1.5 * from_out * t),
                        1.0 + 40.0 * from_out * from_out * progress,
                    )
                } else {
                    (3e-3 * (0.9 + 0.05 * (l % 5) as f32), 1.0 + 0.3 * progress)
                };
                BlockStat {
                    update_ratio,
                    weight_norm,
                    grad_norm: g,
                    grad_rms: g * 0.01,
                    act_mean: 0.4 + 0.05 * rng.next(),
                    act_std: 0.9 + 0.1 * rng.next(),
                    act_zero_frac: if l + dead >= blocks { 0.6 } else { 0.45 } + 0.02 * rng.next(),
                    dead_frac: if l + dead >= blocks { 0.25 } else { 0.0 },
                    split: (l > 0).then_some(Eq5 {
                        shortcut: g * share,
                        branch: g * (1.0 - share),
                        cos: 0.0,
                    }),
                }
            })
            .collect();
        h.push(StepRecord {
            step,
            epoch: (step / 100) as u32,
            loss: 2.3 + (final_loss - 2.3) * progress + 0.1 * rng.next(),
            acc: 0.1 + (final_acc - 0.1) * progress + 0.03 * rng.next(),
            lr: 0.1,
            img_per_s: 400.0 + 10.0 * rng.next(),
            blocks: stats,
            // One weight tensor per block boundary (the stem's conv, then each block's conv1).
            param_grad_norms: (0..blocks).map(|l| 0.05 * (1.0 + l as f32)).collect(),
            update_ratios: (0..blocks)
                .map(|l| 1e-3 * (1.0 + (l % 5) as f32) * (1.0 - 0.5 * t))
                .collect(),
            weight_norms: (0..blocks).map(|l| 1.0 + 0.1 * l as f32).collect(),
            grad_hists: (0..blocks).map(|l| grad_hist(l, blocks, t)).collect(),
        });
        if step % 50 == 0 {
            h.evals.push(EvalRecord {
                step,
                loss: 2.3 + (final_loss - 2.3) * progress + 0.05,
                acc: 0.1 + (final_acc - 0.1) * progress - 0.02,
            });
        }
    }
    h
}

/// A bell of 1000 gradient entries over the magnitude bins, centred two decades lower as
/// training goes on and one decade lower toward the output, with a few exact zeros.
fn grad_hist(l: usize, blocks: usize, t: f32) -> Vec<u32> {
    use crate::records::histogram::{BINS, LEN};
    let centre = 12.0 - 4.0 * t - 2.0 * l as f32 / blocks.max(1) as f32;
    (0..LEN)
        .map(|k| match k {
            0 => 5,
            _ => (1000.0 * (-((k - 1) as f32 - centre).powi(2) / 4.0).exp()).round() as u32,
        })
        .take(BINS + 1)
        .collect()
}

/// Grows ×1.46 per block toward the input: 10⁻¹ at the output, ~10³·⁴ at the stem.
pub fn plain(depth: usize, steps: u64) -> RunHistory {
    let log_norm = |l, n| -1.0 + 0.164 * (n - 1 - l) as f32;
    let shape = Shape {
        seed: 1,
        log_norm,
        dead: 3,
        final_loss: 1.6,
        final_acc: 0.45,
    };
    history(&format!("plain-{depth}"), depth, steps, shape)
}

/// Flat within about ×3 over the depth.
pub fn v1(depth: usize, steps: u64) -> RunHistory {
    let log_norm = |l, n| 0.2 - 0.5 * l as f32 / n as f32;
    let shape = Shape {
        seed: 2,
        log_norm,
        dead: 0,
        final_loss: 0.35,
        final_acc: 0.92,
    };
    history(&format!("v1-{depth}"), depth, steps, shape)
}

pub fn config() -> ExperimentConfig {
    ExperimentConfig {
        models: vec!["plain-56".into(), "v1-56".into()],
        dataset: "mnist".into(),
        // The figures the snapshots were drawn with (before the default became the dashboard's).
        batch: 64,
        lr: 0.1,
        ..Default::default()
    }
}
