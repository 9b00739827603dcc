//! `resviz bench` end to end: the JSON shapes of ARCHITECTURE.md (models, and `--kernels`), the human
//! table, and bad input.

use std::process::Command;

fn resviz(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_resviz"))
        .args(args)
        .output()
        .expect("run resviz")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = resviz(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    serde_json::from_slice(&out.stdout).expect("bench --json prints one JSON object")
}

#[test]
fn models_report_speed_statistics_cost_and_memory() {
    let v = json(&[
        "bench",
        "--models",
        "plain-8,v2-8",
        "--batch",
        "16",
        "--steps",
        "3",
        "--json",
    ]);
    let models = v["models"].as_array().unwrap();
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plain-8", "v2-8"]);
    for m in models {
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for k in [
            "model",
            "batch",
            "img_per_s",
            "stats_overhead_pct",
            "stats_overhead_ci_pct",
            "fwd_img_per_s",
            "fwd_ratio",
            "eval_batch",
            "fwd_eval_img_per_s",
            "peak_rss_mb",
        ] {
            assert!(keys.contains(&k), "{k} missing from {m}");
        }
        assert_eq!(m["batch"].as_u64(), Some(16));
        let ips = m["img_per_s"].as_f64().unwrap();
        assert!(ips.is_finite() && ips > 0.0, "{m}");
        let fwd = m["fwd_img_per_s"].as_f64().unwrap();
        assert!(fwd.is_finite() && fwd > 0.0, "{m}");
        assert!(
            (m["fwd_ratio"].as_f64().unwrap() - fwd / ips).abs() < 1e-9 * fwd / ips,
            "{m}"
        );
        assert_eq!(m["eval_batch"].as_u64(), Some(64));
        assert!(m["fwd_eval_img_per_s"].as_f64().unwrap() > 0.0, "{m}");
        let pct = m["stats_overhead_pct"].as_f64().unwrap();
        let ci: Vec<f64> = (m["stats_overhead_ci_pct"].as_array().unwrap().iter())
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(pct.is_finite() && ci.len() == 2, "{m}");
        assert!(
            ci[0] <= pct && pct <= ci[1],
            "the interval brackets the median: {m}"
        );
        // A process that trained a network holds at least its batch and weights.
        let rss = m["peak_rss_mb"].as_f64().unwrap();
        assert!(rss > 10.0 && rss < 4096.0, "{m}");
    }
}

#[test]
fn kernels_time_every_conv_and_batch_norm_shape() {
    let v = json(&[
        "bench",
        "--kernels",
        "--batch",
        "4",
        "--steps",
        "1",
        "--json",
    ]);
    let rows = v["kernels"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{v}");
    for r in rows {
        let kernel = r["kernel"].as_str().unwrap();
        assert!(
            kernel.starts_with("conv3x3") || kernel.starts_with("bn+relu"),
            "{r}"
        );
        assert_eq!(r["shape"][0].as_u64(), Some(4), "{r}");
        for k in ["fwd_ms", "bwd_ms", "fwd_rate", "bwd_rate"] {
            let x = r[k].as_f64().unwrap();
            assert!(x.is_finite() && x > 0.0, "{k} in {r}");
        }
    }
}

#[test]
fn human_output_names_each_model() {
    let out = resviz(&["bench", "--models", "v1-8", "--batch", "8", "--steps", "1"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("v1-8") && err.contains("img/s") && err.contains("stats"),
        "{err}"
    );
}

#[test]
fn bad_input_is_one_clear_error() {
    for (args, says) in [
        (&["bench", "--steps", "0"][..], "--steps must be at least 1"),
        (&["bench", "--models", "v9-20"][..], "v9"),
    ] {
        let out = resviz(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}
