//! What subcommands share beyond the experiment options: for `probe` and `bench`, the resolved
//! experiment with its first seeded batch; for the experiments on the weights (`lesion`,
//! `shatter`, `landscape`), the options saying where the weights come from and how the results
//! are written ([`MeasureArgs`]).

use super::runs;
use super::{ExperimentArgs, PlateauArgs};
use crate::config::ExperimentConfig;
use crate::data::{self, Dataset, Sampler};
use crate::experiments::{self, Experiment};
use crate::model::ModelSpec;
use crate::model::Network;
use crate::records::RunHistory;
use crate::train::Trainer;
use clap::Args;
use color_eyre::eyre::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// The options every experiment on the weights takes, flattened into its subcommand's own.
/// (A subcommand whose defaults differ rewrites one with `mut_arg`: lesion's --steps has none,
/// landscape's --bn-batches is 0.)
#[derive(Debug, Args)]
pub struct MeasureArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub plateau: PlateauArgs,
    /// Optimizer steps to train first (as `resviz train --steps N`); 0: the fresh weights
    /// [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub steps: Option<i64>,
    /// Measure a run saved with `train --out FILE.ron --save-weights` instead of training one.
    #[arg(long, value_name = "FILE.ron")]
    pub from: Option<PathBuf>,
    /// Training batches (of the experiment's batch size) that re-estimate batch-norm running
    /// statistics before measuring; 0 keeps the runs' own (which lag the weights in training).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub bn_batches: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw the results into this SVG: the accuracy drop per block (lesion), g(t) and its
    /// autocorrelation (shatter), a heatmap per run and the 1-D slices (landscape).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

impl MeasureArgs {
    /// The runs to measure with their histories: loaded `--from` a save, or trained `--steps`
    /// (at least `min_steps`; `default_steps` if neither --steps, --from nor --until-plateau is
    /// given). `check` sees the dataset before any training.
    pub fn runs(
        &self,
        (min_steps, default_steps): (i64, Option<i64>),
        check: impl FnOnce(&Dataset) -> Result<()>,
    ) -> Result<(Trainer, Vec<RunHistory>)> {
        let bare = self.from.is_none() && !self.plateau.until_plateau;
        let steps = self.steps.or(default_steps.filter(|_| bare));
        runs::trainer_and_histories(
            (&self.exp, &self.plateau),
            (steps, min_steps),
            self.from.as_deref(),
            check,
        )
    }

    /// Where the measured runs came from.
    pub fn origin(&self, trainer: &Trainer) -> runs::RunsOrigin {
        runs::RunsOrigin::of(trainer, self.from.as_deref())
    }
}

/// A resolved experiment with its dataset and first training batch (no augmentation).
pub struct FirstBatch {
    pub cfg: ExperimentConfig,
    pub specs: Vec<ModelSpec>,
    pub ds: Dataset,
    /// `[batch, C, H, W]` flattened, normalised as fed to the networks.
    pub x: Vec<f32>,
    pub y: Vec<usize>,
}

/// `args` over `base` (see [`ExperimentArgs::resolve`]), the parsed model specs, the dataset, and
/// the first batch of the seeded sampler.
pub fn first_batch(args: &ExperimentArgs, base: ExperimentConfig) -> Result<FirstBatch> {
    let cfg = args.resolve(base)?;
    let specs = cfg
        .models
        .iter()
        .map(|m| m.parse::<ModelSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let ds = data::load(&cfg.dataset, cfg.seed)?;
    crate::train::budget::check(
        &specs,
        cfg.width,
        cfg.batch,
        crate::train::trainer::input_of(&ds),
    )?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    Sampler::new(ds.train.len(), cfg.seed).next_batch(&ds, cfg.batch, false, &mut x, &mut y);
    Ok(FirstBatch {
        cfg,
        specs,
        ds,
        x,
        y,
    })
}

/// `x` on every run of `trainer`, with one bar on stderr named `what` over all their units of
/// progress (plain lines where stderr is not a terminal), the run's spec as its message.
pub fn measure_all<X: Experiment>(trainer: &Trainer, what: &str, x: &X) -> Result<Vec<X::Output>> {
    let nets: Vec<(String, &Network<f32>)> = trainer
        .runs
        .iter()
        .map(|r| (r.spec.to_string(), &r.net))
        .collect();
    let named: Vec<(&str, &Network<f32>)> = nets.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let total: u64 = named.iter().map(|(_, n)| x.units(n) as u64).sum();
    let template = format!(
        "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} {}  ETA {{eta}}",
        X::UNIT
    );
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut plain = super::progress::PlainCount::for_stderr(what, X::UNIT, total);
    let never = AtomicBool::new(false);
    let out = experiments::each(
        x,
        &named,
        &mut |i, done, _| {
            bar.set_message(named[i].0.to_string());
            bar.set_position(done as u64);
            if let Some(line) = plain.as_mut().and_then(|p| p.tick(done as u64, named[i].0)) {
                eprintln!("{line}");
            }
        },
        &never,
    );
    bar.finish_and_clear();
    if let Some(p) = &plain {
        eprintln!("{}", p.done());
    }
    Ok(out?)
}
