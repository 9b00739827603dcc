//! Snapshot files on disk: round trip, the committed v1 fixture, bad files, unwritable
//! directories, and the size and load time of a long run.
//!
//! Fixtures are never regenerated once committed: a new format version adds a new fixture and
//! keeps the old ones loading. Write the current version's fixture (when it is new) with
//! `RESVIZ_BLESS=1 cargo test --release --test suite snapshot_files::fixture`.

use resviz::records::record::{HISTORY_MAX, RunStatus};
use resviz::snapshot::{self, ResumePoint, RunFiles, RunSnapshot, SnapshotError, synthetic};
use resviz::train::trainer::TrainerState;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fixture_path(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/snapshot_v{version}.ron"))
}

/// The small deterministic history the v1 fixture was written from: two 8-layer runs, one
/// diverged (NaN loss), with some records downsampled (no parameter norms) as long runs have.
fn fixture_snapshot() -> RunSnapshot {
    let mut s = synthetic::snapshot(&["plain-8", "v2-8"], 12, 42);
    s.created = "2026-01-01T12:00:00+01:00".into();
    s.resviz_version = "0.1.0".into();
    for r in &mut s.runs {
        for rec in &mut r.steps[4..8] {
            rec.param_grad_norms.clear();
        }
    }
    let plain = &mut s.runs[0];
    plain.steps[11].loss = f32::NAN;
    plain.status = RunStatus::Diverged {
        step: 12,
        reason: "loss is NaN".into(),
    };
    s
}

fn one_line(e: &SnapshotError) -> String {
    let m = e.to_string();
    assert!(!m.contains('\n'), "error is not one line: {m}");
    m
}

#[test]
fn save_then_load_gives_an_equal_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let saves = dir.path().join("saves"); // does not exist yet
    let mut snap = synthetic::snapshot(&["plain-20", "v1-20", "v2-20"], 900, 5);
    snap.created = "2026-11-29T04:50:12+00:00".into();
    let path = snapshot::save(&snap, &saves).unwrap();
    assert_eq!(
        path,
        saves.join("2026-11-29T04-50-12_plain-20_v1-20_v2-20.ron")
    );
    assert_eq!(snapshot::load(&path).unwrap(), snap);

    // Saving again under the same name keeps the first file and picks a new name.
    let first = fs::read(&path).unwrap();
    let mut other = snap.clone();
    other.dataset = "other".into();
    let path2 = snapshot::save(&other, &saves).unwrap();
    assert_eq!(
        path2,
        saves.join("2026-11-29T04-50-12_plain-20_v1-20_v2-20-2.ron")
    );
    assert_eq!(fs::read(&path).unwrap(), first);
    assert_eq!(snapshot::load(&path2).unwrap(), other);

    // save_to replaces a file; no temporary files are left behind (only the hidden lock file
    // of the name, which stays by design: snapshot::lock).
    snapshot::save_to(&other, &path).unwrap();
    assert_eq!(snapshot::load(&path).unwrap(), other);
    let names: Vec<_> = fs::read_dir(&saves)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        saves
            .join(".2026-11-29T04-50-12_plain-20_v1-20_v2-20.lock")
            .is_file()
    );
}

#[test]
fn new_snapshot_has_current_version_and_time() {
    let s = RunSnapshot::new(
        Default::default(),
        "synthetic",
        synthetic::snapshot(&["v1-8"], 3, 1).runs,
    );
    assert_eq!(s.format_version, snapshot::FORMAT_VERSION);
    assert_eq!(s.resviz_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(s.step, 3);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&s.created).is_ok(),
        "{}",
        s.created
    );
    let name = snapshot::default_name(&s);
    assert!(name.ends_with("_v1-8.ron"), "{name}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c)),
        "{name}"
    );
}

/// The v2 fixture: the v1 fixture's runs plus a resume section.
fn fixture_snapshot_v2() -> RunSnapshot {
    let mut s = fixture_snapshot();
    s.format_version = 2;
    let specs: Vec<String> = s.runs.iter().map(|r| r.info.spec.clone()).collect();
    s.resume = Some(ResumePoint {
        trainer: TrainerState {
            batches: 12,
            epoch: 0,
            sampler: (0, 768),
            train_len: 10_000,
            base_lr: 0.1,
            restarts: 0,
            runs: specs.iter().map(|s| (s.clone(), 12)).collect(),
        },
        files: specs
            .iter()
            .map(|spec| RunFiles {
                weights: format!("fixture.{spec}.safetensors"),
                optimizer: format!("fixture.{spec}.optim.safetensors"),
                ..Default::default()
            })
            .collect(),
    });
    s
}

