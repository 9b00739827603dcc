//! `resviz bench`: images per second of a full training step (forward, backward, optimizer) per
//! model, the cost of the statistics, and peak resident memory.

use super::BenchArgs;
use crate::config::ExperimentConfig;
use crate::data::{self, Sampler};
use crate::model::{ModelSpec, Network};
use crate::train::optim::Optimizer;
use crate::train::trainer::net_options;
use color_eyre::eyre::{Result, bail};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
struct BenchReport {
    models: Vec<ModelBench>,
}

#[derive(Debug, Serialize)]
struct ModelBench {
    model: String,
    batch: usize,
    img_per_s: f64,
    stats_overhead_pct: f64,
    peak_rss_mb: f64,
}

const WARMUP: usize = 2;

pub fn run(args: &BenchArgs) -> Result<()> {
    let base = ExperimentConfig {
        models: vec!["v1-20".into()],
        dataset: "synthetic".into(),
        ..Default::default()
    };
    let cfg = args.exp.resolve(base)?;
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let specs = cfg
        .models
        .iter()
        .map(|m| m.parse::<ModelSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let ds = data::load(&cfg.dataset, cfg.seed)?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    Sampler::new(ds.train.len(), cfg.seed).next_batch(&ds, cfg.batch, false, &mut x, &mut y);
    let mut report = BenchReport { models: Vec::new() };
    for spec in specs {
        let mut net = Network::<f32>::new(spec, net_options(&ds, &cfg), cfg.seed);
        let mut opt = Optimizer::new(cfg.optimizer, cfg.momentum, cfg.weight_decay);
        let mut timed = |net: &mut Network<f32>, probes: bool| {
            net.set_probes_enabled(probes);
            let mut secs: Vec<f64> = (0..WARMUP + args.steps)
                .map(|_| {
                    let t0 = Instant::now();
                    let (_, mut grads) = net.train_pass(x.clone(), &y);
                    opt.step(&mut net.store, &mut grads, 1e-3);
                    t0.elapsed().as_secs_f64()
                })
                .skip(WARMUP)
                .collect();
            secs.sort_by(f64::total_cmp);
            secs[secs.len() / 2]
        };
        // Alternate so drift (thermal, other load) hits both measurements alike.
        let with = timed(&mut net, true);
        let without = timed(&mut net, false);
        let with = with.min(timed(&mut net, true));
        net.set_probes_enabled(true);
        let m = ModelBench {
            model: spec.to_string(),
            batch: y.len(),
            img_per_s: y.len() as f64 / with,
            stats_overhead_pct: 100.0 * (with - without) / without,
            peak_rss_mb: peak_rss_mb(),
        };
        if !args.json {
            eprintln!(
                "{:<12} batch {:>4}  {:>8.1} img/s  stats {:>+5.1} %  peak RSS {:>7.1} MB",
                m.model, m.batch, m.img_per_s, m.stats_overhead_pct, m.peak_rss_mb
            );
        }
        report.models.push(m);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// Peak resident set size of this process so far (Linux `VmHWM`), in MB; NaN elsewhere.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
