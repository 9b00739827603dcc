//! Issue 31 item 9: `--resume` refuses a snapshot whose experiment was edited in ways its own
//! files and history contradict — momentum or weight decay against the optimizer file's
//! metadata, the batch size against the sampler's position, the base rate, schedule or warm-up
//! against the learning rate the last step recorded, the config's `lr` against the base rate,
//! the seed against the runs' initial weights — and `lesion --from` refuses `batch: 0`. A
//! dashboard save (no weights, even after a change of learning rate) is refused with its reason.

use crate::common::{failure, resume_fails, resviz_in, succeeded, train_saved};
use crate::pty;
use std::fs;
use std::time::Duration;

#[test]
fn edited_settings_that_contradict_the_files_or_history_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let exp = ["--models", "v1-8", "--dataset", "synthetic"];
    train_saved(
        d.path(),
        "5",
        "a.ron",
        &[&exp[..], &["--batch", "8", "--width", "4"]].concat(),
    );
    let original = fs::read_to_string(d.path().join("a.ron")).unwrap();
    let cases = [
        ("momentum: 0.9,", "momentum: 0.5,", "momentum"),
        (
            "weight_decay: 0.0001,",
            "weight_decay: 0.01,",
            "weight_decay",
        ),
        ("batch: 8,", "batch: 16,", "batch size changed"),
        (
            "sampler_pos: 40,",
            "sampler_pos: 48,",
            "the sampler would be at epoch 0, image 40",
        ),
        ("base_lr: 0.05,", "base_lr: 0.2,", "learning rate"),
        (
            "schedule: Constant,",
            "schedule: Cosine(total: 6),",
            "learning rate",
        ),
        ("warmup_steps: 0,", "warmup_steps: 100,", "learning rate"),
        // The config's own rate (resuming trains at resume.base_lr, so this edit alone was
        // ignored), and the seed (the runs' initial weights were drawn from another).
        (
            "\n  lr: 0.05,\n",
            "\n  lr: 0.2,\n",
            "the config's lr is 0.2",
        ),
        ("seed: 0,", "seed: 7,", "seed changed"),
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
        let e = resume_fails(d.path(), "b.ron");
        assert!(
            e.contains("was the snapshot edited?") && e.contains(want),
            "{to}: {e}"
        );
        assert!(e.contains("start a new run with `resviz train`"), "{e}");
    }
    // Unedited, the same copy resumes.
    fs::write(d.path().join("b.ron"), original.replace("\"a.", "\"b.")).unwrap();
    let args = ["train", "--resume", "b.ron", "--steps", "1", "--json"];
    succeeded(&resviz_in(d.path(), &args));
    // lesion --from a snapshot whose batch is 0.
    fs::write(
        d.path().join("b.ron"),
        original
            .replace("batch: 8,", "batch: 0,")
            .replace("\"a.", "\"b."),
    )
    .unwrap();
    let args = ["lesion", "--from", "b.ron", "--test-images", "10"];
    let e = failure(&resviz_in(d.path(), &args));
    assert!(e.contains("--batch must be at least 1"), "{e}");
}

/// The dashboard changes the learning rate with `]`; its saves keep the histories only, so
/// `--resume` of one made after an lr change at the last step is refused, saying why and how to
/// save a run that resumes (and the save itself records the new rate nowhere it would be used).
#[test]
fn a_dashboard_save_after_an_lr_change_is_refused_with_its_reason() {
    let d = tempfile::tempdir().unwrap();
    let mut session = pty::dashboard(d.path(), "v1-8", &["--width", "4"]);
    let minute = Duration::from_secs(60);
    session.wait_for_runs(1);
    session.press(b" ");
    session.wait_for("‖ paused", minute);
    session.press(b"]");
    session.wait_for("learning rate →", minute);
    session.press(b"s");
    session.wait_for("saved saves/", minute);
    session.quit();
    // `s`'s save, and on a loaded machine possibly the quit's autosave too (a step already in
    // flight when space was pressed lands after `s`): every dashboard save is refused alike.
    let files = pty::saved_files(&d.path().join("saves"));
    assert!((1..=2).contains(&files.len()), "{files:?}");
    for f in &files {
        let e = resume_fails(d.path(), &format!("saves/{f}"));
        assert!(
            e.contains("no resume state")
                && e.contains("the dashboard's saves keep the history only")
                && e.contains("--save-weights"),
            "{f}: {e}"
        );
    }
}
