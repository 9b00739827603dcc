//! Command-line interface: clap definitions and the experiment options shared by subcommands.

pub mod bench;
mod bounds;
mod common;
pub mod dashboard;
pub mod data;
mod defaults;
mod dump;
mod finish;
pub mod import;
pub mod landscape;
pub mod lesion;
pub mod output;
pub mod paper;
pub mod plot;
pub mod probe;
mod progress;
pub mod runs;
pub mod shatter;
pub mod train;
pub mod watch;

use crate::config::{ConfigError, ExperimentConfig, OptimizerKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use common::MeasureArgs;

#[derive(Debug, Parser)]
#[command(
    name = "resviz",
    version,
    about = "Watch, live, why residual networks train and plain deep stacks do not",
    after_help = defaults::experiment_note()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command line, or exit as clap does (errors, `--help`). An option given with no
    /// subcommand (`resviz --models plain-20`) is the dashboard's, which takes options only after
    /// `tui`: clap's "unexpected argument" then says so.
    pub fn parse_or_exit() -> Cli {
        let mut e = match Cli::try_parse() {
            Ok(cli) => return cli,
            Err(e) => e,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bare_option = args.first().is_some_and(|a| a.starts_with('-'));
        if e.kind() == clap::error::ErrorKind::UnknownArgument && bare_option {
            use clap::error::{ContextKind, ContextValue};
            let tip = format!(
                "the dashboard takes options after `tui`: 'resviz tui {}'",
                args.join(" ")
            );
            e.insert(
                ContextKind::Suggested,
                ContextValue::StyledStrs(vec![tip.into()]),
            );
        }
        e.exit()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the dashboard (the default with no subcommand).
    #[command(after_help = defaults::experiment_note())]
    Tui(ExperimentArgs),
    /// Train headless, printing progress on stderr and a summary on stdout.
    #[command(after_help = defaults::experiment_note())]
    Train(TrainArgs),
    /// One forward and backward pass at initialisation: gradient norms per block.
    #[command(after_help = defaults::experiment_note())]
    Probe(ProbeArgs),
    /// Images per second of a full training step, statistics overhead and peak memory.
    #[command(after_help = defaults::experiment_note())]
    Bench(BenchArgs),
    /// Test accuracy with each block deleted (Veit et al. 2016), after training or from a save.
    #[command(after_help = defaults::experiment_note())]
    Lesion(LesionArgs),
    /// Gradient shattering (Balduzzi et al. 2017) along a line between two test images.
    #[command(after_help = defaults::experiment_note())]
    Shatter(ShatterArgs),
    /// Loss landscape (Li et al. 2018) around each run's weights.
    #[command(after_help = defaults::experiment_note())]
    Landscape(LandscapeArgs),
    /// A paper's claims measured here: what the paper found, what this engine finds, and
    /// whether the claim holds (trains what it needs; --quick, the short version, takes 5 to 9
    /// minutes on 2 idle cores).
    Paper(PaperArgs),
    /// Manage datasets: `resviz data fetch cifar10` downloads CIFAR-10 into the per-user cache.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Open the dashboard on a saved run.
    Replay {
        /// A snapshot written by `s` in the dashboard, by quitting it, or by `train --out`.
        #[arg(value_name = "FILE.ron")]
        file: PathBuf,
    },
    /// Open the dashboard on training streams written elsewhere (python/resviz_torch): files,
    /// followed as they grow, or tcp://HOST:PORT to listen on for a trainer.
    Watch {
        /// One run per stream: a JSON-lines file, or tcp://HOST:PORT.
        #[arg(required = true, value_name = "FILE|tcp://HOST:PORT")]
        streams: Vec<String>,
    },
    /// Turn a finished training stream (JSON lines, e.g. from python/resviz_torch) into a
    /// snapshot that `replay` and `compare` read.
    Import {
        /// The stream: a header line, then one line per step (ARCHITECTURE.md).
        #[arg(value_name = "STREAM.jsonl")]
        stream: PathBuf,
        /// The snapshot to write.
        #[arg(long, value_name = "FILE.ron")]
        out: PathBuf,
    },
    /// Compare saved runs: a table per run, optionally an SVG plot.
    Compare {
        /// Snapshots (`train --out`, or the dashboard's saves/); every run of each is compared.
        #[arg(required = true, value_name = "FILE.ron")]
        files: Vec<PathBuf>,
        /// Also draw each run's gradient RMS, effective learning rate and weight growth against
        /// depth, and its loss curve, into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download, verify (MD5) and unpack a dataset into the per-user cache; resumes a partial
    /// download. Afterwards `--dataset cifar10` needs no path.
    Fetch {
        /// The dataset: cifar10.
        dataset: String,
    },
}

/// The experiment options (ARCHITECTURE.md). Anything given here overrides `--config`; the
/// defaults shown are `ExperimentConfig::default()`, the same for every subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct ExperimentArgs {
    #[arg(long, value_name = "SPEC,...", help = defaults::models())]
    pub models: Option<String>,
    #[arg(long, help = defaults::dataset())]
    pub dataset: Option<String>,
    #[arg(long, value_name = "N", help = defaults::batch())]
    pub batch: Option<usize>,
    #[arg(long, value_name = "X", allow_negative_numbers = true, help = defaults::lr())]
    pub lr: Option<f64>,
    #[arg(long, help = defaults::optimizer())]
    pub optimizer: Option<String>,
    #[arg(long, value_name = "N", help = defaults::seed())]
    pub seed: Option<u64>,
    #[arg(long, value_name = "N", help = defaults::width())]
    pub width: Option<usize>,
    /// An experiment in RON (see assets/*.ron); options given here override it.
    #[arg(long, value_name = "FILE.ron")]
    pub config: Option<PathBuf>,
}

impl ExperimentArgs {
    /// The experiment: `--config` (or `base`) overridden by explicit options, validated.
    pub fn resolve(&self, base: ExperimentConfig) -> Result<ExperimentConfig, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => ExperimentConfig::load(path)?,
            None => base,
        };
        if let Some(m) = &self.models {
            cfg.models = m
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(d) = &self.dataset {
            cfg.dataset = d.clone();
        }
        if let Some(b) = self.batch {
            cfg.batch = b;
        }
        if let Some(lr) = self.lr {
            cfg.lr = lr;
        }
        if let Some(o) = &self.optimizer {
            cfg.optimizer = o.parse::<OptimizerKind>()?;
        }
        if let Some(s) = self.seed {
            cfg.seed = s;
        }
        if let Some(w) = self.width {
            cfg.width = w;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `--until-plateau` and its rule (`records::plateau`), shared by `train` and the experiments that
/// train first.
#[derive(Debug, Args, Clone, Default)]
pub struct PlateauArgs {
    /// Train until every run's training loss levels off: stop when the mean loss over the last
    /// --plateau-window steps fell by less than --plateau-tol (a fraction) from the window
    /// before, or at --steps (the cap) [default cap: 4000].
    #[arg(long)]
    pub until_plateau: bool,
    /// Steps per window of the plateau rule [default: 200].
    #[arg(long, value_name = "N", requires = "until_plateau")]
    pub plateau_window: Option<u64>,
    /// Least relative improvement per window that counts as still learning [default: 0.05].
    #[arg(long, value_name = "X", requires = "until_plateau")]
    pub plateau_tol: Option<f64>,
}

impl PlateauArgs {
    /// The rule, with `cap` (the command's --steps, if given) as its step cap.
    pub fn rule(
        &self,
        cap: Option<u64>,
    ) -> Result<Option<crate::records::plateau::PlateauRule>, String> {
        if !self.until_plateau {
            return Ok(None);
        }
        let d = crate::records::plateau::PlateauRule::default();
        let rule = crate::records::plateau::PlateauRule {
            window: self.plateau_window.unwrap_or(d.window),
            tol: self.plateau_tol.unwrap_or(d.tol),
            max_steps: cap.unwrap_or(d.max_steps),
        };
        if rule.window == 0 {
            return Err("--plateau-window must be at least 1".into());
        }
        bounds::plateau_window(rule.window, rule.max_steps)?;
        if !(0.0..1.0).contains(&rule.tol) {
            return Err(format!(
                "--plateau-tol must be in [0, 1) (got {})",
                rule.tol
            ));
        }
        Ok(Some(rule))
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write batch.safetensors, MODEL.safetensors and probe.json into DIR.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub plateau: PlateauArgs,
    /// Optimizer steps to train (with --resume: steps to add to those already taken)
    /// [default: 500].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub steps: Option<i64>,
    /// Epochs to train instead of --steps (with --resume: epochs to add).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub epochs: Option<i64>,
    #[arg(long, value_name = "N", help = defaults::eval_every())]
    pub eval_every: Option<u64>,
    /// Write a RON run snapshot here.
    #[arg(long, value_name = "FILE.ron")]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write each run's weights and optimizer state (safetensors) beside the snapshot, so
    /// that --resume can continue from it.
    #[arg(long, requires = "out")]
    pub save_weights: bool,
    /// Continue a run saved with --out FILE.ron --save-weights, with the same numbers as if it
    /// had never stopped. The experiment comes from the snapshot; --steps N trains N more steps.
    #[arg(long, value_name = "FILE.ron", conflicts_with_all = [
        "models", "dataset", "batch", "lr", "optimizer", "seed", "width", "config",
    ])]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Timed steps per model (after warm-up), each paired with one without statistics; the
    /// medians are reported, the statistics' cost with a 95 % interval that narrows as √N (10
    /// steps: about ±2 points, 40 about ±1, 100 about ±0.5). With --kernels: runs per kernel
    /// (the minimum is reported). [default: 40; with --kernels: 10]
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Print one JSON object instead of a table (fields in ARCHITECTURE.md).
    #[arg(long)]
    pub json: bool,
    /// Time the conv (3×3, 16/32/64 channels) and fused BN+ReLU kernels alone instead.
    #[arg(long)]
    pub kernels: bool,
}

/// `resviz lesion`: test accuracy with each block deleted (Veit et al. 2016) of each run.
#[derive(Debug, Args)]
#[command(mut_arg("steps", |a| a.help(
    "Optimizer steps to train before lesioning (as `resviz train --steps N`), at least 1; \
     required unless --from is given"
)))]
pub struct LesionArgs {
    #[command(flatten)]
    pub m: MeasureArgs,
    /// Evaluate on the first N test images only [default: the whole test split].
    #[arg(long, value_name = "N")]
    pub test_images: Option<usize>,
    /// Also write each run's weights, the test images, the batch-norm batches and the study into
    /// DIR, for tests/pytorch/check_lesion.py.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
}

