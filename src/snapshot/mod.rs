//! Run snapshots: versioned RON save/load, replay, compare.
//!
//! A [`RunSnapshot`] is the whole experiment config plus every run's bounded history (see
//! [`RunHistory::push`]). It is written as pretty RON (each block statistic on one line, so a
//! 10,000-step run of three 56-layer models stays a few MB), atomically: the text goes to a
//! temporary file in the target directory, is flushed to disk, and only then renamed over the
//! target, so a crash or a full disk never leaves a broken snapshot or clobbers an older one.
//!
//! [`load`] checks the format version first, then parses (errors carry line and column), then
//! checks that the records agree with the names they are indexed by. Every failure is one
//! [`SnapshotError`] whose message is a single line naming the file; a file that stops partway
//! (an interrupted copy, `head -c`) is reported as such rather than by ron's complaint about the
//! last partial token (see `ends_early`).
//!
//! Format history: version 1 is the first format (kept as `tests/fixtures/snapshot_v1.ron`).
//! Version 2 (`tests/fixtures/snapshot_v2.ron`) adds the optional `resume` section written with
//! weights ([`resume`]); a version 1 file reads as one without it. Later versions must keep
//! loading both, migrating them in [`load`].

pub mod compare;
mod format;
pub mod resume;
pub mod synthetic;

pub use compare::{compare_table, plot_svg, render_svg};
pub use resume::{ResumePoint, RunFiles};

use crate::config::ExperimentConfig;
use crate::train::record::RunHistory;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The snapshot format this code writes.
pub const FORMAT_VERSION: u32 = 3;
/// Oldest format version [`load`] still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Default directory for [`save`], relative to the working directory.
pub const DEFAULT_DIR: &str = "saves";

/// Everything needed to replay and compare an experiment's runs. (The file layout is private to
/// this module: use [`save`], [`save_to`], [`to_ron`], [`load`] and [`from_ron`].)
#[derive(Clone, Debug, PartialEq)]
pub struct RunSnapshot {
    /// [`FORMAT_VERSION`] at the time of writing; first field, so it can be read before the rest.
    pub format_version: u32,
    /// `CARGO_PKG_VERSION` of the resviz that wrote the file.
    pub resviz_version: String,
    /// Creation time, RFC 3339 (local time with offset).
    pub created: String,
    pub config: ExperimentConfig,
    /// Description of the data the runs trained on (e.g. `synthetic`, `mnist (10000 images)`).
    pub dataset: String,
    /// The trainer's step count when the snapshot was taken (0 if unknown).
    pub step: u64,
    pub runs: Vec<RunHistory>,
    /// What `resviz train --resume` continues from; only in snapshots saved with weights.
    pub resume: Option<ResumePoint>,
}

impl RunSnapshot {
    /// A snapshot of `runs` stamped with the current format, resviz version and local time.
    pub fn new(
        config: ExperimentConfig,
        dataset: impl Into<String>,
        runs: Vec<RunHistory>,
    ) -> Self {
        let step = runs
            .iter()
            .filter_map(|r| r.last().map(|s| s.step))
            .max()
            .unwrap_or(0);
        Self {
            format_version: FORMAT_VERSION,
            resviz_version: env!("CARGO_PKG_VERSION").to_string(),
            created: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            config,
            dataset: dataset.into(),
            step,
            runs,
            resume: None,
        }
    }

