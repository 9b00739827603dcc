//! `resviz train`: headless training with a progress bar on stderr and a summary on stdout.

use super::TrainArgs;
use crate::config::ExperimentConfig;
use crate::data::{self, Sampler};
use crate::snapshot::{self, RunSnapshot, resume};
use crate::train::{
    self, RunHistory, RunStatus, Trainer, TrainerCommand, TrainerEvent, WorkerOptions,
};
use color_eyre::eyre::{Result, WrapErr, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Serialize)]
struct Summary {
    models: Vec<ModelSummary>,
}

#[derive(Debug, Serialize)]
struct ModelSummary {
    model: String,
    steps: u64,
    final_train_loss: f64,
    final_train_acc: f64,
    test_acc: Option<f64>,
    status: String,
}

/// Number of steps from `--steps` / `--epochs`, validated.
fn total_steps(args: &TrainArgs, train_len: usize, batch: usize) -> Result<u64> {
    match (args.steps, args.epochs) {
        (Some(_), Some(_)) => bail!("give either --steps or --epochs, not both"),
        (Some(s), None) if s <= 0 => bail!("--steps must be at least 1 (got {s})"),
        (Some(s), None) => Ok(s as u64),
        (None, Some(e)) if e <= 0 => bail!("--epochs must be at least 1 (got {e})"),
        (None, Some(e)) => Ok(e as u64 * Sampler::batches_per_epoch(train_len, batch) as u64),
        (None, None) => Ok(500),
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let start = match &args.resume {
        Some(path) => resumed(args, path)?,
        None => fresh(args)?,
    };
    let steps = total_steps(args, start.ds.train.len(), start.cfg.batch)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let Start {
        cfg,
        ds,
        trainer,
        histories,
    } = start;
    let (histories, trainer) = rt.block_on(drive(trainer, histories, steps))?;
    let summary = summarise(&histories);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary_table(&summary));
    }
    match &args.out {
        Some(out) => save(
            args,
            RunSnapshot::new(cfg, ds.name.clone(), histories),
            &trainer,
            out,
        ),
        None => Ok(()),
    }
}

/// Where training starts: the experiment, its data, the trainer and the runs' histories so far.
struct Start {
    cfg: ExperimentConfig,
    ds: Arc<data::Dataset>,
    trainer: Trainer,
    histories: Vec<RunHistory>,
}

fn fresh(args: &TrainArgs) -> Result<Start> {
    let mut cfg = args.exp.resolve(ExperimentConfig::default())?;
    if let Some(e) = args.eval_every {
        cfg.eval_every = e;
    }
    for m in &cfg.models {
        m.parse::<crate::model::ModelSpec>()?;
    }
    let ds = Arc::new(data::load(&cfg.dataset, cfg.seed)?);
    let trainer = Trainer::new(cfg.clone(), ds.clone())?;
    let histories = trainer
        .run_infos()
        .into_iter()
        .map(RunHistory::new)
        .collect();
    Ok(Start {
        cfg,
        ds,
        trainer,
        histories,
    })
}

/// The experiment, trainer and histories of the snapshot at `path`, where it left off.
fn resumed(args: &TrainArgs, path: &Path) -> Result<Start> {
    let snap = snapshot::load(path)?;
    let point = resume::point_of(&snap, path)?;
    resume::check_files(point, path)?;
    let mut cfg = snap.config.clone();
    if let Some(e) = args.eval_every {
        cfg.eval_every = e;
    }
    let ds = Arc::new(data::load(&cfg.dataset, cfg.seed)?);
    let mut trainer = Trainer::new(cfg.clone(), ds.clone())?;
    resume::restore(&mut trainer, point, path, &snap.runs)?;
    let mut histories = snap.runs;
    for h in &mut histories {
        if h.status == RunStatus::Finished {
            h.status = RunStatus::Running;
        }
    }
    Ok(Start {
        cfg,
        ds,
        trainer,
        histories,
    })
}

/// Write the snapshot to `out`, with weights and resume state if asked. If the weights cannot
/// be written the snapshot is still saved (without resume state) and the error is returned.
fn save(args: &TrainArgs, mut snap: RunSnapshot, trainer: &Trainer, out: &Path) -> Result<()> {
    let mut weights_error = None;
    if args.save_weights {
        match resume::save_weights(trainer, out) {
            Ok(point) => snap.resume = Some(point),
            Err(e) => weights_error = Some(e),
        }
    }
    snapshot::save_to(&snap, out)?;
    eprintln!("saved {}", out.display());
    if let Some(point) = &snap.resume {
        let dir = out.parent().unwrap_or(Path::new(""));
        for f in &point.files {
            eprintln!(
                "saved {} and {}",
                dir.join(&f.weights).display(),
                f.optimizer
            );
        }
    }
    match weights_error {
        Some(e) => bail!("{e} (the snapshot was saved without weights and resume state)"),
        None => Ok(()),
    }
}

