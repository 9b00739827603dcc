//! Helpers the integration tests share: running the real binary, reading what it printed, and
//! the small saved runs (with weights) that the resume and save tests start from and edit.

use resviz::snapshot;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_resviz");

/// `resviz` in `dir` with standard input closed (nothing waits on a terminal), not yet run.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).stdin(Stdio::null());
    c
}

/// `resviz ARGS` in `dir`, run to its end.
pub fn resviz_in(dir: &Path, args: &[&str]) -> Output {
    resviz_env(dir, args, &[])
}

/// `resviz ARGS` in `dir` with the variables `env` set, run to its end.
pub fn resviz_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run resviz")
}

/// `resviz ARGS` in the crate's root (where `assets/` and `tests/fixtures/` are), run to its end.
pub fn resviz(args: &[&str]) -> Output {
    resviz_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Assert that the run succeeded (its stderr in the message otherwise).
pub fn succeeded(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "resviz failed: {err}");
}

/// The one JSON value a successful run printed on stdout.
pub fn json_of(out: &Output) -> serde_json::Value {
    succeeded(out);
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// The single error line of a failed run (no panic, exit 1).
pub fn failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected an error exit: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("resviz: error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    lines[0].to_string()
}

/// Two small nets on the synthetic set: a save with weights in a second or two.
pub const SMALL: &[&str] = &[
    "--dataset",
    "synthetic",
    "--models",
    "v1-8,plain-8",
    "--batch",
    "8",
    "--width",
    "4",
];

/// `train --json --steps STEPS --out OUT --save-weights` and the experiment `exp` in `dir`;
/// it must succeed. Its JSON summary.
pub fn train_saved(dir: &Path, steps: &str, out: &str, exp: &[&str]) -> serde_json::Value {
    let args = ["train", "--json", "--steps", steps, "--out", out];
    json_of(&resviz_in(
        dir,
        &[&args[..], &["--save-weights"], exp].concat(),
    ))
}

/// The error line of `train --resume FROM --steps 1` in `dir`, which must fail.
pub fn resume_fails(dir: &Path, from: &str) -> String {
    failure(&resviz_in(
        dir,
        &["train", "--resume", from, "--steps", "1"],
    ))
}

/// Rewrite the text of the snapshot at `path` with `edit`, which must change something.
pub fn edit(path: &Path, edit: impl Fn(String) -> String) {
    let text = fs::read_to_string(path).unwrap();
    let edited = edit(text.clone());
    assert_ne!(text, edited, "the edit changed nothing");
    fs::write(path, edited).unwrap();
}

/// Every run's (step, loss, accuracy, lr) bits as saved in the snapshot at `path`.
pub fn steps_of(path: &Path) -> Vec<Vec<(u64, u32, u32, u32)>> {
    snapshot::load(path)
        .unwrap()
        .runs
        .iter()
        .map(|r| {
            let f = |s: &resviz::records::StepRecord| {
                (s.step, s.loss.to_bits(), s.acc.to_bits(), s.lr.to_bits())
            };
            r.steps.iter().map(f).collect()
        })
        .collect()
}

/// The weight and optimizer files each run of the snapshot at `path` resumes from.
pub fn resume_files(path: &Path) -> Vec<snapshot::resume::RunFiles> {
    snapshot::load(path)
        .unwrap()
        .resume
        .expect("saved with weights")
        .files
}
