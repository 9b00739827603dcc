//! A save with weights never destroys files it does not own (issue 31, items 1–3): a sibling
//! snapshot's files survive a save to a shorter name, two processes saving to one `--out` leave
//! one complete set, and a save that fails (an injected full disk) leaves the previous save as
//! it was and says so.

use crate::common::{self, SMALL, failure, resviz_env, resviz_in, succeeded, train_saved};

use resviz::snapshot;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn cmd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = common::command(dir);
    c.args(args).envs(env.iter().copied());
    c
}

/// `train` of the small experiment at `seed`, `steps` steps, saved with weights to `out`.
fn train_args<'a>(steps: &'a str, out: &'a str, seed: &'a str) -> Vec<&'a str> {
    let save = [
        "train",
        "--json",
        "--steps",
        steps,
        "--out",
        out,
        "--save-weights",
    ];
    [&save[..], SMALL, &["--seed", seed]].concat()
}

fn train(dir: &Path, steps: &str, out: &str, seed: &str) {
    train_saved(dir, steps, out, &[SMALL, &["--seed", seed]].concat());
}

fn resume(dir: &Path, from: &str) -> Output {
    resviz_in(dir, &["train", "--resume", from, "--steps", "1"])
}

/// Every file in `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Item 1: `a.run2.ron`'s files look like run 2 of `a` by name; a save to `a.ron` keeps them.
#[test]
fn a_save_keeps_a_sibling_snapshots_weight_files() {
    let d = tempfile::tempdir().unwrap();
    for sibling in ["a.run2.ron", "a.v1-8.ron"] {
        train(d.path(), "2", sibling, "1");
        train(d.path(), "2", "a.ron", "2");
        // A second save to a.ron tidies its own old files, still not the sibling's.
        train(d.path(), "3", "a.ron", "3");
        succeeded(&resume(d.path(), sibling));
        succeeded(&resume(d.path(), "a.ron"));
    }
    // Exactly the files the three snapshots name (4 each) are left.
    let names: Vec<String> = contents(d.path())
        .into_keys()
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert_eq!(names.len(), 12, "{names:?}");
}

/// Item 2: two processes save to one `--out` at the same moment (each pausing 1.5 s between its
/// weight files and its snapshot, so without the lock both write their files, both rename, and
/// each one's clean-up deletes the other's files). The snapshot left resumes.
#[test]
fn two_processes_saving_to_one_out_leave_a_complete_set() {
    let d = tempfile::tempdir().unwrap();
    let pause = [("RESVIZ_SAVE_PAUSE_MS", "1500")];
    let mut a = cmd(d.path(), &train_args("2", "a.ron", "1"), &pause);
    let mut b = cmd(d.path(), &train_args("2", "a.ron", "2"), &pause);
    let (a, b) = (a.output_async(), b.output_async());
    succeeded(&a.wait_with_output().unwrap());
    succeeded(&b.wait_with_output().unwrap());
    let files = common::resume_files(&d.path().join("a.ron"));
    for f in &files {
        assert!(d.path().join(&f.weights).is_file(), "{} is gone", f.weights);
        assert!(
            d.path().join(&f.optimizer).is_file(),
            "{} is gone",
            f.optimizer
        );
    }
    succeeded(&resume(d.path(), "a.ron"));
    let left = contents(d.path())
        .into_keys()
        .filter(|n| n.ends_with(".safetensors"))
        .count();
    assert_eq!(left, 4, "only the set a.ron names is left");
}

trait Spawn {
    fn output_async(&mut self) -> std::process::Child;
}

impl Spawn for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn resviz")
    }
}

/// Item 3: every write of a save (four tensor files, then the snapshot) failing in turn as a full
/// disk would: the previous save's snapshot and files are byte for byte as they were, nothing
/// new is left behind, the error says so, and the old save still resumes.
#[test]
fn a_failed_save_leaves_the_previous_save_untouched() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron", "1");
    let before = contents(d.path());
    for n in 1..=5 {
        let at = n.to_string();
        let out = resviz_env(
            d.path(),
            &train_args("3", "a.ron", "2"),
            &[("RESVIZ_FAIL_WRITE_AT", &at)],
        );
        let e = failure(&out);
        assert!(e.contains("No space left on device"), "write {n}: {e}");
        assert!(
            e.contains(
                "nothing was saved: a.ron and the files it names are as the previous \
                        save left them"
            ),
            "write {n}: {e}"
        );
        assert_eq!(
            contents(d.path()),
            before,
            "write {n} changed the directory"
        );
    }
    succeeded(&resume(d.path(), "a.ron"));
    // With no previous save, the history is still saved, without weights, and the error says so.
    let e = failure(&resviz_env(
        d.path(),
        &train_args("2", "new.ron", "1"),
        &[("RESVIZ_FAIL_WRITE_AT", "2")],
    ));
    assert!(e.contains("saved without weights"), "{e}");
    assert!(
        snapshot::load(&d.path().join("new.ron"))
            .unwrap()
            .resume
            .is_none()
    );
    assert!(
        !contents(d.path())
            .keys()
            .any(|n| n.starts_with("new.") && n.ends_with(".safetensors"))
    );
}
