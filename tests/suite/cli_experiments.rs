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
        // 16 pairs by default: their lag-1 values, mean and spread.
        let pairs = m["lag1_pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 16);
        assert_eq!(pairs[0], m["lag1"]);
        let mean = pairs.iter().map(|v| v.as_f64().unwrap()).sum::<f64>() / 16.0;
        assert!((m["lag1_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert!(m["lag1_std"].as_f64().unwrap() >= 0.0);
        assert_eq!(m["autocorr_mean"].as_array().unwrap().len(), 3);
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
    assert_eq!(
        v["fits"],
        serde_json::json!([]),
        "one depth per family: nothing to fit"
    );
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
        "--hessian-grid",
        "3",
        "--hessian-steps",
        "3",
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
    // The basin and the Hessian (default 3×3 subgrid): at θ the loss is in its own basin.
    let threshold = m["basin_threshold"].as_f64().unwrap();
    let centre = m["centre_loss"].as_f64().unwrap();
    assert!(
        (threshold - centre - 0.5 * 10f64.ln()).abs() < 1e-9,
        "{threshold}"
    );
    assert_eq!(m["basin_points"], 1, "a 3×3 grid has one interior point, θ");
    assert!((0.0..=1.0).contains(&m["basin_nonconvex_frac"].as_f64().unwrap()));
    let hessian = m["hessian"].as_array().unwrap();
    assert_eq!(hessian.len(), 9);
    for h in hessian {
        let (lo, hi) = (h["min"].as_f64().unwrap(), h["max"].as_f64().unwrap());
        assert!(lo <= hi && h["ratio"].as_f64().unwrap() >= 0.0, "{h}");
    }
    assert!(m["hessian_ratio_median"].as_f64().unwrap() >= 0.0);
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

/// Two depths of a family give a fit to both of Balduzzi's laws; `:bn=off` is a family of its own.
#[test]
fn shatter_fits_the_decay_with_depth_per_family() {
    let models = "plain-8,plain-14,v2-8:bn=off,v2-14:bn=off";
    let v = json_of(&resviz(&[
        "shatter",
        "--models",
        models,
        "--dataset",
        "synthetic",
        "--width",
        "4",
        "--steps",
        "0",
        "--points",
        "8",
        "--lags",
        "2",
        "--pairs",
        "2",
        "--json",
    ]));
    let fits = v["fits"].as_array().unwrap();
    let families: Vec<&str> = fits.iter().map(|f| f["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["plain-L", "v2-L:bn=off"]);
    for f in fits {
        assert_eq!(f["depths"], serde_json::json!([8, 14]));
        assert!(
            f["exp2_rms"].as_f64().unwrap() >= 0.0 && f["inv_sqrt_rms"].as_f64().unwrap() >= 0.0
        );
        assert!(["2^-L", "1/sqrt(L)"].contains(&f["closer"].as_str().unwrap()));
    }
    assert_eq!(v["models"][2]["model"], "v2-8:bn=off");
}
