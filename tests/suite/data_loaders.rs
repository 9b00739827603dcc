//! Loader integration tests on fixture files written here in the real formats (raw and gzipped IDX,
//! CIFAR-10 binary batches), plus the bundled MNIST subset and the synthetic dataset.

use flate2::{Compression, write::GzEncoder};
use resviz::data::{Dataset, Sampler, load, test_batches};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const IDX3: u32 = 0x0803;
const IDX1: u32 = 0x0801;

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = [IDX3, n, rows, cols]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = [IDX1, labels.len() as u32]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    v.extend_from_slice(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn pattern(n: usize, salt: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + salt * 31) % 256) as u8).collect()
}

/// MNIST-format fixture: 5 train and 3 test images of 3×4; `zip` gzips every file (`.gz` names).
struct Mnist {
    dir: tempfile::TempDir,
    train: Vec<u8>,
    test: Vec<u8>,
}

const TRAIN_LABELS: [u8; 5] = [0, 9, 4, 4, 1];
const TEST_LABELS: [u8; 3] = [7, 0, 2];

fn mnist_fixture(zip: bool) -> Mnist {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (pattern(5 * 12, 1), pattern(3 * 12, 2));
    let files = [
        ("train-images-idx3-ubyte", idx_images(5, 3, 4, &train)),
        ("train-labels-idx1-ubyte", idx_labels(&TRAIN_LABELS)),
        ("t10k-images-idx3-ubyte", idx_images(3, 3, 4, &test)),
        ("t10k-labels-idx1-ubyte", idx_labels(&TEST_LABELS)),
    ];
    for (name, bytes) in files {
        let (name, bytes) = if zip {
            (format!("{name}.gz"), gz(&bytes))
        } else {
            (name.into(), bytes)
        };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    Mnist { dir, train, test }
}

fn spec(kind: &str, dir: &Path) -> String {
    format!("{kind}:{}", dir.display())
}

fn check_mnist(ds: &Dataset, m: &Mnist) {
    assert_eq!(
        (ds.name.as_str(), ds.channels, ds.height, ds.width),
        ("mnist", 1, 3, 4)
    );
    assert_eq!((ds.classes, ds.augment), (10, false));
    assert_eq!(ds.train.pixels(), &m.train[..]);
    assert_eq!(ds.test.pixels(), &m.test[..]);
    assert_eq!(ds.train.labels(), &TRAIN_LABELS);
    assert_eq!(ds.test.labels(), &TEST_LABELS);
    let mean = m.train.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / m.train.len() as f64;
    assert!((ds.mean[0] as f64 - mean).abs() < 1e-6);
}

#[test]
fn mnist_raw_and_gzipped_round_trip() {
    for zip in [false, true] {
        let m = mnist_fixture(zip);
        check_mnist(&load(&spec("mnist", m.dir.path()), 0).unwrap(), &m);
    }
}

#[test]
fn gzip_is_detected_by_magic_not_name() {
    let m = mnist_fixture(false);
    let p = m.dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&p, gz(&std::fs::read(&p).unwrap())).unwrap();
    check_mnist(&load(&spec("mnist", m.dir.path()), 0).unwrap(), &m);
}

/// Load `dir` as `kind`, expect an error, and check it is one line naming `file` and `problem`.
fn expect_err(kind: &str, dir: &Path, file: &str, problem: &str) {
    let msg = load(&spec(kind, dir), 0).unwrap_err().to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains(file), "names {file}: {msg}");
    assert!(msg.contains(problem), "says {problem}: {msg}");
}

