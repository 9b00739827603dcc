//! The trainer on a background task: commands in between steps and between the test batches of
//! an evaluation, events out, never blocking on the consumer. A closed command channel means shut
//! down.

use super::channel::{EventReceiver, EventSender, event_channel};
use super::jobs;
use super::trainer::Trainer;
use crate::records::events::{TrainerCommand, TrainerEvent};
use crate::records::plateau::{PlateauRule, PlateauTracker, all_done};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender, error::TryRecvError};
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerOptions {
    /// Stop after this many batches (None: until told to stop).
    pub max_steps: Option<u64>,
    pub start_paused: bool,
    /// Whether a `Stop` (or a closed command channel) still evaluates every run before
    /// `Finished`: headless training wants the test accuracy; a dashboard that is quitting does
    /// not want to wait seconds for it.
    pub eval_on_stop: bool,
    /// Stop once every run's training loss has levelled off by this rule. Checked here, after
    /// each step, so the stop falls on the step the rule fired at; a `Stop` sent by the consumer
    /// on seeing it would land a few steps later, depending on timing.
    pub plateau: Option<PlateauRule>,
}

pub struct TrainerHandle {
    pub commands: UnboundedSender<TrainerCommand>,
    pub events: EventReceiver,
    /// Resolves to the trainer when the task ends (for snapshots and weights).
    pub task: JoinHandle<Trainer>,
}

/// Start `trainer` on a blocking task of the current tokio runtime.
pub fn spawn(trainer: Trainer, opts: WorkerOptions) -> TrainerHandle {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = event_channel();
    let task = tokio::task::spawn_blocking(move || run(trainer, cmd_rx, ev_tx, opts));
    TrainerHandle {
        commands: cmd_tx,
        events: ev_rx,
        task,
    }
}

/// The loop itself; public so it can also be driven on a plain thread.
pub fn run(
    mut trainer: Trainer,
    mut cmds: UnboundedReceiver<TrainerCommand>,
    tx: EventSender,
    opts: WorkerOptions,
) -> Trainer {
    let result = catch_unwind(AssertUnwindSafe(|| {
        drive(&mut trainer, &mut cmds, &tx, opts)
    }));
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "trainer panicked".into());
        tx.send(TrainerEvent::Failed { message });
    }
    trainer
}

/// The worker's inputs: commands, and those that arrived during an evaluation and wait for it.
struct Inbox<'a> {
    cmds: &'a mut UnboundedReceiver<TrainerCommand>,
    deferred: VecDeque<TrainerCommand>,
    opts: WorkerOptions,
    /// Per run, for [`WorkerOptions::plateau`], fed the steps trained since `first`.
    plateau: Vec<PlateauTracker>,
    first: u64,
}

impl Inbox<'_> {
    fn plateau_reached(&self) -> bool {
        self.opts.plateau.is_some() && all_done(&self.plateau)
    }
}

/// What an evaluation ended with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EvalEnd {
    Complete,
    /// A `Stop` or a closed command channel abandoned it (only when not evaluating on stop).
    Stopped,
}

fn drive(
    t: &mut Trainer,
    cmds: &mut UnboundedReceiver<TrainerCommand>,
    tx: &EventSender,
    opts: WorkerOptions,
) {
    tx.send(TrainerEvent::Started {
        config: t.cfg.clone(),
        dataset: t.ds.name.clone(),
        runs: t.run_infos(),
    });
    let mut inbox = Inbox {
        cmds,
        deferred: VecDeque::new(),
        opts,
        plateau: vec![PlateauTracker::default(); t.runs.len()],
        first: t.batches,
    };
    let mut paused = opts.start_paused;
    let mut stopped = false;
    // Dropping a job cancels it: a new one replaces it, and the trainer's end stops it.
    let mut job: Option<jobs::Job> = None;
    if paused {
        tx.send(TrainerEvent::Paused { step: t.batches });
    }
    loop {
        let cmd = if let Some(c) = inbox.deferred.pop_front() {
            Some(c)
        } else if paused {
            match inbox.cmds.blocking_recv() {
                Some(c) => Some(c),
                None => {
                    stopped = true;
                    break;
                }
            }
        } else {
            match inbox.cmds.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    stopped = true;
                    break;
                }
            }
        };
        let end = match cmd {
            Some(TrainerCommand::Pause) if !paused => {
                paused = true;
                tx.send(TrainerEvent::Paused { step: t.batches });
                EvalEnd::Complete
            }
            Some(TrainerCommand::Resume) if paused => {
                paused = false;
                tx.send(TrainerEvent::Resumed { step: t.batches });
                EvalEnd::Complete
            }
            Some(TrainerCommand::Step) if paused => one_step(t, tx, &mut inbox),
            Some(TrainerCommand::Stop) => EvalEnd::Stopped,
            Some(TrainerCommand::RunExperiment(kind)) => {
                job = Some(jobs::start(kind, t, tx.aux()));
                EvalEnd::Complete
            }
            Some(TrainerCommand::CancelExperiment) => {
                if let Some(j) = job.take() {
                    j.cancel();
                }
                EvalEnd::Complete
            }
            Some(cmd) => {
                apply(t, tx, cmd);
                EvalEnd::Complete
            }
            None => one_step(t, tx, &mut inbox),
        };
        if end == EvalEnd::Stopped {
            stopped = true;
            break;
        }
        // The plateau ends training as a `Stop` from the consumer did before it moved here: no
        // test evaluation unless `eval_on_stop` (the CLI evaluates after saving).
        if inbox.plateau_reached() {
            stopped = true;
            break;
        }
        if opts.max_steps.is_some_and(|m| t.batches >= m) || t.all_stopped() {
            break;
        }
    }
    let evaluated = t.cfg.eval_every > 0 && t.batches.is_multiple_of(t.cfg.eval_every);
    if !evaluated && (!stopped || opts.eval_on_stop) {
        evaluate(t, tx, &mut inbox);
    }
    tx.send(TrainerEvent::Finished { step: t.batches });
}

