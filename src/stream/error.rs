//! Why a line of a stream could not be read. Every message is one line naming the stream's line
//! number; strings taken from the stream are made printable and cut before they are shown.

use super::STREAM_VERSION;

/// Why a stream line was refused. The stream stops at the first one: a later line cannot be
/// trusted to belong to the same run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamError {
    /// The line stops partway through its JSON (a writer killed mid-line, `head -c`).
    #[error("line {line}: the line stops partway (truncated JSON)")]
    Truncated { line: u64 },
    /// Not JSON, or JSON of the wrong shape (a missing or unknown field, a wrong type).
    #[error("line {line}: not a resviz stream line: {message}")]
    Json { line: u64, message: String },
    /// `kind` is neither `run` nor `step`.
    #[error("line {line}: unknown kind {kind:?} (a stream has \"run\" and \"step\" lines)")]
    UnknownKind { line: u64, kind: String },
    /// The header's format version is newer than this build reads.
    #[error(
        "line {line}: stream format version {found} is newer than this resviz ({}) reads \
         (version {STREAM_VERSION}): upgrade resviz",
        env!("CARGO_PKG_VERSION")
    )]
    NewerVersion { line: u64, found: u64 },
    /// Version 0 or another impossible version.
    #[error("line {line}: stream format version {found} does not exist")]
    BadVersion { line: u64, found: u64 },
    /// A step line before the run header.
    #[error("line {line}: a step before the run header (the first line must be kind \"run\")")]
    NoHeader { line: u64 },
    /// A second run header in one stream.
    #[error("line {line}: a second run header (one stream carries one run)")]
    SecondHeader { line: u64 },
    /// A step's blocks or params do not match the names of the header.
    #[error("line {line}: step {step} has {found} {what}, the header names {expected}")]
    Count {
        line: u64,
        step: u64,
        what: &'static str,
        found: usize,
        expected: usize,
    },
    /// A step's block is not the one the header names at that place.
    #[error("line {line}: step {step}: block {index} is {found:?}, the header names {expected:?}")]
    BlockName {
        line: u64,
        step: u64,
        index: usize,
        found: String,
        expected: String,
    },
    /// Steps must increase.
    #[error("line {line}: step {step} after step {previous} (steps must increase)")]
    Order { line: u64, step: u64, previous: u64 },
    /// A value no training run produces (a negative norm, an accuracy above 1, …).
    #[error("line {line}: {what} is {value}, outside {range}")]
    OutOfRange {
        line: u64,
        what: String,
        value: f64,
        range: &'static str,
    },
    /// The header is unusable (no blocks, a duplicate name, …).
    #[error("line {line}: bad run header: {message}")]
    Header { line: u64, message: String },
    /// A line longer than [`super::MAX_LINE`] bytes: not a stream, or a runaway writer.
    #[error("line {line}: longer than {max} bytes", max = super::MAX_LINE)]
    TooLong { line: u64 },
    /// The bytes are not UTF-8 text.
    #[error("line {line}: not UTF-8 text")]
    NotText { line: u64 },
}

impl StreamError {
    /// The stream line the error is about (1-based).
    pub fn line(&self) -> u64 {
        match self {
            Self::Truncated { line }
            | Self::Json { line, .. }
            | Self::UnknownKind { line, .. }
            | Self::NewerVersion { line, .. }
            | Self::BadVersion { line, .. }
            | Self::NoHeader { line }
            | Self::SecondHeader { line }
            | Self::Count { line, .. }
            | Self::BlockName { line, .. }
            | Self::Order { line, .. }
            | Self::OutOfRange { line, .. }
            | Self::Header { line, .. }
            | Self::TooLong { line }
            | Self::NotText { line } => *line,
        }
    }
}

/// `s` fit for a one-line message: control characters escaped, at most 60 characters.
pub fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect();
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}
