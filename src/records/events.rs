//! The trainer's two channel directions: commands in (imperatives), events out (facts).

use super::experiments::{ExperimentKind, ExperimentResult};
use super::record::{EvalRecord, RunInfo, StepRecord};
use crate::config::ExperimentConfig;

/// Imperatives from the UI (or CLI) to the trainer, applied between steps.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainerCommand {
    Pause,
    Resume,
    /// Advance every run by exactly one step (while paused).
    Step,
    /// Finish the current step, emit `Finished`, and end the task. Abandons an evaluation under
    /// way (unless the worker evaluates on stop anyway); other commands wait until it is done.
    Stop,
    /// Fresh weights for every run; histories restart.
    Reset,
    SetLr(f64),
    /// Swap run `run`'s model (variant or depth); that run restarts, the others continue.
    ReplaceRun {
        run: usize,
        spec: String,
    },
    /// Start an experiment on copies of every run's current weights (stopping any running one).
    RunExperiment(ExperimentKind),
    /// Stop the running experiment, if any.
    CancelExperiment,
}

/// Facts from the trainer. Step events may be coalesced (several steps in one event) when the
/// consumer is slow; every other event is delivered.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainerEvent {
    Started {
        config: ExperimentConfig,
        dataset: String,
        runs: Vec<RunInfo>,
    },
    /// Records of one or more consecutive steps: `records[i]` is `(run index, record)`.
    StepsFinished {
        records: Vec<(usize, StepRecord)>,
    },
    /// A test evaluation is under way: run `run` has `done` of its `total` test batches behind
    /// it. Sent when each run's evaluation starts and then at most every ~100 ms; consecutive
    /// ones coalesce into the latest.
    Evaluating {
        run: usize,
        done: usize,
        total: usize,
    },
    Evaluated {
        run: usize,
        eval: EvalRecord,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    LrChanged {
        lr: f64,
    },
    Diverged {
        run: usize,
        step: u64,
        reason: String,
    },
    /// Run `run` now trains `info` from fresh weights (after `ReplaceRun` or `Reset`).
    RunRestarted {
        run: usize,
        info: RunInfo,
    },
    Finished {
        step: u64,
    },
    Failed {
        message: String,
    },
    /// `done` of `total` units of an experiment's work are finished.
    ExperimentProgress {
        kind: ExperimentKind,
        done: usize,
        total: usize,
    },
    ExperimentFinished {
        result: Box<ExperimentResult>,
    },
    /// Cancelled before it finished: no result.
    ExperimentStopped {
        kind: ExperimentKind,
    },
    ExperimentFailed {
        kind: ExperimentKind,
        message: String,
    },
    /// `resviz watch`: a stream's header arrived, so run `run` is now `info`, trained on
    /// `dataset` (a description: the data, the writer, its note). Its history starts afresh.
    StreamRun {
        run: usize,
        info: RunInfo,
        dataset: String,
    },
    /// `resviz watch`: a stream has something to say (waiting, connected, disconnected, bad
    /// input: `error`), and how many step records the viewer has dropped so far for falling
    /// behind (`dropped`, a running total).
    StreamNote {
        text: String,
        error: bool,
        dropped: u64,
    },
}
