//! `resviz import`: a training stream recorded from PyTorch (python/examples/cifar_resnet.py,
//! torchvision resnet18, 6 steps of batch 8 on synthetic data) becomes a snapshot that `replay`
//! and `compare` read; bad streams give one line naming the stream's line, never a panic.

use crate::common::{self, resviz};
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/stream/resnet18.jsonl";

fn fixture() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_recorded_stream_imports_into_a_snapshot_compare_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r18.ron");
    let o = resviz(&["import", FIXTURE, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snap = resviz::snapshot::load(&out).unwrap();
    let run = &snap.runs[0];
    assert_eq!(run.info.spec, "resnet18");
    assert_eq!(run.info.block_names[..2], ["stem", "layer1.0"]);
    assert_eq!(run.info.block_names.len(), 9, "stem + 8 BasicBlocks");
    let text = fixture();
    let steps = text
        .lines()
        .filter(|l| l.contains(r#""kind": "step""#))
        .count();
    assert_eq!(run.steps.len(), steps);
    let last = run.last().unwrap();
    assert_eq!(last.param_grad_norms.len(), run.info.param_names.len());
    assert_eq!(last.update_ratios.len(), run.info.param_names.len());
    // Every block but the stem carries the eq. 5 split, whose parts add up to at least the
    // input's gradient (triangle inequality on the previous boundary).
    assert!(last.blocks[0].split.is_none());
    for (prev, b) in last.blocks.iter().zip(&last.blocks[1..]) {
        let s = b.split.expect("split");
        assert!(s.shortcut > 0.0 && s.branch > 0.0, "{s:?}");
        assert!(
            s.shortcut + s.branch >= prev.grad_norm * 0.999,
            "{s:?} {prev:?}"
        );
    }
    let o = resviz(&["compare", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("resnet18") && table.contains("finished"),
        "{table}"
    );
}

#[test]
fn bad_streams_give_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture();
    let lines: Vec<&str> = text.lines().collect();
    let case = |name: &str, body: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = dir.path().join(format!("{name}.ron"));
        let o = resviz(&[
            "import",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!out.exists(), "{name}: nothing is written");
        common::failure(&o)
    };
    // A writer killed mid-line.
    let cut = &text[..text.len() - lines[lines.len() - 1].len() / 2];
    let line = case("cut.jsonl", cut.to_string());
    assert!(
        line.contains(&format!("line {}: the line stops partway", lines.len())),
        "{line}"
    );
    let newer = text.replacen(r#""version": 1"#, r#""version": 2"#, 1);
    let line = case("newer.jsonl", newer);
    assert!(
        line.contains("line 1: stream format version 2 is newer"),
        "{line}"
    );
    let unknown = text.replacen(r#""kind": "step""#, r#""kind": "eval""#, 1);
    let line = case("kind.jsonl", unknown);
    assert!(line.contains("line 2: unknown kind \"eval\""), "{line}");
    let field = text.replacen(r#""loss""#, r#""los""#, 1);
    let line = case("field.jsonl", field);
    assert!(
        line.contains("line 2: not a resviz stream line: unknown field `los`"),
        "{line}"
    );
    // One block fewer in step 1 than the header names.
    let fewer = text.replacen(r#"{"name": "stem", "#, r#"{"xname": "stem", "#, 1);
    let line = case("fewer.jsonl", fewer);
    assert!(line.contains("line 2:"), "{line}");
    let line = case("empty.jsonl", String::new());
    assert!(line.contains("the stream is empty"), "{line}");
    let o = resviz(&["import", "no/such.jsonl", "--out", "x.ron"]);
    assert!(common::failure(&o).contains("cannot read no/such.jsonl"));
}
