//! Run snapshots: versioned RON save/load, replay, compare.
//!
//! A [`RunSnapshot`] is the whole experiment config plus every run's bounded history (see
//! [`RunHistory::push`]). It is written as pretty RON (each block statistic on one line, so a
//! 10,000-step run of three 56-layer models stays a few MB), atomically ([`atomic`]).
//!
//! [`load`] checks the format version first, then parses (errors carry line and column), then
//! checks that the records agree with the names they are indexed by and hold values a run can
//! produce ([`validate`]). Every failure is one [`SnapshotError`] whose message is a single line
//! naming the file; a file that stops partway (an interrupted copy, `head -c`) is reported as
//! such rather than by ron's complaint about the last partial token (see [`scan`]). Strings read
//! from a file are made printable, so a crafted file cannot send escape codes to the terminal.
//!
//! Saves to one name take turns ([`lock`]); a save with weights never deletes files of a sibling
//! snapshot, and one that fails leaves the previous save as it was ([`set`], [`tidy`]).
//!
//! Format history: version 1 is the first format (kept as `tests/fixtures/snapshot_v1.ron`).
//! Version 2 (`tests/fixtures/snapshot_v2.ron`) adds the optional `resume` section written with
//! weights ([`resume`]); a version 1 file reads as one without it. Version 3 adds, per run of the
//! resume section, the SHA-256 of its weight and optimizer files (whose names then carry a
//! content hash, so a save never overwrites the files an older snapshot names), and the run
//! status `Interrupted`. Later versions must keep loading all three, migrating them in [`load`].

pub mod atomic;
pub mod compare;
mod error;
mod format;
pub mod lock;
pub mod resume;
pub mod scan;
pub mod set;
pub mod synthetic;
mod tidy;
mod validate;
pub mod weights;

pub use compare::{compare_table, plot_svg, render_svg};
pub use error::{Inconsistency, SnapshotError};
pub use resume::{ResumePoint, RunFiles};
pub use validate::printable;

use crate::config::ExperimentConfig;
use crate::records::record::RunHistory;
use std::fs;
use std::path::{Path, PathBuf};

/// The snapshot format this code writes.
pub const FORMAT_VERSION: u32 = 4;
/// Oldest format version [`load`] still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Where the dashboard's `s` and autosaves write, relative to the working directory.
pub const SAVES_DIR: &str = "saves";

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
    atomic::remove_stale_temps(dir, "");
    let name = default_name(snap);
    let stem = name.strip_suffix(".ron").unwrap_or(&name).to_string();
    let tmp = atomic::write_temp(dir, &name, text.as_bytes())
        .map_err(|e| SnapshotError::io("write snapshot in", dir, e))?;
    let mut k = 1;
    loop {
        let target = if k == 1 {
            dir.join(&name)
        } else {
            dir.join(format!("{stem}-{k}.ron"))
        };
        if fs::symlink_metadata(&target).is_ok() && k < 10_000 {
            k += 1;
            continue;
        }
        atomic::rename_into(&tmp, &target, dir)
            .map_err(|e| SnapshotError::io("write", &target, e))?;
        return Ok(target);
    }
}

/// Save `snap` to exactly `path` (its directory is created if missing), atomically replacing
/// any regular file there only once the new one is completely on disk. Holds the name's lock
/// ([`lock`]) while it writes, as a save with weights does.
pub fn save_to(snap: &RunSnapshot, path: &Path) -> Result<(), SnapshotError> {
    let dir = atomic::dir_of(path);
    fs::create_dir_all(&dir).map_err(|e| SnapshotError::io("create directory", &dir, e))?;
    let stem = resume::stem_of(path);
    let _lock = lock::acquire(&dir, &stem)
        .map_err(|e| SnapshotError::io("lock", &lock::lock_path(&dir, &stem), e))?;
    write_snapshot(snap, path)
}

