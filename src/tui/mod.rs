//! The dashboard: `App` state (no I/O), views that render it, and the terminal loop that feeds
//! it keys and trainer events.

pub mod app;
pub mod cursor;
pub mod experiments;
pub mod keys;
pub mod layout;
pub mod run;
pub mod scale;
pub mod screenshot;
pub mod theme;
pub mod views;
pub mod widgets;

mod series;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod render_tests;
#[cfg(test)]
mod render_view_tests;

pub use app::{Action, App, Msg, SaveKind, Status, TrainerPhase};
pub use run::{EventSource, Exit, run_dashboard, run_replay};
pub use views::draw;
