//! Issue 31 item 8: counts that no machine holds are refused with one line before anything is
//! allocated for them (they panicked with "capacity overflow" or aborted allocating), `--epochs`
//! that wraps a step counter is refused, a full standard output is an error and not a panic, and
//! a gzip IDX file cannot inflate past the size its header declares.

use crate::common::failure;
use crate::limits::resviz;
use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const EXP: [&str; 4] = ["--models", "plain-8", "--dataset", "synthetic"];

#[test]
fn counts_beyond_memory_are_refused_with_one_line() {
    let d = tempfile::tempdir().unwrap();
    let max = u64::MAX.to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["shatter", "--steps", "0", "--points", &max], "--points"),
        (
            &["shatter", "--steps", "0", "--points", "1000000000"],
            "--points",
        ),
        (&["landscape", "--steps", "0", "--grid", &max], "--grid"),
        (
            &["landscape", "--steps", "0", "--grid", "1000000"],
            "--grid",
        ),
        (
            &["landscape", "--steps", "0", "--slice-points", &max],
            "--slice-points",
        ),
        (&["bench", "--steps", &max], "--steps"),
        (&["bench", "--kernels", "--steps", &max], "--steps"),
    ];
    for (args, option) in cases {
        let start = Instant::now();
        let e = failure(&resviz(d.path(), &[args, &EXP[..]].concat()));
        assert!(
            e.contains(option) && e.contains("would need about"),
            "{args:?}: {e}"
        );
        assert!(start.elapsed() < Duration::from_secs(20), "{args:?}");
    }
}

#[test]
fn bn_batches_that_wrap_and_plateau_windows_past_the_cap_are_refused() {
    let d = tempfile::tempdir().unwrap();
    // 2⁶² × 4 images wrapped to 0: no batch-norm re-estimation at all, without a word.
    let wrap = (1u64 << 62).to_string();
    for cmd in ["shatter", "landscape"] {
        let args = [cmd, "--steps", "0", "--batch", "4", "--bn-batches", &wrap];
        let e = failure(&resviz(d.path(), &[&args[..], &EXP[..]].concat()));
        assert!(
            e.contains("--bn-batches 4611686018427387904 × batch 4")
                && e.contains("more images than a count holds"),
            "{cmd}: {e}"
        );
    }
    let args = [
        "lesion",
        "--steps",
        "1",
        "--batch",
        "4",
        "--bn-batches",
        &wrap,
    ];
    let e = failure(&resviz(d.path(), &[&args[..], &EXP[..]].concat()));
    assert!(e.contains("more images than a count holds"), "{e}");
    // Two windows of 300 steps never fit under a cap of 500: it would train to the cap.
    let max = u64::MAX.to_string();
    let cases: [(&[&str], &str); 2] = [
        (&["--plateau-window", "300", "--steps", "500"], "cap of 500"),
        (&["--plateau-window", &max], "cap of 4000"),
    ];
    for (args, want) in cases {
        let args = [&["train", "--until-plateau"][..], args, &EXP[..]].concat();
        let e = failure(&resviz(d.path(), &args));
        assert!(e.contains("--plateau-window") && e.contains(want), "{e}");
    }
}

#[test]
fn epochs_that_overflow_the_step_counter_are_refused() {
    let d = tempfile::tempdir().unwrap();
    // 5947230289363959441 × 250 steps per epoch wrapped to 2 steps before.
    let e = failure(&resviz(
        d.path(),
        &[&["train", "--epochs", "5947230289363959441"], &EXP[..]].concat(),
    ));
    assert!(e.contains("more steps than a step counter holds"), "{e}");
}