/// `resviz shatter`: gradient shattering (Balduzzi et al. 2017) of each run.
#[derive(Debug, Args)]
pub struct ShatterArgs {
    #[command(flatten)]
    pub m: MeasureArgs,
    /// Test-split index of the line's first image (t = 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from_image: usize,
    /// Test-split index of the line's last image (t = 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub to_image: usize,
    /// The logit differentiated (default: the label of --to-image).
    #[arg(long, value_name = "N")]
    pub class: Option<usize>,
    /// Points on the line.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub points: usize,
    /// Autocorrelation lags reported (1..=N).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub lags: usize,
    /// Image pairs averaged over: pair k is test images (FROM + k·s, TO + k·s), s = max(FROM,
    /// TO) + 1.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub pairs: usize,
    /// Also write each run's weights, the image pairs, the batch-norm batches and the report
    /// into DIR, for tests/pytorch/check_shatter.py.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
}

/// `resviz paper`: a paper's claims measured here.
#[derive(Debug, Args)]
pub struct PaperArgs {
    /// Which paper.
    #[arg(value_enum)]
    pub name: paper::PaperName,
    /// The short version: fewer steps, seeds and images, 5 to 9 minutes on 2 idle cores (the
    /// README gives the times measured).
    #[arg(long)]
    pub quick: bool,
    /// Seeds to repeat the training over (1..=N), where the paper's claim is judged over seeds;
    /// elsewhere the one seed N−1.
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,
    /// Print `{"paper", "claim", "setting", "rows": [{"quantity", "model", "paper", "measured",
    /// "holds"}]}` instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Train N steps per run instead of the paper's setting (under a plateau rule: at most N).
    /// Fewer steps than the paper's setting measure nets further from convergence.
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,
    /// Draw the measured curves into this SVG file (balduzzi2017 and li2018; the others have
    /// none yet and refuse it before training).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// balduzzi2017: image pairs per net and seed, each one line of inputs [default: 16].
    #[arg(long, value_name = "N")]
    pub pairs: Option<usize>,
    /// li2018: landscape grid points per axis [default: 9 with --quick, else 21].
    #[arg(long, value_name = "G")]
    pub grid: Option<usize>,
    /// li2018: Hessian subgrid points per axis, odd (1: θ only) [default: 3 with --quick, else 5].
    #[arg(long, value_name = "H")]
    pub hessian_grid: Option<usize>,
    /// li2018: training images the landscape's loss is taken over [default: 128 with --quick,
    /// else 512].
    #[arg(long, value_name = "N")]
    pub images: Option<usize>,
}

