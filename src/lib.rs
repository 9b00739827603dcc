//! resviz: watch, live in a terminal, why residual networks train and plain deep stacks do not.
//!
//! Layers call only downward: `engine` ← `model` ← `train` ← `tui`; `data` feeds `train`,
//! `snapshot` records runs for replay, compare and resume.

pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod experiments;
pub mod model;
pub mod numfmt;
pub mod plotting;
pub mod records;
pub mod signals;
pub mod snapshot;
pub mod stream;
pub mod train;
pub mod tui;

/// The binary's allocator in the unit tests too, so they run the engine's allocator-dependent
/// paths (new gradient buffers written without zeroing: `engine::grads`).
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: engine::alloc::Allocator = engine::alloc::Allocator;