/// The commands that neither step, stop, pause nor resume.
fn apply(t: &mut Trainer, tx: &EventSender, cmd: TrainerCommand) {
    match cmd {
        TrainerCommand::Reset => {
            t.reset();
            for (run, info) in t.run_infos().into_iter().enumerate() {
                tx.send(TrainerEvent::RunRestarted { run, info });
            }
        }
        TrainerCommand::SetLr(lr) if lr.is_finite() && lr > 0.0 => {
            t.base_lr = lr;
            tx.send(TrainerEvent::LrChanged { lr });
        }
        TrainerCommand::ReplaceRun { run, spec } => match t.replace_run(run, &spec) {
            Ok(info) => tx.send(TrainerEvent::RunRestarted { run, info }),
            // A bad spec from the UI must not end training: report it and go on.
            Err(e) => tx.send(TrainerEvent::Diverged {
                run,
                step: 0,
                reason: format!("cannot swap: {e}"),
            }),
        },
        _ => {}
    }
}

fn one_step(t: &mut Trainer, tx: &EventSender, inbox: &mut Inbox<'_>) -> EvalEnd {
    // One event per run as it finishes: with three deep nets the screen moves three times a step.
    let (rule, first, trackers) = (inbox.opts.plateau, inbox.first, &mut inbox.plateau);
    t.step_each(|run, rec, diverged| {
        let step = rec.step;
        if let (Some(r), Some(tr)) = (&rule, trackers.get_mut(run)) {
            tr.push(r, step.saturating_sub(first), rec.loss as f64);
            tr.gave_up |= diverged.is_some();
        }
        tx.send_steps(vec![(run, rec)]);
        if let Some(reason) = diverged {
            tx.send(TrainerEvent::Diverged { run, step, reason });
        }
    });
    if t.cfg.eval_every > 0 && t.batches.is_multiple_of(t.cfg.eval_every) {
        return evaluate(t, tx, inbox);
    }
    EvalEnd::Complete
}

/// Progress events at most this often (besides one as each run's evaluation starts).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Evaluate every healthy run one test batch at a time, reading commands in between: a `Stop`
/// or a closed channel abandons the evaluation at once (no `Evaluated` for the unfinished run)
/// unless the worker evaluates on stop; every other command waits in the inbox until the
/// evaluation is done.
fn evaluate(t: &mut Trainer, tx: &EventSender, inbox: &mut Inbox<'_>) -> EvalEnd {
    let mut ev = t.start_evaluation();
    let mut shown: Option<(usize, Instant)> = None;
    while let Some((run, done, total)) = ev.position() {
        loop {
            let stop = match inbox.cmds.try_recv() {
                Ok(TrainerCommand::Stop) => true,
                Ok(cmd) => {
                    inbox.deferred.push_back(cmd);
                    continue;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => true,
            };
            if stop && !inbox.opts.eval_on_stop {
                return EvalEnd::Stopped;
            }
            // Evaluating anyway: the stop takes effect after the evaluation.
            inbox.deferred.push_back(TrainerCommand::Stop);
            break;
        }
        let due = shown.is_none_or(|(r, at)| r != run || at.elapsed() >= PROGRESS_EVERY);
        if due {
            tx.send(TrainerEvent::Evaluating { run, done, total });
            shown = Some((run, Instant::now()));
        }
        if let Some((run, eval)) = t.evaluate_batch(&mut ev) {
            tx.send(TrainerEvent::Evaluated { run, eval });
        }
    }
    EvalEnd::Complete
}
