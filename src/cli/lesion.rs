//! `resviz lesion`: train N steps (as `resviz train` does) or load a saved run, then test every
//! run with each block deleted (Veit et al. 2016, §4), as a table or JSON on stdout.

use super::train::{self as train_cmd, Start};
use super::{LesionArgs, TrainArgs};
use crate::data;
use crate::snapshot::{self, resume};
use crate::train::Trainer;
use crate::train::lesion::{self, LesionParams, LesionReport};
use color_eyre::eyre::{Result, WrapErr, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::Arc;

pub fn run(args: &LesionArgs) -> Result<()> {
    if args.test_images == Some(0) {
        bail!("--test-images must be at least 1");
    }
    let mut trainer = match &args.from {
        Some(path) => {
            if args.steps.is_some() || experiment_given(args) {
                bail!(
                    "--from takes the experiment and weights from the snapshot: drop --steps and the experiment options"
                );
            }
            loaded(path)?
        }
        None => trained(args)?,
    };
    let images = args
        .test_images
        .unwrap_or(usize::MAX)
        .min(trainer.ds.test.len());
    let params = LesionParams {
        experiment: trainer.cfg.clone(),
        steps: trainer.runs.iter().map(|r| r.step).collect(),
        from: args.from.as_ref().map(|p| p.display().to_string()),
        test_images: images,
        eval_batch: trainer.cfg.batch.max(1),
    };
    let bar = ProgressBar::new(lesion::evaluations(&trainer)).with_style(
        ProgressStyle::with_template(
            "{spinner} lesion [{bar:30}] {pos}/{len} evaluations  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let report = lesion::lesion_trainer(&mut trainer, params, || bar.inc(1));
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report, trainer.ds.classes));
    }
    Ok(())
}

fn experiment_given(args: &LesionArgs) -> bool {
    let e = &args.exp;
    e.models.is_some()
        || e.dataset.is_some()
        || e.batch.is_some()
        || e.lr.is_some()
        || e.optimizer.is_some()
        || e.seed.is_some()
        || e.width.is_some()
        || e.config.is_some()
}

/// A fresh trainer driven `--steps` steps through `resviz train`'s own code path.
fn trained(args: &LesionArgs) -> Result<Trainer> {
    let steps = match args.steps {
        None => bail!("give --steps N to train before lesioning, or --from FILE.ron"),
        Some(s) if s <= 0 => bail!("--steps must be at least 1 (got {s})"),
        Some(s) => s as u64,
    };
    let targs = TrainArgs {
        exp: args.exp.clone(),
        steps: Some(steps as i64),
        epochs: None,
        eval_every: Some(0), // the lesion study evaluates; no periodic evaluations
        out: None,
        json: false,
        save_weights: false,
        resume: None,
    };
    let Start {
        trainer, histories, ..
    } = train_cmd::fresh(&targs)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (_, trainer, signal) = rt.block_on(train_cmd::drive(trainer, histories, steps))?;
    if let Some(sig) = signal {
        color_eyre::eyre::bail!("interrupted by signal {sig} while training");
    }
    Ok(trainer)
}

/// The trainer of a run saved with `train --out FILE.ron --save-weights`, weights loaded.
fn loaded(path: &Path) -> Result<Trainer> {
    let snap = snapshot::load(path)?;
    let point = resume::point_of(&snap, path)?;
    let ds = Arc::new(data::load(&snap.config.dataset, snap.config.seed)?);
    let mut trainer = Trainer::new(snap.config.clone(), ds)
        .wrap_err_with(|| format!("cannot rebuild the runs of {}", path.display()))?;
    resume::restore(&mut trainer, point, path, &snap.runs)?;
    Ok(trainer)
}

/// Per model: the intact accuracy, then per block its accuracy and drop, with the chance level.
fn table(r: &LesionReport, classes: usize) -> String {
    let chance = 100.0 / classes.max(1) as f64;
    let mut out = format!(
        "lesion study on {} test images (chance level {chance:.1} %)\n",
        r.params.test_images
    );
    for m in &r.models {
        out += &format!(
            "\n{}: intact {:.2} %\n{:<14}{:>10}{:>10}\n",
            m.model,
            100.0 * m.accuracy,
            "deleted",
            "accuracy",
            "drop"
        );
        for b in &m.blocks {
            out += &match b.accuracy {
                Some(a) => format!(
                    "{:<14}{:>8.2} %{:>+9.2}\n",
                    b.name,
                    100.0 * a,
                    100.0 * (m.accuracy - a)
                ),
                None => format!("{:<14}{:>10}{:>10}\n", b.name, "-", "(shape)"),
            };
        }
        if let (Some(med), Some((name, max))) = (m.median_drop(), m.max_drop()) {
            out += &format!(
                "median drop {:.2} points, max {:.2} ({name})\n",
                100.0 * med,
                100.0 * max
            );
        }
    }
    out
}
