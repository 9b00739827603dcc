//! `resviz bench`: images per second of a full training step (forward, backward, optimizer) per
//! model, the cost of the statistics, images per second of the forward-only path (at the same
//! batch and at the evaluation's batch), and peak resident memory; `--kernels` times the conv and
//! batch-norm kernels alone.

use super::BenchArgs;
use super::common::first_batch;
use crate::config::ExperimentConfig;
use crate::engine;
use crate::engine::timing::{KernelTiming, kernel_timings};
use crate::model::Network;
use crate::train::optim::Optimizer;
use crate::train::trainer::{EVAL_BATCH, net_options};
use color_eyre::eyre::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
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
    /// A 95 % interval of `stats_overhead_pct` from the spread of the paired differences
    /// ([`median_interval`]); it narrows as √steps. Drift between runs comes on top.
    stats_overhead_ci_pct: [f64; 2],
    /// Forward-only passes (`Network::infer`, BN folded) on the same batch.
    fwd_img_per_s: f64,
    /// `fwd_img_per_s / img_per_s`.
    fwd_ratio: f64,
    /// The forward-only path at the test evaluation's batch size (the batch repeated).
    eval_batch: usize,
    fwd_eval_img_per_s: f64,
    peak_rss_mb: f64,
}

const WARMUP: usize = 2;

/// Paired steps per model by default: enough for the statistics' cost to about ±1 point.
const STEPS: usize = 40;
/// Runs per kernel by default with `--kernels` (the minimum is reported).
const KERNEL_RUNS: usize = 10;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    if let Some(s) = args.steps {
        // Three timings (f64) per step are kept for the medians.
        super::bounds::fits("--steps", s as u64, s as f64, 24.0)?;
    }
    if args.kernels {
        return kernels(args, args.steps.unwrap_or(KERNEL_RUNS));
    }
    let steps = args.steps.unwrap_or(STEPS);
    let fb = first_batch(&args.exp, ExperimentConfig::default())?;
    let (cfg, ds, x, y) = (&fb.cfg, &fb.ds, &fb.x, &fb.y);
    let mut report = BenchReport { models: Vec::new() };
    for &spec in &fb.specs {
        let mut net = Network::<f32>::new(spec, net_options(ds, cfg), cfg.seed);
        let mut opt = Optimizer::new(cfg.optimizer, cfg.momentum, cfg.weight_decay);
        let mut step = |net: &mut Network<f32>, stats: bool| {
            net.set_probes_enabled(stats);
            let t0 = Instant::now();
            engine::on_pool(|| {
                let (_, mut grads) = net.train_pass_with(x.clone(), y, stats);
                opt.step_with(&mut net.store, &mut grads, 1e-3, stats);
                drop(grads);
            });
            t0.elapsed().as_secs_f64()
        };
        for _ in 0..WARMUP {
            step(&mut net, true);
        }
        // Every timed step with statistics is paired with one without (in alternating order), so
        // drift (thermal, other load) hits both alike; the cost is the median paired difference.
        let (mut with, mut diff) = (Vec::new(), Vec::new());
        let mut without = Vec::new();
        let bar = progress(&spec.to_string(), steps, args.json);
        for i in 0..steps {
            let (w, wo) = if i % 2 == 0 {
                let w = step(&mut net, true);
                (w, step(&mut net, false))
            } else {
                let wo = step(&mut net, false);
                (step(&mut net, true), wo)
            };
            with.push(w);
            without.push(wo);
            diff.push(w - wo);
            bar.inc(1);
        }
        bar.set_message(format!("{spec}: forward-only path"));
        net.set_probes_enabled(true);
        let interval = median_interval(&diff);
        let (with, without, diff) = (median(with), median(without), median(diff));
        let img_per_s = y.len() as f64 / with;
        let fwd_img_per_s = forward_rate(&net, x, y.len(), steps);
        let eval_x = x.repeat(EVAL_BATCH.div_ceil(y.len().max(1)));
        let eval_x = &eval_x[..EVAL_BATCH * (x.len() / y.len().max(1))];
        let m = ModelBench {
            model: spec.to_string(),
            batch: y.len(),
            img_per_s,
            stats_overhead_pct: 100.0 * diff / without,
            stats_overhead_ci_pct: interval.map(|d| 100.0 * d / without),
            fwd_img_per_s,
            fwd_ratio: fwd_img_per_s / img_per_s,
            eval_batch: EVAL_BATCH,
            fwd_eval_img_per_s: forward_rate(&net, eval_x, EVAL_BATCH, steps),
            peak_rss_mb: peak_rss_mb(),
        };
        bar.finish_and_clear();
        if !args.json {
            super::output::note(&format!(
                "{:<12} batch {:>4}  {:>8.1} img/s  stats {:>+5.1} % (95 %: {:+.1}…{:+.1})  \
                 forward {:>8.1} img/s (×{:.2}; batch {}: {:.1})  peak RSS {:>7.1} MB",
                m.model,
                m.batch,
                m.img_per_s,
                m.stats_overhead_pct,
                m.stats_overhead_ci_pct[0],
                m.stats_overhead_ci_pct[1],
                m.fwd_img_per_s,
                m.fwd_ratio,
                m.eval_batch,
                m.fwd_eval_img_per_s,
                m.peak_rss_mb
            ));
        }
        report.models.push(m);
    }
    if args.json {
        super::output::print(&(serde_json::to_string(&report)? + "\n"))?;
    }
    Ok(())
}