    /// Check that every record agrees with the names it is indexed by. The message (without the
    /// file name) says which run and step is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (r, run) in self.runs.iter().enumerate() {
            let who = format!("run {} ({})", r + 1, run.info.spec);
            let nb = run.info.block_names.len();
            let np = run.info.param_names.len();
            let mut prev: Option<u64> = None;
            for s in &run.steps {
                if s.blocks.len() != nb {
                    return Err(format!(
                        "{who}: step {} has {} block stats but the run has {nb} block names",
                        s.step,
                        s.blocks.len()
                    ));
                }
                if !s.param_grad_norms.is_empty() && s.param_grad_norms.len() != np {
                    return Err(format!(
                        "{who}: step {} has {} parameter gradient norms but the run has {np} \
                         parameter names",
                        s.step,
                        s.param_grad_norms.len()
                    ));
                }
                if let Some(p) = prev
                    && s.step <= p
                {
                    return Err(format!(
                        "{who}: steps out of order (step {} after step {p})",
                        s.step
                    ));
                }
                prev = Some(s.step);
            }
            let mut prev: Option<u64> = None;
            for e in &run.evals {
                if let Some(p) = prev
                    && e.step < p
                {
                    return Err(format!(
                        "{who}: evaluations out of order (step {} after step {p})",
                        e.step
                    ));
                }
                prev = Some(e.step);
            }
        }
        match &self.resume {
            Some(r) => r.validate(&self.runs),
            None => Ok(()),
        }
    }
}

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
    /// The file parses but its records are inconsistent.
    #[error("{path}: inconsistent snapshot: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The snapshot could not be turned into RON (should not happen) or a plot failed.
    #[error("{path}: {message}")]
    Other { path: PathBuf, message: String },
}

impl SnapshotError {
    fn io(action: &'static str, path: &Path, error: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// RON layout: indented down to the lists of a run; each step record and each evaluation is
/// one line.
fn pretty_config() -> ron::ser::PrettyConfig {
    ron::ser::PrettyConfig::new().depth_limit(4).indentor(" ")
}

/// The snapshot as pretty RON text, as [`save`] writes it.
pub fn to_ron(snap: &RunSnapshot) -> Result<String, ron::Error> {
    let body = ron::ser::to_string_pretty(&format::File::from_snapshot(snap), pretty_config())?;
    let mut text = String::with_capacity(format::HEADER.len() + body.len() + 1);
    text.push_str(format::HEADER);
    text.push_str(&body);
    text.push('\n');
    Ok(text)
}

/// A readable file name for `snap` from its creation time and runs, e.g.
/// `2026-11-29T04-50-12_plain-56_v1-56_v2-56.ron`. Only ASCII letters, digits, `-`, `_`, `.`
/// and `+` appear in it.
pub fn default_name(snap: &RunSnapshot) -> String {
    let time = match chrono::DateTime::parse_from_rfc3339(&snap.created) {
        Ok(t) => t.format("%Y-%m-%dT%H-%M-%S").to_string(),
        Err(_) => sanitize(&snap.created),
    };
    let mut specs: Vec<String> = snap.runs.iter().map(|r| sanitize(&r.info.spec)).collect();
    if specs.is_empty() {
        specs = snap.config.models.iter().map(|m| sanitize(m)).collect();
    }
    const SHOWN: usize = 6;
    let extra = specs.len().saturating_sub(SHOWN);
    specs.truncate(SHOWN);
    if extra > 0 {
        specs.push(format!("+{extra}"));
    }
    let mut name = if time.is_empty() {
        "snapshot".to_string()
    } else {
        time
    };
    for s in specs.iter().filter(|s| !s.is_empty()) {
        name.push('_');
        name.push_str(s);
    }
    name.push_str(".ron");
    name
}

fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    while out.starts_with('.') || out.starts_with('-') {
        out.remove(0);
    }
    out
}

/// Save `snap` into `dir` (created if missing) under [`default_name`]; if that name is taken, a
/// `-2`, `-3`, … suffix is added, so an existing snapshot is never replaced. Returns the path
/// written.
pub fn save(snap: &RunSnapshot, dir: &Path) -> Result<PathBuf, SnapshotError> {
    let text = to_ron(snap).map_err(|e| SnapshotError::Other {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    fs::create_dir_all(dir).map_err(|e| SnapshotError::io("create directory", dir, e))?;
    let name = default_name(snap);
    let stem = name.strip_suffix(".ron").unwrap_or(&name).to_string();
    let tmp = write_temp(dir, &name, &text)?;
    let mut k = 1;
    loop {
        let target = if k == 1 {
            dir.join(&name)
        } else {
            dir.join(format!("{stem}-{k}.ron"))
        };
        if target.exists() && k < 10_000 {
            k += 1;
            continue;
        }
        return finish(&tmp, &target, dir);
    }
}

/// Save `snap` to exactly `path` (its directory is created if missing), atomically replacing
/// any file there only once the new one is completely on disk.
pub fn save_to(snap: &RunSnapshot, path: &Path) -> Result<(), SnapshotError> {
    let text = to_ron(snap).map_err(|e| SnapshotError::Other {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &text)
}

/// Write `text` to `path` through a temporary file in the same directory (created if missing),
/// flushed to disk before it is renamed over `path`.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), SnapshotError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| SnapshotError::Other {
            path: path.to_path_buf(),
            message: "not a file path".to_string(),
        })?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(&dir).map_err(|e| SnapshotError::io("create directory", &dir, e))?;
    let tmp = write_temp(&dir, &name, text)?;
    finish(&tmp, path, &dir).map(|_| ())
}

/// Write `text` to a fresh hidden temporary file in `dir` and flush it to disk.
fn write_temp(dir: &Path, name: &str, text: &str) -> Result<PathBuf, SnapshotError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempt = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
                continue;
            }
            Err(e) => return Err(SnapshotError::io("write snapshot in", dir, e)),
        };
        let written = file
            .write_all(text.as_bytes())
            .and_then(|_| file.sync_all());
        drop(file);
        return match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(SnapshotError::io("write snapshot in", dir, e))
            }
        };
    }
}

