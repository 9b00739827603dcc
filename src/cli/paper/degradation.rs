//! He et al. 2015, Fig. 1 (and Fig. 6 left): the degradation problem. Both plain nets train, the
//! deeper one to a *higher* training loss (so it is not overfitting), and the residual net of the
//! deeper depth trains lowest. Measured on `assets/plain-depth.ron`'s three nets over several
//! seeds; when a plain net starts late, the delay is reported apart from the final loss.

use super::{Figure, PaperReport, Row, median, most, note};
use crate::cli::PaperArgs;
use crate::config::ExperimentConfig;
use crate::numfmt;
use crate::records::RunHistory;
use color_eyre::eyre::{Result, WrapErr, bail};
use std::f64::consts::LN_10;

/// The experiment: shallow plain, deep plain, deep residual (that order).
const PRESET: &str = include_str!("../../../assets/plain-depth.ron");
/// Steps per seed: `--quick`, and the full run.
const QUICK_STEPS: u64 = 400;
const FULL_STEPS: u64 = 2000;
/// Seeds 1..=N unless `--seeds` says otherwise: `--quick`, and the full run. A seed is 2 min
/// 17 s on two idle cores (measured: `--quick --seeds 1`), so `--quick` fits 10 minutes only with
/// three; the full run judges the "4 of 5 seeds".
const QUICK_SEEDS: u64 = 3;
const SEEDS: u64 = 5;
/// A run has started once its mean training loss over [`START_WINDOW`] steps is below 90 % of
/// ln 10 (the loss of a uniform guess over ten classes).
pub const STARTED_BELOW: f64 = 0.9 * LN_10;
const START_WINDOW: u64 = 20;
/// A plain net "trains" in the sense of Fig. 1 if it starts within this fraction of the run.
const LATE_START: f64 = 0.1;

/// One seed's three runs.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRuns {
    pub seed: u64,
    pub steps: u64,
    /// Mean training loss over the last 10 % of steps, per run.
    pub final_loss: [f64; 3],
    /// The step each run started at (see [`STARTED_BELOW`]), per run.
    pub start: [Option<u64>; 3],
}

impl SeedRuns {
    pub fn of(seed: u64, steps: u64, h: &[RunHistory]) -> Option<Self> {
        let [a, b, c] = h else { return None };
        let fl = |h: &RunHistory| h.final_mean(|s| s.loss).unwrap_or(f64::NAN);
        Some(Self {
            seed,
            steps,
            final_loss: [fl(a), fl(b), fl(c)],
            start: [start_step(a), start_step(b), start_step(c)],
        })
    }
    /// Both plain nets started within the first tenth of the run.
    pub fn plain_nets_train(&self) -> bool {
        let late = (self.steps as f64 * LATE_START) as u64;
        self.start[..2].iter().all(|s| s.is_some_and(|s| s <= late))
    }
    /// The deeper plain net ends at a higher training loss than the shallower one.
    pub fn deeper_is_worse(&self) -> bool {
        self.final_loss[1] > self.final_loss[0]
    }
    /// The deep residual net ends lowest of the three.
    pub fn residual_lowest(&self) -> bool {
        self.final_loss[2] < self.final_loss[0].min(self.final_loss[1])
    }
    /// All of Fig. 1 on this seed.
    pub fn shows_fig1(&self) -> bool {
        self.plain_nets_train() && self.deeper_is_worse() && self.residual_lowest()
    }
    /// One line for stderr: the medians of the report hide which seed failed which claim.
    pub fn describe(&self, models: &[String]) -> String {
        let runs: Vec<String> = models
            .iter()
            .zip(self.start.iter().zip(&self.final_loss))
            .map(|(m, (s, l))| {
                let s = s.map_or("never".into(), |s| format!("step {s}"));
                format!("{m} starts {s}, ends {}", numfmt::plain(*l))
            })
            .collect();
        let yn = |b: bool| if b { "yes" } else { "NO" };
        format!(
            "seed {}: {}; both plain train {}, deeper worse {}, residual lowest {}",
            self.seed,
            runs.join(", "),
            yn(self.plain_nets_train()),
            yn(self.deeper_is_worse()),
            yn(self.residual_lowest())
        )
    }
}

/// The first recorded step whose trailing [`START_WINDOW`]-step mean training loss is below
/// [`STARTED_BELOW`]; `None` if the run never got there.
pub fn start_step(h: &RunHistory) -> Option<u64> {
    let s = &h.steps;
    (0..s.len()).find_map(|i| {
        let at = s[i].step;
        if at < START_WINDOW {
            return None;
        }
        let win: Vec<f64> = s[..=i]
            .iter()
            .rev()
            .take_while(|r| r.step + START_WINDOW > at)
            .map(|r| r.loss as f64)
            .collect();
        let mean = win.iter().sum::<f64>() / win.len() as f64;
        (mean < STARTED_BELOW).then_some(at)
    })
}

