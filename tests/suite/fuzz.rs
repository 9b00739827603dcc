//! A seeded mutation fuzzer for the three parsers of outside input (issue 19): snapshot RON,
//! config RON, and the MNIST IDX / CIFAR-10 binary loaders. Each case must end in `Ok` or an
//! error, never a panic or a hang; what loads is then used (a snapshot compared and plotted, a
//! config's models parsed and its memory estimated, a dataset's first batch drawn).
//!
//! `tests/fixtures/fuzz/` keeps the inputs that once failed (each parser's regression corpus,
//! by file extension: `.ron` snapshots, `.cfg.ron` configs, `.idx` MNIST image files); they run
//! first. A failing case is written to the temporary directory printed in the panic message, to
//! be added there.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resviz::config::ExperimentConfig;
use resviz::snapshot::{self, synthetic};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Cases per parser.
const CASES: usize = 500;
/// A case that takes longer than this counts as a hang.
const HANG: Duration = Duration::from_secs(20);

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e999",
    "-1e999",
    "NaN",
    "inf",
    "18446744073709551615",
    "4294967296",
    "9223372036854775808",
    "-0.0",
    "1e-45",
    "3.4e38",
    "65536",
];

/// One to three random edits of `bytes`: bit flips, interesting bytes, deletions, duplications,
/// truncation; for text also numbers swapped for extremes and whole lines doubled or dropped.
pub(crate) fn mutate(rng: &mut StdRng, mut b: Vec<u8>, text: bool) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..=3) {
        if b.is_empty() {
            b.push(rng.r#gen());
            continue;
        }
        let at = rng.gen_range(0..b.len());
        let span = rng.gen_range(1..=b.len().min(64));
        let end = (at + span).min(b.len());
        match rng.gen_range(0..if text { 9 } else { 6 }) {
            0 => b[at] ^= 1 << rng.gen_range(0..8),
            1 => b[at] = [0, 0xff, 0x7f, 0x80, b'(', b'"', b'['][rng.gen_range(0..7)],
            2 => drop(b.drain(at..end)),
            3 => {
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
            4 => b.truncate(at),
            5 => {
                let v: u32 = [0, 1, 1 << 30, 1 << 31, u32::MAX, 3][rng.gen_range(0..6)];
                let at = at.min(b.len().saturating_sub(4));
                b.splice(at..(at + 4).min(b.len()), v.to_be_bytes());
            }
            6 => b = swap_number(rng, &b),
            7 => b = edit_line(rng, &b, true),
            _ => b = edit_line(rng, &b, false),
        }
    }
    b
}

/// Replace a random run of digits with an extreme number.
fn swap_number(rng: &mut StdRng, b: &[u8]) -> Vec<u8> {
    let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
    if digits.is_empty() {
        return b.to_vec();
    }
    let start = digits[rng.gen_range(0..digits.len())];
    let end = (start..b.len())
        .find(|&i| !b[i].is_ascii_digit() && b[i] != b'.')
        .unwrap_or(b.len());
    let mut out = b[..start].to_vec();
    out.extend(NUMBERS[rng.gen_range(0..NUMBERS.len())].bytes());
    out.extend(&b[end..]);
    out
}

/// Double (or drop) a random line.
fn edit_line(rng: &mut StdRng, b: &[u8], double: bool) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
    let i = rng.gen_range(0..lines.len());
    if double {
        lines.insert(i, lines[i]);
    } else {
        lines.remove(i);
    }
    lines.join(&b'\n')
}

/// Run `case` on its own thread; a panic or a hang fails the test after saving `input`.
pub(crate) fn guarded(what: &str, n: usize, input: &[u8], case: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        case();
        let _ = tx.send(());
    });
    let outcome = rx.recv_timeout(HANG);
    let failed = match outcome {
        Ok(()) => None,
        Err(mpsc::RecvTimeoutError::Timeout) => Some("hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => Some("panicked"),
    };
    if let Some(how) = failed {
        let what = what.rsplit('/').next().unwrap_or(what);
        let keep = std::env::temp_dir().join(format!("resviz-fuzz-{what}-{n}"));
        fs::write(&keep, input).unwrap();
        panic!("{what} case {n} {how}; input saved to {}", keep.display());
    }
    let _ = handle.join();
}

