//! Where the weights of `lesion`, `shatter` and `landscape` come from: a fresh experiment trained
//! `--steps N` through `resviz train`'s own code path, or a run saved with `--save-weights`
//! (`--from FILE.ron`), or any experiment config (`train_config`, for `resviz paper`); and how an
//! experiment command ends (`emit`: the SVG, then the report).

use super::TrainArgs;
use super::train::{self as train_cmd, Start};
use super::{ExperimentArgs, PlateauArgs};
use crate::data::{self, Dataset};
use crate::records::RunHistory;
use crate::snapshot::{self, resume};
use crate::train::Trainer;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Which runs an experiment measured: enough to rebuild their weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunsOrigin {
    /// The experiment the runs were built and trained with.
    pub experiment: crate::config::ExperimentConfig,
    /// Optimizer steps each run had taken, in run order.
    pub steps: Vec<u64>,
    /// The snapshot the weights came from, if they were not trained just before.
    pub from: Option<String>,
}

impl RunsOrigin {
    pub fn of(trainer: &Trainer, from: Option<&Path>) -> Self {
        Self {
            experiment: trainer.cfg.clone(),
            steps: trainer.runs.iter().map(|r| r.step).collect(),
            from: from.map(|p| p.display().to_string()),
        }
    }
}

/// The trainer whose runs an experiment measures: loaded `--from` a save, or trained `--steps`
/// (at least `min_steps`; 0 measures the fresh weights). `check` sees the dataset before any
/// training, so bad experiment options fail at once.
pub fn trainer_for(
    (exp, plateau): (&ExperimentArgs, &PlateauArgs),
    (steps, min_steps): (Option<i64>, i64),
    from: Option<&Path>,
    check: impl FnOnce(&Dataset) -> Result<()>,
) -> Result<Trainer> {
    Ok(trainer_and_histories((exp, plateau), (steps, min_steps), from, check)?.0)
}

/// [`trainer_for`] with each run's history (its step records; empty for fresh weights).
pub fn trainer_and_histories(
    (exp, plateau): (&ExperimentArgs, &PlateauArgs),
    (steps, min_steps): (Option<i64>, i64),
    from: Option<&Path>,
    check: impl FnOnce(&Dataset) -> Result<()>,
) -> Result<(Trainer, Vec<RunHistory>)> {
    match from {
        Some(path) => {
            if steps.is_some() || experiment_given(exp) || plateau.until_plateau {
                bail!(
                    "--from takes the experiment and weights from the snapshot: drop --steps and the experiment options"
                );
            }
            let loaded = loaded(path)?;
            check(&loaded.0.ds)?;
            Ok(loaded)
        }
        None => trained((exp, plateau), (steps, min_steps), check),
    }
}

fn experiment_given(e: &ExperimentArgs) -> bool {
    e.models.is_some()
        || e.dataset.is_some()
        || e.batch.is_some()
        || e.lr.is_some()
        || e.optimizer.is_some()
        || e.seed.is_some()
        || e.width.is_some()
        || e.config.is_some()
}

/// A fresh trainer driven `steps` steps through `resviz train`'s own code path.
fn trained(
    (exp, plateau): (&ExperimentArgs, &PlateauArgs),
    (steps, min_steps): (Option<i64>, i64),
    check: impl FnOnce(&Dataset) -> Result<()>,
) -> Result<(Trainer, Vec<RunHistory>)> {
    let rule = plateau
        .rule(steps.filter(|s| *s > 0).map(|s| s as u64))
        .map_err(|e| eyre!(e))?;
    let steps = match (steps, rule) {
        (_, Some(r)) => r.max_steps,
        (None, None) => {
            bail!("give --steps N (or --until-plateau) to train first, or --from FILE.ron")
        }
        (Some(s), None) if s < min_steps => {
            bail!("--steps must be at least {min_steps} (got {s})")
        }
        (Some(s), None) => s as u64,
    };
    let targs = TrainArgs {
        exp: exp.clone(),
        plateau: plateau.clone(),
        steps: Some(steps as i64),
        epochs: None,
        eval_every: Some(0), // the experiment measures; no periodic evaluations
        out: None,
        json: false,
        save_weights: false,
        resume: None,
    };
    let Start {
        trainer, histories, ..
    } = train_cmd::fresh(&targs)?;
    check(&trainer.ds)?;
    drive_to(trainer, histories, steps, rule)
}

