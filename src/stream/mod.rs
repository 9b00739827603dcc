//! Training streams: runs trained elsewhere (PyTorch, through `python/resviz_torch`) sent to
//! resviz as JSON lines, one header then one line per step (ARCHITECTURE.md, *The stream
//! format*). [`Parser`] turns lines into [`RunHeader`] and [`StreamStep`]s (a `RunInfo` and
//! `StepRecord`s), refusing anything off the format with one [`StreamError`] line; [`source`]
//! reads a file as it grows or a TCP peer and hands the items on without ever blocking the peer.

pub mod convert;
mod error;
pub mod source;

mod wire;

#[cfg(test)]
mod tests;

pub use error::StreamError;

use crate::records::learning;
use crate::records::record::{BlockStat, Eq5, RunInfo, StepRecord};
use std::collections::HashSet;
use std::io::BufRead;
use wire::{BlockLine, RunLine, StepLine};

/// The stream format this build reads and documents.
pub const STREAM_VERSION: u64 = 1;
/// Longest line accepted (a step of a 1,000-block net with every parameter is well under this).
pub const MAX_LINE: usize = 16 << 20;

/// A stream's header: the run and what the dashboard shows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunHeader {
    /// `spec` is the run's name; block and parameter names index every step.
    pub info: RunInfo,
    pub dataset: Option<String>,
    pub batch: Option<usize>,
    pub lr: Option<f64>,
    pub note: Option<String>,
    pub writer: Option<String>,
}

/// One step of a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamStep {
    pub record: StepRecord,
    /// ‖W‖ per parameter after the step (empty when not sent). Kept beside the record until
    /// `StepRecord` holds it.
    pub weight_norms: Vec<f32>,
}

/// What one line held.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Run(RunHeader),
    Step(StreamStep),
}

/// Reads one stream line by line, checking each against the header and the step before.
#[derive(Debug, Default)]
pub struct Parser {
    header: Option<RunHeader>,
    line: u64,
    last_step: Option<u64>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The header, once read.
    pub fn header(&self) -> Option<&RunHeader> {
        self.header.as_ref()
    }