/// `resviz landscape`: loss landscape (Li et al. 2018) of each run.
#[derive(Debug, Args)]
#[command(mut_arg("bn_batches", |a| a.default_value("0").help(
    "Training batches that re-estimate batch-norm running statistics at the run's weights \
     first; 0 (the default, as Li et al.) keeps the run's own"
)))]
pub struct LandscapeArgs {
    #[command(flatten)]
    pub m: MeasureArgs,
    /// Grid points per axis over [-1, 1] (at least 3).
    #[arg(long, value_name = "N", default_value_t = 21)]
    pub grid: usize,
    /// Points of the 1-D slice (beta = 0) over [-1, 1].
    #[arg(long, value_name = "N", default_value_t = 41)]
    pub slice_points: usize,
    /// The loss is over the first N training images.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub images: usize,
    /// Seed of the two random directions.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub dir_seed: u64,
    /// Points per axis of the subgrid over [-1, 1] where the Hessian's |λ_min/λ_max| is
    /// estimated (odd; 1: at the weights only; 0: none). Each point costs up to 2 × steps
    /// gradient passes over the images (v1-56, 256 images, 10 steps: ~75 s on 2 cores).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub hessian_grid: usize,
    /// Lanczos steps at most per Hessian point (each two gradients over the images).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub hessian_steps: usize,
    /// Also write each run's weights and two directions, the images, the batch-norm batches and
    /// the report into DIR, for tests/pytorch/check_landscape.py.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
}
