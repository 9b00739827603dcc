//! The end of `train` after a signal (or the plateau rule) stopped the worker: the worker does
//! not evaluate on stop, because a supervisor's SIGTERM gives a few seconds' grace and a test
//! evaluation of every run can take longer; the CLI saves first, then evaluates here on a
//! blocking thread, and a second signal skips the evaluation (the save already stands).

use crate::records::{EvalRecord, RunHistory, RunStatus, TrainerCommand};
use crate::signals::Signals;
use crate::train::Trainer;
use color_eyre::eyre::{Result, WrapErr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

/// The signals received during a run, in order; the first one also tells the trainer to stop.
pub struct Interrupts {
    rx: UnboundedReceiver<i32>,
    first: Option<i32>,
    task: JoinHandle<()>,
}

impl Interrupts {
    /// Listen (inside a tokio runtime); the first signal sends `Stop` on `stop`.
    pub fn listen(stop: UnboundedSender<TrainerCommand>) -> Result<Self> {
        let mut signals = Signals::install().wrap_err("installing signal handlers")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let signal = signals.recv().await;
                let _ = stop.send(TrainerCommand::Stop);
                if tx.send(signal).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            rx,
            first: None,
            task,
        })
    }

    /// The first signal received so far, if any.
    pub fn first(&mut self) -> Option<i32> {
        if self.first.is_none() {
            self.first = self.rx.try_recv().ok();
        }
        self.first
    }

    /// Wait for the next signal after the ones already seen.
    async fn next(&mut self) -> Option<i32> {
        let s = self.rx.recv().await;
        self.first = self.first.or(s);
        s
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether some healthy run has no test evaluation at the trainer's current step.
pub fn needs_evaluation(trainer: &Trainer, histories: &[RunHistory]) -> bool {
    let step = trainer.batches;
    step > 0
        && histories.iter().any(|h| {
            !matches!(h.status, RunStatus::Diverged { .. })
                && h.evals.last().is_none_or(|e| e.step != step)
        })
}

/// Evaluate every healthy run on the test split off the runtime's threads, adding each result
/// to its history unless it already has one at this step. A signal stops it between test
/// batches: then nothing is added and `false` says it was skipped.
pub async fn evaluate(
    mut t: Trainer,
    histories: &mut [RunHistory],
    interrupts: &mut Interrupts,
) -> Result<(Trainer, bool)> {
    let skip = Arc::new(AtomicBool::new(false));
    let flag = skip.clone();
    let mut work = tokio::task::spawn_blocking(move || {
        let mut ev = t.start_evaluation();
        let mut evals: Vec<(usize, EvalRecord)> = Vec::new();
        while ev.position().is_some() && !flag.load(Ordering::Relaxed) {
            evals.extend(t.evaluate_batch(&mut ev));
        }
        (t, evals)
    });
    let (t, evals) = tokio::select! {
        done = &mut work => done.wrap_err("evaluation task")?,
        _ = interrupts.next() => {
            skip.store(true, Ordering::Relaxed);
            work.await.wrap_err("evaluation task")?
        }
    };
    let skipped = skip.load(Ordering::Relaxed);
    let step = t.batches;
    if skipped {
        return Ok((t, false));
    }
    for (run, eval) in evals {
        let h = &mut histories[run];
        if h.evals.last().is_none_or(|e| e.step != step) {
            h.evals.push(eval);
        }
    }
    Ok((t, true))
}
