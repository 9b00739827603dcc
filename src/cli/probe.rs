//! `resviz probe`: one forward/backward pass at initialisation (BN in training mode), per model.

use super::ProbeArgs;
use super::common::first_batch;
use crate::config::ExperimentConfig;
use crate::model::spec::blocks_per_stage;
use crate::model::{ModelSpec, Network, PassStats};
use crate::records::flow::log_slope;
use crate::records::stage::{StageDirect, stage_direct};
use crate::train::trainer::{block_stats, net_options};
use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub models: Vec<ModelProbe>,
}

#[derive(Debug, Serialize)]
pub struct ModelProbe {
    pub model: String,
    /// Trainable parameters (batch-norm running statistics excluded).
    pub num_params: usize,
    pub loss: f64,
    pub blocks: Vec<BlockProbe>,
    pub params: Vec<ParamProbe>,
    /// He 2016 eq. 5's direct term across each stage, ‖∂L/∂x_L‖/‖∂L/∂x_l‖ (`records::stage`;
    /// `exact: false` where a ReLU or BN follows the addition, as in v1); empty for designs
    /// without identity shortcuts.
    pub stage_direct_share: Vec<StageDirect>,
}

#[derive(Debug, Serialize)]
pub struct BlockProbe {
    pub name: String,
    /// ‖∂L/∂x‖ at the block's output.
    pub grad_norm: f64,
    /// He 2016 eq. 5 at the block's *input* x_l (the previous entry's output): the norm of the
    /// part of ∂L/∂x_l that arrives through the shortcut (0 for a plain block) and of the part
    /// that comes back through the branch, and their cosine. Absent for the stem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm_shortcut: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm_branch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_cos: Option<f64>,
    /// ‖∂L/∂x‖·√B/√(C·H·W): size- and batch-free RMS per element.
    pub grad_rms: f64,
    pub act_mean: f64,
    pub act_std: f64,
    pub act_zero_frac: f64,
    /// Fraction of channels zero for every example of the batch.
    pub act_dead_frac: f64,
}

#[derive(Debug, Serialize)]
pub struct ParamProbe {
    pub name: String,
    pub grad_norm: f64,
}

pub fn run(args: &ProbeArgs) -> Result<()> {
    let fb = first_batch(&args.exp, ExperimentConfig::default())?;
    let (cfg, ds, x, y) = (&fb.cfg, &fb.ds, &fb.x, &fb.y);
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir)
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        write_batch(
            &dir.join("batch.safetensors"),
            x,
            y,
            (y.len(), ds.channels, ds.height, ds.width),
        )?;
    }
    let mut report = ProbeReport { models: Vec::new() };
    for &spec in &fb.specs {
        let mut net = Network::<f32>::new(spec, net_options(ds, cfg), cfg.seed);
        if let Some(dir) = &args.dump {
            net.save_safetensors(&dir.join(format!("{spec}.safetensors")))?;
        }
        let (stats, _grads) = net.train_pass(x.clone(), y);
        report.models.push(model_probe(&net, spec, &stats));
    }
    let json = serde_json::to_string(&report)?;
    if let Some(dir) = &args.dump {
        let path = dir.join("probe.json");
        std::fs::write(&path, &json)
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    }
    match args.json {
        true => super::output::print(&(json + "\n")),
        false => super::output::print(&table(&report)),
    }
}

fn model_probe(net: &Network<f32>, spec: ModelSpec, s: &PassStats) -> ModelProbe {
    let stats = block_stats(s, net.block_sizes());
    let blocks = net
        .block_names()
        .iter()
        .zip(&s.blocks)
        .zip(&stats)
        .enumerate()
        .map(|(i, ((name, (a, g)), st))| {
            let split = s.splits.get(i).copied().flatten();
            BlockProbe {
                name: name.clone(),
                grad_norm: *g,
                grad_norm_shortcut: split.map(|p| p.shortcut()),
                grad_norm_branch: split.map(|p| p.branch()),
                grad_cos: split.map(|p| p.cosine()),
                grad_rms: st.grad_rms as f64,
                act_mean: a.mean as f64,
                act_std: a.std as f64,
                act_zero_frac: a.zero_frac as f64,
                act_dead_frac: a.dead_frac as f64,
            }
        })
        .collect();
    let params = net
        .store
        .params
        .iter()
        .zip(&s.param_grad_norms)
        .map(|(p, g)| ParamProbe {
            name: p.name.clone(),
            grad_norm: *g,
        })
        .collect();
    let names: Vec<String> = net.block_names().to_vec();
    let stage_direct_share = match spec {
        ModelSpec::Resnet { variant, depth, .. } => stage_direct(
            variant,
            blocks_per_stage(depth),
            &names,
            &s.blocks.iter().map(|b| b.1).collect::<Vec<f64>>(),
        ),
        ModelSpec::Seed(_) => Vec::new(),
    };
    ModelProbe {
        model: spec.to_string(),
        num_params: net.num_params(),
        loss: s.loss,
        blocks,
        params,
        stage_direct_share,
    }
}

