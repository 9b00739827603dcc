//! `resviz train`: headless training with a progress bar on stderr and a summary on stdout.

use super::TrainArgs;
use super::finish::{self, Interrupts};
use super::output;
use crate::config::ExperimentConfig;
use crate::data::{self, Sampler};
use crate::numfmt;
use crate::records::learning;
use crate::records::plateau::{PlateauRule, PlateauTracker, all_done};
use crate::records::{RunHistory, RunStatus, TrainerEvent};
use crate::signals::Interrupted;
use crate::snapshot::{self, RunSnapshot, resume};
use crate::train::{self, Trainer, WorkerOptions};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Serialize)]
struct Summary {
    models: Vec<ModelSummary>,
    /// With --until-plateau: the rule and, per run, the step at which it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    plateau: Option<PlateauOutcome>,
}

/// How a `--until-plateau` training ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct PlateauOutcome {
    pub(super) rule: PlateauRule,
    /// Per run: the step (within this training) at which its loss levelled off; `None`: it
    /// did not before the cap (or diverged).
    pub(super) reached_at: Vec<Option<u64>>,
}

#[derive(Debug, Serialize)]
struct ModelSummary {
    model: String,
    steps: u64,
    final_train_loss: f64,
    final_train_acc: f64,
    test_acc: Option<f64>,
    status: String,
    /// `[input, middle, output]` third of depth: median over the blocks of each one's mean
    /// ‖ΔW‖/‖W‖ (convolution weights) over the last 10 % of steps.
    update_ratio_by_third: Option<[f64; 3]>,
    /// The same thirds: median over the blocks of ‖W_final‖/‖W_0‖.
    weight_growth_by_third: Option<[f64; 3]>,
}