/// The v3 fixture: the v2 fixture with content-hashed file names and their checksums, and a run
/// stopped by a signal.
fn fixture_snapshot_v3() -> RunSnapshot {
    let mut s = fixture_snapshot_v2();
    s.format_version = 3;
    s.runs[1].status = RunStatus::Interrupted;
    for (i, f) in s.resume.as_mut().unwrap().files.iter_mut().enumerate() {
        let sum = |c: char| format!("{c}{i}").repeat(32);
        let (w, o) = (sum('a'), sum('b'));
        f.weights = f
            .weights
            .replace(".safetensors", &format!(".{}.safetensors", &w[..12]));
        f.optimizer = f
            .optimizer
            .replace(".optim.", &format!(".{}.optim.", &o[..12]));
        f.weights_sha256 = Some(w);
        f.optimizer_sha256 = Some(o);
    }
    s
}

#[test]
fn fixture_v3_keeps_loading() {
    let path = fixture_path(3);
    if std::env::var_os("RESVIZ_BLESS").is_some() && !path.exists() {
        snapshot::save_to(&fixture_snapshot_v3(), &path).unwrap();
    }
    let snap = snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // (Not the whole snapshot: the diverged run's NaN loss is unequal to itself.)
    assert_eq!(snap.resume, fixture_snapshot_v3().resume);
    assert_eq!(snap.runs[1], fixture_snapshot_v3().runs[1]);
    assert_eq!(
        snapshot::FORMAT_VERSION,
        3,
        "a new version needs a new fixture"
    );
    let today = snapshot::to_ron(&snap).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), today);
    // Format 3 requires the checksums.
    let lines = today
        .lines()
        .filter(|l| !l.trim_start().starts_with("weights_sha256:"));
    let cut = lines.collect::<Vec<_>>().join("\n");
    let (_d, _p, e) = load_text(&cut);
    assert!(
        one_line(&e).contains("has no checksum for its weights file"),
        "{e}"
    );
}

#[test]
fn fixture_v2_keeps_loading() {
    let path = fixture_path(2);
    if std::env::var_os("RESVIZ_BLESS").is_some() && !path.exists() {
        snapshot::save_to(&fixture_snapshot_v2(), &path).unwrap();
    }
    let snap = snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.format_version, 2);
    assert_eq!(snap.resume, fixture_snapshot_v2().resume);
    assert_eq!(snap.runs[1], fixture_snapshot_v2().runs[1]);
    let r = snap.resume.as_ref().unwrap();
    assert_eq!(r.files[1].optimizer, "fixture.v2-8.optim.safetensors");
    let today = snapshot::to_ron(&fixture_snapshot_v2()).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), today);
}

#[test]
fn resume_section_must_match_the_runs() {
    let mut s = fixture_snapshot_v2();
    s.runs[1].info.spec = "v1-8".into();
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("the resume state is for v2-8"), "{e}");
    let mut s = fixture_snapshot_v2();
    s.resume.as_mut().unwrap().files.pop();
    let text = snapshot::to_ron(&s).unwrap();
    let (_d, _p, e) = load_text(&text);
    assert!(matches!(e, SnapshotError::Invalid { .. }), "{e}");
    assert!(one_line(&e).contains("resume state has 1 runs"), "{e}");
}

#[test]
fn fixture_v1_keeps_loading() {
    let path = fixture_path(1);
    let snap = snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.format_version, 1);
    assert_eq!(snap.created, "2026-01-01T12:00:00+01:00");
    assert_eq!(snap.config.models, ["plain-8", "v2-8"]);
    assert_eq!(snap.runs.len(), 2);
    let plain = &snap.runs[0];
    assert_eq!(plain.info.spec, "plain-8");
    assert_eq!(plain.info.block_names.len(), 4);
    assert_eq!(plain.steps.len(), 12);
    assert!(plain.steps[11].loss.is_nan());
    assert!(plain.steps[5].param_grad_norms.is_empty());
    assert_eq!(
        plain.steps[0].param_grad_norms.len(),
        plain.info.param_names.len()
    );
    assert_eq!(
        plain.status,
        RunStatus::Diverged {
            step: 12,
            reason: "loss is NaN".into()
        }
    );
    assert_eq!(snap.runs[1].status, RunStatus::Finished);
    assert!(!snap.runs[1].evals.is_empty());
    assert_eq!(
        snapshot::default_name(&snap),
        "2026-01-01T12-00-00_plain-8_v2-8.ron"
    );
    assert!(snap.resume.is_none());
    // Version 2 is version 1 plus an optional section: today's code writes the same text for a
    // snapshot without it, stamped version 1.
    let mut v1 = fixture_snapshot();
    v1.format_version = 1;
    let today = snapshot::to_ron(&v1).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), today);
}

