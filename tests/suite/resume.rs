//! `resviz train --resume` end to end on the real binary: a run stopped and resumed gives the
//! same numbers, bit for bit, as one that never stopped; bad resume files and unwritable outputs
//! are one clear line and a non-zero exit.

use crate::common::{failure, json_of, resume_files, resviz_in, steps_of, train_saved};
use resviz::snapshot;
use std::fs;
use std::path::Path;

const SGD: &[&str] = &[
    "--dataset",
    "synthetic",
    "--models",
    "v1-8,plain-8,dropsc-8", // dropsc: its dropout masks must continue too
    "--batch",
    "8",
    "--seed",
    "3",
    "--width", // small nets: the final evaluation on the test split dominates the time
    "4",
];

fn resume(dir: &Path, from: &str, steps: &str, out: &str) -> serde_json::Value {
    let args = ["train", "--resume", from, "--steps", steps, "--json"];
    json_of(&resviz_in(
        dir,
        &[&args[..], &["--out", out, "--save-weights"]].concat(),
    ))
}

/// `a` and `b` trained the same: summaries, step records, weights and optimizer state.
fn assert_same_run(dir: &Path, a: (&serde_json::Value, &str), b: (&serde_json::Value, &str)) {
    assert_eq!(a.0, b.0, "the --json summaries differ");
    let (ra, rb) = (
        dir.join(format!("{}.ron", a.1)),
        dir.join(format!("{}.ron", b.1)),
    );
    assert_eq!(steps_of(&ra), steps_of(&rb));
    for (fa, fb) in resume_files(&ra).iter().zip(resume_files(&rb)) {
        for (x, y) in [(&fa.weights, &fb.weights), (&fa.optimizer, &fb.optimizer)] {
            let read = |name: &str| fs::read(dir.join(name)).unwrap();
            assert!(read(x) == read(y), "{x} and {y} differ");
        }
        // Equal content, equal hash in the name.
        assert_eq!(fa.weights_sha256, fb.weights_sha256);
    }
}

/// The file of `what` ("weights" or "optimizer") of run `spec` that the snapshot `ron` names.
fn file_of(dir: &Path, ron: &str, spec: &str, what: &str) -> String {
    let snap = snapshot::load(&dir.join(ron)).unwrap();
    let i = snap.runs.iter().position(|r| r.info.spec == spec).unwrap();
    let f = &snap.resume.unwrap().files[i];
    match what {
        "weights" => f.weights.clone(),
        _ => f.optimizer.clone(),
    }
}

#[test]
fn sgd_stopped_and_resumed_matches_an_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let full = train_saved(d.path(), "20", "full.ron", SGD);
    train_saved(d.path(), "10", "half.ron", SGD);
    let resumed = resume(d.path(), "half.ron", "10", "resumed.ron");
    assert_eq!(resumed["models"][0]["steps"], 20);
    assert_same_run(d.path(), (&full, "full"), (&resumed, "resumed"));
    let steps = steps_of(&d.path().join("resumed.ron"));
    assert_eq!(steps[1].len(), 20, "the history continues the saved one");
}

/// Adam, a warm-up and a step schedule crossed after the resume, twice resumed.
#[test]
fn adam_with_a_schedule_resumes_twice_identically() {
    let d = tempfile::tempdir().unwrap();
    let cfg = r#"(models: ["v2-8", "scaled-8"], dataset: "synthetic", batch: 8, lr: 0.01,
        optimizer: adam, weight_decay: 0.001, warmup_steps: 3, warmup_lr: 0.001,
        schedule: Step(milestones: [9, 14], gamma: 0.5), seed: 11, width: 4, eval_every: 4)"#;
    fs::write(d.path().join("exp.ron"), cfg).unwrap();
    let exp = ["--config", "exp.ron"];
    let full = train_saved(d.path(), "18", "full.ron", &exp);
    train_saved(d.path(), "2", "a.ron", &exp);
    resume(d.path(), "a.ron", "9", "b.ron");
    let resumed = resume(d.path(), "b.ron", "7", "c.ron");
    // Evaluations happen at different steps, so only the training numbers are compared.
    let strip = |mut v: serde_json::Value| {
        for m in v["models"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("test_acc");
        }
        v
    };
    assert_same_run(d.path(), (&strip(full), "full"), (&strip(resumed), "c"));
}

