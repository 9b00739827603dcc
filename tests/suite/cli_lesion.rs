//! `resviz lesion`: the JSON contract (ARCHITECTURE.md), `--from` a saved run, and one-line errors.

use crate::common::{json_of, resviz};

#[test]
fn json_has_every_block_with_null_where_a_plain_block_cannot_be_deleted() {
    let out = resviz(&[
        "lesion",
        "--models",
        "plain-8,v1-8",
        "--dataset",
        "synthetic",
        "--width",
        "4",
        "--steps",
        "2",
        "--test-images",
        "64",
        "--json",
    ]);
    let v = json_of(&out);
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let names = ["stages.0.0", "stages.1.0", "stages.2.0"];
    for (m, spec) in models.iter().zip(["plain-8", "v1-8"]) {
        assert_eq!(m["model"], spec);
        let acc = m["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        let blocks = m["blocks"].as_array().unwrap();
        let got: Vec<&str> = blocks.iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(got, names);
        for (i, b) in blocks.iter().enumerate() {
            let deletable = spec == "v1-8" || i == 0;
            assert_eq!(b["accuracy"].is_f64(), deletable, "{spec} {b}");
            assert_eq!(b["accuracy"].is_null(), !deletable, "{spec} {b}");
            assert_eq!(b.as_object().unwrap().len(), 2, "{b}");
        }
    }
    let p = &v["params"];
    assert_eq!(p["steps"], serde_json::json!([2, 2]));
    assert_eq!(p["test_images"], 64);
    assert_eq!(
        p["experiment"]["models"],
        serde_json::json!(["plain-8", "v1-8"])
    );
    assert_eq!(p["experiment"]["width"], 4);
    assert!(p["from"].is_null());
    // Batch norm re-estimated by default, said so, and each run's accuracies checked.
    assert_eq!(v["bn"]["batches"], 8);
    assert_eq!(v["bn"]["batch"], 32);
    assert_eq!(v["drop_convention"], "intact - lesioned");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    for (c, m) in checks.iter().zip(models) {
        assert_eq!(c["model"], m["model"]);
        assert_eq!(c["eval_accuracy"], m["accuracy"]);
        assert!(c["train_accuracy"].as_f64().is_some(), "{c}");
        assert!(c["eval_below_train"].is_boolean(), "{c}");
    }
}

#[test]
fn the_table_says_how_batch_norm_was_set_and_what_a_drop_is() {
    let out = resviz(&[
        "lesion",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--width",
        "4",
        "--steps",
        "2",
        "--test-images",
        "32",
        "--bn-batches",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("running statistics re-estimated on 3 × 32 training images"),
        "{text}"
    );
    assert!(text.contains("drop = intact - lesioned"), "{text}");
}

#[test]
fn from_a_saved_run_the_intact_accuracy_is_the_runs_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let ron = dir.path().join("run.ron");
    let ron = ron.to_str().unwrap();
    let train = resviz(&[
        "train",
        "--models",
        "v2-8",
        "--dataset",
        "synthetic",
        "--width",
        "4",
        "--steps",
        "3",
        "--out",
        ron,
        "--save-weights",
        "--json",
    ]);
    let trained = json_of(&train);
    // With the run's own statistics (no re-estimation): exactly train's evaluation.
    let out = resviz(&["lesion", "--from", ron, "--json", "--bn-batches", "0"]);
    let v = json_of(&out);
    assert_eq!(v["bn"]["batches"], 0);
    let m = &v["models"][0];
    assert_eq!(m["model"], "v2-8");
    // Same weights, same test split, same batches: the same evaluation (train reports f32).
    let (ours, theirs) = (
        m["accuracy"].as_f64().unwrap(),
        trained["models"][0]["test_acc"].as_f64().unwrap(),
    );
    assert!((ours - theirs).abs() < 1e-6, "{ours} vs {theirs}");
    assert_eq!(v["params"]["steps"], serde_json::json!([3]));
    assert_eq!(v["params"]["from"], ron);
    assert!(
        m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["accuracy"].is_f64())
    );
}

fn assert_one_line_error(args: &[&str], needle: &str) {
    let out = resviz(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "{args:?} printed:\n{err}");
    assert!(err.starts_with("resviz: error: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
}

#[test]
fn bad_input_gives_one_line() {
    let base = ["lesion", "--dataset", "synthetic"];
    let with = |more: &[&'static str]| [&base[..], more].concat();
    assert_one_line_error(&with(&["--steps", "0"]), "--steps must be at least 1");
    assert_one_line_error(&with(&["--steps", "-3"]), "--steps must be at least 1");
    assert_one_line_error(
        &with(&["--models", "v9-8", "--steps", "1"]),
        "unknown model 'v9-8'",
    );
    assert_one_line_error(&with(&["--models", "v1-8"]), "give --steps N");
    assert_one_line_error(
        &with(&["--steps", "1", "--test-images", "0"]),
        "--test-images must be at least 1",
    );
    assert_one_line_error(&["lesion", "--from", "/nonexistent/run.ron"], "run.ron");
}
