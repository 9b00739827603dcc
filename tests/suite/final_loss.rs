//! One definition of "final loss" (issue 18): `train`'s summary and `compare` of the file it
//! wrote give the same figure for the same run, and both say what it is.

use crate::common::{json_of, resviz_in, succeeded};

#[test]
fn train_and_compare_report_the_same_final_loss() {
    let dir = tempfile::tempdir().unwrap();
    let exp = [
        "--models",
        "plain-8,v1-8",
        "--dataset",
        "synthetic",
        "--batch",
        "8",
    ];
    let train = ["train", "--steps", "37", "--json", "--out", "run.ron"];
    let v = json_of(&resviz_in(dir.path(), &[&train[..], &exp].concat()));
    let cmp = resviz_in(dir.path(), &["compare", "run.ron"]);
    succeeded(&cmp);
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
    let human = [
        "train",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--steps",
        "2",
    ];
    let human = resviz_in(dir.path(), &human);
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("last 10 % of steps"), "{text}");
}
