//! Issue 31 item 9: `--resume` refuses a snapshot whose experiment was edited in ways its own
//! files and history contradict — momentum or weight decay against the optimizer file's
//! metadata, the batch size against the sampler's position, the base rate, schedule or warm-up
//! against the learning rate the last step recorded — and `lesion --from` refuses `batch: 0`.

use crate::common::failure;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn resviz(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resviz"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn edited_settings_that_contradict_the_files_or_history_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let train = [
        "train",
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--batch",
        "8",
        "--width",
        "4",
        "--steps",
        "5",
        "--out",
        "a.ron",
        "--save-weights",
        "--json",
    ];
    let o = resviz(d.path(), &train);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let original = fs::read_to_string(d.path().join("a.ron")).unwrap();
    let cases = [
        ("momentum: 0.9,", "momentum: 0.5,", "momentum"),
        (
            "weight_decay: 0.0001,",
            "weight_decay: 0.01,",
            "weight_decay",
        ),
        ("batch: 8,", "batch: 16,", "batch size changed"),
        ("base_lr: 0.05,", "base_lr: 0.2,", "learning rate"),
        (
            "schedule: Constant,",
            "schedule: Cosine(total: 6),",
            "learning rate",
        ),
        ("warmup_steps: 0,", "warmup_steps: 100,", "learning rate"),
    ];
    for (from, to, want) in cases {
        assert_eq!(original.matches(from).count(), 1, "{from}");
        for name in fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
        {
            let name = name.into_string().unwrap();
            if let Some(rest) = name.strip_prefix("a.")
                && name.ends_with(".safetensors")
            {
                fs::copy(d.path().join(&name), d.path().join(format!("b.{rest}"))).unwrap();
            }
        }
        let b = original.replacen(from, to, 1).replace("\"a.", "\"b.");
        fs::write(d.path().join("b.ron"), b).unwrap();
        let e = failure(&resviz(
            d.path(),
            &["train", "--resume", "b.ron", "--steps", "1"],
        ));
        assert!(
            e.contains("was the snapshot edited?") && e.contains(want),
            "{to}: {e}"
        );
    }
    // Unedited, the same copy resumes.
    fs::write(d.path().join("b.ron"), original.replace("\"a.", "\"b.")).unwrap();
    let o = resviz(
        d.path(),
        &["train", "--resume", "b.ron", "--steps", "1", "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // lesion --from a snapshot whose batch is 0.
    fs::write(
        d.path().join("b.ron"),
        original
            .replace("batch: 8,", "batch: 0,")
            .replace("\"a.", "\"b."),
    )
    .unwrap();
    let e = failure(&resviz(
        d.path(),
        &["lesion", "--from", "b.ron", "--test-images", "10"],
    ));
    assert!(e.contains("--batch must be at least 1"), "{e}");
}
