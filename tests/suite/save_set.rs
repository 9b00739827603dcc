//! A save with weights is all-or-nothing as a set, and `--resume` checks what it loads
//! (issue 19, S1–S5): killed at any point of a save, a resume continues bit for bit from one
//! consistent state or refuses with one line; an edited model, base rate or step count, or a
//! damaged tensor file, is refused; stale temporary files of dead processes are removed.

use crate::common::{
    SMALL, edit, resume_fails, resume_files, resviz_env, resviz_in, steps_of, succeeded,
    train_saved,
};

use std::fs;
use std::path::Path;

/// The small experiment at seed 5 and the rate the base_lr edit below expects (not the
/// default's 0.05).
const EXP: &[&str] = &["--seed", "5", "--lr", "0.1"];

fn train(dir: &Path, steps: &str, out: &str) {
    train_saved(dir, steps, out, &[SMALL, EXP].concat());
}

fn resume_args<'a>(from: &'a str, steps: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--resume",
        from,
        "--steps",
        steps,
        "--json",
        "--out",
        out,
        "--save-weights",
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// S1: a save over an existing snapshot with weights, killed at each of its points (after every
/// weight and optimizer file, after the snapshot, after the clean-up). A resume afterwards gives
/// exactly the steps of an uninterrupted run from the old state or from the new one.
#[test]
fn a_save_killed_at_any_point_resumes_from_one_consistent_state() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("base");
    fs::create_dir(&base).unwrap();
    train(&base, "4", "a.ron");
    // References: the old state (step 4) and the new one (step 7), each continued 2 steps.
    let r = d.path().join("ref");
    copy_dir(&base, &r);
    succeeded(&resviz_in(&r, &resume_args("a.ron", "2", "old.ron")));
    succeeded(&resviz_in(&r, &resume_args("a.ron", "3", "a.ron")));
    succeeded(&resviz_in(&r, &resume_args("a.ron", "2", "new.ron")));
    let (old, new) = (steps_of(&r.join("old.ron")), steps_of(&r.join("new.ron")));
    assert_ne!(old, new);
    let points = 2 * 2 + 2;
    let mut outcomes = Vec::new();
    for n in 1..=points + 1 {
        let w = d.path().join(format!("kill{n}"));
        copy_dir(&base, &w);
        let killed = resviz_env(
            &w,
            &resume_args("a.ron", "3", "a.ron"),
            &[("RESVIZ_FAULT_AT", &n.to_string())],
        );
        assert_eq!(killed.status.success(), n > points, "fault point {n}");
        let after = resviz_in(&w, &resume_args("a.ron", "2", "c.ron"));
        succeeded(&after);
        let got = steps_of(&w.join("c.ron"));
        let which = if got == old {
            "old"
        } else if got == new {
            "new"
        } else {
            panic!("fault point {n}: the resumed run matches neither saved state")
        };
        outcomes.push(which);
        // Only the files the snapshot names (and those of c.ron) are left once a save completes.
        let names: Vec<String> = fs::read_dir(&w)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("a.") && n.ends_with(".safetensors"))
            .collect();
        if n > points {
            assert_eq!(names.len(), 4, "{names:?}");
        }
    }
    // Killed before the snapshot is renamed: the old state; after: the new one.
    assert_eq!(outcomes, ["old", "old", "old", "old", "new", "new", "new"]);
}

/// S2: a snapshot edited to claim another model with the same tensor names and shapes.
#[test]
fn weights_of_another_model_are_refused() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "3", "a.ron");
    for other in ["scaled-8", "dropsc-8", "relubefore-8"] {
        fs::copy(d.path().join("a.ron"), d.path().join("e.ron")).unwrap();
        edit(&d.path().join("e.ron"), |t| {
            t.replace("\"v1-8\"", &format!("\"{other}\""))
        });
        let e = resume_fails(d.path(), "e.ron");
        assert!(
            e.contains("holds v1-8, but the run is ") && e.contains(other),
            "{e}"
        );
    }
}

/// S3: a base learning rate of zero or below (gradient ascent) or not a number.
#[test]
fn a_base_rate_that_is_not_positive_is_refused() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    for lr in ["-0.1", "0.0", "NaN", "inf"] {
        fs::copy(d.path().join("a.ron"), d.path().join("e.ron")).unwrap();
        edit(&d.path().join("e.ron"), |t| {
            t.replace("base_lr: 0.1,", &format!("base_lr: {lr},"))
        });
        let e = resume_fails(d.path(), "e.ron");
        assert!(e.contains("base learning rate"), "{lr}: {e}");
    }
}

