//! The on-disk layout of a snapshot, kept apart from the in-memory record types so that they can
//! evolve while old files keep loading (a later version adds its own structs here and a
//! migration in [`super::from_ron`]).
//!
//! Version 2 is version 1 plus the optional `resume` section, and version 3 is version 2 plus
//! the files' checksums in `resume` and the `Interrupted` status, so one set of structs reads all
//! three: a version 1 file is a version 2 file without `resume`, a version 2 file one without
//! checksums ([`super::validate`] requires them from version 3 on). Version 3 also
//! adds per step the optional `flow` (size-free gradient RMS, dead-unit fraction), `eq5`
//! (shortcut/branch split) and `updates` lists; older files load with them empty.
//!
//! Compared with the records, block statistics are tuples `(grad_norm, act_mean, act_std,
//! act_zero_frac)` instead of named structs, and empty parameter-norm lists are left out: this
//! halves the size of long histories. Each step record is one line of the file.

use super::resume::{ResumePoint, RunFiles};
use crate::config::ExperimentConfig;
use crate::records::record::{
    BlockStat, Eq5, EvalRecord, RunHistory, RunInfo, RunStatus, StepRecord,
};
use crate::train::trainer::TrainerState;
use serde::{Deserialize, Serialize};

/// Written at the top of every file (RON comments are ignored when loading).
pub const HEADER: &str = "\
// resviz run snapshot. Each step: blocks = one (grad_norm, act_mean, act_std, act_zero_frac)
// per block_names entry; params = one gradient norm per param_names entry, only for the most
// recent steps. evals = (step, loss, acc) on the test split.
";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub format_version: u32,
    pub resviz_version: String,
    pub created: String,
    pub config: ExperimentConfig,
    pub dataset: String,
    pub step: u64,
    /// Since version 2; only in snapshots saved with weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeV2>,
    pub runs: Vec<RunV1>,
}

/// The trainer's position and the files holding each run's weights and optimizer state
/// (relative to the snapshot's directory). `runs` is in the order of the snapshot's runs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeV2 {
    pub batches: u64,
    pub epoch: u32,
    pub sampler_epoch: u32,
    pub sampler_pos: usize,
    pub train_len: usize,
    pub base_lr: f64,
    pub restarts: u64,
    pub runs: Vec<ResumeRunV2>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRunV2 {
    pub spec: String,
    pub step: u64,
    pub weights: String,
    pub optimizer: String,
    /// Since version 3: SHA-256 of the weight and optimizer files, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_sha256: Option<String>,
}

impl ResumeV2 {
    fn from_point(p: &ResumePoint) -> Self {
        let t = &p.trainer;
        Self {
            batches: t.batches,
            epoch: t.epoch,
            sampler_epoch: t.sampler.0,
            sampler_pos: t.sampler.1,
            train_len: t.train_len,
            base_lr: t.base_lr,
            restarts: t.restarts,
            runs: t
                .runs
                .iter()
                .zip(&p.files)
                .map(|((spec, step), f)| ResumeRunV2 {
                    spec: spec.clone(),
                    step: *step,
                    weights: f.weights.clone(),
                    optimizer: f.optimizer.clone(),
                    weights_sha256: f.weights_sha256.clone(),
                    optimizer_sha256: f.optimizer_sha256.clone(),
                })
                .collect(),
        }
    }