/// Run resviz with standard output on /dev/full.
fn to_full(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    crate::common::command(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_full_standard_output_is_an_error_not_a_panic() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lesion = [
        "lesion",
        "--steps",
        "1",
        "--test-images",
        "20",
        "--bn-batches",
        "1",
    ];
    let o = to_full(d.path(), &[&lesion[..], &EXP[..]].concat(), &[]);
    assert!(failure(&o).contains("cannot write to standard output"));
    let o = to_full(
        d.path(),
        &[&["bench", "--steps", "1", "--json"][..], &EXP[..]].concat(),
        &[],
    );
    assert!(failure(&o).contains("cannot write to standard output"));
    // A completed fetch in the cache: `data fetch` only prints where it is.
    let cache = d.path().join("cache");
    fs::create_dir_all(cache.join("cifar10")).unwrap();
    fs::write(cache.join("cifar10/.complete"), "").unwrap();
    let env = [("RESVIZ_CACHE_DIR", cache.to_str().unwrap())];
    let o = to_full(d.path(), &["data", "fetch", "cifar10"], &env);
    assert!(failure(&o).contains("cannot write to standard output"));
}

fn gz(parts: &[&[u8]], zeros: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for p in parts {
        enc.write_all(p).unwrap();
    }
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

/// A small gzip IDX file that inflates to 256 MB: with a valid header for 16 images of 28×28
/// it is refused at the declared 12,560 bytes; all zeros, at its 16-byte header.
#[test]
fn a_gzip_idx_file_inflates_no_further_than_its_header_declares() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("mnist");
    fs::create_dir(&dir).unwrap();
    let mut header = vec![0, 0, 8, 3];
    for v in [16u32, 28, 28] {
        header.extend(v.to_be_bytes());
    }
    let labels = [&[0, 0, 8, 1, 0, 0, 0, 16][..], &[1; 16][..]].concat();
    let args = [
        "train",
        "--steps",
        "1",
        "--models",
        "v1-8",
        "--dataset",
        "mnist:mnist",
    ];
    for (images, want) in [
        (
            gz(&[&header, &[7; 16 * 28 * 28]], 256 << 20),
            "more than the 12560 bytes",
        ),
        (gz(&[], 256 << 20), "wrong IDX magic 0x00000000"),
    ] {
        assert!(images.len() < 2 << 20, "{}", images.len());
        for split in ["train", "t10k"] {
            fs::write(dir.join(format!("{split}-images-idx3-ubyte.gz")), &images).unwrap();
            fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
        }
        let e = failure(&resviz(d.path(), &args));
        assert!(e.contains(want), "{e}");
    }
}

/// The same for CIFAR-10: a gzip batch file that inflates to 256 MB is refused at the
/// 30,730,000 bytes of a batch (10,000 records of 3,073 bytes).
#[test]
fn a_gzip_cifar_batch_inflates_no_further_than_a_batch() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("cifar");
    fs::create_dir(&dir).unwrap();
    let bomb = gz(&[], 256 << 20);
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    for i in 1..=5 {
        fs::write(dir.join(format!("data_batch_{i}.bin")), &bomb).unwrap();
    }
    fs::write(dir.join("test_batch.bin"), &bomb).unwrap();
    let args = ["train", "--steps", "1", "--models", "v1-8"];
    let e = failure(&resviz(
        d.path(),
        &[&args[..], &["--dataset", "cifar10:cifar"]].concat(),
    ));
    assert!(
        e.contains("decompresses to more than the 30730000 bytes"),
        "{e}"
    );
}

/// Issue 31 item 10: an error never echoes a huge input whole (a 5 MB model name in a config, a
/// 100,000-letter --dataset): the line is cut and says how long the input was.
#[test]
fn errors_cut_a_huge_quoted_input() {
    let d = tempfile::tempdir().unwrap();
    let name = "a".repeat(5_000_000);
    fs::write(d.path().join("big.ron"), format!("(models: [\"{name}\"])")).unwrap();
    let e = failure(&resviz(
        d.path(),
        &["train", "--steps", "1", "--config", "big.ron"],
    ));
    assert!(e.len() < 2100 && e.contains("bytes)"), "{} chars", e.len());
    let long = "x".repeat(100_000);
    let e = failure(&resviz(
        d.path(),
        &["train", "--steps", "1", "--dataset", &long],
    ));
    assert!(
        e.contains("unknown dataset") && e.contains("(100000 bytes)"),
        "{e}"
    );
    assert!(e.len() < 400, "{e}");
}
