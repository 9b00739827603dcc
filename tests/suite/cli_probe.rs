//! `resviz probe` end to end: JSON shape, dumps, the gradient-flow claims, and bad input.

use crate::common::{self, resviz};

/// Least-squares growth of ln(grad_rms) per block toward the input, as a factor.
fn growth(model: &serde_json::Value) -> f64 {
    let r: Vec<f64> = model["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["grad_rms"].as_f64().unwrap().ln())
        .collect();
    let n = r.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = r.iter().sum::<f64>() / n;
    let sxy: f64 = r
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 - mx) * (y - my))
        .sum();
    let sxx: f64 = (0..r.len()).map(|i| (i as f64 - mx).powi(2)).sum();
    (-sxy / sxx).exp()
}

/// Shortcut share of each block's input gradient, in block order (the stem has none).
fn shares(model: &serde_json::Value) -> Vec<f64> {
    model["blocks"].as_array().unwrap()[1..]
        .iter()
        .map(|b| {
            let s = b["grad_norm_shortcut"].as_f64().unwrap();
            s / (s + b["grad_norm_branch"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn plain_56_gradient_grows_and_takes_no_shortcut() {
    let out = resviz(&[
        "probe",
        "--models",
        "plain-56,v1-56,v2-56",
        "--dataset",
        "synthetic",
        "--batch",
        "32",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = v["models"].as_array().unwrap();
    assert_eq!(m.len(), 3);
    // Batch norm at initialisation: the plain stack's gradient grows toward the input near the
    // mean-field rate (π/(π−1) ≈ 1.47 per block); the residual nets' far less.
    let (plain, v1, v2) = (growth(&m[0]), growth(&m[1]), growth(&m[2]));
    assert!(plain > 1.25 && plain < 1.6, "plain {plain}");
    assert!(v1 < 1.2 && v2 < 1.2, "v1 {v1} v2 {v2}");
    assert!(
        shares(&m[0]).iter().all(|&s| s == 0.0),
        "plain has no shortcut"
    );
    for r in [&m[1], &m[2]] {
        let mut s = shares(r);
        s.sort_by(f64::total_cmp);
        assert!(
            s[s.len() / 2] > 0.5,
            "{} median share {}",
            r["model"],
            s[s.len() / 2]
        );
        assert!(s.iter().all(|&x| x > 0.0 && x < 1.0));
    }
    assert_eq!(m[0]["blocks"].as_array().unwrap().len(), 28);
    // Trainable parameters: plain-56 has He 2015's 0.85 M; v1-56's projections add 6 k.
    assert_eq!(m[0]["num_params"], 853_018);
    assert_eq!(m[1]["num_params"], 853_018 + 16 * 32 + 64 + 32 * 64 + 128);
    let b = &m[1]["blocks"][0];
    for k in [
        "name",
        "grad_norm",
        "grad_rms",
        "act_mean",
        "act_std",
        "act_zero_frac",
        "act_dead_frac",
    ] {
        assert!(!b[k].is_null(), "block field {k}");
    }
    assert!(
        b["grad_norm_shortcut"].is_null(),
        "the stem has no eq. 5 split"
    );
    // The two parts sum to the gradient at the block's input: the previous boundary's norm.
    let blocks = m[1]["blocks"].as_array().unwrap();
    for w in blocks.windows(2) {
        let (s, br, c) = (
            w[1]["grad_norm_shortcut"].as_f64().unwrap(),
            w[1]["grad_norm_branch"].as_f64().unwrap(),
            w[1]["grad_cos"].as_f64().unwrap(),
        );
        let total = (s * s + br * br + 2.0 * c * s * br).sqrt();
        let want = w[0]["grad_norm"].as_f64().unwrap();
        assert!((total - want).abs() <= 1e-4 * want, "{total} vs {want}");
    }
    assert!(
        m[1]["params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "stem.conv.weight")
    );
    // eq. 5 across each stage: the ratio of the stage's end and start boundary norms, exact
    // only for v2; none for plain.
    assert_eq!(m[0]["stage_direct_share"], serde_json::json!([]));
    for (r, exact) in [(&m[1], false), (&m[2], true)] {
        let st = r["stage_direct_share"].as_array().unwrap();
        assert_eq!(st.len(), 3, "{st:?}");
        let blocks = r["blocks"].as_array().unwrap();
        let norm = |name: &serde_json::Value| {
            blocks.iter().find(|b| &b["name"] == name).unwrap()["grad_norm"]
                .as_f64()
                .unwrap()
        };
        for (k, d) in st.iter().enumerate() {
            let want = norm(&d["to"]) / norm(&d["from"]);
            assert!(
                (d["ratio"].as_f64().unwrap() - want).abs() <= 1e-12 * want,
                "{d}"
            );
            assert_eq!(d["exact"], exact);
            assert_eq!(d["units"], if k == 0 { 9 } else { 8 });
        }
    }
}

#[test]
fn dump_writes_batch_weights_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = resviz(&[
        "probe",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--batch",
        "4",
        "--dump",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["batch.safetensors", "v1-8.safetensors", "probe.json"] {
        assert!(dir.path().join(f).exists(), "missing {f}");
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("growth→input")
            && table.contains("median share")
            && table.contains("stages.2.0"),
        "{table}"
    );
}

#[test]
fn bad_input_gives_one_line_and_nonzero_exit() {
    for args in [
        &["probe", "--models", "v3-20", "--dataset", "synthetic"][..],
        &["probe", "--models", "v1-21", "--dataset", "synthetic"],
        &["probe", "--batch", "0", "--dataset", "synthetic"],
        &["probe", "--width", "0", "--dataset", "synthetic"],
        &["probe", "--dataset", "imagenet"],
    ] {
        let out = resviz(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The direct conv kernel and the im2col + gemm fallback (`RESVIZ_DIRECT_CONV=0`) compute the same
/// losses, gradient norms and activation statistics to float32 rounding, and the switch really
/// changes the path (the two runs are not bit-identical). On a CPU without AVX-512 both runs take
/// the fallback and only the agreement is checked.
#[test]
fn direct_kernel_and_fallback_agree() {
    let args = [
        "probe",
        "--models",
        "plain-8,v1-8,v2-8,relubefore-8",
        "--dataset",
        "mnist",
        "--batch",
        "8",
        "--json",
    ];
    let run = |direct: bool| -> Vec<f64> {
        let mut cmd = common::command(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
        cmd.args(args);
        if !direct {
            cmd.env("RESVIZ_DIRECT_CONV", "0");
        }
        let out = cmd.output().expect("run resviz");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut nums = Vec::new();
        for m in v["models"].as_array().unwrap() {
            nums.push(m["loss"].as_f64().unwrap());
            for b in m["blocks"].as_array().unwrap() {
                for k in ["grad_norm", "act_mean", "act_std", "act_zero_frac"] {
                    nums.push(b[k].as_f64().unwrap());
                }
            }
        }
        nums
    };
    let (direct, fallback) = (run(true), run(false));
    assert_eq!(direct.len(), fallback.len());
    for (i, (a, b)) in direct.iter().zip(&fallback).enumerate() {
        let err = (a - b).abs() / a.abs().max(b.abs()).max(1e-3);
        assert!(err < 1e-4, "value {i}: direct {a} vs fallback {b}");
    }
    // Under RESVIZ_AVX512=0 (inherited by both runs) neither runs the direct kernels.
    let avx512 = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx512f"))
        && std::env::var_os("RESVIZ_AVX512").is_none_or(|v| v != "0");
    if avx512 {
        assert_ne!(
            direct, fallback,
            "RESVIZ_DIRECT_CONV=0 did not change the conv path"
        );
    }
}
