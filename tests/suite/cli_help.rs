//! `--help` of every subcommand: each option is described and shows its default, and a run
//! without options uses the default experiment its help names (issue 18).

use crate::common::resviz;

fn help(sub: &[&str]) -> String {
    let mut args = sub.to_vec();
    args.push("--help");
    let out = resviz(&args);
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The help line of `flag` (clap puts the description on the flag's line).
fn line<'a>(text: &'a str, flag: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(flag))
        .unwrap_or_else(|| panic!("no {flag} in\n{text}"))
}

const EXPERIMENT: [(&str, &str); 7] = [
    ("--models", "[default: plain-56,v1-56,v2-56]"),
    ("--dataset", "[default: mnist]"),
    ("--batch", "[default: 32]"),
    ("--lr", "[default: 0.05]"),
    ("--optimizer", "[default: sgd]"),
    ("--seed", "[default: 0]"),
    ("--width", "[default: 16]"),
];

#[test]
fn every_experiment_subcommand_shows_the_same_defaults() {
    for sub in ["tui", "train", "probe", "bench", "lesion"] {
        let text = help(&[sub]);
        for (flag, default) in EXPERIMENT {
            assert!(line(&text, flag).contains(default), "{sub} {flag}:\n{text}");
        }
        assert!(
            text.contains(
                "one default experiment: plain-56, v1-56, v2-56 on mnist, batch 32, lr 0.05"
            ),
            "{sub}:\n{text}"
        );
    }
    let train = help(&["train"]);
    assert!(
        line(&train, "--steps").contains("[default: 500]"),
        "{train}"
    );
    assert!(
        line(&train, "--eval-every").contains("[default: 500"),
        "{train}"
    );
    assert!(line(&help(&["bench"]), "--steps").contains("[default: 40; with --kernels: 10]"));
}

#[test]
fn no_option_or_argument_is_left_undescribed() {
    for sub in [
        &["tui"][..],
        &["train"],
        &["probe"],
        &["bench"],
        &["lesion"],
        &["replay"],
        &["compare"],
        &["data", "fetch"],
    ] {
        let text = help(sub);
        for l in text.lines() {
            let t = l.trim_start();
            if l.starts_with("  ") && (t.starts_with('-') || t.starts_with('<')) {
                // "  --flag <V>   description": something must follow the flag column.
                let described = t.split("  ").filter(|p| !p.trim().is_empty()).count() > 1;
                assert!(described, "{sub:?}: undescribed `{t}`");
            }
        }
    }
    assert!(line(&help(&["replay"]), "<FILE.ron>").contains("snapshot"));
    assert!(line(&help(&["compare"]), "--plot").contains("SVG"));
    assert!(line(&help(&["bench"]), "--json").contains("JSON"));
}

#[test]
fn a_run_without_options_uses_the_default_experiment() {
    // probe: the default models, one pass each.
    let out = resviz(&["probe", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let models: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["plain-56", "v1-56", "v2-56"]);
    // train: the rest of the experiment, as stored in the snapshot (one small model for speed).
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.ron");
    let out = resviz(&[
        "train",
        "--models",
        "v1-8",
        "--steps",
        "1",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = std::fs::read_to_string(&out_file).unwrap();
    for field in [
        "dataset: \"mnist\"",
        "batch: 32",
        "lr: 0.05",
        "seed: 0",
        "width: 16",
        "eval_every: 500",
    ] {
        assert!(snap.contains(field), "{field} not in the snapshot's config");
    }
}

/// Issue 30: numbers take `<N>` everywhere (no `<STEPS>`, `<POINTS>`…), and the experiments'
/// `--steps` shows its default.
#[test]
fn number_placeholders_are_n_and_experiment_steps_show_a_default() {
    for sub in ["train", "lesion", "shatter", "landscape", "bench", "probe"] {
        let text = help(&[sub]);
        for l in text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("--"))
        {
            let flag_col = l.split("  ").next().unwrap_or_default();
            for named in ["<STEPS>", "<POINTS>", "<GRID>", "<LAGS>", "<IMAGES>", "_"] {
                assert!(!flag_col.contains(named), "{sub}: `{flag_col}`");
            }
        }
    }
    for sub in ["shatter", "landscape"] {
        let text = help(&[sub]);
        assert!(
            line(&text, "--steps <N>").contains("[default: 0]"),
            "{sub}:\n{text}"
        );
    }
}
