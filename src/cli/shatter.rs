//! `resviz shatter`: train N steps or load a saved run, then measure gradient shattering
//! (Balduzzi et al. 2017) of every run along one line between two test images, as a table or
//! JSON on stdout, optionally an SVG.

use super::common::measure_all;
use super::runs::{self, RunsOrigin};
use super::{ShatterArgs, plot};
use crate::experiments::shatter::Shatter;
use crate::records::PreciseBn;
use crate::records::{ShatterParams, ShatterResult};
use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};

/// What `resviz shatter --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShatterReport {
    pub models: Vec<ShatterResult>,
    pub runs: RunsOrigin,
}

/// Bytes each point of the line costs in the results: t, the logit and g (f64 each) and their
/// JSON text.
const BYTES_PER_POINT: f64 = 96.0;

pub fn run(args: &ShatterArgs) -> Result<()> {
    let points = args.points as u64;
    super::bounds::fits("--points", points, points as f64, BYTES_PER_POINT)?;
    let mut params = ShatterParams {
        from_image: args.from_image,
        to_image: args.to_image,
        class: args.class,
        points: args.points,
        lags: args.lags,
        bn: PreciseBn {
            batches: args.m.bn_batches,
            batch: 0, // the experiment's batch, once it is known
            seed: 0,
        },
        ..ShatterParams::default()
    };
    params.validate(None)?;
    let (trainer, _) = args
        .m
        .runs((0, Some(0)), |ds| Ok(params.validate(Some(ds))?))?;
    params.bn.batch = trainer.cfg.batch.max(1);
    let x = Shatter::new(&trainer.ds, &params)?;
    let report = ShatterReport {
        models: measure_all(&trainer, "shatter", &x)?,
        runs: args.m.origin(&trainer),
    };
    let svg = || plot::shatter_svg(&report.models);
    runs::emit(&report, args.m.json, args.m.plot.as_deref(), svg, table)
}

/// Per model: the class, lag-1 … lag-4 autocorrelation and the size of g.
fn table(r: &ShatterReport) -> String {
    let Some(p) = r.models.first().map(|m| &m.params) else {
        return "no runs\n".into();
    };
    let bn = match p.bn.batches {
        0 => "the runs' own batch-norm statistics".to_string(),
        b => format!(
            "batch norm re-estimated from {b} × {} training images",
            p.bn.batch
        ),
    };
    let mut out = format!(
        "gradient shattering along test images {} → {}, {} points ({bn})\n\n{:<16}{:>6}{:>9}{:>9}{:>9}{:>9}{:>12}\n",
        p.from_image,
        p.to_image,
        p.points,
        "model",
        "class",
        "lag-1",
        "lag-2",
        "lag-3",
        "lag-4",
        "mean |g|"
    );
    for m in &r.models {
        let lag = |l: usize| m.autocorr.get(l).map_or("-".into(), |a| format!("{a:.3}"));
        let mean = m.grad.iter().map(|g| g.abs()).sum::<f64>() / m.grad.len().max(1) as f64;
        out += &format!(
            "{:<16}{:>6}{:>9}{:>9}{:>9}{:>9}{:>12}\n",
            m.model,
            m.class,
            lag(0),
            lag(1),
            lag(2),
            lag(3),
            crate::numfmt::plain(mean)
        );
    }
    out
}
