//! `resviz shatter`, `resviz landscape` and `lesion --plot`: the JSON (results with the
//! parameters that re-run them), the SVGs, `--from` a saved run, and one-line errors.

use crate::common::{json_of, resviz};

const SMALL: [&str; 6] = [
    "--models",
    "plain-8,v1-8",
    "--dataset",
    "synthetic",
    "--width",
    "4",
];

fn svg_at(path: &std::path::Path) -> String {
    let svg = std::fs::read_to_string(path).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    svg
}

#[test]
fn shatter_json_records_its_parameters_and_plots_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("shatter.svg");
    let mut args = vec!["shatter"];
    args.extend(SMALL);
    args.extend([
        "--steps",
        "2",
        "--points",
        "16",
        "--lags",
        "3",
        "--to-image",
        "5",
    ]);
    args.extend([
        "--bn-batches",
        "2",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let v = json_of(&resviz(&args));
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for (m, spec) in models.iter().zip(["plain-8", "v1-8"]) {
        assert_eq!(m["model"], spec);
        assert_eq!(m["grad"].as_array().unwrap().len(), 16);
        assert_eq!(m["logit"].as_array().unwrap().len(), 16);
        let ac = m["autocorr"].as_array().unwrap();
        assert_eq!(ac.len(), 3);
        assert_eq!(m["lag1"], ac[0]);
        let p = &m["params"];
        assert_eq!(
            (p["from_image"].as_u64(), p["to_image"].as_u64()),
            (Some(0), Some(5))
        );
        assert_eq!(
            (p["points"].as_u64(), p["lags"].as_u64()),
            (Some(16), Some(3))
        );
        assert!(
            p["class"].is_null(),
            "not given: the label of image 5, resolved below"
        );
        assert!(m["class"].as_u64().unwrap() < 10);
        assert_eq!(p["bn"]["batches"], 2);
        assert_eq!(
            p["bn"]["batch"], v["runs"]["experiment"]["batch"],
            "the experiment's batch"
        );
    }
    assert_eq!(v["runs"]["steps"], serde_json::json!([2, 2]));
    assert_eq!(v["runs"]["experiment"]["width"], 4);
    assert!(v["runs"]["from"].is_null());
    let svg = svg_at(&plot);
    assert!(svg.contains("plain-8") && svg.contains("v1-8") && svg.contains("autocorrelation"));
}

#[test]
fn shatter_at_initialisation_and_its_table() {
    let mut args = vec!["shatter"];
    args.extend(SMALL);
    args.extend(["--steps", "0", "--points", "8", "--lags", "2"]);
    let out = resviz(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("lag-1"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("plain-8") || l.starts_with("v1-8"))
            .count(),
        2
    );
}

#[test]
fn landscape_json_and_plot_from_a_saved_run() {
    let dir = tempfile::tempdir().unwrap();
    let ron = dir.path().join("run.ron");
    let train = resviz(&[
        "train",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--width",
        "4",
        "--steps",
        "3",
        "--out",
        ron.to_str().unwrap(),
        "--save-weights",
    ]);
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let plot = dir.path().join("landscape.svg");
    let v = json_of(&resviz(&[
        "landscape",
        "--from",
        ron.to_str().unwrap(),
        "--grid",
        "3",
        "--slice-points",
        "4",
        "--images",
        "24",
        "--dir-seed",
        "7",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]));
    let m = &v["models"][0];
    assert_eq!(m["model"], "v1-8");
    let losses = m["losses"].as_array().unwrap();
    assert_eq!(losses.len(), 3);
    assert!(losses.iter().all(|r| r.as_array().unwrap().len() == 3));
    assert_eq!(m["losses"][1][1], m["centre_loss"]);
    assert_eq!(m["slice"].as_array().unwrap().len(), 4);
    assert_eq!(m["coords"], serde_json::json!([-1.0, 0.0, 1.0]));
    let nc = m["nonconvex_frac"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&nc));
    let p = &m["params"];
    assert_eq!(
        (p["grid"].as_u64(), p["images"].as_u64(), p["seed"].as_u64()),
        (Some(3), Some(24), Some(7))
    );
    assert_eq!(
        p["bn"]["batches"], 0,
        "the run's own statistics by default (Li et al.)"
    );
    assert_eq!(v["runs"]["steps"], serde_json::json!([3]));
    assert_eq!(v["runs"]["from"], ron.to_str().unwrap());
    let svg = svg_at(&plot);
    assert!(svg.contains("v1-8") && svg.contains("non-convex") && svg.contains("log10 loss"));
}

#[test]
fn lesion_plot_has_a_group_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("lesion.svg");
    let mut args = vec!["lesion"];
    args.extend(SMALL);
    args.extend([
        "--steps",
        "1",
        "--test-images",
        "32",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let out = resviz(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = svg_at(&plot);
    assert!(svg.contains("plain-8") && svg.contains("v1-8") && svg.contains("chance"));
}

#[test]
fn bad_values_fail_with_one_line_before_training() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["landscape", "--grid", "2", "--steps", "1000000"],
            "at least 3",
        ),
        (
            &["landscape", "--slice-points", "1", "--steps", "1"],
            "at least 2",
        ),
        (&["landscape", "--images", "0", "--steps", "1"], "images"),
        (
            &["shatter", "--points", "1", "--steps", "1000000"],
            "at least 2 points",
        ),
        (
            &["shatter", "--points", "8", "--lags", "8", "--steps", "1"],
            "lags",
        ),
        (&["shatter", "--from", "x.ron", "--steps", "1"], "--from"),
    ];
    for (args, needle) in cases {
        let out = resviz(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let mut args = vec!["shatter"];
    args.extend(SMALL);
    args.extend(["--steps", "1000000", "--to-image", "2000"]);
    let out = resviz(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
}