    fn into_point(self) -> ResumePoint {
        let (runs, files) = self
            .runs
            .into_iter()
            .map(|r| {
                let f = RunFiles {
                    weights: r.weights,
                    optimizer: r.optimizer,
                    weights_sha256: r.weights_sha256,
                    optimizer_sha256: r.optimizer_sha256,
                };
                ((r.spec, r.step), f)
            })
            .unzip();
        ResumePoint {
            trainer: TrainerState {
                batches: self.batches,
                epoch: self.epoch,
                sampler: (self.sampler_epoch, self.sampler_pos),
                train_len: self.train_len,
                base_lr: self.base_lr,
                restarts: self.restarts,
                runs,
            },
            files,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunV1 {
    pub spec: String,
    pub num_params: usize,
    pub status: StatusV1,
    pub wall_secs: f64,
    pub block_names: Vec<String>,
    pub param_names: Vec<String>,
    pub evals: Vec<(u64, f32, f32)>,
    pub steps: Vec<StepV1>,
    /// Since version 4, per parameter: ‖w‖ at initialisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_weights: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
pub enum StatusV1 {
    Running,
    Finished,
    /// Since version 3: stopped by a signal before its last step.
    Interrupted,
    Diverged {
        step: u64,
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepV1 {
    pub step: u64,
    pub epoch: u32,
    pub loss: f32,
    pub acc: f32,
    pub lr: f32,
    pub img_per_s: f32,
    pub blocks: Vec<(f32, f32, f32, f32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<f32>,
    /// Since version 3, per parameter: ‖Δw‖/‖w‖ of the step's update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<f32>,
    /// Since version 3, per block: (grad_rms, dead_frac).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow: Vec<(f32, f32)>,
    /// Since version 3, per block: He 2016 eq. 5 (‖shortcut part‖, ‖branch part‖, cosine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eq5: Vec<Option<(f32, f32, f32)>>,
    /// Since version 4, per parameter: ‖w‖ after the step's update (beside `params`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f32>,
    /// Since version 4, per block: (‖ΔW‖/‖W‖, ‖W‖) of its convolution weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learn: Vec<(f32, f32)>,
    /// Per block: counts of its first conv weight's gradient by magnitude
    /// ([`crate::records::histogram::counts`]); absent in older files and where not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hists: Vec<Vec<u32>>,
}

impl File {
    pub fn from_snapshot(s: &super::RunSnapshot) -> Self {
        Self {
            format_version: s.format_version,
            resviz_version: s.resviz_version.clone(),
            created: s.created.clone(),
            config: s.config.clone(),
            dataset: s.dataset.clone(),
            step: s.step,
            resume: s.resume.as_ref().map(ResumeV2::from_point),
            runs: s.runs.iter().map(RunV1::from_history).collect(),
        }
    }

    pub fn into_snapshot(self) -> super::RunSnapshot {
        super::RunSnapshot {
            format_version: self.format_version,
            resviz_version: self.resviz_version,
            created: self.created,
            config: self.config,
            dataset: self.dataset,
            step: self.step,
            runs: self.runs.into_iter().map(RunV1::into_history).collect(),
            resume: self.resume.map(ResumeV2::into_point),
        }
    }
}

impl RunV1 {
    fn from_history(h: &RunHistory) -> Self {
        Self {
            spec: h.info.spec.clone(),
            num_params: h.info.num_params,
            status: match &h.status {
                RunStatus::Running => StatusV1::Running,
                RunStatus::Finished => StatusV1::Finished,
                RunStatus::Interrupted => StatusV1::Interrupted,
                RunStatus::Diverged { step, reason } => StatusV1::Diverged {
                    step: *step,
                    reason: reason.clone(),
                },
            },
            wall_secs: h.wall_secs,
            block_names: h.info.block_names.clone(),
            param_names: h.info.param_names.clone(),
            init_weights: h.info.init_weight_norms.clone(),
            evals: h.evals.iter().map(|e| (e.step, e.loss, e.acc)).collect(),
            steps: h
                .steps
                .iter()
                .map(|s| StepV1 {
                    step: s.step,
                    epoch: s.epoch,
                    loss: s.loss,
                    acc: s.acc,
                    lr: s.lr,
                    img_per_s: s.img_per_s,
                    blocks: s
                        .blocks
                        .iter()
                        .map(|b| (b.grad_norm, b.act_mean, b.act_std, b.act_zero_frac))
                        .collect(),
                    params: s.param_grad_norms.clone(),
                    updates: s.update_ratios.clone(),
                    weights: s.weight_norms.clone(),
                    hists: s.grad_hists.clone(),
                    learn: if s
                        .blocks
                        .iter()
                        .all(|b| b.update_ratio == 0.0 && b.weight_norm == 0.0)
                    {
                        Vec::new()
                    } else {
                        s.blocks
                            .iter()
                            .map(|b| (b.update_ratio, b.weight_norm))
                            .collect()
                    },
                    // Left out when not measured, so older records save as they loaded.
                    flow: if s
                        .blocks
                        .iter()
                        .all(|b| b.grad_rms == 0.0 && b.dead_frac == 0.0)
                    {
                        Vec::new()
                    } else {
                        s.blocks.iter().map(|b| (b.grad_rms, b.dead_frac)).collect()
                    },
                    eq5: if s.blocks.iter().all(|b| b.split.is_none()) {
                        Vec::new()
                    } else {
                        s.blocks
                            .iter()
                            .map(|b| b.split.map(|e| (e.shortcut, e.branch, e.cos)))
                            .collect()
                    },
                })
                .collect(),
        }
    }

    fn into_history(self) -> RunHistory {
        RunHistory {
            info: RunInfo {
                spec: self.spec,
                block_names: self.block_names,
                param_names: self.param_names,
                num_params: self.num_params,
                init_weight_norms: self.init_weights,
            },
            status: match self.status {
                StatusV1::Running => RunStatus::Running,
                StatusV1::Finished => RunStatus::Finished,
                StatusV1::Interrupted => RunStatus::Interrupted,
                StatusV1::Diverged { step, reason } => RunStatus::Diverged { step, reason },
            },
            steps: self
                .steps
                .into_iter()
                .map(|s| StepRecord {
                    step: s.step,
                    epoch: s.epoch,
                    loss: s.loss,
                    acc: s.acc,
                    lr: s.lr,
                    img_per_s: s.img_per_s,
                    blocks: s
                        .blocks
                        .into_iter()
                        .enumerate()
                        .map(|(i, (grad_norm, act_mean, act_std, act_zero_frac))| {
                            let (grad_rms, dead_frac) = s.flow.get(i).copied().unwrap_or_default();
                            let (update_ratio, weight_norm) =
                                s.learn.get(i).copied().unwrap_or_default();
                            BlockStat {
                                grad_norm,
                                grad_rms,
                                act_mean,
                                act_std,
                                act_zero_frac,
                                dead_frac,
                                update_ratio,
                                weight_norm,
                                split: s.eq5.get(i).copied().flatten().map(
                                    |(shortcut, branch, cos)| Eq5 {
                                        shortcut,
                                        branch,
                                        cos,
                                    },
                                ),
                            }
                        })
                        .collect(),
                    param_grad_norms: s.params,
                    update_ratios: s.updates,
                    weight_norms: s.weights,
                    grad_hists: s.hists,
                })
                .collect(),
            evals: self
                .evals
                .into_iter()
                .map(|(step, loss, acc)| EvalRecord { step, loss, acc })
                .collect(),
            wall_secs: self.wall_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{from_ron, synthetic, to_ron};
    use crate::records::histogram;
    use std::path::Path;

    #[test]
    fn gradient_histograms_round_trip_and_files_without_them_still_load() {
        let mut s = synthetic::snapshot(&["v1-20"], 5, 3);
        let hist = histogram::counts(&[0.0, 1e-3, 2e-3, 1e-7]).to_vec();
        s.runs[0].steps[4].grad_hists = vec![Vec::new(), hist.clone()];
        let text = to_ron(&s).unwrap();
        assert_eq!(
            text.matches("hists:").count(),
            1,
            "only the step that has them"
        );
        let back = from_ron(&text, Path::new("x.ron")).unwrap();
        assert_eq!(back.runs[0].steps[4].grad_hists[1], hist);
        assert_eq!(back.runs[0], s.runs[0]);
        // An older file is this text without the field: what saving a run without them writes.
        s.runs[0].steps[4].grad_hists = Vec::new();
        let old = to_ron(&s).unwrap();
        assert!(!old.contains("hists"));
        let back = from_ron(&old, Path::new("x.ron")).unwrap();
        assert!(back.runs[0].steps[4].grad_hists.is_empty());
    }
}
