//! One definition of "final loss" (issue 18): `train`'s summary and `compare` of the file it
//! wrote give the same figure for the same run, and both say what it is.

use std::process::Command;

#[test]
fn train_and_compare_report_the_same_final_loss() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.ron");
    let bin = env!("CARGO_BIN_EXE_resviz");
    let train = Command::new(bin)
        .args([
            "train",
            "--models",
            "plain-8,v1-8",
            "--dataset",
            "synthetic",
        ])
        .args(["--batch", "8", "--steps", "37", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&train.stdout).unwrap();
    let cmp = Command::new(bin).arg("compare").arg(&out).output().unwrap();
    assert!(cmp.status.success());
    let table = String::from_utf8(cmp.stdout).unwrap();
    assert!(table.contains("mean over the last 10% of steps"), "{table}");
    for m in v["models"].as_array().unwrap() {
        let model = m["model"].as_str().unwrap();
        let loss = format!("{:.4}", m["final_train_loss"].as_f64().unwrap());
        let row = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(model))
            .unwrap_or_else(|| panic!("no row for {model}:\n{table}"));
        assert!(
            row.split_whitespace().any(|c| c == loss),
            "{model}: train said {loss}, compare says\n{row}"
        );
    }
    // The human summary says the same.
    let human = Command::new(bin)
        .args([
            "train",
            "--models",
            "v1-8",
            "--dataset",
            "synthetic",
            "--steps",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("last 10 % of steps"), "{text}");
}
