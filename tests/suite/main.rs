//! The integration suite, one test crate so that it is built and linked once.
//! Run one file's tests with `cargo test --release --test suite FILE::`.

#[allow(dead_code)] // each file uses its own part
mod common;
mod pty;

mod chain_pty;
mod cli_bench;
mod cli_errors;
mod cli_experiments;
mod cli_help;
mod cli_lesion;
mod cli_probe;
mod cli_train;
mod compare_safety;
mod dashboard_experiments;
mod data_fetch;
mod data_loaders;
mod degradation;
mod fetch_limits;
mod final_loss;
mod flow_story;
mod fuzz;
mod fuzz_weights;
mod headless_progress;
mod interrupt;
mod landscape;
mod lesion;
mod limits;
mod model_contract;
mod numeric_bounds;
mod paper;
mod resume;
mod resume_checks;
mod resume_edits;
mod save_set;
mod save_siblings;
mod shatter;
mod signal_save;
mod snapshot_files;
mod source_layout;
mod stream_import;
mod swap_record;
mod trainer_control;
mod tui_keys;
mod tui_pty;
mod watch_pty;
