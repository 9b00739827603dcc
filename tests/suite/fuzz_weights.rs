//! Issue 31's fuzz harness, second part (the first is `fuzz.rs`): the safetensors files a resume
//! reads (weights and optimizer state) mutated — bit flips anywhere, or the JSON header edited as
//! text with extreme numbers and its length prefix kept consistent so that the parser reaches
//! the offsets — and MNIST files that arrive gzip-compressed. Every case ends in `Ok` or an
//! error within the hang limit, never a panic; a header that claims more data than the file
//! holds or the model needs is refused before anything of that size is allocated (the resume
//! checks bound every read by the file's size and the model's).

use crate::fuzz::{guarded, mutate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resviz::snapshot::{self, resume};
use resviz::train::Trainer;
use std::fs;
use std::io::Write;
use std::sync::Arc;

/// Cases; with the other fuzz tests the whole harness stays within ~20 s on two cores.
const CASES: usize = 300;

/// A mutated safetensors file: half the time bytes anywhere, half the JSON header as text.
fn mutate_safetensors(rng: &mut StdRng, bytes: &[u8]) -> Vec<u8> {
    let n = bytes
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if rng.gen_bool(0.5) || 8 + n > bytes.len() {
        return mutate(rng, bytes.to_vec(), false);
    }
    let header = mutate(rng, bytes[8..8 + n].to_vec(), true);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn resume_survives_mutated_weight_and_optimizer_files() {
    let d = tempfile::tempdir().unwrap();
    let exp = [
        "--models",
        "v1-8",
        "--dataset",
        "synthetic",
        "--batch",
        "4",
        "--width",
        "2",
    ];
    crate::common::train_saved(d.path(), "2", "a.ron", &exp);
    let path = d.path().join("a.ron");
    let snap = snapshot::load(&path).unwrap();
    let point = resume::point_of(&snap, &path).unwrap().clone();
    let ds = Arc::new(resviz::data::load(&snap.config.dataset, snap.config.seed).unwrap());
    let files = [&point.files[0].weights, &point.files[0].optimizer];
    let originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(d.path().join(f)).unwrap())
        .collect();
    let mut rng = StdRng::seed_from_u64(31);
    let mut refused = 0;
    for k in 0..CASES {
        let which = k % 2;
        let bytes = mutate_safetensors(&mut rng, &originals[which]);
        fs::write(d.path().join(files[which]), &bytes).unwrap();
        let (snap, point, ds, path) = (snap.clone(), point.clone(), ds.clone(), path.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        guarded("safetensors", k, &bytes, move || {
            let mut t = Trainer::new(snap.config.clone(), ds).unwrap();
            let _ = tx.send(resume::restore(&mut t, &point, &path, &snap.runs).is_err());
        });
        refused += usize::from(rx.recv().unwrap());
        fs::write(d.path().join(files[which]), &originals[which]).unwrap();
    }
    // The checksums catch nearly every mutation: the harness does reach the checks.
    assert!(refused > CASES / 2, "{refused} of {CASES} refused");
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// MNIST files gzip-compressed, one of them mutated before compression (its header lies) or
/// after (the gzip stream is damaged).
#[test]
fn gzip_mnist_files_survive_mutations() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(37);
    let (n, side) = (6u32, 28u32);
    let header = |magic: u8, dims: &[u32]| {
        let mut b = vec![0, 0, 8, magic];
        dims.iter().for_each(|v| b.extend(v.to_be_bytes()));
        b
    };
    let pixels: Vec<u8> = (0..n * side * side).map(|_| rng.r#gen()).collect();
    let images = [header(3, &[n, side, side]), pixels].concat();
    let labels = [header(1, &[n]), (0..n as u8).map(|i| i % 10).collect()].concat();
    for k in 0..CASES {
        let dir = d.path().join(format!("case{k}"));
        fs::create_dir(&dir).unwrap();
        let mut files = [
            ("train-images-idx3-ubyte.gz", gz(&images)),
            ("train-labels-idx1-ubyte.gz", gz(&labels)),
            ("t10k-images-idx3-ubyte.gz", gz(&images)),
            ("t10k-labels-idx1-ubyte.gz", gz(&labels)),
        ];
        let pick = rng.gen_range(0..files.len());
        let plain = if pick % 2 == 0 { &images } else { &labels };
        files[pick].1 = match rng.gen_bool(0.5) {
            true => gz(&mutate(&mut rng, plain.clone(), false)),
            false => mutate(&mut rng, files[pick].1.clone(), false),
        };
        for (name, bytes) in &files {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let dataset = format!("mnist:{}", dir.display());
        guarded("gzip-mnist", k, &files[pick].1, move || {
            if let Ok(ds) = resviz::data::load(&dataset, 0) {
                assert!(ds.train.len() <= n as usize, "{} images", ds.train.len());
            }
        });
        fs::remove_dir_all(&dir).unwrap();
    }
}