fn corpus(suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(suffix) && (suffix != ".ron" || !name.ends_with(".cfg.ron"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect()
}

/// Parse snapshot text, and use whatever loads as `compare` would.
fn snapshot_case(bytes: Vec<u8>) {
    let Ok(text) = String::from_utf8(bytes) else {
        return;
    };
    if let Ok(s) = snapshot::from_ron(&text, Path::new("fuzz.ron")) {
        let table = snapshot::compare_table(&[("fuzz.ron", s.clone())]);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        let _ = snapshot::render_svg(&[s]);
    }
}

#[test]
fn snapshot_parser_survives_mutations() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seeds: Vec<Vec<u8>> = ["snapshot_v1.ron", "snapshot_v2.ron"]
        .iter()
        .map(|f| fs::read(fixtures.join(f)).unwrap())
        .collect();
    let mut snap = synthetic::snapshot(&["plain-8", "v1-8"], 40, 3);
    seeds.push(snapshot::to_ron(&snap).unwrap().into_bytes());
    snap.runs.truncate(1);
    seeds.push(snapshot::to_ron(&snap).unwrap().into_bytes());
    for (path, bytes) in corpus(".ron") {
        let what = path.display().to_string();
        guarded(&what, 0, &bytes.clone(), move || snapshot_case(bytes));
    }
    let mut rng = StdRng::seed_from_u64(19);
    for n in 0..CASES {
        let input = mutate(&mut rng, seeds[n % seeds.len()].clone(), true);
        guarded("snapshot", n, &input.clone(), move || snapshot_case(input));
    }
}

/// Load a config from `bytes`, and use whatever loads as `train` would before training.
fn config_case(dir: &Path, n: usize, bytes: Vec<u8>) {
    let path = dir.join(format!("{n}.cfg.ron"));
    fs::write(&path, &bytes).unwrap();
    if let Ok(cfg) = ExperimentConfig::load(&path) {
        let specs: Result<Vec<resviz::model::ModelSpec>, _> =
            cfg.models.iter().map(|m| m.parse()).collect();
        if let Ok(specs) = specs {
            let input = resviz::train::budget::Input {
                channels: 3,
                height: 32,
                width: 32,
            };
            let _ = resviz::train::budget::check(&specs, cfg.width, cfg.batch, input);
        }
    }
}

#[test]
fn config_parser_survives_mutations() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut seeds: Vec<Vec<u8>> = fs::read_dir(&assets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .map(|p| fs::read(p).unwrap())
        .collect();
    seeds.push(
        ron::ser::to_string_pretty(&ExperimentConfig::default(), Default::default())
            .unwrap()
            .into_bytes(),
    );
    let d = tempfile::tempdir().unwrap();
    for (i, (path, bytes)) in corpus(".cfg.ron").into_iter().enumerate() {
        let dir = d.path().to_path_buf();
        guarded(&path.display().to_string(), 0, &bytes.clone(), move || {
            config_case(&dir, i, bytes)
        });
    }
    let mut rng = StdRng::seed_from_u64(17);
    for n in 0..CASES {
        let input = mutate(&mut rng, seeds[n % seeds.len()].clone(), true);
        let dir = d.path().to_path_buf();
        guarded("config", n, &input.clone(), move || {
            config_case(&dir, 1000 + n, input)
        });
    }
}

fn idx(magic: u8, dims: &[u32], body: Vec<u8>) -> Vec<u8> {
    let mut b = vec![0, 0, 8, magic];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(body);
    b
}

/// Load `dataset` (which reads `dir`) and draw a batch from it.
fn dataset_case(dataset: String) {
    if let Ok(ds) = resviz::data::load(&dataset, 0) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut sampler = resviz::data::Sampler::new(ds.train.len(), 0);
        sampler.next_batch(&ds, 4, true, &mut x, &mut y);
        // What training relies on: images to train on, and batches of the size claimed.
        assert!(
            !ds.train.is_empty() && !y.is_empty(),
            "{dataset}: no training images"
        );
        assert_eq!(
            x.len(),
            y.len() * ds.channels * ds.height * ds.width,
            "{dataset}"
        );
    }
}

/// MNIST: one of the four IDX files mutated per case; CIFAR-10: one of the six batch files.
#[test]
fn dataset_loaders_survive_mutations() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(23);
    let (n, side) = (6u32, 28u32);
    let pixels: Vec<u8> = (0..n * side * side).map(|_| rng.r#gen()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let mnist = [
        (
            "train-images-idx3-ubyte",
            idx(3, &[n, side, side], pixels.clone()),
        ),
        ("train-labels-idx1-ubyte", idx(1, &[n], labels.clone())),
        ("t10k-images-idx3-ubyte", idx(3, &[n, side, side], pixels)),
        ("t10k-labels-idx1-ubyte", idx(1, &[n], labels)),
    ];
    let record = resviz::data::CIFAR_RECORD_BYTES;
    let cifar: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|i| format!("data_batch_{i}.bin"))
        .chain(["test_batch.bin".to_string()])
        .map(|name| {
            let body = (0..3 * record)
                .map(|k| {
                    if k % record == 0 {
                        (k / record) as u8
                    } else {
                        rng.r#gen()
                    }
                })
                .collect();
            (name, body)
        })
        .collect();
    for (path, bytes) in corpus(".idx") {
        let dir = d.path().join("corpus");
        fs::create_dir_all(&dir).unwrap();
        // Both splits get the corpus images, with as many labels as their header claims.
        let claimed = bytes
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()));
        let labels = idx(
            1,
            &[claimed],
            (0..claimed.min(1 << 20)).map(|i| (i % 10) as u8).collect(),
        );
        for split in ["train", "t10k"] {
            fs::write(dir.join(format!("{split}-images-idx3-ubyte")), &bytes).unwrap();
            fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
        }
        let dataset = format!("mnist:{}", dir.display());
        guarded(&path.display().to_string(), 0, &bytes, move || {
            dataset_case(dataset)
        });
    }
    for k in 0..2 * CASES {
        let dir = d.path().join(format!("case{k}"));
        fs::create_dir(&dir).unwrap();
        let (files, kind): (Vec<(String, Vec<u8>)>, &str) = match k % 2 {
            0 => (
                mnist
                    .iter()
                    .map(|(n, b)| (n.to_string(), b.clone()))
                    .collect(),
                "mnist",
            ),
            _ => (cifar.clone(), "cifar10"),
        };
        let pick = rng.gen_range(0..files.len());
        let mut mutated = Vec::new();
        for (i, (name, bytes)) in files.into_iter().enumerate() {
            let bytes = if i == pick {
                mutate(&mut rng, bytes, false)
            } else {
                bytes
            };
            fs::write(dir.join(&name), &bytes).unwrap();
            if i == pick {
                mutated = bytes;
            }
        }
        let dataset = format!("{kind}:{}", dir.display());
        guarded(kind, k, &mutated, move || dataset_case(dataset));
        fs::remove_dir_all(&dir).unwrap();
    }
}
