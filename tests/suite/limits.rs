//! Limits on input (issue 19, P1–P3): absurd widths, configs with a huge number of models, and
//! an MNIST header whose sizes overflow are refused with one line before anything large is
//! allocated; nothing panics.

use crate::common;
use common::failure;

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Run resviz; one that is still running after a minute (allocating its way to the kernel's
/// out-of-memory killer) is killed and fails the test.
pub(crate) fn resviz(dir: &Path, args: &[&str]) -> Output {
    let mut child = common::command(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run resviz");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// P1, P2: `--width` that overflows a size, or needs tens of GB, for every command that builds
/// networks; refused within seconds.
#[test]
fn a_huge_width_is_refused_before_allocating() {
    let d = tempfile::tempdir().unwrap();
    let exp = ["--models", "v1-8,plain-8", "--dataset", "synthetic"];
    for width in ["4611686018427387904", "100000", "2000"] {
        for cmd in [
            &["train", "--steps", "1"][..],
            &["probe"][..],
            &["bench", "--steps", "1"][..],
        ] {
            let start = Instant::now();
            let o = resviz(d.path(), &[cmd, &exp[..], &["--width", width]].concat());
            let e = failure(&o);
            assert!(
                e.contains("the experiment would need about"),
                "{cmd:?} {width}: {e}"
            );
            assert!(start.elapsed() < Duration::from_secs(30), "{cmd:?} {width}");
        }
    }
}

/// P2: a config listing a few hundred thousand models.
#[test]
fn a_config_with_a_huge_number_of_models_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let models = vec!["\"v1-8\""; 300_000].join(",");
    fs::write(
        d.path().join("many.ron"),
        format!("(models: [{models}], dataset: \"synthetic\")"),
    )
    .unwrap();
    let e = failure(&resviz(
        d.path(),
        &["train", "--steps", "1", "--config", "many.ron"],
    ));
    assert!(e.contains("300000 model(s)"), "{e}");
}

fn idx_images(n: u32, rows: u32, cols: u32, body: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.resize(16 + body, 7);
    b
}

fn idx_labels(n: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend(n.to_be_bytes());
    b.resize(8 + n as usize, 1);
    b
}

/// P3: an IDX header claiming 16 images of 2³⁰×2³⁰ pixels (the product wraps to 0 in 64 bits).
#[test]
fn an_idx_header_whose_size_overflows_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("mnist");
    fs::create_dir(&dir).unwrap();
    for split in ["train", "t10k"] {
        let images = idx_images(16, 1 << 30, 1 << 30, 16 * 28 * 28);
        fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
        fs::write(
            dir.join(format!("{split}-labels-idx1-ubyte")),
            idx_labels(16),
        )
        .unwrap();
    }
    let args = [
        "train",
        "--steps",
        "1",
        "--models",
        "v1-8",
        "--dataset",
        "mnist:mnist",
        "--batch",
        "4",
    ];
    let e = failure(&resviz(d.path(), &args));
    assert!(
        e.contains("its header claims 16 images of 1073741824×1073741824 pixels"),
        "{e}"
    );
}