/// S4: a resume step count that disagrees with the history, including one that would wrap.
#[test]
fn a_step_count_that_disagrees_with_the_history_is_refused() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "3", "a.ron");
    for step in ["5", "0", "18446744073709551615"] {
        fs::copy(d.path().join("a.ron"), d.path().join("e.ron")).unwrap();
        edit(&d.path().join("e.ron"), |t| {
            t.replacen(
                "spec: \"plain-8\",\n    step: 3,",
                &format!("spec: \"plain-8\",\n    step: {step},"),
                1,
            )
        });
        let e = resume_fails(d.path(), "e.ron");
        assert!(e.contains("the resume state is at step"), "{step}: {e}");
    }
    // History, resume state and batches all at u64::MAX: no overflow, a clear refusal.
    fs::copy(d.path().join("a.ron"), d.path().join("e.ron")).unwrap();
    edit(&d.path().join("e.ron"), |t| {
        t.replace("step: 3,", "step: 18446744073709551615,")
            .replace("batches: 3,", "batches: 18446744073709551615,")
            .replace("(step: 3,", "(step: 18446744073709551615,")
    });
    let e = resume_fails(d.path(), "e.ron");
    assert!(e.contains("resume") || e.contains("step"), "{e}");
}

/// S5: flipped bytes anywhere in a tensor file's body.
#[test]
fn a_damaged_tensor_file_is_refused() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    let files = resume_files(&d.path().join("a.ron"));
    for name in [&files[0].weights, &files[1].optimizer] {
        let path = d.path().join(name);
        let good = fs::read(&path).unwrap();
        for k in 0..8 {
            let mut bad = good.clone();
            let at = good.len() - 1 - k * (good.len() / 3) / 8;
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            let e = resume_fails(d.path(), "a.ron");
            assert!(e.contains(&format!("{name} has changed")), "{e}");
        }
        fs::write(&path, &good).unwrap();
    }
    // Without the snapshot's checksums (as a format 2 snapshot has none), the file's own header
    // still catches it.
    let path = d.path().join(&files[0].weights);
    let mut bad = fs::read(&path).unwrap();
    *bad.last_mut().unwrap() ^= 1;
    fs::write(&path, &bad).unwrap();
    edit(&d.path().join("a.ron"), |t| {
        t.lines()
            .filter(|l| !l.contains("_sha256:"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                &format!("format_version: {}", resviz::snapshot::FORMAT_VERSION),
                "format_version: 2",
            )
    });
    let e = resume_fails(d.path(), "a.ron");
    assert!(
        e.contains("does not match the checksum in its header"),
        "{e}"
    );
}

/// The optimizer state of another step count (a mix of two saves) is refused.
#[test]
fn an_optimizer_state_of_another_step_is_refused() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    train(d.path(), "3", "b.ron");
    let fa = resume_files(&d.path().join("a.ron"));
    let fb = resume_files(&d.path().join("b.ron"));
    // a.ron with b's optimizer file and its checksum: consistent checksums, a mixed set.
    edit(&d.path().join("a.ron"), |t| {
        t.replace(&fa[1].optimizer, &fb[1].optimizer).replace(
            fa[1].optimizer_sha256.as_deref().unwrap(),
            fb[1].optimizer_sha256.as_deref().unwrap(),
        )
    });
    // The file's own stamp says the step it was saved at (since issue 31); the optimizer's step
    // count is checked again once loaded.
    let e = resume_fails(d.path(), "a.ron");
    assert!(
        e.contains("it was saved at step 3, but the run is at step 2"),
        "{e}"
    );
}

/// Temporary files of a process killed during a save are removed by the next save to the same
/// place; those of a live process are not.
#[test]
fn stale_temporary_files_are_removed() {
    let d = tempfile::tempdir().unwrap();
    let dead = dead_pid();
    let live = std::process::id();
    let stale = [
        format!(".a.ron.{dead}-0.tmp"),
        format!(".a.v1-8.0123456789ab.safetensors.{dead}-3.tmp"),
        format!(".a.plain-8.safetensors.{dead}.tmp"),
    ];
    let kept = [
        format!(".a.ron.{live}-0.tmp"),
        ".a.ron.notes.tmp".to_string(),
    ];
    for f in stale.iter().chain(&kept) {
        fs::write(d.path().join(f), b"partial").unwrap();
    }
    train(d.path(), "1", "a.ron");
    for f in &stale {
        assert!(!d.path().join(f).exists(), "{f} was left");
    }
    for f in &kept {
        assert!(d.path().join(f).exists(), "{f} was removed");
    }
}

/// A process id that no process has.
fn dead_pid() -> u32 {
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .map_or(32768, |s| s.trim().parse().unwrap_or(32768));
    (2..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}
