//! `resviz paper`: a paper's rows on the real binary, with few steps so the suite stays short
//! (the rows' logic is unit-tested in `src/cli/paper`; the figures in the README come from the
//! full commands).

use crate::common::{failure, json_of, resviz};
use serde_json::Value;

/// Every row carries the five fields, `paper` a number or null, `holds` a bool or null.
fn rows(report: &Value, paper: &str) -> Vec<Value> {
    assert_eq!(report["paper"], paper);
    assert!(report["claim"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(report["setting"].as_str().is_some_and(|c| !c.is_empty()));
    let rows = report["rows"].as_array().expect("rows").clone();
    for r in &rows {
        assert!(r["quantity"].is_string() && r["model"].is_string(), "{r}");
        assert!(r["paper"].is_number() || r["paper"].is_null(), "{r}");
        assert!(r["measured"].is_number() || r["measured"].is_null(), "{r}");
        assert!(r["holds"].is_boolean() || r["holds"].is_null(), "{r}");
    }
    rows
}

#[test]
fn he2015_fig1_counts_its_seeds_and_says_which_claims_hold() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("fig1.svg");
    let out = resviz(&[
        "paper",
        "he2015-fig1",
        "--steps",
        "25",
        "--seeds",
        "2",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let rows = rows(&json_of(&out), "he2015-fig1");
    let claims: Vec<&Value> = rows.iter().filter(|r| r["holds"].is_boolean()).collect();
    assert_eq!(claims.len(), 4, "{rows:?}");
    for c in &claims {
        let k = c["measured"].as_f64().unwrap();
        assert!((0.0..=2.0).contains(&k) && k.fract() == 0.0, "{c}");
        assert!(c["quantity"].as_str().unwrap().ends_with("of 2"), "{c}");
    }
    // 25 steps: neither plain net can start within a tenth of the run (the 20-step window needs
    // 20 steps), so the first claim must read as not holding.
    assert_eq!(claims[0]["holds"], false, "{}", claims[0]);
    for model in ["plain-8", "plain-32", "v1a-32"] {
        assert!(rows.iter().any(|r| r["model"] == model), "{model}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seed 2 of 2"), "{err}");
    // The figure: seed 1's curves and both seeds' final losses, every net in the legend.
    let t = texts(&std::fs::read_to_string(&plot).unwrap());
    for title in ["training loss, seed 1", "final training loss per seed"] {
        assert!(t.iter().any(|x| x.starts_with(title)), "{title}: {t:?}");
    }
    for model in ["plain-8", "plain-32", "v1a-32"] {
        assert!(t.iter().any(|x| x == model), "{model}: {t:?}");
    }
}

#[test]
fn he2016_table1_prints_the_papers_errors_beside_the_losses() {
    let out = resviz(&["paper", "he2016-table1", "--quick", "--steps", "8"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("he2016-table1: He et al. 2016, Table 1"),
        "{text}"
    );
    for (model, paper) in [
        ("v1-20", "6.61"),
        ("gated-20", "8.70"),
        ("sgated-20", "6.91"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with("final training loss") && l.contains(&format!(" {model} ")))
            .expect(model);
        assert!(line.contains(paper), "{line}");
    }
    // The last line counts the claims that hold, whatever they are.
    assert!(text.trim_end().ends_with("claims hold here."), "{text}");
    let json = json_of(&resviz(&[
        "paper",
        "he2016-table1",
        "--quick",
        "--steps",
        "8",
        "--json",
    ]));
    let rows = rows(&json, "he2016-table1");
    assert_eq!(rows.len(), 7);
    assert_eq!(
        rows[5]["paper"],
        Value::Null,
        "dropout shortcut: the paper says it fails"
    );
}

#[test]
fn bad_options_are_refused_before_any_training() {
    let started = std::time::Instant::now();
    for (args, says) in [
        (&["paper", "veit2016", "--seeds", "0"][..], "--seeds"),
        (&["paper", "he2015-fig1", "--steps", "0"][..], "--steps"),
        (
            &["paper", "veit2016", "--plot", "/dev/null/x.svg"][..],
            "--plot",
        ),
        (&["paper", "veit2016", "--pairs", "4"][..], "--pairs"),
        (&["paper", "balduzzi2017", "--pairs", "0"][..], "--pairs"),
        (&["paper", "balduzzi2017", "--steps", "10"][..], "--steps"),
        (&["paper", "balduzzi2017", "--grid", "5"][..], "--grid"),
        (&["paper", "li2018", "--grid", "2"][..], "grid"),
        (
            &["paper", "li2018", "--hessian-grid", "2"][..],
            "Hessian subgrid",
        ),
        (&["paper", "li2018", "--images", "0"][..], "--images"),
    ] {
        let line = failure(&resviz(args));
        assert!(line.contains(says), "{args:?}: {line}");
    }
    assert!(started.elapsed().as_secs() < 30, "something trained first");
    let out = resviz(&["paper", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("he2015-fig1") && err.contains("veit2016"),
        "{err}"
    );
}

/// The SVG's text elements.
fn texts(svg: &str) -> Vec<String> {
    svg.split("</text>")
        .filter_map(|t| t.rsplit('>').next())
        .map(|t| t.trim().to_string())
        .collect()
}

#[test]
fn balduzzi2017_measures_every_net_and_draws_its_decay_with_depth() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("shatter.svg");
    let out = resviz(&[
        "paper",
        "balduzzi2017",
        "--quick",
        "--seeds",
        "1",
        "--pairs",
        "1",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let rows = rows(&json_of(&out), "balduzzi2017");
    for model in [
        "plain-8",
        "plain-56",
        "v2-20",
        "v2-56:bn=off",
        "plain-20:bn=off",
    ] {
        let mean = rows
            .iter()
            .find(|r| r["model"] == model && r["quantity"].as_str().unwrap().starts_with("lag-1"))
            .unwrap_or_else(|| panic!("{model}: {rows:?}"));
        let v = mean["measured"].as_f64().expect("measured");
        assert!((-1.0..=1.0).contains(&v), "{mean}");
    }
    let claims: Vec<&Value> = rows.iter().filter(|r| r["holds"].is_boolean()).collect();
    // 3 depths × (with, without BN) plain-vs-v2, 2 plain fits + 1 ResNet fit, 3 BN/no-BN.
    assert_eq!(claims.len(), 12, "{claims:?}");
    assert!(rows.iter().all(|r| r["paper"].is_null()));
    let svg = std::fs::read_to_string(&plot).unwrap();
    let t = texts(&svg);
    for name in [
        "plain-L (measured)",
        "v2-L:bn=off (measured)",
        "with batch norm",
        "without batch norm (:bn=off)",
    ] {
        assert!(t.iter().any(|x| x.starts_with(name)), "{name}: {t:?}");
    }
    assert!(t.iter().any(|x| x.starts_with("v2-L: c/√L")), "{t:?}");
}

#[test]
fn li2018_reports_the_basin_and_the_hessian_per_net_and_draws_the_slices() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("landscape.svg");
    let out = resviz(&[
        "paper",
        "li2018",
        "--quick",
        "--steps",
        "3",
        "--grid",
        "3",
        "--hessian-grid",
        "1",
        "--images",
        "16",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let rows = rows(&json_of(&out), "li2018");
    for model in ["plain-56", "v1-56"] {
        for q in [
            "non-convex fraction of the basin",
            "Hessian |λmin/λmax|",
            "loss at θ",
        ] {
            assert!(
                rows.iter()
                    .any(|r| r["model"] == model && r["quantity"].as_str().unwrap().starts_with(q)),
                "{model} {q}: {rows:?}"
            );
        }
    }
    let claims: Vec<&Value> = rows.iter().filter(|r| r["holds"].is_boolean()).collect();
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert!(claims.iter().all(|c| c["model"] == "plain-56 vs v1-56"));
    let t = texts(&std::fs::read_to_string(&plot).unwrap());
    for name in ["li2018", "plain-56", "v1-56", "1-D slice along d₁ (β = 0)"] {
        assert!(t.iter().any(|x| x == name), "{name}: {t:?}");
    }
}