#[test]
fn missing_or_mismatched_resume_files_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let run = |args: &[&str]| resviz_in(dir, &[&["train", "--steps", "1"], args].concat());
    train_saved(dir, "2", "ok.ron", SGD);
    let plain = [
        "--dataset",
        "synthetic",
        "--models",
        "v1-8",
        "--batch",
        "8",
        "--width",
        "4",
    ];
    json_of(&run(
        &[&plain[..], &["--json", "--out", "noweights.ron"]].concat()
    ));

    let e = failure(&run(&["--resume", "nowhere.ron"]));
    assert!(e.contains("cannot read nowhere.ron"), "{e}");
    let e = failure(&run(&["--resume", "noweights.ron"]));
    assert!(e.contains("noweights.ron: no resume state"), "{e}");

    let cp = |from: &str, to: &str| fs::copy(dir.join(from), dir.join(to)).unwrap();
    let (v1_w, plain_w) = (
        file_of(dir, "ok.ron", "v1-8", "weights"),
        file_of(dir, "ok.ron", "plain-8", "weights"),
    );
    let (v1_o, plain_o) = (
        file_of(dir, "ok.ron", "v1-8", "optim"),
        file_of(dir, "ok.ron", "plain-8", "optim"),
    );
    fs::rename(dir.join(&v1_w), dir.join("v1.bak")).unwrap();
    let e = failure(&run(&["--resume", "ok.ron"]));
    assert!(
        e.contains(&format!(
            "cannot resume from ok.ron: weights file {v1_w} is missing"
        )),
        "{e}"
    );
    // The plain net's weights under the residual net's name: the checksum does not match.
    cp(&plain_w, &v1_w);
    let e = failure(&run(&["--resume", "ok.ron"]));
    assert!(
        e.contains(&format!("{v1_w} has changed since the snapshot was saved")),
        "{e}"
    );
    cp("v1.bak", &v1_w);

    fs::remove_file(dir.join(&plain_o)).unwrap();
    let e = failure(&run(&["--resume", "ok.ron"]));
    assert!(e.contains("optimizer state file"), "{e}");
    // Not a safetensors file: its size is checked against its header before it is read.
    fs::write(dir.join(&plain_o), b"not safetensors").unwrap();
    let e = failure(&run(&["--resume", "ok.ron"]));
    assert!(e.contains(&format!("{plain_o}: its header claims")), "{e}");
    cp(&v1_o, &plain_o);
    let e = failure(&run(&["--resume", "ok.ron"]));
    assert!(e.contains(&format!("{plain_o} has changed")), "{e}");

    // The experiment comes from the snapshot: options that would change it are refused.
    let out = run(&["--resume", "ok.ron", "--models", "v2-8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot be used with"),
        "{err}"
    );
}

/// An output that cannot be written (its "directory" is a regular file, so even root cannot
/// create it) is refused before the first step: one clear line, a non-zero exit, nothing written.
#[test]
fn unwritable_output_is_refused_before_training() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("file"), b"").unwrap();
    let args = ["train", "--json", "--steps", "2", "--out", "file/x.ron"];
    for extra in [&[][..], &["--save-weights"][..]] {
        let out = resviz_in(d.path(), &[&args[..], SGD, extra].concat());
        let e = failure(&out);
        assert!(e.contains("cannot create directory file"), "{e}");
        assert!(out.stdout.is_empty(), "no training, no summary");
    }
    assert_eq!(
        fs::read_dir(d.path()).unwrap().count(),
        1,
        "nothing else written"
    );
}