/// A bar of paired steps on stderr (hidden where stderr is not a terminal).
fn progress(model: &str, steps: usize, json: bool) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64).with_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} pairs  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{model}: timing steps with and without statistics"));
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Images per second of the forward-only path on `x` (`n` images): the median of `steps` timed
/// passes after a warm-up pass (which also folds the weights).
fn forward_rate(net: &Network<f32>, x: &[f32], n: usize, steps: usize) -> f64 {
    let pass = || {
        let t0 = Instant::now();
        std::hint::black_box(engine::on_pool(|| net.infer(x, n)));
        t0.elapsed().as_secs_f64()
    };
    pass();
    n as f64 / median((0..steps.max(1)).map(|_| pass()).collect())
}

/// A distribution-free 95 % interval for the median of `v`: the order statistics n/2 ∓ 0.98·√n
/// (the binomial count of values below the median, in its normal approximation). Ten steps give
/// about ±2 points on this 2-core machine, a hundred about ±0.5: `--steps` sets the precision.
fn median_interval(v: &[f64]) -> [f64; 2] {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return [f64::NAN; 2];
    }
    let half = 0.98 * (n as f64).sqrt();
    let lo = (n as f64 / 2.0 - half).floor().max(0.0) as usize;
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    [v[lo.min(n - 1)], v[hi]]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[derive(Debug, Serialize)]
struct KernelBench {
    kernel: String,
    /// `[N, C, H, W]` of the input.
    shape: [usize; 4],
    fwd_ms: f64,
    fwd_rate: f64,
    /// Conv: dX and dW; batch norm: dX, dγ, dβ.
    bwd_ms: f64,
    bwd_rate: f64,
    /// Of the rates: GFLOP/s for convs; Gelem/s (input elements per second) for batch norm.
    unit: &'static str,
}

impl From<KernelTiming> for KernelBench {
    fn from(t: KernelTiming) -> Self {
        KernelBench {
            fwd_rate: t.fwd_rate(),
            bwd_rate: t.bwd_rate(),
            kernel: t.kernel,
            shape: t.shape,
            fwd_ms: t.fwd_ms,
            bwd_ms: t.bwd_ms,
            unit: t.unit,
        }
    }
}

/// `resviz bench --kernels`: 3×3 stride-1 convs at 16/32/64 channels on 32/16/8 pixels, and the
/// fused BN+ReLU at the same shapes, batch `--batch` (default 64). Minimum over `--steps` runs
/// (the engine times them: `engine::timing`); this formats.
fn kernels(args: &BenchArgs, runs: usize) -> Result<()> {
    let n = args.exp.batch.unwrap_or(64);
    if n == 0 {
        bail!("--batch must be at least 1");
    }
    // Minimum over repetitions: robust to other processes sharing the machine.
    let reps = runs.max(3);
    let rows: Vec<KernelBench> = kernel_timings(n, reps)
        .into_iter()
        .map(KernelBench::from)
        .collect();
    let text = if args.json {
        format!("{}\n", serde_json::json!({ "kernels": rows }))
    } else {
        let mut t = format!(
            "{:<16} {:>18}  {:>9} {:>9}  {:>9} {:>9}  unit\n",
            "kernel", "input", "fwd ms", "fwd rate", "bwd ms", "bwd rate"
        );
        for r in &rows {
            let s = format!("{:?}", r.shape);
            t += &format!(
                "{:<16} {:>18}  {:>9.3} {:>9.1}  {:>9.3} {:>9.1}  {}\n",
                r.kernel, s, r.fwd_ms, r.fwd_rate, r.bwd_ms, r.bwd_rate, r.unit
            );
        }
        t + &format!(
            "(min of {reps} runs, {} threads; conv bwd = dX + dW)\n",
            rayon::current_num_threads()
        )
    };
    super::output::print(&text)
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

#[cfg(test)]
mod tests {
    use super::{median, median_interval};

    #[test]
    fn the_median_interval_brackets_the_median_and_narrows_with_n() {
        // 0..100 shuffled: the median is 49.5; ranks 50 ∓ 9.8 give [40, 60].
        let v: Vec<f64> = (0..100).map(|i| ((i * 37) % 100) as f64).collect();
        assert_eq!(median_interval(&v), [40.0, 60.0]);
        let small: Vec<f64> = (0..10).map(f64::from).collect();
        let [lo, hi] = median_interval(&small);
        assert!(lo < median(small.clone()) && median(small) < hi && (lo, hi) == (1.0, 9.0));
        assert_eq!(median_interval(&[3.0]), [3.0, 3.0]);
        assert!(median_interval(&[]).iter().all(|x| x.is_nan()));
    }
}