/// Write `text` as a snapshot file in a fresh directory and load it.
fn load_text(text: &str) -> (tempfile::TempDir, PathBuf, SnapshotError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ron");
    fs::write(&path, text).unwrap();
    let e = snapshot::load(&path).expect_err("bad file loaded");
    (dir, path, e)
}

fn good_text() -> String {
    snapshot::to_ron(&synthetic::snapshot(&["plain-8", "v1-8"], 20, 3)).unwrap()
}

/// Whatever ron makes of the cut-off last token, the message says the file ends early and where.
#[test]
fn truncated_files_say_they_end_early() {
    let text = good_text();
    let after_record = text.find("(step: 5,").unwrap();
    let in_field_name = text.find("\n created").unwrap() + 3;
    for cut in [
        0,
        1,
        10,
        text.len() / 3,
        text.len() / 2,
        text.len() - 3,
        after_record,
        in_field_name,
    ] {
        let (_d, path, e) = load_text(&text[..cut]);
        let m = one_line(&e);
        assert!(
            matches!(e, SnapshotError::Truncated { .. }),
            "cut {cut}: {m}"
        );
        let want = format!(
            "{}: the file ends early (truncated?) at line ",
            path.display()
        );
        assert!(m.starts_with(&want), "cut {cut}: {m}");
    }
}

