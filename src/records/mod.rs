//! Run data at the bottom of the crate: the records of every training step and evaluation, their
//! analysis (gradient flow fits, the eq. 5 split), the messages between the trainer and a viewer,
//! and the experiments' parameters and results. Plain data and pure functions only: the
//! dashboard, snapshots and compare use them without the engine or the trainer.

pub mod events;
pub mod experiments;
pub mod flow;
pub mod histogram;
pub mod learning;
pub mod plateau;
pub mod record;
pub mod stage;

pub use events::{TrainerCommand, TrainerEvent};
pub use experiments::{
    AccuracyCheck, BlockLesion, CHANCE_MARGIN, DASHBOARD_LESION_IMAGES, EVAL_GAP, ExperimentKind,
    ExperimentResult, LandscapeParams, LandscapeResult, LesionParams, LesionReport, LesionStudy,
    ModelLesion, PreciseBn, ShatterParams, ShatterResult, default_bn,
};
pub use record::{BlockStat, Eq5, EvalRecord, RunHistory, RunInfo, RunStatus, StepRecord};
