//! `resviz train` stopped by a signal, writing to a bad `--out`, or printing to a closed or full
//! stdout (issue 19: S6, lost work, P4): progress is saved as "interrupted" with exit 128 + the
//! signal, a bad output is refused before the first step, and nothing panics.

use crate::common::{self, SMALL};
use common::failure;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Start a long training run writing `out`, wait `delay`, send `signal`; its output.
fn train_and_signal(dir: &Path, signal: &str, out: &str, delay: Duration) -> Output {
    let args = [
        "train",
        "--steps",
        "1000000",
        "--json",
        "--out",
        out,
        "--save-weights",
    ];
    let child = common::command(dir)
        .args([&args[..], SMALL].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

/// S6: SIGINT, SIGTERM, SIGHUP and SIGQUIT stop training at the next step boundary, save the
/// snapshot with weights (status interrupted, not finished) and exit with 128 + the signal; the
/// snapshot resumes.
#[test]
fn signals_stop_training_save_it_as_interrupted_and_exit_128_plus_signal() {
    let d = tempfile::tempdir().unwrap();
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129), ("QUIT", 131)] {
        let out = format!("{signal}.ron");
        // Until the handlers are installed (after the data is loaded) a signal kills at once;
        // wait longer if that happened.
        let mut result = None;
        for delay in [2, 4, 8] {
            let o = train_and_signal(d.path(), signal, &out, Duration::from_secs(delay));
            if o.status.signal().is_none() {
                result = Some(o);
                break;
            }
        }
        let o = result.expect("every attempt was killed before the handlers were installed");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(
            err.contains(&format!(
                "interrupted by SIG{signal}; progress saved to {out}"
            )),
            "{err}"
        );
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(summary["models"][0]["status"], "interrupted");
        let snap = resviz::snapshot::load(&d.path().join(&out)).unwrap();
        assert!(
            snap.runs
                .iter()
                .all(|r| r.status == resviz::records::RunStatus::Interrupted)
        );
        let steps = snap.runs[0].steps.last().unwrap().step;
        assert!((1..1_000_000).contains(&steps), "{steps}");
        let resumed = common::command(d.path())
            .args(["train", "--resume", &out, "--steps", "1", "--json"])
            .output()
            .unwrap();
        assert!(
            resumed.status.success(),
            "{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
        assert_eq!(v["models"][0]["steps"], steps + 1);
        assert_eq!(v["models"][0]["status"], "finished");
    }
}

fn train_to(dir: &Path, out: &str, extra: &[&str]) -> Output {
    let args = ["train", "--steps", "2", "--json", "--out", out];
    common::command(dir)
        .args([&args[..], SMALL, extra].concat())
        .output()
        .unwrap()
}

/// A bad `--out` is refused before the first step with one line: its directory is a file, its
/// name is too long, or it is a symlink or a device (never replaced by a regular file).
#[test]
fn a_bad_out_is_refused_before_training() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fs::write(dir.join("file"), b"").unwrap();
    fs::write(dir.join("target.ron"), b"keep me").unwrap();
    std::os::unix::fs::symlink("target.ron", dir.join("link.ron")).unwrap();
    let long = format!("{}.ron", "n".repeat(250));
    let long_weights = format!("{}.ron", "w".repeat(220));
    let cases: [(&str, &[&str], &str); 5] = [
        ("file/x.ron", &[], "cannot create directory file"),
        (&long, &[], "cannot write --out"),
        // The snapshot's name fits; its weight files' names would not.
        (&long_weights, &["--save-weights"], "cannot write --out"),
        (
            "link.ron",
            &[],
            "it is a symbolic link; refusing to replace it",
        ),
        ("/dev/null", &[], "not a regular file"),
    ];
    for (out, extra, needle) in cases {
        let o = train_to(dir, out, extra);
        let e = failure(&o);
        assert!(e.contains(needle), "{out}: {e}");
        assert!(o.stdout.is_empty(), "{out}: trained anyway");
    }
    assert_eq!(fs::read(dir.join("target.ron")).unwrap(), b"keep me");
    assert!(
        fs::symlink_metadata(dir.join("link.ron"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "nothing else written: {names:?}");
}

/// P4: a closed stdout (`| true`) or a full one (`> /dev/full`) is an ordinary error after the
/// snapshot is written; `compare … | head -1` does not panic.
#[test]
fn a_closed_or_full_stdout_is_an_error_and_the_snapshot_is_saved_first() {
    let d = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_resviz");
    let exp = SMALL.join(" ");
    for (i, redirect) in ["| true", "> /dev/full"].into_iter().enumerate() {
        let script = format!(
            "{bin} train --steps 2 --out p{i}.ron --save-weights {exp} {redirect}; \
             echo \"exit ${{PIPESTATUS[0]}}\" >&2"
        );
        let o = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(d.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{redirect}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{redirect}: {err}"
        );
        assert!(err.contains("exit 1"), "{redirect}: {err}");
        resviz::snapshot::load(&d.path().join(format!("p{i}.ron"))).unwrap();
    }
    // A comparison far longer than a pipe buffer into `head -1`.
    let files = vec!["p0.ron"; 3000].join(" ");
    let script =
        format!("{bin} compare {files} | head -1 >/dev/null; echo \"exit ${{PIPESTATUS[0]}}\" >&2");
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(err.contains("exit 1"), "{err}");
}