/// [`save_to`] without taking the lock (the caller holds it).
fn write_snapshot(snap: &RunSnapshot, path: &Path) -> Result<(), SnapshotError> {
    let text = to_ron(snap).map_err(|e| SnapshotError::Other {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let dir = atomic::dir_of(path);
    fs::create_dir_all(&dir).map_err(|e| SnapshotError::io("create directory", &dir, e))?;
    if let Some(name) = path.file_name() {
        atomic::remove_stale_temps(&dir, &name.to_string_lossy());
    }
    atomic::write(path, text.as_bytes()).map_err(|e| SnapshotError::io("write", path, e))
}

/// Read and check a snapshot.
pub fn load(path: &Path) -> Result<RunSnapshot, SnapshotError> {
    let bytes = fs::read(path).map_err(|e| SnapshotError::io("read", path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let (line, column) = scan::line_col(valid);
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
    let declared = scan::peek_version(text);
    if let Some(v) = declared
        && !supported(v)
    {
        return Err(version_error(v));
    }
    let file: format::File = ron::from_str(text).map_err(|e| parse_error(text, path, e))?;
    let mut snap = file.into_snapshot();
    if !supported(snap.format_version as u64) {
        return Err(version_error(snap.format_version as u64));
    }
    validate::sanitize_strings(&mut snap);
    snap.validate().map_err(|problem| SnapshotError::Invalid {
        path: path.to_path_buf(),
        problem,
    })?;
    Ok(snap)
}

/// The error for text ron could not read as a snapshot: [`SnapshotError::Truncated`] at the end
/// of the text if it stops partway, else [`SnapshotError::Parse`] where ron stopped.
fn parse_error(text: &str, path: &Path, e: ron::error::SpannedError) -> SnapshotError {
    let path = path.to_path_buf();
    let message = printable(&e.code.to_string());
    if scan::truncated(text, matches!(e.code, ron::Error::Eof), e.span.start.line) {
        let (line, column) = scan::line_col(text.as_bytes());
        return SnapshotError::Truncated {
            path,
            line,
            column,
            message,
        };
    }
    if !text.contains("format_version") {
        return SnapshotError::NotSnapshot {
            path,
            why: not_snapshot_why(text),
        };
    }
    SnapshotError::Parse {
        path,
        line: e.span.start.line,
        column: e.span.start.col,
        message,
    }
}

/// What a file that is not a snapshot seems to be, in the user's terms.
fn not_snapshot_why(text: &str) -> &'static str {
    if ron::from_str::<crate::config::ExperimentConfig>(text).is_ok() {
        "it is an experiment config: give it to --config"
    } else {
        "it has no format_version; snapshots are the .ron files written by `s` or quitting in \
         the dashboard, and by `train --out`"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::record::{RunInfo, RunStatus};

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
        let msg = |s: &RunSnapshot| s.validate().unwrap_err().to_string();
        let mut s = snap();
        s.runs[1].steps[2].blocks.pop();
        assert!(matches!(
            s.validate(),
            Err(Inconsistency::BlockCount { step: 3, .. })
        ));
        assert!(msg(&s).contains("run 2 (v1-20): step 3 has"), "{}", msg(&s));
        let mut s = snap();
        s.runs[0].steps[5].param_grad_norms.push(1.0);
        assert!(msg(&s).contains("per-parameter figures"));
        let mut s = snap();
        s.runs[0].steps[5].param_grad_norms.clear(); // allowed: downsampled record
        assert!(s.validate().is_ok());
        s.runs[0].evals.swap(0, 1);
        assert!(msg(&s).contains("evaluations out of order"));
        let mut s = snap();
        s.runs[0].steps.swap(0, 1);
        assert!(msg(&s).contains("steps out of order"));
    }

    #[test]
    fn values_no_run_produces_are_refused() {
        let mut s = snap();
        s.runs[0].evals[0].acc = 7.5;
        assert!(
            msg_of(&s).contains("test accuracy 7.5 at step"),
            "{}",
            msg_of(&s)
        );
        let mut s = snap();
        s.runs[1].steps[4].loss = -1.0;
        assert!(msg_of(&s).contains("training loss -1"), "{}", msg_of(&s));
        let mut s = snap();
        s.runs[1].steps[4].acc = f32::NAN;
        assert!(
            msg_of(&s).contains("training accuracy NaN"),
            "{}",
            msg_of(&s)
        );
        let mut s = snap();
        s.runs[0].steps[4].loss = f32::NAN; // a diverging run records NaN
        assert!(s.validate().is_ok());
    }

    fn msg_of(s: &RunSnapshot) -> String {
        s.validate().unwrap_err().to_string()
    }

    /// Where `text[..cut]` ends, as the truncation message names it.
    fn ends_early_at(text: &str, cut: usize) -> String {
        let (line, column) = scan::line_col(&text.as_bytes()[..cut]);
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

    /// A line duplicated anywhere (an editing slip, a bad merge) is not a truncation, even when
    /// it opens a bracket that is never closed.
    #[test]
    fn a_duplicated_line_is_not_called_truncated() {
        let text = to_ron(&snap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for i in 0..lines.len() - 1 {
            let mut doubled = lines.clone();
            doubled.insert(i, lines[i]);
            let doubled = doubled.join("\n") + "\n";
            if let Err(e) = from_ron(&doubled, Path::new("d.ron")) {
                assert!(
                    !matches!(e, SnapshotError::Truncated { .. }),
                    "line {}: {e}",
                    i + 1
                );
            }
        }
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
            if garbage.contains("format_version") {
                assert!(
                    matches!(e, SnapshotError::Parse { .. }),
                    "{garbage:.40}: {m}"
                );
                assert!(m.contains(": not a valid resviz snapshot: "), "{m}");
            } else {
                assert!(m.starts_with("g.ron is not a resviz snapshot ("), "{m}");
            }
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
}
