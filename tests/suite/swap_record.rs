//! Issue 30, "wrong records": `v` swaps a run's model on the real binary; the save that key
//! writes holds the run under the spec it was trained as, with its own steps, and `compare`
//! reads it so; the save on quitting holds the new model's run, from its own first step, and a
//! config that names it.

use crate::common;
use crate::pty::{self, saved_files};

use resviz::snapshot::{self, RunSnapshot};
use std::time::Duration;

/// The last step of run `run` in `snap`, 0 if it has none.
fn last_step(snap: &RunSnapshot, run: usize) -> u64 {
    snap.runs[run].steps.last().map_or(0, |r| r.step)
}

#[test]
fn a_swapped_run_keeps_its_spec_and_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = pty::dashboard(dir.path(), "plain-8,v1-8", &["--width", "4"]);
    session.wait_for_runs(2);
    std::thread::sleep(Duration::from_millis(500));
    session.press(b"\t");
    session.press(b"v");
    session.wait_for("autosaved saves/", Duration::from_secs(10));
    // The new run trains a while before quitting saves it.
    session.wait_until("v1a-8 training", Duration::from_secs(60), |t| {
        t.contains("v1a-8") && pty::runs_stepped(t) >= 2
    });
    session.quit();

    let saves = dir.path().join("saves");
    let files = saved_files(&saves);
    let snaps: Vec<(String, RunSnapshot)> = files
        .iter()
        .map(|f| (f.clone(), snapshot::load(&saves.join(f)).unwrap()))
        .collect();
    assert_eq!(snaps.len(), 2, "the swap's save and the quit's: {files:?}");
    let (before, after): (Vec<_>, Vec<_>) = snaps
        .iter()
        .partition(|(_, s)| s.runs[1].info.spec == "v1-8");
    let ([(before_file, before)], [(_, after)]) = (before.as_slice(), after.as_slice()) else {
        panic!("one save with run 2 as v1-8, one without: {files:?}");
    };
    // The swapped-out run: its own spec in the run and in the config, its own steps.
    assert_eq!(before.config.models, ["plain-8", "v1-8"]);
    let old_steps = last_step(before, 1);
    assert!(old_steps > 0, "v1-8 saved without steps");
    // The new run: named in the config, and its steps start over at its own first step.
    assert_eq!(after.runs[1].info.spec, "v1a-8");
    assert_eq!(after.config.models, ["plain-8", "v1a-8"]);
    let first_new = after.runs[1].steps.first().map(|r| r.step);
    assert_eq!(first_new, Some(1), "v1a-8's history starts at step 1");
    assert!(
        last_step(after, 1) < last_step(after, 0),
        "v1a-8 ran fewer steps than plain-8, which never restarted"
    );

    // `compare` on the swap's save reads run 2 as v1-8 with v1-8's steps; no v1a-8 in it.
    let file = format!("saves/{before_file}");
    let out = common::resviz_in(dir.path(), &["compare", &file]);
    common::succeeded(&out);
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains(" v1-8 "))
        .unwrap_or_else(|| panic!("no v1-8 row:\n{table}"));
    assert!(
        row.split_whitespace().any(|w| w == old_steps.to_string()),
        "v1-8's row does not show its {old_steps} steps:\n{table}"
    );
    assert!(!table.contains("v1a-8"), "{table}");
}
