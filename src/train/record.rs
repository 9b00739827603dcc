//! Plain-data records of training: what one step of one run measured, evaluations, and a run's
//! bounded history. No tensors here: these cross to the UI and into snapshots.

use serde::{Deserialize, Serialize};

/// Statistics at one block boundary (`stem`, `stages.S.B`) for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockStat {
    /// ‖∂L/∂x_l‖ over the whole batch tensor.
    pub grad_norm: f32,
    pub act_mean: f32,
    pub act_std: f32,
    /// Fraction of exactly-zero activations (dead ReLUs).
    pub act_zero_frac: f32,
}

/// One optimizer step of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based: the first step taken is step 1.
    pub step: u64,
    pub epoch: u32,
    pub loss: f32,
    /// Training accuracy on this batch, in [0, 1].
    pub acc: f32,
    pub lr: f32,
    pub img_per_s: f32,
    /// One per block boundary, input to output, in `RunInfo::block_names` order.
    pub blocks: Vec<BlockStat>,
    /// One per parameter, in `RunInfo::param_names` order.
    pub param_grad_norms: Vec<f32>,
}

/// An evaluation on the test split (batch norm in evaluation mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    pub loss: f32,
    pub acc: f32,
}

/// What a run is: its model and the names its records are indexed by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The model spec as given, e.g. `v1-56`.
    pub spec: String,
    pub block_names: Vec<String>,
    pub param_names: Vec<String>,
    pub num_params: usize,
}

/// Where a run stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    #[default]
    Running,
    Diverged { step: u64, reason: String },
    Finished,
}

/// A run's record over time. `steps` is bounded: see [`RunHistory::push`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHistory {
    pub info: RunInfo,
    pub status: RunStatus,
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
    /// Wall-clock seconds spent training this run.
    pub wall_secs: f64,
}

impl RunHistory {
    pub fn new(info: RunInfo) -> Self {
        Self { info, ..Default::default() }
    }

    /// Append a step record, keeping memory bounded for long runs.
    pub fn push(&mut self, rec: StepRecord) {
        self.steps.push(rec);
    }

    pub fn last(&self) -> Option<&StepRecord> {
        self.steps.last()
    }
}
