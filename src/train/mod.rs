//! Training: N runs fed identical batches on a background task, streaming records of every step.

pub mod budget;
pub mod channel;
mod grad_hist;
pub mod jobs;
pub mod optim;
pub mod schedule;
pub mod trainer;
mod update;
pub use update::Moved;
pub mod worker;

pub use channel::{EventReceiver, EventSender, event_channel};
pub use trainer::{TrainError, Trainer};
pub use worker::{TrainerHandle, WorkerOptions, spawn};
