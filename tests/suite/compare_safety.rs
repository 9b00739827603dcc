//! `resviz compare` on crafted snapshots (issue 19): escape codes in strings never reach the
//! terminal, values no run produces are refused on load, and a duplicated line is not called a
//! truncation.

use resviz::snapshot::{self, synthetic};
use std::fs;
use std::path::Path;
use std::process::Output;

fn compare(dir: &Path, files: &[&str]) -> Output {
    crate::common::resviz_in(dir, &[&["compare"][..], files].concat())
}

fn write_snapshot(dir: &Path, name: &str, edit: impl Fn(&mut snapshot::RunSnapshot)) {
    let mut s = synthetic::snapshot(&["plain-20", "v1-20"], 30, 7);
    // Format 2 (no resume section, no new status): what a resviz before format 3 also reads.
    s.format_version = 2;
    edit(&mut s);
    fs::write(dir.join(name), snapshot::to_ron(&s).unwrap()).unwrap();
}

#[test]
fn escape_codes_in_a_snapshot_never_reach_the_terminal() {
    let d = tempfile::tempdir().unwrap();
    // Clear the screen, set the window title, ring the bell.
    let evil = "v1\u{1b}[2J\u{1b}]0;pwned\u{7}-20";
    write_snapshot(d.path(), "evil.ron", |s| {
        s.runs[1].info.spec = evil.into();
        s.runs[0].status = resviz::records::RunStatus::Diverged {
            step: 3,
            reason: "boom\u{1b}[31m\r".into(),
        };
        s.dataset = "x\u{9b}31m".into();
    });
    let o = compare(d.path(), &["evil.ron"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains("v1\\u{1b}[2J"), "{out}");
    let loaded = snapshot::load(&d.path().join("evil.ron")).unwrap();
    assert!(!loaded.dataset.chars().any(char::is_control));
}

#[test]
fn out_of_range_values_are_refused_on_load() {
    let d = tempfile::tempdir().unwrap();
    type Edit = fn(&mut snapshot::RunSnapshot);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "acc.ron",
            |s| s.runs[0].evals[0].acc = 7.5,
            "test accuracy 7.5",
        ),
        (
            "loss.ron",
            |s| s.runs[1].steps[2].loss = -3.0,
            "training loss -3",
        ),
        (
            "dead.ron",
            |s| s.runs[1].steps[2].blocks[0].act_zero_frac = 2.0,
            "dead-ReLU fraction 2",
        ),
        (
            "wall.ron",
            |s| s.runs[0].wall_secs = f64::NEG_INFINITY,
            "training time",
        ),
    ];
    for (name, edit, needle) in cases {
        write_snapshot(d.path(), name, edit);
        let o = compare(d.path(), &[name]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("inconsistent snapshot") && err.contains(needle),
            "{name}: {err}"
        );
        assert!(o.stdout.is_empty(), "{name}: printed anyway");
    }
}

#[test]
fn a_duplicated_line_is_not_reported_as_truncated() {
    let d = tempfile::tempdir().unwrap();
    write_snapshot(d.path(), "ok.ron", |_| {});
    let text = fs::read_to_string(d.path().join("ok.ron")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        // Lines that open a bracket leave it open when doubled: the case that was misreported.
        if !line.trim_end().ends_with(['(', '[']) {
            continue;
        }
        let mut doubled = lines.clone();
        doubled.insert(i, line);
        fs::write(d.path().join("dup.ron"), doubled.join("\n") + "\n").unwrap();
        let o = compare(d.path(), &["dup.ron"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "line {}: {err}", i + 1);
        assert!(!err.contains("truncated"), "line {}: {err}", i + 1);
        checked += 1;
    }
    assert!(checked >= 3, "{checked}");
}
