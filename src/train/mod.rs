//! Training: N runs fed identical batches on a background task, streaming records of every step.

pub mod events;
pub mod record;

pub use events::{TrainerCommand, TrainerEvent};
pub use record::{BlockStat, EvalRecord, RunHistory, RunInfo, RunStatus, StepRecord};
