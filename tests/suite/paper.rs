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
    let out = resviz(&[
        "paper",
        "he2015-fig1",
        "--steps",
        "25",
        "--seeds",
        "2",
        "--json",
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
        (&["paper", "veit2016", "--plot", "x.svg"][..], "--plot"),
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