/// Rename the finished temporary file onto `target` and make the rename durable.
fn finish(tmp: &Path, target: &Path, dir: &Path) -> Result<PathBuf, SnapshotError> {
    if let Err(e) = fs::rename(tmp, target) {
        let _ = fs::remove_file(tmp);
        return Err(SnapshotError::io("write", target, e));
    }
    // Persist the directory entry; not every platform or filesystem allows syncing a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(target.to_path_buf())
}

/// Read and check a snapshot.
pub fn load(path: &Path) -> Result<RunSnapshot, SnapshotError> {
    let bytes = fs::read(path).map_err(|e| SnapshotError::io("read", path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let (line, column) = line_col(valid);
            return Err(SnapshotError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: "the file is not UTF-8 text".to_string(),
            });
        }
    };
    from_ron(&text, path)
}

/// Parse and check snapshot text; `path` is only used in error messages.
pub fn from_ron(text: &str, path: &Path) -> Result<RunSnapshot, SnapshotError> {
    let version_error = |found: u64| SnapshotError::Version {
        path: path.to_path_buf(),
        found,
    };
    let supported = |v: u64| (MIN_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&v);
    // The version decides how the rest is read, so look at it before parsing the whole file.
    let declared = peek_version(text);
    if let Some(v) = declared
        && !supported(v)
    {
        return Err(version_error(v));
    }
    let file: format::File = ron::from_str(text).map_err(|e| parse_error(text, path, e))?;
    let snap = file.into_snapshot();
    if !supported(snap.format_version as u64) {
        return Err(version_error(snap.format_version as u64));
    }
    snap.validate().map_err(|message| SnapshotError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(snap)
}

/// The error for text ron could not read as a snapshot: [`SnapshotError::Truncated`] at the end
/// of the text if it stops partway, else [`SnapshotError::Parse`] where ron stopped.
fn parse_error(text: &str, path: &Path, e: ron::error::SpannedError) -> SnapshotError {
    let path = path.to_path_buf();
    let message = e.code.to_string();
    if matches!(e.code, ron::Error::Eof) || ends_early(text) {
        let (line, column) = line_col(text.as_bytes());
        return SnapshotError::Truncated {
            path,
            line,
            column,
            message,
        };
    }
    SnapshotError::Parse {
        path,
        line: e.span.start.line,
        column: e.span.start.col,
        message,
    }
}

/// Whether `text` stops inside a RON value: a bracket left open, a string or block comment
/// unterminated, or no value begun at all (empty, or only the header comment).
///
/// Why not ron's error: on a cut-off snapshot ron describes whatever the partial last token
/// looks like ("Unexpected field named c" for a cut inside `created`, "Expected comma",
/// "Expected end of string", …), rarely `Eof`, and sometimes points at the start of that token
/// rather than the end of the text. Whether the brackets close depends on the text alone: a
/// snapshot is one `( … )`, so every proper prefix of it leaves something open wherever the cut
/// falls, while garbage with balanced brackets (or none) keeps ron's message.
fn ends_early(text: &str) -> bool {
    let (mut at, mut depth, mut begun) = (0, 0usize, false);
    while at < text.len() {
        let rest = &text[at..];
        let Some(len) = token_len(rest) else {
            return true;
        };
        match rest.as_bytes()[0] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let comment = rest.starts_with("//") || rest.starts_with("/*");
        begun |= !comment && !rest.starts_with(char::is_whitespace);
        at += len;
    }
    depth > 0 || !begun
}

/// Bytes in the comment or string that `rest` starts with, else in its first character (so
/// brackets inside comments and strings are not counted); `None` if a string or block comment
/// runs to the end of the text. (Nested block comments and raw strings are not special-cased:
/// snapshots are written with neither.)
fn token_len(rest: &str) -> Option<usize> {
    if rest.starts_with("//") {
        Some(rest.find('\n').unwrap_or(rest.len()))
    } else if rest.starts_with("/*") {
        rest.find("*/").map(|i| i + 2)
    } else if let Some(body) = rest.strip_prefix('"') {
        let mut escaped = false;
        let end = body.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        end.map(|(i, _)| i + 2)
    } else {
        rest.chars().next().map(char::len_utf8)
    }
}

/// The `format_version` declared near the start of the text, if it can be found cheaply.
fn peek_version(text: &str) -> Option<u64> {
    let head = &text[..text.len().min(4096)];
    let at = head.find("format_version")?;
    let rest = head[at + "format_version".len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// 1-based line and column just after `bytes`.
fn line_col(bytes: &[u8]) -> (usize, usize) {
    let line = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
    let last = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = 1 + String::from_utf8_lossy(&bytes[last..]).chars().count();
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::record::{RunInfo, RunStatus};

    fn snap() -> RunSnapshot {
        synthetic::snapshot(&["plain-20", "v1-20"], 30, 7)
    }

    #[test]
    fn default_name_is_time_and_runs() {
        let mut s = snap();
        s.created = "2026-11-29T04:50:12+01:00".into();
        assert_eq!(default_name(&s), "2026-11-29T04-50-12_plain-20_v1-20.ron");
        s.runs[0].info.spec = "weird/spec name:*".into();
        let n = default_name(&s);
        assert_eq!(n, "2026-11-29T04-50-12_weird-spec-name--_v1-20.ron");
        s.created = "not a time".into();
        assert!(default_name(&s).starts_with("not-a-time_"));
        s.runs = (0..9)
            .map(|i| {
                RunHistory::new(RunInfo {
                    spec: format!("v2-{i}"),
                    ..Default::default()
                })
            })
            .collect();
        assert!(
            default_name(&s).ends_with("_v2-5_+3.ron"),
            "{}",
            default_name(&s)
        );
    }

    #[test]
    fn ron_text_round_trips_including_non_finite_values() {
        let mut s = snap();
        s.runs[0].steps[3].loss = f32::NAN;
        s.runs[0].steps[4].loss = f32::INFINITY;
        s.runs[1].status = RunStatus::Diverged {
            step: 12,
            reason: "loss is NaN".into(),
        };
        let text = to_ron(&s).unwrap();
        let back = from_ron(&text, Path::new("x.ron")).unwrap();
        assert!(back.runs[0].steps[3].loss.is_nan());
        assert_eq!(back.runs[0].steps[4].loss, f32::INFINITY);
        assert_eq!(back.runs[1].status, s.runs[1].status);
        assert_eq!(back.runs[1], s.runs[1]);
    }

    #[test]
    fn version_is_read_before_the_rest() {
        let text = to_ron(&snap()).unwrap().replacen(
            &format!("format_version: {FORMAT_VERSION}"),
            "format_version: 7",
            1,
        );
        // A future format may have other fields; the version error wins over parse errors.
        let text = text.replacen("dataset:", "new_field: 3, dataset:", 1);
        let e = from_ron(&text, Path::new("f.ron")).unwrap_err();
        assert!(matches!(e, SnapshotError::Version { found: 7, .. }), "{e}");
        assert!(e.to_string().contains("newer resviz"), "{e}");
    }

    #[test]
    fn validation_names_run_and_step() {
        let mut s = snap();
        s.runs[1].steps[2].blocks.pop();
        let e = s.validate().unwrap_err();
        assert!(e.contains("run 2 (v1-20): step 3 has"), "{e}");
        let mut s = snap();
        s.runs[0].steps[5].param_grad_norms.push(1.0);
        assert!(
            s.validate()
                .unwrap_err()
                .contains("parameter gradient norms")
        );
        let mut s = snap();
        s.runs[0].steps[5].param_grad_norms.clear(); // allowed: downsampled record
        assert!(s.validate().is_ok());
        s.runs[0].evals.swap(0, 1);
        assert!(
            s.validate()
                .unwrap_err()
                .contains("evaluations out of order")
        );
        let mut s = snap();
        s.runs[0].steps.swap(0, 1);
        assert!(s.validate().unwrap_err().contains("steps out of order"));
    }

    /// Where `text[..cut]` ends, as the truncation message names it.
    fn ends_early_at(text: &str, cut: usize) -> String {
        let (line, column) = line_col(&text.as_bytes()[..cut]);
        format!("t.ron: the file ends early (truncated?) at line {line}, column {column}: ")
    }

    #[test]
    fn truncated_text_says_it_ends_early() {
        let text = to_ron(&snap()).unwrap();
        let at = |s: &str, plus: usize| text.find(s).unwrap() + plus;
        let percent = [0, 10, 50, 90].map(|p| text.len() * p / 100);
        let named = [
            1,                         // inside the header comment
            at("\n created", 3),       // `c` of a field name: ron says "Unexpected field"
            at("\"plain-20\"", 4),     // inside a string
            at("wall_secs: ", 12),     // inside a number
            at("\n  (\n   spec", 1),   // just after a newline
            text.trim_end().len() - 1, // only the final `)` missing
        ];
        let sweep = (0..text.len()).step_by(101);
        for cut in percent.into_iter().chain(named).chain(sweep) {
            let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap();
            let e = from_ron(&text[..cut], Path::new("t.ron")).unwrap_err();
            let m = e.to_string();
            assert!(
                matches!(e, SnapshotError::Truncated { .. }),
                "cut {cut}: {m}"
            );
            assert!(m.starts_with(&ends_early_at(&text, cut)), "cut {cut}: {m}");
        }
        let cut = at("\n created", 3);
        let e = from_ron(&text[..cut], Path::new("t.ron")).unwrap_err();
        assert!(e.to_string().contains("Unexpected field named `c`"), "{e}");
    }

    #[test]
    fn garbage_is_not_called_truncated() {
        let renamed = to_ron(&snap()).unwrap().replacen("dataset:", "datas:", 1);
        let unclosed_string = "(format_version: 2, dataset: \"x)";
        for garbage in [
            "hello",
            "[1, 2, 3]",
            "(format_version: 2)",
            "notes (see above)",
        ]
        .into_iter()
        .chain([renamed.as_str()])
        {
            let e = from_ron(garbage, Path::new("g.ron")).unwrap_err();
            let m = e.to_string();
            assert!(
                matches!(e, SnapshotError::Parse { .. }),
                "{garbage:.40}: {m}"
            );
            assert!(m.contains(": not a valid resviz snapshot: "), "{m}");
        }
        // Nothing but whitespace and comments, or an open string: no complete value to judge.
        for cut_off in ["", "  \n// header only\n", unclosed_string] {
            let e = from_ron(cut_off, Path::new("t.ron")).unwrap_err();
            assert!(
                matches!(e, SnapshotError::Truncated { .. }),
                "{cut_off:?}: {e}"
            );
        }
    }

    #[test]
    fn ends_early_skips_strings_and_comments() {
        assert!(!ends_early("(a: \"(\", b: \"\\\"[\") // (\n/* [ */"));
        assert!(ends_early("(a: \"(\\\")"));
        assert!(ends_early("(a: 1) /* ) "));
        assert!(ends_early("// (a: 1)"));
        assert!(!ends_early("hello"));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col(b""), (1, 1));
        assert_eq!(line_col(b"ab\ncd"), (2, 3));
    }
}
