//! The stream's lines as they are on the wire (serde shapes, version 1). Kept apart from the
//! records they become, so the records can change while the format stays put.

use serde::{Deserialize, Deserializer};

/// JSON has no NaN or infinity: a writer sends `null` for a non-finite number (a diverged loss),
/// read back as NaN.
fn num<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map_or(f32::NAN, |v| v as f32))
}

/// An optional number: absent is `None` (not measured), `null` is `Some(NaN)`.
fn opt_num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    num(d).map(Some)
}

/// `{"kind": "run", ...}`: the first line of a stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunLine {
    pub version: u64,
    /// The run's name as the dashboard shows it (the model, e.g. `resnet18`).
    pub name: String,
    /// Block boundaries, input to output (the first is the input of the first block).
    pub block_names: Vec<String>,
    pub param_names: Vec<String>,
    #[serde(default)]
    pub num_params: usize,
    /// What the run trains on, e.g. `cifar10` or `synthetic`.
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub batch: Option<usize>,
    #[serde(default)]
    pub lr: Option<f64>,
    /// Shown beside the dataset, e.g. `rank 0 of 2, its local batch`.
    #[serde(default)]
    pub note: Option<String>,
    /// The writer, e.g. `resviz_torch 0.1.0, torch 2.15.0`.
    #[serde(default)]
    pub writer: Option<String>,
    /// ‖W‖ per parameter (in `param_names` order) when the writer attached to the model, before
    /// any update: what weight growth ‖W_t‖/‖W_0‖ is measured against. Absent in older streams
    /// (growth then stays unknown); `null` entries are read as NaN (unknown for that tensor).
    #[serde(default, deserialize_with = "opt_nums")]
    pub init_weight_norms: Option<Vec<f32>>,
}

/// An optional list of numbers, `null` entries read as NaN.
fn opt_nums<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
    let v = Option::<Vec<Option<f64>>>::deserialize(d)?;
    Ok(v.map(|v| {
        v.into_iter()
            .map(|x| x.map_or(f32::NAN, |x| x as f32))
            .collect()
    }))
}

/// `{"kind": "step", ...}`: one optimizer step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLine {
    pub step: u64,
    #[serde(deserialize_with = "num")]
    pub loss: f32,
    #[serde(default, deserialize_with = "opt_num")]
    pub acc: Option<f32>,
    #[serde(default, deserialize_with = "opt_num")]
    pub lr: Option<f32>,
    #[serde(default)]
    pub epoch: u32,
    #[serde(default, deserialize_with = "opt_num")]
    pub img_per_s: Option<f32>,
    pub blocks: Vec<BlockLine>,
    /// Absent: no parameter statistics this step.
    #[serde(default)]
    pub params: Option<Vec<ParamLine>>,
}

/// One block boundary of a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockLine {
    pub name: String,
    /// ‖∂L/∂x‖ of the boundary (the block's output; the first: the first block's input).
    #[serde(deserialize_with = "num")]
    pub grad_norm: f32,
    /// ‖∂L/∂x‖·√B/√(C·H·W); absent: 0 (unknown).
    #[serde(default, deserialize_with = "opt_num")]
    pub grad_rms: Option<f32>,
    /// He 2016 eq. 5 at the block's input: both norms present, or neither (no shortcut).
    #[serde(default, deserialize_with = "opt_num")]
    pub grad_norm_shortcut: Option<f32>,
    #[serde(default, deserialize_with = "opt_num")]
    pub grad_norm_branch: Option<f32>,
    #[serde(default, deserialize_with = "opt_num")]
    pub cos: Option<f32>,
    #[serde(deserialize_with = "num")]
    pub act_mean: f32,
    #[serde(deserialize_with = "num")]
    pub act_std: f32,
    #[serde(deserialize_with = "num")]
    pub act_zero_frac: f32,
    #[serde(default, deserialize_with = "opt_num")]
    pub dead_frac: Option<f32>,
}

/// One parameter of a step, in the header's `param_names` order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamLine {
    #[serde(deserialize_with = "num")]
    pub grad_norm: f32,
    /// ‖W‖ after the step; absent: not measured.
    #[serde(default, deserialize_with = "opt_num")]
    pub weight_norm: Option<f32>,
    /// ‖ΔW‖/‖W‖ of the step's update; absent: not measured (no optimizer given).
    #[serde(default, deserialize_with = "opt_num")]
    pub update_ratio: Option<f32>,
}
