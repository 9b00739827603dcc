//! Training: N runs fed identical batches on a background task, streaming records of every step.

pub mod budget;
pub mod channel;
pub mod events;
pub mod experiment;
pub mod flow;
pub mod jobs;
pub mod landscape;
pub mod lesion;
pub mod optim;
pub mod plateau;
pub mod record;
pub mod schedule;
pub mod shatter;
pub mod stage;
pub mod trainer;
mod update;
pub mod worker;

pub use channel::{EventReceiver, EventSender, event_channel};
pub use events::{TrainerCommand, TrainerEvent};
pub use record::{BlockStat, Eq5, EvalRecord, RunHistory, RunInfo, RunStatus, StepRecord};
pub use trainer::{TrainError, Trainer};
pub use worker::{TrainerHandle, WorkerOptions, spawn};
