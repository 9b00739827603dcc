//! CIFAR-10 binary loader (`cifar10:DIR`): `data_batch_1.bin`..`data_batch_5.bin` train,
//! `test_batch.bin` test; each record is 3,073 bytes — a label byte, then the 32×32 R, G and B
//! planes (already NCHW). `DIR` may also be the parent of the archive's `cifar-10-batches-bin/`.

use super::io::{Declared, read_maybe_gz, require_dir, require_file};
use super::{DataError, Dataset, Split, idx::check_labels};
use std::path::{Path, PathBuf};

/// Bytes of one image (3 × 32 × 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one record: label + image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// The training batch files, in load order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const TEST_FILE: &str = "test_batch.bin";

/// Records in one batch file of the CIFAR-10 binary format.
pub const RECORDS_PER_FILE: usize = 10_000;
/// A compressed batch file may not decompress past one batch: the format declares no size in
/// its content, but every file of the format holds 10,000 records.
const BATCH_DECLARED: Declared = Declared {
    head: 0,
    size: |_| (RECORDS_PER_FILE * RECORD_BYTES) as u64,
};

/// Read the given batch files into one split. Files are read one at a time and appended, so peak
/// memory is the split plus a single batch file.
fn load_files(paths: &[PathBuf]) -> Result<Split, DataError> {
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let records = (total as usize) / RECORD_BYTES;
    let mut pixels = Vec::with_capacity(records * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(records);
    for path in paths {
        let bytes = read_maybe_gz(path, &BATCH_DECLARED)?;
        if bytes.len() % RECORD_BYTES != 0 {
            return Err(DataError::BadLength {
                path: path.clone(),
                len: bytes.len() as u64,
                record: RECORD_BYTES,
            });
        }
        let first = labels.len();
        for record in bytes.chunks_exact(RECORD_BYTES) {
            labels.push(record[0]);
            pixels.extend_from_slice(&record[1..]);
        }
        check_labels(&labels[first..], path)?;
    }
    if labels.is_empty() {
        return Err(DataError::Invalid {
            path: paths[0].clone(),
            problem: "holds no records".into(),
        });
    }
    Ok(Split::new(pixels, labels, IMAGE_BYTES))
}

/// `cifar10:DIR`.
pub fn load_dir(dir: &Path, source: &str) -> Result<Dataset, DataError> {
    require_dir(dir)?;
    let nested = dir.join("cifar-10-batches-bin");
    let dir = if !dir.join(TRAIN_FILES[0]).exists() && nested.is_dir() {
        nested.as_path()
    } else {
        dir
    };
    let train_paths = TRAIN_FILES
        .iter()
        .map(|name| require_file(dir, name))
        .collect::<Result<Vec<_>, _>>()?;
    let test_path = require_file(dir, TEST_FILE)?;
    let (train, test) = rayon::join(
        || load_files(&train_paths),
        || load_files(std::slice::from_ref(&test_path)),
    );
    Ok(Dataset::from_splits(
        "cifar10",
        source,
        [3, 32, 32],
        10,
        train?,
        test?,
        true,
    ))
}