/// Number of steps from `--steps` / `--epochs`, validated.
fn total_steps(args: &TrainArgs, train_len: usize, batch: usize) -> Result<u64> {
    match (args.steps, args.epochs) {
        (Some(_), Some(_)) => bail!("give either --steps or --epochs, not both"),
        (Some(s), None) if s <= 0 => bail!("--steps must be at least 1 (got {s})"),
        (Some(s), None) => Ok(s as u64),
        (None, Some(e)) if e <= 0 => bail!("--epochs must be at least 1 (got {e})"),
        (None, Some(e)) => {
            let per_epoch = Sampler::batches_per_epoch(train_len, batch) as u64;
            (e as u64).checked_mul(per_epoch).ok_or_else(|| {
                eyre!(
                    "--epochs {e} is {per_epoch} steps each: more steps than a step counter holds"
                )
            })
        }
        (None, None) => Ok(500),
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let start = match &args.resume {
        Some(path) => resumed(args, path)?,
        None => fresh(args)?,
    };
    let cap = args.steps.filter(|s| *s > 0).map(|s| s as u64);
    // Before the rule's own checks: with --epochs, its cap is not what the user set.
    if args.plateau.until_plateau && args.epochs.is_some() {
        let cap = cap.unwrap_or(PlateauRule::default().max_steps);
        bail!("--until-plateau caps training with --steps, not --epochs (cap {cap})");
    }
    let rule = args
        .plateau
        .rule(cap)
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let steps = match rule {
        Some(r) => r.max_steps,
        None => total_steps(args, start.ds.train.len(), start.cfg.batch)?,
    };
    if start.trainer.batches.checked_add(steps).is_none() {
        bail!(
            "--steps {steps} after step {} is more than a step counter holds",
            start.trainer.batches
        );
    }
    if let Some(out) = &args.out {
        output::check_out(
            out,
            &longest_output_name(args, out, &start.trainer),
            "--out",
        )?;
    }
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
    let Driven {
        mut histories,
        mut trainer,
        signal,
        plateau,
        mut interrupts,
        complete,
    } = rt.block_on(drive(trainer, histories, steps, rule))?;
    let snap = |h: &[RunHistory]| RunSnapshot::new(cfg.clone(), ds.name.clone(), h.to_vec());
    let needs_eval = finish::needs_evaluation(&trainer, &histories);
    // After a signal the save comes first: a supervisor's grace period may not cover a test
    // evaluation of every run.
    let saved_early = signal.is_some() && args.out.is_some();
    if let (Some(s), true) = (signal, needs_eval) {
        output::note(&format!(
            "{}: {}then evaluating on the test split (Ctrl-C again to skip the evaluation)",
            crate::signals::name(s),
            args.out
                .as_ref()
                .map_or(String::new(), |o| format!("saving {}, ", o.display()))
        ));
    }
    if let (Some(out), true) = (&args.out, saved_early) {
        save(args, snap(&histories), &trainer, out)?;
    }
    let mut evaluated = false;
    if needs_eval {
        (trainer, evaluated) =
            rt.block_on(finish::evaluate(trainer, &mut histories, &mut interrupts))?;
        if !evaluated {
            output::note("test evaluation skipped");
        }
    }
    // Save (again, with the test accuracy, after an early save) before printing: a closed or
    // full stdout must not lose the run.
    let saved = match &args.out {
        Some(out) => {
            if !saved_early || evaluated {
                save(args, snap(&histories), &trainer, out)?;
            }
            format!("; progress saved to {}", out.display())
        }
        None => String::new(),
    };
    let mut summary = summarise(&histories);
    summary.plateau = plateau;
    let text = match args.json {
        true => serde_json::to_string(&summary)? + "\n",
        false => summary_table(&summary),
    };
    output::print(&text)?;
    exit(
        interrupts.first(),
        complete && (evaluated || !needs_eval),
        saved,
    )
}

/// How `train` ends. A signal that came after the last step cut nothing: the run is finished,
/// saved and evaluated, so the process exits 0 like any finished run (a supervisor's SIGTERM at
/// the end is not a failure), and says so. If the signal skipped the final test evaluation,
/// the summary lacks what was asked for: 128 + N, as for a signal during training.
fn exit(signal: Option<i32>, finished: bool, saved: String) -> Result<()> {
    match signal {
        Some(s) if finished => {
            let name = crate::signals::name(s);
            output::note(&format!(
                "{name} came after the last step: the run finished"
            ));
            Ok(())
        }
        Some(signal) => Err(Interrupted { signal, saved }.into()),
        None => Ok(()),
    }
}

/// The longest file name a save to `out` creates in its directory: the snapshot's, or with
/// weights the longest optimizer file's.
fn longest_output_name(args: &TrainArgs, out: &Path, trainer: &Trainer) -> String {
    let name = out
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if !args.save_weights {
        return name;
    }
    let specs: Vec<String> = trainer.runs.iter().map(|r| r.spec.to_string()).collect();
    resume::run_bases(out, &specs)
        .into_iter()
        .map(|b| format!("{b}.0123456789ab.optim.safetensors"))
        .chain([name])
        .max_by_key(String::len)
        .unwrap_or_default()
}

/// Where training starts: the experiment, its data, the trainer and the runs' histories so far.
pub(super) struct Start {
    pub(super) cfg: ExperimentConfig,
    pub(super) ds: Arc<data::Dataset>,
    pub(super) trainer: Trainer,
    pub(super) histories: Vec<RunHistory>,
}

pub(super) fn fresh(args: &TrainArgs) -> Result<Start> {
    let mut cfg = args.exp.resolve(ExperimentConfig::default())?;
    if let Some(e) = args.eval_every {
        cfg.eval_every = e;
    }
    start_of(cfg)
}

/// A fresh start of the experiment `cfg` (already resolved and validated).
pub(super) fn start_of(cfg: ExperimentConfig) -> Result<Start> {
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
    cfg.validate()
        .wrap_err_with(|| format!("cannot resume from {}", path.display()))?;
    let ds = Arc::new(data::load(&cfg.dataset, cfg.seed)?);
    let mut trainer = Trainer::new(cfg.clone(), ds.clone())?;
    resume::restore(&mut trainer, point, path, &snap.runs)?;
    let mut histories = snap.runs;
    for h in &mut histories {
        if matches!(h.status, RunStatus::Finished | RunStatus::Interrupted) {
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
/// be written, a previous save at `out` is left as it was (a snapshot without weights over it
/// would orphan the files it names); with no previous save, the snapshot is still saved without
/// weights. Either way the error says which.
fn save(args: &TrainArgs, mut snap: RunSnapshot, trainer: &Trainer, out: &Path) -> Result<()> {
    if !args.save_weights {
        snapshot::save_to(&snap, out)?;
        super::output::note(&format!("saved {}", out.display()));
        return Ok(());
    }
    let previous = std::fs::symlink_metadata(out).is_ok();
    match snapshot::set::save_with_weights(&mut snap, trainer, out) {
        Ok(files) => {
            super::output::note(&format!("saved {}", out.display()));
            let dir = out.parent().unwrap_or(Path::new(""));
            for f in &files {
                let w = dir.join(&f.weights);
                super::output::note(&format!("saved {} and {}", w.display(), f.optimizer));
            }
            Ok(())
        }
        Err(e) if previous => bail!(
            "{e}; nothing was saved: {} and the files it names are as the previous save left them",
            out.display()
        ),
        Err(e) => {
            snapshot::save_to(&snap, out)?;
            bail!("{e} (the snapshot was saved without weights and resume state)")
        }
    }
}

/// Run the background trainer to `steps`, drawing progress; Ctrl-C stops it cleanly.
/// `steps` more batches from where `trainer` stands, appending to `histories`.
/// Returns the histories, the trainer, and the signal that stopped it early, if one did.
/// With a plateau `rule`, training stops once every run's loss has levelled off.
pub(super) async fn drive(
    trainer: Trainer,
    mut histories: Vec<RunHistory>,
    steps: u64,
    rule: Option<PlateauRule>,
) -> Result<Driven> {
    let first = trainer.batches;
    let batch = trainer.cfg.batch;
    let mut h = train::spawn(
        trainer,
        WorkerOptions {
            max_steps: Some(first + steps),
            start_paused: false,
            // The CLI evaluates after saving (finish::evaluate), so a signal saves at once.
            eval_on_stop: false,
            plateau: rule,
        },
    );
    let mut interrupts = Interrupts::listen(h.commands.clone())?;
    let bar = ProgressBar::new(first + steps).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(first);
    let mut plain = super::progress::PlainProgress::for_stderr(first, first + steps, batch);
    let mut failed = None;
    // The worker stops at the plateau itself; these trackers see the same losses and report it.
    let mut trackers = vec![PlateauTracker::default(); histories.len()];
    while let Some(ev) = h.events.recv().await {
        match ev {
            TrainerEvent::StepsFinished { records } => {
                for (i, rec) in records {
                    if let Some(r) = &rule {
                        trackers[i].push(r, rec.step.saturating_sub(first), rec.loss as f64);
                    }
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
                if let Some(line) = plain.as_mut().and_then(|p| p.tick(&histories)) {
                    super::output::note(&line);
                }
            }
            TrainerEvent::Evaluated { run, eval } => histories[run].evals.push(eval),
            TrainerEvent::Diverged { run, step, reason } => {
                bar.println(format!(
                    "{} diverged at step {step}: {reason}",
                    histories[run].info.spec
                ));
                histories[run].status = RunStatus::Diverged { step, reason };
                trackers[run].gave_up = true;
            }
            TrainerEvent::Failed { message } => failed = Some(message),
            _ => {}
        }
    }
    bar.finish_and_clear();
    if let Some(p) = plain.as_mut() {
        super::output::note(&p.done(&histories));
    }
    let signal = interrupts.first();
    let trainer = h.task.await.wrap_err("trainer task")?;
    if let Some(m) = failed {
        bail!("training failed: {m}");
    }
    // A signal that arrived after the last step (or after the plateau) cut only the test
    // evaluation: the run is finished.
    let complete = trainer.batches >= first + steps || (rule.is_some() && all_done(&trackers));
    let end = match signal {
        Some(_) if !complete => RunStatus::Interrupted,
        _ => RunStatus::Finished,
    };
    for (r, run) in histories.iter_mut().zip(&trainer.runs) {
        // The trainer timed every step itself (and carries a resumed run's earlier time).
        r.wall_secs = run.wall_secs;
        if r.status == RunStatus::Running {
            r.status = end.clone();
        }
    }
    let plateau = rule.map(|rule| PlateauOutcome {
        rule,
        reached_at: trackers.iter().map(|t| t.reached_at).collect(),
    });
    Ok(Driven {
        histories,
        trainer,
        signal,
        plateau,
        interrupts,
        complete,
    })
}

/// What [`drive`] returns.
pub(super) struct Driven {
    pub histories: Vec<RunHistory>,
    pub trainer: Trainer,
    /// The signal that stopped training, if one did.
    pub signal: Option<i32>,
    /// With a plateau rule, how that ended.
    pub plateau: Option<PlateauOutcome>,
    /// Still listening: a later signal cuts the evaluation that follows.
    pub interrupts: Interrupts,
    /// Every step asked for was taken (or the plateau reached), even if a signal came after.
    pub complete: bool,
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
            // One definition with `compare` (RunHistory::final_mean): the last 10 % of steps.
            ModelSummary {
                model: r.info.spec.clone(),
                steps: r.last().map_or(0, |s| s.step),
                final_train_loss: r.final_mean(|s| s.loss).unwrap_or(f64::NAN),
                final_train_acc: r.final_mean(|s| s.acc).unwrap_or(f64::NAN),
                test_acc: r.evals.last().map(|e| e.acc as f64),
                status: match &r.status {
                    RunStatus::Diverged { step, reason } => format!("diverged at {step}: {reason}"),
                    RunStatus::Running => "stopped".into(),
                    RunStatus::Finished => "finished".into(),
                    RunStatus::Interrupted => "interrupted".into(),
                },
                update_ratio_by_third: learning::update_ratio_by_third(r),
                weight_growth_by_third: learning::weight_growth_by_third(r),
            }
        })
        .collect();
    Summary {
        models,
        plateau: None,
    }
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
    if let Some(p) = &s.plateau {
        out += &plateau_line(p, &s.models);
    }
    out += "train loss/acc: mean over the last 10 % of steps (as `resviz compare` shows them)\n";
    out + &thirds_table(&s.models)
}

/// Per model, the update ratio and the weight growth of the input, middle and output third.
fn thirds_table(models: &[ModelSummary]) -> String {
    let thirds = |t: Option<[f64; 3]>| match t {
        Some(t) => t.map(numfmt::num).join(" / "),
        None => "-".into(),
    };
    let mut out = format!(
        "\n{:<14}{:>30}   {}\n",
        "model", "update ratio in / mid / out", "weight growth in / mid / out"
    );
    for m in models {
        out += &format!(
            "{:<14}{:>30}   {}\n",
            m.model,
            thirds(m.update_ratio_by_third),
            thirds(m.weight_growth_by_third)
        );
    }
    out + "update ratio: ‖ΔW‖/‖W‖ of each block's convolution weights, mean over the last 10 % of \
           steps; weight growth: ‖W‖/‖W at init‖; medians over the blocks in each third of depth\n"
}

/// One line: the plateau rule and where each run met it.
fn plateau_line(p: &PlateauOutcome, models: &[ModelSummary]) -> String {
    let names: Vec<&str> = models.iter().map(|m| m.model.as_str()).collect();
    plateau_text(p, &names)
}

/// [`plateau_line`] for runs known by their histories (the experiment commands' stderr).
pub(super) fn plateau_report(p: &PlateauOutcome, h: &[RunHistory]) -> String {
    let names: Vec<&str> = h.iter().map(|r| r.info.spec.as_str()).collect();
    plateau_text(p, &names).trim_end().to_string()
}

fn plateau_text(p: &PlateauOutcome, names: &[&str]) -> String {
    let each: Vec<String> = names
        .iter()
        .zip(&p.reached_at)
        .map(|(m, r)| match r {
            Some(s) => format!("{m} at step {s}"),
            None => format!("{m} not reached"),
        })
        .collect();
    format!(
        "plateau (mean loss of {}-step windows fell < {:.0} %, cap {}): {}\n",
        p.rule.window,
        100.0 * p.rule.tol,
        p.rule.max_steps,
        each.join(", ")
    )
}