#[test]
fn mnist_errors_name_the_file() {
    let m = mnist_fixture(false);
    let d = m.dir.path();
    expect_err("mnist", &d.join("nope"), "nope", "directory not found");

    let write = |name: &str, bytes: Vec<u8>| std::fs::write(d.join(name), bytes).unwrap();
    write("train-images-idx3-ubyte", idx_labels(&[1, 2]));
    expect_err(
        "mnist",
        d,
        "train-images-idx3-ubyte",
        "wrong IDX magic 0x00000801",
    );
    write("train-images-idx3-ubyte", idx_images(6, 3, 4, &m.train));
    expect_err("mnist", d, "train-images-idx3-ubyte", "truncated");
    write(
        "train-images-idx3-ubyte",
        idx_images(5, 3, 4, &m.train[..30]),
    );
    expect_err(
        "mnist",
        d,
        "train-images-idx3-ubyte",
        "needs 76 bytes, file has 46",
    );
    write(
        "train-images-idx3-ubyte",
        idx_images(4, 3, 4, &m.train[..48]),
    );
    expect_err("mnist", d, "train-images-idx3-ubyte", "4 images but");
    expect_err("mnist", d, "train-labels-idx1-ubyte", "has 5 labels");
    write("train-images-idx3-ubyte", idx_images(5, 3, 4, &m.train));
    write("t10k-labels-idx1-ubyte", idx_labels(&[1, 10, 2]));
    expect_err(
        "mnist",
        d,
        "t10k-labels-idx1-ubyte",
        "label 10 at item 1 is out of range",
    );
    write(
        "t10k-labels-idx1-ubyte",
        vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    expect_err("mnist", d, "t10k-labels-idx1-ubyte", "corrupt gzip");
    let mut truncated_gz = gz(&idx_labels(&TEST_LABELS));
    truncated_gz.truncate(truncated_gz.len() - 6);
    write("t10k-labels-idx1-ubyte", truncated_gz);
    expect_err("mnist", d, "t10k-labels-idx1-ubyte", "corrupt gzip");
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap();
    expect_err("mnist", d, "t10k-labels-idx1-ubyte", "file not found");
    expect_err("mnist", d, "t10k-labels-idx1-ubyte.gz", "also tried");
}

const CIFAR_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// CIFAR fixture: file k holds k+1 records; record j of file k has label (k + j) % 10.
fn cifar_fixture(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = vec![];
    for (k, name) in CIFAR_FILES.iter().enumerate() {
        let labels: Vec<u8> = (0..=k).map(|j| ((k + j) % 10) as u8).collect();
        let pixels = pattern((k + 1) * 3072, k);
        let mut bytes = vec![];
        for (j, &l) in labels.iter().enumerate() {
            bytes.push(l);
            bytes.extend_from_slice(&pixels[j * 3072..][..3072]);
        }
        std::fs::write(dir.join(name), bytes).unwrap();
        out.push((labels, pixels));
    }
    out
}

#[test]
fn cifar_round_trip_including_nested_archive_dir() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, files_in) in [("flat", "flat"), ("outer", "outer/cifar-10-batches-bin")] {
        let dir = tmp.path().join(dir);
        let files = cifar_fixture(&tmp.path().join(files_in));
        let ds = load(&spec("cifar10", &dir), 0).unwrap();
        assert_eq!(
            (
                ds.name.as_str(),
                ds.channels,
                ds.height,
                ds.width,
                ds.augment
            ),
            ("cifar10", 3, 32, 32, true)
        );
        let (train_labels, train_pixels): (Vec<u8>, Vec<u8>) =
            files[..5]
                .iter()
                .fold((vec![], vec![]), |(mut l, mut p), (fl, fp)| {
                    l.extend(fl);
                    p.extend(fp);
                    (l, p)
                });
        assert_eq!((ds.train.len(), ds.test.len()), (15, 6));
        assert_eq!(ds.train.labels(), &train_labels[..]);
        assert_eq!(ds.train.pixels(), &train_pixels[..]);
        assert_eq!(
            (ds.test.labels(), ds.test.pixels()),
            (&files[5].0[..], &files[5].1[..])
        );
        assert_eq!((ds.mean.len(), ds.std.len()), (3, 3));
    }
}

#[test]
fn cifar_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    expect_err(
        "cifar10",
        &d.join("missing"),
        "missing",
        "directory not found",
    );
    cifar_fixture(d);
    let p = d.join("data_batch_3.bin");
    let good = std::fs::read(&p).unwrap();
    std::fs::write(&p, &good[..good.len() - 1]).unwrap();
    expect_err(
        "cifar10",
        d,
        "data_batch_3.bin",
        "length 9218 is not a multiple of the 3073-byte",
    );
    let mut bad = good.clone();
    bad[3073] = 10;
    std::fs::write(&p, bad).unwrap();
    expect_err(
        "cifar10",
        d,
        "data_batch_3.bin",
        "label 10 at item 1 is out of range",
    );
    std::fs::write(&p, good).unwrap();
    std::fs::remove_file(d.join("test_batch.bin")).unwrap();
    expect_err("cifar10", d, "test_batch.bin", "file not found");
}

