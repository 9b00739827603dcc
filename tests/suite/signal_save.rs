//! Issue 31 item 4: a signal during `train` saves first and evaluates after (a supervisor's
//! grace period need not cover a test evaluation of every run), says so, and a second signal
//! skips the evaluation; a signal after the last step leaves the run finished, not interrupted,
//! and the process exits 0 as a finished run does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// v1-20 runs of width 16: a test evaluation of two takes seconds, long enough to interrupt.
const EXP: &[&str] = &[
    "--dataset",
    "synthetic",
    "--batch",
    "8",
    "--json",
    "--out",
    "a.ron",
    "--save-weights",
];

/// Start `train` with a progress line per step on stderr, whose lines arrive on the receiver.
fn start(dir: &Path, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_resviz"))
        .current_dir(dir)
        .env("RESVIZ_PROGRESS_SECS", "0")
        .args([&["train"][..], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Wait (at most two minutes) for a stderr line containing `text`; the lines seen until then.
fn wait_for(rx: &Receiver<String>, text: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(120);
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        let hit = line.contains(text);
        seen.push(line);
        if hit {
            return seen;
        }
    }
    panic!("no line with {text:?} in {seen:?}");
}

fn kill(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// The rest of stderr and the exit code, within `limit`.
fn finish(mut child: Child, rx: Receiver<String>, limit: Duration) -> (Vec<String>, Option<i32>) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running {limit:?} after the last signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (rx.iter().collect(), status.code())
}

#[test]
fn a_signal_saves_first_and_a_second_one_skips_the_evaluation() {
    let d = tempfile::tempdir().unwrap();
    let (child, rx) = start(
        d.path(),
        &[&["--steps", "1000000", "--models", "v1-20,v1-20"][..], EXP].concat(),
    );
    wait_for(&rx, "step ");
    kill(&child, "TERM");
    let lines = wait_for(&rx, "Ctrl-C again to skip the evaluation");
    assert!(lines.last().unwrap().contains("saving a.ron"), "{lines:?}");
    // Saved before the evaluation starts.
    wait_for(&rx, "saved a.run2.v1-20");
    let snap = resviz::snapshot::load(&d.path().join("a.ron")).unwrap();
    let step = snap.runs[0].steps.last().unwrap().step;
    kill(&child, "INT");
    let (rest, code) = finish(child, rx, Duration::from_secs(5));
    assert_eq!(code, Some(143), "{rest:?}");
    assert!(
        rest.iter().any(|l| l == "test evaluation skipped"),
        "{rest:?}"
    );
    let snap = resviz::snapshot::load(&d.path().join("a.ron")).unwrap();
    for r in &snap.runs {
        assert_eq!(r.status, resviz::records::RunStatus::Interrupted);
        assert_eq!(r.steps.last().unwrap().step, step);
        assert!(
            r.evals.last().is_none_or(|e| e.step < step),
            "{:?}",
            r.evals
        );
    }
}

#[test]
fn one_signal_saves_then_evaluates_and_saves_the_test_accuracy() {
    let d = tempfile::tempdir().unwrap();
    let (child, rx) = start(
        d.path(),
        &[&["--steps", "1000000", "--models", "v1-20,v1-20"][..], EXP].concat(),
    );
    wait_for(&rx, "step ");
    kill(&child, "TERM");
    wait_for(&rx, "Ctrl-C again to skip the evaluation");
    let (rest, code) = finish(child, rx, Duration::from_secs(120));
    assert_eq!(code, Some(143), "{rest:?}");
    let snap = resviz::snapshot::load(&d.path().join("a.ron")).unwrap();
    for r in &snap.runs {
        assert_eq!(r.status, resviz::records::RunStatus::Interrupted);
        let step = r.steps.last().unwrap().step;
        assert_eq!(r.evals.last().map(|e| e.step), Some(step), "{:?}", r.evals);
    }
}

#[test]
fn a_signal_after_the_last_step_leaves_the_run_finished() {
    let d = tempfile::tempdir().unwrap();
    let args = [&["--steps", "3", "--models", "v1-20"][..], EXP].concat();
    let (child, rx) = start(d.path(), &args);
    // The one run has taken its last step: the worker is evaluating.
    wait_for(&rx, "step 3/3");
    kill(&child, "TERM");
    let (rest, code) = finish(child, rx, Duration::from_secs(120));
    // It cut nothing: a finished run exits 0, and says why a signal did not count.
    assert_eq!(code, Some(0), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("SIGTERM came after the last step: the run finished")),
        "{rest:?}"
    );
    let snap = resviz::snapshot::load(&d.path().join("a.ron")).unwrap();
    for r in &snap.runs {
        assert_eq!(r.status, resviz::records::RunStatus::Finished, "{rest:?}");
        assert_eq!(r.evals.last().map(|e| e.step), Some(3), "{:?}", r.evals);
    }
}
