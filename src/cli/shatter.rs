//! `resviz shatter`: train N steps or load a saved run, then measure gradient shattering
//! (Balduzzi et al. 2017) of every run along one line between two test images, as a table or
//! JSON on stdout, optionally an SVG.

use super::common::measure_all;
use super::runs::{self, RunsOrigin};
use super::{ShatterArgs, plot};
use crate::experiments::depth_fit::depth_fits;
use crate::experiments::shatter::Shatter;
use crate::records::PreciseBn;
use crate::records::experiments::DepthFit;
use crate::records::{ShatterParams, ShatterResult};
use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};

/// What `resviz shatter --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShatterReport {
    pub models: Vec<ShatterResult>,
    /// Per family of specs measured at two depths or more, the decay fitted to 2^−L and 1/√L.
    pub fits: Vec<DepthFit>,
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
        pairs: args.pairs,
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
    let (train_len, image_len) = (trainer.ds.train.len(), trainer.ds.image_len());
    super::bounds::bn_batches(args.m.bn_batches, params.bn.batch, train_len, image_len)?;
    let x = Shatter::new(&trainer.ds, &params)?;
    let models = measure_all(&trainer, "shatter", &x)?;
    let report = ShatterReport {
        fits: depth_fits(&models),
        models,
        runs: args.m.origin(&trainer),
    };
    if let Some(dir) = &args.dump {
        super::dump::shatter(dir, &trainer, &x, &report)?;
    }
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
    let (a, b) = p.pair(p.pairs.saturating_sub(1));
    let mut out = format!(
        "gradient shattering along {} line(s) between test images {} → {} … {a} → {b}, {} points ({bn})\n\
         lag-k: mean autocorrelation over the pairs; ± the standard deviation, IQR the interquartile range of lag-1\n\n\
         {:<20}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}\n",
        p.pairs,
        p.from_image,
        p.to_image,
        p.points,
        "model",
        "lag-1",
        "±",
        "IQR",
        "lag-2",
        "lag-3",
        "lag-4",
    );
    for m in &r.models {
        let lag = |l: usize| {
            m.autocorr_mean
                .get(l)
                .map_or("-".into(), |a| format!("{a:.3}"))
        };
        out += &format!(
            "{:<20}{:>9}{:>8.3}{:>8.3}{:>9}{:>9}{:>9}\n",
            m.model,
            lag(0),
            m.lag1_std,
            m.lag1_iqr,
            lag(1),
            lag(2),
            lag(3),
        );
    }
    for f in &r.fits {
        out += &format!(
            "\n{} at depths {:?}: c·2^-L fits with RMS residual {:.3}, c/√L with {:.3} (closer: {})\n",
            f.family, f.depths, f.exp2_rms, f.inv_sqrt_rms, f.closer
        );
    }
    out
}
