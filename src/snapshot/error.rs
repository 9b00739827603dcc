//! Why a snapshot could not be saved, loaded or trusted: [`SnapshotError`] for the file, and
//! [`Inconsistency`] for records that parse but do not agree with each other or lie outside the
//! range a training run can produce. Every message is one line; strings taken from the file are
//! passed through [`super::printable`] before they are shown.

use super::{FORMAT_VERSION, MIN_FORMAT_VERSION};
use std::io;
use std::path::{Path, PathBuf};

/// Why a snapshot could not be saved or loaded. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading, writing, creating a directory or renaming failed (missing file, read-only
    /// directory, full disk, …).
    /// (`error` is part of the message, not a `source`: the one line must not repeat it.)
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The file is not valid RON for a snapshot (malformed, wrong shape).
    #[error("{path}:{line}:{column}: not a valid resviz snapshot: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file is not a snapshot at all (no `format_version`): another file given by mistake.
    #[error("{path} is not a resviz snapshot ({why})")]
    NotSnapshot { path: PathBuf, why: &'static str },
    /// The text stops partway through the snapshot; `line` and `column` are where it ends.
    /// (`message` is ron's, which only describes the cut-off last token.)
    #[error("{path}: the file ends early (truncated?) at line {line}, column {column}: {message}")]
    Truncated {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file's format version is not one this resviz reads.
    #[error(
        "{path}: snapshot format version {found} is not supported (this resviz {} reads \
         versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}){}",
        env!("CARGO_PKG_VERSION"),
        if *found > FORMAT_VERSION as u64 { "; it was written by a newer resviz" } else { "" }
    )]
    Version { path: PathBuf, found: u64 },
    /// The file parses but its records are inconsistent or out of range.
    #[error("{path}: inconsistent snapshot: {problem}")]
    Invalid {
        path: PathBuf,
        problem: Inconsistency,
    },
    /// The snapshot could not be turned into RON (should not happen).
    #[error("{path}: {message}")]
    Other { path: PathBuf, message: String },
}

impl SnapshotError {
    pub(crate) fn io(action: &'static str, path: &Path, error: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// What is wrong with records that parsed. `run` is the run's place and spec, e.g.
/// `run 2 (v1-20)`, already made printable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Inconsistency {
    #[error("{run}: step {step} has {found} block stats but the run has {expected} block names")]
    BlockCount {
        run: String,
        step: u64,
        found: usize,
        expected: usize,
    },
    #[error(
        "{run}: step {step} has {found} per-parameter figures (gradient norms, update ratios or \
         weight norms) but the run has {expected} parameter names"
    )]
    ParamCount {
        run: String,
        step: u64,
        found: usize,
        expected: usize,
    },
    #[error("{run}: steps out of order (step {step} after step {previous})")]
    StepsOutOfOrder {
        run: String,
        step: u64,
        previous: u64,
    },
    #[error("{run}: evaluations out of order (step {step} after step {previous})")]
    EvalsOutOfOrder {
        run: String,
        step: u64,
        previous: u64,
    },
    /// A value no training run produces (an accuracy of 7.5, a negative loss, …).
    #[error("{run}: {what} {value} at step {step} is outside {range}")]
    OutOfRange {
        run: String,
        step: u64,
        what: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error(
        "the resume state has {runs} runs and {files} sets of files but the snapshot has {expected} runs"
    )]
    ResumeRunCount {
        runs: usize,
        files: usize,
        expected: usize,
    },
    #[error("{run}: the resume state is for {resume_spec}")]
    ResumeSpec { run: String, resume_spec: String },
    /// A run's step count in the resume state is not the last step of its history.
    #[error(
        "{run}: the resume state is at step {resume_step} but its history ends at step {history_step}"
    )]
    ResumeStep {
        run: String,
        resume_step: u64,
        history_step: u64,
    },
    #[error("{run}: the resume state is at step {step}, more than the {batches} batches drawn")]
    ResumeBatches {
        run: String,
        step: u64,
        batches: u64,
    },
    #[error("the resume state's base learning rate {0} is not a positive number")]
    BaseLr(f64),
    /// Format 3 records a checksum of every weight and optimizer file.
    #[error("{run}: the resume state has no checksum for its {what} file")]
    MissingChecksum { run: String, what: &'static str },
    /// Weight and optimizer files are bare names in the snapshot's own folder.
    #[error(
        "{run}: the resume state names the {what} file \"{name}\", which is not a bare file name \
         in the snapshot's folder"
    )]
    ResumeFileName {
        run: String,
        what: &'static str,
        name: String,
    },
}