#[test]
fn malformed_files_report_line_and_column() {
    let text = good_text();
    // Break the 3rd step's loss field: `loss: 2.1` → `loss = 2.1`.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let n = lines.iter().position(|l| l.contains("(step: 3,")).unwrap();
    let col = lines[n].find(" loss:").unwrap() + 6; // 1-based column of the ':'
    lines[n] = lines[n].replacen(" loss:", " loss =", 1);
    let (_d, path, e) = load_text(&lines.join("\n"));
    let m = one_line(&e);
    match &e {
        SnapshotError::Parse { line, column, .. } => {
            assert_eq!(*line, n + 1, "{m}");
            assert!(*column >= col && *column <= col + 1, "{m}");
        }
        other => panic!("{other}"),
    }
    assert!(
        m.starts_with(&format!("{}:{}:", path.display(), n + 1)),
        "{m}"
    );

    for garbage in ["hello", "(format_version: 1)", "[1, 2, 3]"] {
        let (_d, _p, e) = load_text(garbage);
        let expected = match garbage.contains("format_version") {
            true => ": not a valid resviz snapshot: ",
            false => " is not a resviz snapshot (",
        };
        assert!(one_line(&e).contains(expected), "{garbage:?}: {e}");
    }
    // Not UTF-8.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bin.ron");
    fs::write(&p, b"(format_version: 1,\n \xff\xfe)").unwrap();
    let e = snapshot::load(&p).unwrap_err();
    assert!(
        matches!(
            e,
            SnapshotError::Parse {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn unknown_versions_are_rejected() {
    let text = good_text();
    let current = format!("format_version: {}", snapshot::FORMAT_VERSION);
    for v in ["0", "4", "999999999999"] {
        let (_d, _p, e) = load_text(&text.replacen(&current, &format!("format_version: {v}"), 1));
        let m = one_line(&e);
        assert!(matches!(e, SnapshotError::Version { .. }), "{m}");
        assert!(m.contains(&format!("version {v} is not supported")), "{m}");
    }
}

#[test]
fn inconsistent_lengths_are_rejected() {
    let snap = synthetic::snapshot(&["plain-8", "v1-8"], 20, 3);
    let check = |s: &RunSnapshot, want: &str| {
        let (_d, path, e) = load_text(&snapshot::to_ron(s).unwrap());
        let m = one_line(&e);
        assert!(matches!(e, SnapshotError::Invalid { .. }), "{m}");
        assert!(m.starts_with(&path.display().to_string()), "{m}");
        assert!(m.contains(want), "{m}");
    };
    let mut s = snap.clone();
    s.runs[1].steps[7].blocks.pop();
    check(
        &s,
        "run 2 (v1-8): step 8 has 3 block stats but the run has 4 block names",
    );
    let mut s = snap.clone();
    s.runs[0].info.block_names.push("extra".into());
    check(
        &s,
        "run 1 (plain-8): step 1 has 4 block stats but the run has 5 block names",
    );
    let mut s = snap.clone();
    s.runs[0].steps[3].param_grad_norms.truncate(2);
    check(&s, "step 4 has 2 parameter gradient norms");
    let mut s = snap.clone();
    s.runs[1].evals.reverse();
    check(&s, "evaluations out of order");
    let mut s = snap.clone();
    s.runs[0].steps[5].step = 2;
    check(&s, "steps out of order");
}

#[test]
fn missing_file_is_an_io_error() {
    let e = snapshot::load(Path::new("/nonexistent/dir/x.ron")).unwrap_err();
    assert!(matches!(e, SnapshotError::Io { .. }));
    assert!(
        one_line(&e).starts_with("cannot read /nonexistent/dir/x.ron: "),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn read_only_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let saves = dir.path().join("saves");
    fs::create_dir(&saves).unwrap();
    let snap = synthetic::snapshot(&["v1-8"], 5, 1);
    let existing = saves.join("old.ron");
    snapshot::save_to(&snap, &existing).unwrap();
    let before = fs::read(&existing).unwrap();
    fs::set_permissions(&saves, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permissions: only assert when the directory really is read-only.
    let writable = fs::File::create(saves.join("probe")).is_ok();
    let result = snapshot::save(&snap, &saves);
    let over = snapshot::save_to(&synthetic::snapshot(&["v2-8"], 5, 1), &existing);
    let nested = snapshot::save(&snap, &saves.join("sub"));
    fs::set_permissions(&saves, fs::Permissions::from_mode(0o755)).unwrap();
    if writable {
        eprintln!("skipped: running as a user who can write a 0o555 directory (root)");
        return;
    }
    let e = result.unwrap_err();
    let m = one_line(&e);
    assert!(matches!(e, SnapshotError::Io { .. }), "{m}");
    assert!(
        m.starts_with("cannot write snapshot in ") && m.contains("ermission denied"),
        "{m}"
    );
    assert!(matches!(over.unwrap_err(), SnapshotError::Io { .. }));
    assert_eq!(
        fs::read(&existing).unwrap(),
        before,
        "the old snapshot is untouched"
    );
    let e = nested.unwrap_err();
    assert!(one_line(&e).starts_with("cannot create directory "), "{e}");
    let names: Vec<_> = fs::read_dir(&saves)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["old.ron"]);
}

/// A location where no file can be created, even by root: a clear error, no panic, nothing
/// written. (The same path reports write failures such as a full disk.)
#[cfg(target_os = "linux")]
#[test]
fn unwritable_location_is_a_clear_error() {
    let snap = synthetic::snapshot(&["v1-8"], 5, 1);
    let e = snapshot::save(&snap, Path::new("/proc/self")).unwrap_err();
    assert!(matches!(e, SnapshotError::Io { .. }), "{e}");
    assert!(
        one_line(&e).starts_with("cannot write snapshot in /proc/self: "),
        "{e}"
    );
    let e = snapshot::save(&snap, Path::new("/proc/self/saves")).unwrap_err();
    assert!(
        one_line(&e).starts_with("cannot create directory /proc/self/saves: "),
        "{e}"
    );
}

/// 10,000 steps of three 56-layer models: < 10 MB of RON, loads in < 1 s (release build).
/// 9,999 steps is the largest history below 10,000 (the middle is full just before it thins).
#[test]
fn long_runs_stay_small_and_load_fast() {
    for steps in [10_000, 9_999] {
        let snap = synthetic::snapshot(&["plain-56", "v1-56", "v2-56"], steps, 7);
        for r in &snap.runs {
            assert_eq!(r.info.block_names.len(), 28);
            assert!(r.info.param_names.len() >= 165);
            assert!(r.steps.len() <= HISTORY_MAX);
            assert_eq!(r.last().unwrap().step, steps);
        }
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let path = snapshot::save(&snap, dir.path()).unwrap();
        let save_secs = t.elapsed().as_secs_f64();
        let bytes = fs::metadata(&path).unwrap().len();
        let t = Instant::now();
        let back = snapshot::load(&path).unwrap();
        let load_secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{steps} steps × 3 runs × 56 layers: {} records/run, {:.2} MB, save {save_secs:.3} s, \
             load {load_secs:.3} s",
            snap.runs[0].steps.len(),
            bytes as f64 / 1e6
        );
        assert_eq!(back, snap);
        assert!(bytes < 10_000_000, "{bytes} bytes");
        if cfg!(debug_assertions) {
            eprintln!("debug build: load time not asserted");
        } else {
            assert!(load_secs < 1.0, "load took {load_secs} s");
        }
    }
}
