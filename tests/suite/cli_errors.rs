//! Errors in the user's terms (issue 18): a file that is not a snapshot, and the dashboard
//! without a terminal. One line, exit 1, no parser or OS internals.

use crate::common::{self, resviz};

#[test]
fn replaying_a_file_that_is_not_a_snapshot_says_so() {
    let line = common::failure(&resviz(&["replay", "README.md"]));
    assert!(
        line.contains("README.md is not a resviz snapshot ("),
        "{line}"
    );
    assert!(!line.contains("enable"), "ron internals: {line}");
    let line = common::failure(&resviz(&["compare", "assets/seed.ron"]));
    assert!(
        line.contains("assets/seed.ron is not a resviz snapshot (it is an experiment config: give it to --config)"),
        "{line}"
    );
}

#[test]
fn the_dashboard_without_a_terminal_says_what_it_needs() {
    for args in [&["tui", "--models", "v1-8"][..], &[]] {
        let line = common::failure(&resviz(args));
        assert!(line.contains("resviz needs a terminal: "), "{line}");
        assert!(!line.contains("os error"), "{line}");
    }
    // A replay checks the file first, then the terminal.
    let dir = tempfile::tempdir().unwrap();
    let train = [
        "train",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--steps",
        "1",
    ];
    let out = common::resviz_in(dir.path(), &[&train[..], &["--out", "run.ron"]].concat());
    common::succeeded(&out);
    let line = common::failure(&common::resviz_in(dir.path(), &["replay", "run.ron"]));
    assert!(line.contains("resviz needs a terminal: "), "{line}");
}

/// Issue 30: the dashboard's options given without `tui` get clap's error and where they go.
#[test]
fn dashboard_options_without_tui_say_where_they_go() {
    let out = resviz(&["--models", "plain-20"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unexpected argument '--models'"), "{err}");
    assert!(err.contains("resviz tui --models plain-20"), "{err}");
    // A subcommand's own unknown option gets no such tip.
    let out = resviz(&["train", "--nope"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("resviz tui"));
}