    /// Lines seen so far (blank ones included).
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// One line, without its newline. Blank lines are skipped (`Ok(None)`).
    pub fn line_bytes(&mut self, bytes: &[u8]) -> Result<Option<Item>, StreamError> {
        self.line += 1;
        let line = self.line;
        if bytes.len() > MAX_LINE {
            return Err(StreamError::TooLong { line });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| StreamError::NotText { line })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let mut value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| json_error(line, &e))?;
        let kind = match value.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(other) => {
                let kind = error::shown(&other.to_string());
                return Err(StreamError::UnknownKind { line, kind });
            }
            None => {
                let message = "no \"kind\" field".to_string();
                return Err(StreamError::Json { line, message });
            }
        };
        let value = serde_json::Value::Object(value);
        match kind.as_str() {
            "run" => self.run(serde_json::from_value(value).map_err(|e| json_error(line, &e))?),
            "step" => self.step(serde_json::from_value(value).map_err(|e| json_error(line, &e))?),
            _ => Err(StreamError::UnknownKind {
                line,
                kind: error::shown(&kind),
            }),
        }
        .map(Some)
    }

    fn run(&mut self, r: RunLine) -> Result<Item, StreamError> {
        let line = self.line;
        if self.header.is_some() {
            return Err(StreamError::SecondHeader { line });
        }
        if r.version > STREAM_VERSION {
            return Err(StreamError::NewerVersion {
                line,
                found: r.version,
            });
        }
        if r.version == 0 {
            return Err(StreamError::BadVersion { line, found: 0 });
        }
        let bad = |message: String| StreamError::Header { line, message };
        if r.block_names.is_empty() {
            return Err(bad("no block_names".into()));
        }
        if r.name.trim().is_empty() {
            return Err(bad("the run has no name".into()));
        }
        for (what, names) in [("block", &r.block_names), ("parameter", &r.param_names)] {
            let mut seen = HashSet::new();
            if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(bad(format!(
                    "{what} {:?} is named twice",
                    error::shown(dup)
                )));
            }
        }
        if r.lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
            return Err(bad("lr must be a positive number".into()));
        }
        if r.batch == Some(0) {
            return Err(bad("batch must be at least 1".into()));
        }
        let init = r.init_weight_norms.unwrap_or_default();
        if !init.is_empty() && init.len() != r.param_names.len() {
            return Err(bad(format!(
                "init_weight_norms has {} entries for {} param_names",
                init.len(),
                r.param_names.len()
            )));
        }
        if let Some(v) = init.iter().find(|v| !norm_ok(**v) || v.is_infinite()) {
            return Err(bad(format!(
                "init_weight_norms holds {v}: a norm is finite and not negative (null: unknown)"
            )));
        }
        let clean = |s: String| printable(&s);
        let header = RunHeader {
            info: RunInfo {
                spec: clean(r.name),
                block_names: r.block_names.into_iter().map(clean).collect(),
                param_names: r.param_names.into_iter().map(clean).collect(),
                num_params: r.num_params,
                // Empty in a stream without them: growth then stays unknown.
                init_weight_norms: init,
            },
            dataset: r.dataset.map(clean),
            batch: r.batch,
            lr: r.lr,
            note: r.note.map(clean),
            writer: r.writer.map(clean),
        };
        self.header = Some(header.clone());
        Ok(Item::Run(header))
    }

    fn step(&mut self, s: StepLine) -> Result<Item, StreamError> {
        let line = self.line;
        let Some(h) = &self.header else {
            return Err(StreamError::NoHeader { line });
        };
        let step = s.step;
        if let Some(previous) = self.last_step.filter(|&p| step <= p) {
            return Err(StreamError::Order {
                line,
                step,
                previous,
            });
        }
        let count = |what, found, expected| StreamError::Count {
            line,
            step,
            what,
            found,
            expected,
        };
        let names = &h.info.block_names;
        if s.blocks.len() != names.len() {
            return Err(count("blocks", s.blocks.len(), names.len()));
        }
        let params = s.params.unwrap_or_default();
        let np = h.info.param_names.len();
        if !params.is_empty() && params.len() != np {
            return Err(count("params", params.len(), np));
        }
        let range = |what: String, value: f32, ok: bool, range| match ok {
            true => Ok(()),
            false => Err(StreamError::OutOfRange {
                line,
                what,
                value: value as f64,
                range,
            }),
        };
        let acc = s.acc.unwrap_or(0.0);
        range("acc".into(), acc, unit(acc), UNIT)?;
        range("loss".into(), s.loss, norm_ok(s.loss), NORM)?;
        let lr = s.lr.or(h.lr.map(|v| v as f32)).unwrap_or(0.0);
        range("lr".into(), lr, lr.is_finite() && lr >= 0.0, POSITIVE)?;
        let img_per_s = s.img_per_s.unwrap_or(0.0);
        range("img_per_s".into(), img_per_s, img_per_s >= 0.0, POSITIVE)?;
        let mut blocks = Vec::with_capacity(s.blocks.len());
        for (index, (b, name)) in s.blocks.into_iter().zip(names).enumerate() {
            if printable(&b.name) != *name {
                return Err(StreamError::BlockName {
                    line,
                    step,
                    index,
                    found: error::shown(&b.name),
                    expected: error::shown(name),
                });
            }
            blocks.push(block(b, &|what, v, ok, r| {
                range(format!("{what} of {}", error::shown(name)), v, ok, r)
            })?);
        }
        for (p, name) in params.iter().zip(&h.info.param_names) {
            let what = |field: &str| format!("{field} of {}", error::shown(name));
            range(what("grad_norm"), p.grad_norm, norm_ok(p.grad_norm), NORM)?;
            for (field, v) in [
                ("weight_norm", p.weight_norm),
                ("update_ratio", p.update_ratio),
            ] {
                if let Some(v) = v {
                    range(what(field), v, norm_ok(v), NORM)?;
                }
            }
        }
        // All or nothing: a partly measured vector would misalign with the names.
        let all = |f: fn(&wire::ParamLine) -> Option<f32>| -> Vec<f32> {
            params
                .iter()
                .map(f)
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default()
        };
        let update_ratios = all(|p| p.update_ratio);
        let weight_norms = all(|p| p.weight_norm);
        let mut blocks = blocks;
        if let Some(h) = &self.header {
            let groups = learning::conv_weights(&h.info.block_names, &h.info.param_names);
            let learned = learning::block_learning(&groups, &update_ratios, &weight_norms);
            for (b, (ratio, norm)) in blocks.iter_mut().zip(learned) {
                (b.update_ratio, b.weight_norm) = (ratio, norm);
            }
        }
        self.last_step = Some(step);
        Ok(Item::Step(StreamStep {
            record: StepRecord {
                step,
                epoch: s.epoch,
                loss: s.loss,
                acc,
                lr,
                img_per_s,
                blocks,
                param_grad_norms: params.iter().map(|p| p.grad_norm).collect(),
                update_ratios,
                weight_norms: weight_norms.clone(),
                grad_hists: Vec::new(),
            },
            weight_norms,
        }))
    }
}

