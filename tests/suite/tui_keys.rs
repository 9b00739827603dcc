//! The real dashboard on a pseudo-terminal (issue 18): progress is kept before a key throws it
//! away.

use crate::common;
use crate::pty::{self, saved_files};
use std::time::Duration;

/// `r` resets every run: their progress so far is autosaved into saves/ first, and the status
/// line names the file.
#[test]
fn reset_autosaves_the_progress_it_discards() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = pty::dashboard(dir.path(), "plain-8,v1-8", &[]);
    session.wait_for_runs(2);
    session.press(b"r");
    session.wait_for("autosaved saves/", Duration::from_secs(10));
    let saves = dir.path().join("saves");
    let files = saved_files(&saves);
    assert_eq!(files.len(), 1, "{files:?}");
    let snap = resviz::snapshot::load(&saves.join(&files[0])).unwrap();
    let specs: Vec<&str> = snap.runs.iter().map(|r| r.info.spec.as_str()).collect();
    assert_eq!(specs, ["plain-8", "v1-8"]);
    assert!(snap.runs.iter().all(|r| !r.steps.is_empty()));
    session.quit();
}

/// A replay plays through time on space at the speed `<` and `>` choose, and stops at the end.
#[test]
fn space_plays_a_replay_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let train = ["train", "--models", "v1-8", "--dataset", "synthetic"];
    let out = ["--steps", "60", "--out", "run.ron"];
    common::succeeded(&common::resviz_in(dir.path(), &[&train[..], &out].concat()));
    let mut session = pty::real(dir.path(), &["replay", "run.ron"]);
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
    session.quit();
}