/// Run the background trainer to `steps`, drawing progress; Ctrl-C stops it cleanly.
/// `steps` more batches from where `trainer` stands, appending to `histories`.
async fn drive(
    trainer: Trainer,
    mut histories: Vec<RunHistory>,
    steps: u64,
) -> Result<(Vec<RunHistory>, Trainer)> {
    let first = trainer.batches;
    let mut h = train::spawn(
        trainer,
        WorkerOptions {
            max_steps: Some(first + steps),
            start_paused: false,
            eval_on_stop: true, // Ctrl-C still reports test accuracy
        },
    );
    let bar = ProgressBar::new(first + steps).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(first);
    let stop = h.commands.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop.send(TrainerCommand::Stop);
        }
    });
    let mut failed = None;
    while let Some(ev) = h.events.recv().await {
        match ev {
            TrainerEvent::StepsFinished { records } => {
                for (i, rec) in records {
                    histories[i].push(rec);
                }
                bar.set_position(
                    histories
                        .iter()
                        .filter_map(|r| r.last().map(|s| s.step))
                        .max()
                        .unwrap_or(0),
                );
                bar.set_message(loss_message(&histories));
            }
            TrainerEvent::Evaluated { run, eval } => histories[run].evals.push(eval),
            TrainerEvent::Diverged { run, step, reason } => {
                bar.println(format!(
                    "{} diverged at step {step}: {reason}",
                    histories[run].info.spec
                ));
                histories[run].status = RunStatus::Diverged { step, reason };
            }
            TrainerEvent::Failed { message } => failed = Some(message),
            _ => {}
        }
    }
    bar.finish_and_clear();
    ctrl_c.abort();
    let trainer = h.task.await.wrap_err("trainer task")?;
    if let Some(m) = failed {
        bail!("training failed: {m}");
    }
    for (r, run) in histories.iter_mut().zip(&trainer.runs) {
        // The trainer timed every step itself (and carries a resumed run's earlier time).
        r.wall_secs = run.wall_secs;
        if r.status == RunStatus::Running {
            r.status = RunStatus::Finished;
        }
    }
    Ok((histories, trainer))
}

fn loss_message(h: &[RunHistory]) -> String {
    h.iter()
        .map(|r| match r.last() {
            Some(s) => format!("{} {:.3}", r.info.spec, s.loss),
            None => format!("{} -", r.info.spec),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

fn summarise(h: &[RunHistory]) -> Summary {
    let models = h
        .iter()
        .map(|r| {
            // ARCHITECTURE.md: final_train_loss is the mean over the last 10 % of steps.
            let n = r.steps.len();
            let tail = &r.steps[n - (n / 10).max(1).min(n)..];
            let mean = |f: fn(&train::StepRecord) -> f32| {
                tail.iter().map(|s| f(s) as f64).sum::<f64>() / tail.len().max(1) as f64
            };
            ModelSummary {
                model: r.info.spec.clone(),
                steps: r.last().map_or(0, |s| s.step),
                final_train_loss: if n == 0 { f64::NAN } else { mean(|s| s.loss) },
                final_train_acc: if n == 0 { f64::NAN } else { mean(|s| s.acc) },
                test_acc: r.evals.last().map(|e| e.acc as f64),
                status: match &r.status {
                    RunStatus::Diverged { step, reason } => format!("diverged at {step}: {reason}"),
                    RunStatus::Running => "stopped".into(),
                    RunStatus::Finished => "finished".into(),
                },
            }
        })
        .collect();
    Summary { models }
}

fn summary_table(s: &Summary) -> String {
    let mut out = format!(
        "{:<14}{:>8}{:>12}{:>11}{:>10}  {}\n",
        "model", "steps", "train loss", "train acc", "test acc", "status"
    );
    for m in &s.models {
        let test = m
            .test_acc
            .map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
        out += &format!(
            "{:<14}{:>8}{:>12.4}{:>10.2}%{:>10}  {}\n",
            m.model,
            m.steps,
            m.final_train_loss,
            100.0 * m.final_train_acc,
            test,
            m.status
        );
    }
    out
}