type RangeCheck<'a> = dyn Fn(&'static str, f32, bool, &'static str) -> Result<(), StreamError> + 'a;

fn block(b: BlockLine, range: &RangeCheck) -> Result<BlockStat, StreamError> {
    range("grad_norm", b.grad_norm, norm_ok(b.grad_norm), NORM)?;
    range(
        "act_zero_frac",
        b.act_zero_frac,
        b.act_zero_frac.is_nan() || unit(b.act_zero_frac),
        UNIT,
    )?;
    let dead = b.dead_frac.unwrap_or(0.0);
    range("dead_frac", dead, dead.is_nan() || unit(dead), UNIT)?;
    let split = match (b.grad_norm_shortcut, b.grad_norm_branch) {
        (Some(shortcut), Some(branch)) => {
            range("grad_norm_shortcut", shortcut, norm_ok(shortcut), NORM)?;
            range("grad_norm_branch", branch, norm_ok(branch), NORM)?;
            let cos = b.cos.unwrap_or(0.0);
            let ok = cos.is_nan() || (-1.001..=1.001).contains(&cos);
            range("cos", cos, ok, "[-1, 1]")?;
            Some(Eq5 {
                shortcut,
                branch,
                cos,
            })
        }
        (None, None) => None,
        _ => {
            let what = "grad_norm_shortcut without grad_norm_branch (or the reverse)";
            range(what, f32::NAN, false, "both or neither")?;
            None
        }
    };
    Ok(BlockStat {
        grad_norm: b.grad_norm,
        grad_rms: b.grad_rms.unwrap_or(0.0),
        act_mean: b.act_mean,
        act_std: b.act_std,
        act_zero_frac: b.act_zero_frac,
        dead_frac: dead,
        split,
        ..Default::default()
    })
}

const UNIT: &str = "[0, 1]";
const NORM: &str = "[0, ∞] (or null for a diverged run)";
const POSITIVE: &str = "[0, ∞)";

fn unit(v: f32) -> bool {
    (0.0..=1.0).contains(&v)
}

/// Norms and losses are never negative; NaN and +∞ are what a diverging run sends.
fn norm_ok(v: f32) -> bool {
    v.is_nan() || v >= 0.0
}

fn json_error(line: u64, e: &serde_json::Error) -> StreamError {
    match e.is_eof() {
        true => StreamError::Truncated { line },
        false => StreamError::Json {
            line,
            message: error::shown(&e.to_string()),
        },
    }
}

/// Names from a stream may not talk to the terminal: control characters are escaped.
fn printable(s: &str) -> String {
    match s.chars().any(char::is_control) {
        true => s
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect(),
        false => s.to_string(),
    }
}

/// A finished stream, whole: its header and every step. The last line must end with a newline
/// (a line without one is a writer cut off mid-line). Errors name the line.
pub fn read_all(mut reader: impl BufRead) -> Result<(RunHeader, Vec<StreamStep>), ReadError> {
    let mut parser = Parser::new();
    let mut steps = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut reader, MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(ReadError::Io)?;
        if n == 0 {
            break;
        }
        let complete = buf.last() == Some(&b'\n');
        if !complete && buf.len() <= MAX_LINE && !buf.iter().all(u8::is_ascii_whitespace) {
            return Err(StreamError::Truncated {
                line: parser.lines() + 1,
            }
            .into());
        }
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        match parser.line_bytes(text)? {
            Some(Item::Step(s)) => steps.push(s),
            Some(Item::Run(_)) | None => {}
        }
    }
    match parser.header {
        Some(h) => Ok((h, steps)),
        None => Err(ReadError::Empty),
    }
}

/// Why [`read_all`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("the stream is empty (no run header)")]
    Empty,
}