#[test]
fn bundled_mnist_subset() {
    let ds = load("mnist", 42).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 10_000);
    assert_eq!((ds.train.len(), ds.image_len()), (8_000, 784));
    let mut seen = [0usize; 10];
    for s in [&ds.train, &ds.test] {
        s.labels().iter().for_each(|&l| seen[l as usize] += 1);
    }
    assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    let all: Vec<u8> = [ds.train.pixels(), ds.test.pixels()].concat();
    let mean = all.iter().map(|&p| p as f64).sum::<f64>() / all.len() as f64 / 255.0;
    assert!((mean - 0.1307).abs() < 0.01, "mean {mean}");
    assert!(
        (ds.mean[0] - 0.1307).abs() < 0.01 && (ds.std[0] - 0.3081).abs() < 0.02,
        "{:?} {:?}",
        ds.mean,
        ds.std
    );
}

#[test]
fn synthetic_is_fixed_balanced_and_samplable_from_another_thread() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let a = load("synthetic", 1).unwrap();
    let b = load("synthetic", 2).unwrap();
    send_sync(&a);
    assert_eq!(
        a.train.pixels(),
        b.train.pixels(),
        "data independent of the training seed"
    );
    assert_eq!(a.test.pixels(), b.test.pixels());
    assert_eq!(
        (a.channels, a.height, a.width, a.classes, a.augment),
        (3, 32, 32, 10, false)
    );
    for split in [&a.train, &a.test] {
        let mut count = [0usize; 10];
        split.labels().iter().for_each(|&l| count[l as usize] += 1);
        let (lo, hi) = (count.iter().min().unwrap(), count.iter().max().unwrap());
        assert!(
            *lo * 10 >= split.len() * 9 / 10 && *hi * 10 <= split.len() * 11 / 10,
            "{count:?}"
        );
    }
    let ds = std::sync::Arc::new(a);
    let worker = std::thread::spawn({
        let ds = ds.clone();
        move || {
            let mut s = Sampler::new(ds.train.len(), 9);
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                s.next_batch(&ds, 128, true, &mut x, &mut y);
            }
            (x.len(), y.len(), s.position())
        }
    });
    assert_eq!(worker.join().unwrap(), (128 * 3072, 128, (0, 384)));
    let batches: Vec<_> = test_batches(&ds, 300).collect();
    assert_eq!((batches.len(), batches[6].clone()), (7, 1800..2000));
}

/// `cargo test --release --test suite data_loaders:: -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn full_size_mnist_loads_under_a_second() {
    let fastest = (0..3)
        .map(|_| {
            let t = Instant::now();
            load("synthetic", 0).unwrap();
            t.elapsed()
        })
        .min()
        .unwrap();
    println!("synthetic generation (best of 3): {fastest:?}");
    assert!(fastest.as_secs_f64() < 0.5, "{fastest:?}");

    // 60,000 + 10,000 real digits: the bundled subset repeated, so gzip ratios are realistic.
    let sub = load("mnist", 0).unwrap();
    let digits = [sub.train.pixels(), sub.test.pixels()].concat();
    let labels = [sub.train.labels(), sub.test.labels()].concat();
    let tmp = tempfile::tempdir().unwrap();
    for zip in [false, true] {
        let dir = tmp.path().join(if zip { "gz" } else { "raw" });
        std::fs::create_dir(&dir).unwrap();
        for (prefix, n) in [("train", 60_000), ("t10k", 10_000)] {
            let px: Vec<u8> = digits.iter().cycle().take(n * 784).copied().collect();
            let lb: Vec<u8> = labels.iter().cycle().take(n).copied().collect();
            for (name, bytes) in [
                ("images-idx3", idx_images(n as u32, 28, 28, &px)),
                ("labels-idx1", idx_labels(&lb)),
            ] {
                let (name, bytes) = match zip {
                    true => (format!("{prefix}-{name}-ubyte.gz"), gz(&bytes)),
                    false => (format!("{prefix}-{name}-ubyte"), bytes),
                };
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let t = Instant::now();
        let ds = load(&spec("mnist", &dir), 0).unwrap();
        let took = t.elapsed();
        println!(
            "mnist 60k+10k ({}): {took:?}, {} raw bytes",
            if zip { "gzipped" } else { "raw" },
            ds.raw_bytes()
        );
        assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));
        assert!(took.as_secs_f64() < 1.0, "{took:?}");
    }
}