pub fn run(args: &PaperArgs) -> Result<(PaperReport, Figure)> {
    let base: ExperimentConfig =
        ron::from_str(PRESET).wrap_err("the bundled assets/plain-depth.ron does not parse")?;
    if base.models.len() != 3 {
        bail!(
            "assets/plain-depth.ron must name three models: shallow plain, deep plain, deep residual"
        );
    }
    let steps = args
        .steps
        .unwrap_or(if args.quick { QUICK_STEPS } else { FULL_STEPS });
    let seeds = args
        .seeds
        .unwrap_or(if args.quick { QUICK_SEEDS } else { SEEDS });
    note(&format!(
        "he2015-fig1: {} on {}, {steps} steps for each of seeds 1-{seeds}{}",
        base.models.join(", "),
        base.dataset,
        if args.quick {
            " (--quick)"
        } else {
            ": about 1 h on 2 cores (--quick: 3 seeds, about 7 minutes)"
        }
    ));
    let mut per_seed = Vec::new();
    let mut first = None;
    for seed in 1..=seeds {
        let cfg = ExperimentConfig {
            seed,
            ..base.clone()
        };
        note(&format!("seed {seed} of {seeds}"));
        let (_, h) = crate::cli::runs::train_config(cfg, steps, None)?;
        if let Some(s) = SeedRuns::of(seed, steps, &h) {
            note(&s.describe(&base.models));
            per_seed.push(s);
        }
        first.get_or_insert(h);
    }
    let finals: Vec<(u64, [f64; 3])> = per_seed.iter().map(|s| (s.seed, s.final_loss)).collect();
    let figure = super::figures::degradation(&base.models, &first.unwrap_or_default(), &finals);
    Ok((report(&base, steps, &per_seed), figure))
}

/// The rows of [`run`] from its seeds' runs.
pub fn report(cfg: &ExperimentConfig, steps: u64, seeds: &[SeedRuns]) -> PaperReport {
    let n = seeds.len();
    let m = &cfg.models;
    let mut rows = Vec::new();
    for (k, model) in m.iter().enumerate() {
        let finals: Vec<f64> = seeds.iter().map(|s| s.final_loss[k]).collect();
        rows.push(
            Row::new(
                "final training loss, median over seeds (Fig. 1 left)",
                model,
            )
            .measured(median(finals)),
        );
        let starts: Vec<f64> = seeds
            .iter()
            .filter_map(|s| s.start[k])
            .map(|s| s as f64)
            .collect();
        let never = n - starts.len();
        let label = match never {
            0 => "start step, median over seeds".to_string(),
            k => format!("start step, median over the seeds that started ({k} never did)"),
        };
        rows.push(Row::new(label, model).measured(median(starts)));
    }
    let count = |f: fn(&SeedRuns) -> bool| seeds.iter().filter(|s| f(s)).count();
    let claims: [(&str, String, fn(&SeedRuns) -> bool); 4] = [
        (
            "seeds where both plain nets train (start within 10 % of the run)",
            format!("{}, {}", m[0], m[1]),
            SeedRuns::plain_nets_train,
        ),
        (
            "seeds where the deeper plain net ends at a higher training loss",
            format!("{} vs {}", m[1], m[0]),
            SeedRuns::deeper_is_worse,
        ),
        (
            "seeds where the deeper residual net ends lowest",
            m[2].clone(),
            SeedRuns::residual_lowest,
        ),
        (
            "seeds showing all of Fig. 1",
            "all".into(),
            SeedRuns::shows_fig1,
        ),
    ];
    for (what, model, f) in claims {
        let k = count(f);
        rows.push(
            Row::new(format!("{what}, of {n}"), model)
                .measured(Some(k as f64))
                .holds(most(k, n)),
        );
    }
    PaperReport {
        paper: "he2015-fig1",
        claim: "He et al. 2015, Fig. 1: a deeper plain net trains to a higher training loss \
                (degradation, not overfitting); a residual net of that depth does not"
            .into(),
        setting: format!(
            "{} on {}, batch {}, lr {}, {steps} steps per seed, seeds 1-{n}; the paper: plain-20/56 \
             and ResNets on CIFAR-10, 64k iterations. A claim holds on at least 4/5 of the seeds. \
             Started: the {START_WINDOW}-step mean loss below {} (0.9 ln 10).",
            m.join(", "),
            cfg.dataset,
            cfg.batch,
            cfg.lr,
            numfmt::plain(STARTED_BELOW)
        ),
        rows,
    }
}

#[cfg(test)]
#[path = "degradation_tests.rs"]
mod tests;