/// A row per block boundary, a column of ‖∂L/∂x‖ per model; at the bottom the loss, the fitted
/// growth of the size-free RMS per block toward the input (signed: > 1 grows, < 1 shrinks) and
/// the shortcut's median share of the block-input gradient (He 2016 eq. 5).
pub fn table(r: &ProbeReport) -> String {
    let rows = r.models.iter().map(|m| m.blocks.len()).max().unwrap_or(0);
    let longest = r.models.iter().find(|m| m.blocks.len() == rows);
    let mut out = format!("{:<14}", "‖∂L/∂x‖");
    for m in &r.models {
        out += &format!("{:>14}", m.model);
    }
    out.push('\n');
    for i in 0..rows {
        out += &format!("{:<14}", longest.map_or("", |m| m.blocks[i].name.as_str()));
        for m in &r.models {
            // Shallower models have fewer rows: blank, not misaligned.
            match m.blocks.get(i) {
                Some(b) if m.blocks.len() == rows => out += &format!("{:>14.4e}", b.grad_norm),
                _ => out += &format!("{:>14}", ""),
            }
        }
        out.push('\n');
    }
    out += &format!("{:<14}", "loss");
    for m in &r.models {
        out += &format!("{:>14.4}", m.loss);
    }
    out += &format!("\n{:<14}", "growth→input");
    for m in &r.models {
        let slope = log_slope(m.blocks.iter().map(|b| b.grad_rms));
        out += &format!(
            "{:>14}",
            slope.map_or("—".into(), |s| format!("×{:.3}/block", s.factor()))
        );
    }
    out += &format!("\n{:<14}", "median share");
    for m in &r.models {
        let mut v: Vec<f64> = m
            .blocks
            .iter()
            .filter_map(|b| {
                Some(b.grad_norm_shortcut? / (b.grad_norm_shortcut? + b.grad_norm_branch?))
            })
            .filter(|s| s.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        let med = v.get(v.len() / 2).map_or("—".into(), |s| format!("{s:.3}"));
        out += &format!("{med:>14}");
    }
    out += &format!("\n{:<14}", "stage direct");
    for m in &r.models {
        let v: Vec<String> = m
            .stage_direct_share
            .iter()
            .map(|d| format!("{:.2}{}", d.ratio, if d.exact { "" } else { "*" }))
            .collect();
        let text = if v.is_empty() {
            "—".into()
        } else {
            v.join("/")
        };
        out += &format!("{text:>14}");
    }
    out.push('\n');
    if r.models
        .iter()
        .any(|m| !m.stage_direct_share.iter().all(|d| d.exact))
    {
        out += "stage direct: ‖∂L/∂x_L‖/‖∂L/∂x_l‖ per stage (He 2016 eq. 5's direct term); \
                * a ReLU or BN follows the addition, so eq. 5 does not hold exactly\n";
    }
    if r.models.iter().any(|m| m.blocks.len() != rows) {
        out += "(models with fewer blocks are shown in the spread row only)\n";
    }
    out
}

fn write_batch(
    path: &Path,
    x: &[f32],
    y: &[usize],
    shape: (usize, usize, usize, usize),
) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect();
    let views = vec![
        (
            "x",
            TensorView::new(Dtype::F32, vec![shape.0, shape.1, shape.2, shape.3], &xb)?,
        ),
        ("y", TensorView::new(Dtype::I64, vec![y.len()], &yb)?),
    ];
    safetensors::serialize_to_file(views, None, path)
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}
