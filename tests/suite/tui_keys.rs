//! The real dashboard on a pseudo-terminal (issue 18): progress is kept before a key throws it
//! away.

use crate::pty;

use portable_pty::CommandBuilder;
use pty::{Session, saved_files};
use std::time::Duration;

fn small_dashboard(dir: &std::path::Path) -> Session {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_resviz"));
    cmd.args([
        "tui",
        "--models",
        "plain-8,v1-8",
        "--dataset",
        "synthetic",
        "--batch",
        "8",
    ]);
    cmd.cwd(dir);
    Session::start(cmd)
}

/// `r` resets every run: their progress so far is autosaved into saves/ first, and the status
/// line names the file.
#[test]
fn reset_autosaves_the_progress_it_discards() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = small_dashboard(dir.path());
    session.wait_until(
        "a growth figure for both runs",
        Duration::from_secs(60),
        |t| t.matches("/blk→in").count() >= 2,
    );
    session.press(b"r");
    session.wait_for("autosaved saves/", Duration::from_secs(10));
    let saves = dir.path().join("saves");
    let files = saved_files(&saves);
    assert_eq!(files.len(), 1, "{files:?}");
    let snap = resviz::snapshot::load(&saves.join(&files[0])).unwrap();
    let specs: Vec<&str> = snap.runs.iter().map(|r| r.info.spec.as_str()).collect();
    assert_eq!(specs, ["plain-8", "v1-8"]);
    assert!(snap.runs.iter().all(|r| !r.steps.is_empty()));
    session.press(b"q");
    let (code, screen) = session.finish();
    assert_eq!(code, 0, "{}", screen.contents());
}

/// A replay plays through time on space at the speed `<` and `>` choose, and stops at the end.
#[test]
fn space_plays_a_replay_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.ron");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resviz"))
        .args([
            "train",
            "--models",
            "v1-8",
            "--dataset",
            "synthetic",
            "--steps",
            "60",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_resviz"));
    cmd.arg("replay");
    cmd.arg(&run);
    cmd.cwd(dir.path());
    let mut session = Session::start(cmd);
    session.wait_for("gradient flow", Duration::from_secs(30));
    // 10 steps a second, so playing 60 steps takes about six seconds.
    for _ in 0..4 {
        session.press(b"<");
    }
    session.press(b" ");
    session.wait_for("▶ playing · 10 steps/s", Duration::from_secs(5));
    let end = session.wait_for("end of the replay", Duration::from_secs(20));
    assert!(end > Duration::from_secs(3), "played too fast: {end:?}");
    session.press(b">");
    session.press(b" ");
    session.wait_for("▶ playing · 30 steps/s", Duration::from_secs(5));
    session.press(b" ");
    session.wait_for("‖ paused", Duration::from_secs(5));
    session.press(b"q");
    let (code, screen) = session.finish();
    assert_eq!(code, 0, "{}", screen.contents());
}
