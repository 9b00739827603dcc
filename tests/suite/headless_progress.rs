//! `resviz train` with stderr not a terminal (a log file, a pipe) prints plain progress lines:
//! step, each run's loss, images per second and the time left (issue 18).

use std::process::Command;

fn train(every: Option<&str>, steps: &str) -> String {
    let mut cmd = Command::new(crate::common::BIN);
    cmd.args([
        "train",
        "--models",
        "plain-8,v1-8",
        "--dataset",
        "synthetic",
    ])
    .args(["--batch", "8", "--steps", steps]);
    if let Some(s) = every {
        cmd.env("RESVIZ_PROGRESS_SECS", s);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn a_piped_stderr_gets_periodic_plain_lines() {
    let err = train(Some("0"), "20");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("step ")).collect();
    assert!(lines.len() >= 3, "{err}");
    for l in &lines {
        assert!(l.contains("plain-8 ") && l.contains("v1-8 "), "{l}");
        assert!(l.contains(" img/s ") && l.contains(" ETA "), "{l}");
        assert!(!l.contains('\r') && !l.contains('\x1b'), "not plain: {l:?}");
    }
    assert!(lines.last().unwrap().starts_with("step 20/20 "), "{err}");
    // No bar escape codes anywhere.
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn the_default_interval_prints_a_line_every_few_seconds_and_a_last_one() {
    let err = train(None, "3");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(lines.len(), 1, "a 3-step run takes under 5 s: {err}");
    assert!(lines[0].starts_with("step 3/3 "), "{err}");
}

/// Issue 30: the experiments report their own progress too, not only their training: with
/// stderr piped, plain lines of passes (evaluations for `lesion`) done, and a last one.
#[test]
fn the_experiments_report_their_own_progress() {
    for (sub, unit, extra) in [
        ("shatter", "passes", &["--points", "16", "--lags", "4"][..]),
        (
            "landscape",
            "passes",
            &["--grid", "3", "--slice-points", "3", "--images", "16"][..],
        ),
        ("lesion", "evaluations", &["--test-images", "16"][..]),
    ] {
        let out = Command::new(crate::common::BIN)
            .args([
                sub,
                "--models",
                "plain-8",
                "--dataset",
                "synthetic",
                "--batch",
                "8",
            ])
            .args(["--steps", "2"])
            .args(extra)
            .env("RESVIZ_PROGRESS_SECS", "0")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{sub}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(sub)).collect();
        assert!(lines.len() >= 2, "{sub}: {err}");
        let last = lines.last().unwrap();
        assert!(last.contains(&format!(" {unit} (done)")), "{sub}: {last}");
        let (done, total) = last
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.split_once('/'))
            .unwrap_or_else(|| panic!("{sub}: {last}"));
        assert_eq!(done, total, "{sub}: {last}");
        assert!(!err.contains('\x1b'), "{sub}: {err:?}");
    }
}
