//! `resviz landscape`: train N steps or load a saved run, then compute every run's loss
//! landscape (Li et al. 2018) on a grid and a 1-D slice, as a table or JSON on stdout,
//! optionally an SVG.

use super::common::measure_all;
use super::runs::{self, RunsOrigin};
use super::{LandscapeArgs, plot};
use crate::experiments::landscape::Landscape;
use crate::records::PreciseBn;
use crate::records::{LandscapeParams, LandscapeResult};
use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};

/// What `resviz landscape --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LandscapeReport {
    pub models: Vec<LandscapeResult>,
    pub runs: RunsOrigin,
}

/// Bytes each point of the grid or slice costs in the results: its loss (an f64, kept per run
/// and per row) and its JSON text.
const BYTES_PER_POINT: f64 = 48.0;

pub fn run(args: &LandscapeArgs) -> Result<()> {
    let (grid, slice) = (args.grid as u64, args.slice_points as u64);
    super::bounds::fits("--grid", grid, (grid as f64).powi(2), BYTES_PER_POINT)?;
    super::bounds::fits("--slice-points", slice, slice as f64, BYTES_PER_POINT)?;
    let mut params = LandscapeParams {
        grid: args.grid,
        slice_points: args.slice_points,
        images: args.images,
        seed: args.dir_seed,
        hessian_grid: args.hessian_grid,
        hessian_steps: args.hessian_steps,
        bn: PreciseBn {
            batches: args.m.bn_batches,
            batch: 0, // the experiment's batch, once it is known
            seed: 0,
        },
        ..LandscapeParams::default()
    };
    params.validate(None)?;
    let (trainer, _) = args
        .m
        .runs((0, Some(0)), |ds| Ok(params.validate(Some(ds))?))?;
    params.bn.batch = trainer.cfg.batch.max(1);
    let (train_len, image_len) = (trainer.ds.train.len(), trainer.ds.image_len());
    super::bounds::bn_batches(args.m.bn_batches, params.bn.batch, train_len, image_len)?;
    let x = Landscape::new(&trainer.ds, &params)?;
    let report = LandscapeReport {
        models: measure_all(&trainer, "landscape", &x)?,
        runs: args.m.origin(&trainer),
    };
    if let Some(dir) = &args.dump {
        super::dump::landscape(dir, &trainer, &x, &report)?;
    }
    let svg = || plot::landscape_svg(&report.models);
    runs::emit(&report, args.m.json, args.m.plot.as_deref(), svg, table)
}

/// Per model: loss at θ, the grid's minimum and where, the non-convex fraction (whole grid and
/// basin), the Hessian's median |λ_min/λ_max|, the slice's range.
fn table(r: &LandscapeReport) -> String {
    // Four digits: the loss at θ and the grid's minimum are compared.
    let plain = |x| crate::numfmt::plain_digits(x, 4);
    let Some(p) = r.models.first().map(|m| &m.params) else {
        return "no runs\n".into();
    };
    let mut out = format!(
        "loss landscape on the first {} training images, {g}×{g} grid over [-1, 1]², slice of {}, directions seed {}\n\
         basin: grid points with loss ≤ loss at θ + ln(classes)/2; Hessian |λmin/λmax| median over a {h}×{h} subgrid ({} Lanczos steps at most)\n\n\
         {:<16}{:>11}{:>11}{:>16}{:>12}{:>14}{:>12}{:>20}\n",
        p.images,
        p.slice_points,
        p.seed,
        p.hessian_steps,
        "model",
        "loss at θ",
        "grid min",
        "at (α, β)",
        "non-convex",
        "basin (pts)",
        "|λmin/λmax|",
        "slice min … max",
        g = p.grid,
        h = p.hessian_grid,
    );
    for m in &r.models {
        let (lo, hi) = m
            .slice
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        out += &format!(
            "{:<16}{:>11}{:>11}{:>16}{:>11.1}%{:>14}{:>12}{:>20}\n",
            m.model,
            plain(m.centre_loss),
            plain(m.min_loss),
            format!("({:+.2}, {:+.2})", m.min_at[0], m.min_at[1]),
            100.0 * m.nonconvex_frac,
            format!(
                "{:.1}% ({})",
                100.0 * m.basin_nonconvex_frac,
                m.basin_points
            ),
            format!("{:.3}", m.hessian_ratio_median),
            format!("{} … {}", plain(lo), plain(hi)),
        );
    }
    out
}