/// The experiment `cfg` trained from scratch `steps` steps (or to a plateau by `rule`, at most
/// its cap) through `resviz train`'s own code path, without periodic evaluations.
pub fn train_config(
    mut cfg: crate::config::ExperimentConfig,
    steps: u64,
    rule: Option<crate::records::plateau::PlateauRule>,
) -> Result<(Trainer, Vec<RunHistory>)> {
    cfg.eval_every = 0;
    cfg.validate()?;
    let Start {
        trainer, histories, ..
    } = train_cmd::start_of(cfg)?;
    let steps = rule.map_or(steps, |r| r.max_steps);
    drive_to(trainer, histories, steps, rule)
}

/// Drive `trainer` `steps` more steps (0: as it is), with the progress bar of `train`.
fn drive_to(
    trainer: Trainer,
    histories: Vec<RunHistory>,
    steps: u64,
    rule: Option<crate::records::plateau::PlateauRule>,
) -> Result<(Trainer, Vec<RunHistory>)> {
    if steps == 0 {
        return Ok((trainer, histories));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let train_cmd::Driven {
        histories,
        trainer,
        signal,
        plateau,
        ..
    } = rt.block_on(train_cmd::drive(trainer, histories, steps, rule))?;
    if let Some(o) = plateau {
        super::output::note(&train_cmd::plateau_report(&o, &histories));
    }
    if let Some(sig) = signal {
        bail!("interrupted by signal {sig} while training");
    }
    Ok((trainer, histories))
}

/// The trainer of a run saved with `train --out FILE.ron --save-weights`, weights loaded.
fn loaded(path: &Path) -> Result<(Trainer, Vec<RunHistory>)> {
    let snap = snapshot::load(path)?;
    let point = resume::point_of(&snap, path)?;
    snap.config
        .validate()
        .wrap_err_with(|| format!("cannot use the runs of {}", path.display()))?;
    let ds = Arc::new(data::load(&snap.config.dataset, snap.config.seed)?);
    let mut trainer = Trainer::new(snap.config.clone(), ds)
        .wrap_err_with(|| format!("cannot rebuild the runs of {}", path.display()))?;
    resume::restore(&mut trainer, point, path, &snap.runs)?;
    Ok((trainer, snap.runs))
}

/// The end of every experiment command: the SVG if `plot` names one (drawn by `svg` only then),
/// then the report as JSON or as `table` on stdout.
pub fn emit<R: Serialize>(
    report: &R,
    json: bool,
    plot: Option<&Path>,
    svg: impl FnOnce() -> Result<String, String>,
    table: impl FnOnce(&R) -> String,
) -> Result<()> {
    if let Some(path) = plot {
        let svg = svg().map_err(|e| eyre!("cannot draw the plot: {e}"))?;
        write_svg(path, &svg)?;
    }
    if json {
        super::output::print(&(serde_json::to_string(report)? + "\n"))
    } else {
        super::output::print(&table(report))
    }
}

/// Write an SVG atomically to `path`, creating its directory.
pub fn write_svg(path: &Path, svg: &str) -> Result<()> {
    let dir = snapshot::atomic::dir_of(path);
    std::fs::create_dir_all(&dir)
        .wrap_err_with(|| format!("cannot create directory {}", dir.display()))?;
    snapshot::atomic::write(path, svg.as_bytes())
        .wrap_err_with(|| format!("cannot write the plot {}", path.display()))
}
