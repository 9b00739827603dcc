//! Datasets: synthetic, bundled MNIST subset, MNIST/Fashion-MNIST IDX and CIFAR-10 binary loaders.
//!
//! A [`Dataset`] keeps its pixels as raw `u8` NCHW (memory ≈ the raw data) and converts only the
//! images a batch needs into normalised `f32` ([`Dataset::gather`]), so the trainer can drive it
//! from a blocking thread through a shared reference (it is `Send + Sync`) with reused buffers.
//! [`Sampler`] shuffles the training split with a permutation seeded by `(seed, epoch)`;
//! [`test_batches`] walks the test split in order.

mod cifar;
mod error;
pub mod fetch;
mod gather;
mod http;
mod idx;
mod io;
mod sampler;
mod synthetic;
mod unpack;

pub use cifar::RECORD_BYTES as CIFAR_RECORD_BYTES;
pub use error::DataError;
pub use gather::{PAD, augment_image};
pub use idx::{IMAGES_MAGIC, LABELS_MAGIC};
pub use sampler::Sampler;
pub use synthetic::{SYNTHETIC_SEED, SYNTHETIC_TEST, SYNTHETIC_TRAIN};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One split of a dataset: `len` images of `image_len` bytes each (NCHW, `u8`) and their labels.
#[derive(Clone)]
pub struct Split {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    image_len: usize,
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("len", &self.len())
            .field("image_len", &self.image_len)
            .finish()
    }
}

impl Split {
    /// Wrap raw NCHW pixels and labels. Panics if `pixels.len() != labels.len() * image_len`
    /// (a programming error: the loaders check their input before building a split).
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>, image_len: usize) -> Self {
        assert_eq!(pixels.len(), labels.len() * image_len, "split shape");
        Self {
            pixels,
            labels,
            image_len,
        }
    }
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the split holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Class of image `i`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }
    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
    /// Raw pixels of image `i` (C×H×W bytes, channel planes in order).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len..(i + 1) * self.image_len]
    }
    /// All raw pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

/// A loaded dataset: both splits plus the normalisation statistics of its training split.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Family: `synthetic`, `mnist` or `cifar10`.
    pub name: String,
    /// The spec it was loaded from, e.g. `mnist:/data/fashion`.
    pub source: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    pub train: Split,
    pub test: Split,
    /// Per-channel mean of the training split, pixels on the [0,1] scale.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the training split, [0,1] scale (1.0 if a channel is
    /// constant, so normalisation never divides by zero).
    pub std: Vec<f32>,
    /// Whether training batches get the pad-4 / random-crop / horizontal-flip augmentation
    /// (true only for CIFAR-10).
    pub augment: bool,
}

/// Load a dataset from its spec: `synthetic`, `mnist`, `mnist:DIR`, `cifar10` (the copy
/// `resviz data fetch cifar10` put in the per-user cache) or `cifar10:DIR`.
///
/// `seed` is the training seed. It does not affect the data: `synthetic` always uses the fixed
/// [`SYNTHETIC_SEED`] so runs with different training seeds see identical images.
pub fn load(spec: &str, seed: u64) -> Result<Dataset, DataError> {
    let _ = seed;
    let unknown = || DataError::UnknownSpec { spec: spec.into() };
    match spec.split_once(':') {
        None if spec == "synthetic" => Ok(synthetic::generate(SYNTHETIC_SEED)),
        None if spec == "mnist" => idx::load_bundled(),
        Some(("mnist", dir)) if !dir.is_empty() => idx::load_dir(Path::new(dir), spec),
        None if spec == "cifar10" => load_cached_cifar10(),
        Some(("cifar10", dir)) if !dir.is_empty() => cifar::load_dir(Path::new(dir), spec),
        _ => Err(unknown()),
    }
}

/// `cifar10`: the fetched copy, or a hint to fetch it.
fn load_cached_cifar10() -> Result<Dataset, DataError> {
    let dir = fetch::cifar10_dir().map_err(|e| DataError::NotFetched {
        dir: PathBuf::new(),
        why: e.to_string(),
    })?;
    if !fetch::is_complete(&dir) {
        return Err(DataError::NotFetched {
            dir,
            why: "not downloaded yet".into(),
        });
    }
    cifar::load_dir(&dir, "cifar10")
}

impl Dataset {
    /// Build a dataset from two splits, computing per-channel statistics from `train`.
    pub fn from_splits(
        name: &str,
        source: &str,
        [channels, height, width]: [usize; 3],
        classes: usize,
        train: Split,
        test: Split,
        augment: bool,
    ) -> Self {
        assert_eq!(
            train.image_len,
            channels * height * width,
            "train image size"
        );
        assert_eq!(test.image_len, channels * height * width, "test image size");
        let (mean, std) = channel_stats(&train, channels);
        Self {
            name: name.into(),
            source: source.into(),
            channels,
            height,
            width,
            classes,
            train,
            test,
            mean,
            std,
            augment,
        }
    }

    /// Values in one image: C×H×W.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Raw bytes held (pixels + labels of both splits).
    pub fn raw_bytes(&self) -> usize {
        self.train.pixels.len() + self.train.labels.len() + self.test.pixels.len() + self.test.len()
    }
}

/// Deterministic test-split batches for evaluation (in order, last batch may be short).
/// A `batch` of 0 is treated as 1.
pub fn test_batches(ds: &Dataset, batch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = ds.test.len();
    let batch = batch.max(1);
    (0..n).step_by(batch).map(move |s| s..(s + batch).min(n))
}

/// Exact per-channel mean and standard deviation (on the [0,1] scale) from byte histograms.
fn channel_stats(split: &Split, channels: usize) -> (Vec<f32>, Vec<f32>) {
    let plane = (split.image_len / channels.max(1)).max(1);
    let hist = split
        .pixels
        .par_chunks((split.image_len * 256).max(1))
        .fold(
            || vec![0u64; channels * 256],
            |mut h, chunk| {
                for (k, plane) in chunk.chunks(plane).enumerate() {
                    let h = &mut h[k % channels * 256..][..256];
                    plane.iter().for_each(|&p| h[p as usize] += 1);
                }
                h
            },
        )
        .reduce(
            || vec![0u64; channels * 256],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    hist.chunks(256)
        .map(|h| {
            let n = h.iter().sum::<u64>().max(1) as f64;
            let (s, s2) = h.iter().enumerate().fold((0.0, 0.0), |(s, s2), (v, &c)| {
                let v = v as f64 / 255.0;
                (s + v * c as f64, s2 + v * v * c as f64)
            });
            let mean = s / n;
            let std = (s2 / n - mean * mean).max(0.0).sqrt();
            (mean as f32, if std < 1e-6 { 1.0 } else { std as f32 })
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 2-channel 1×2 images: channel 0 = {0, 255, 0, 255}, channel 1 constant 51.
    fn tiny() -> Dataset {
        let pixels = vec![0, 255, 51, 51, 255, 0, 51, 51];
        let train = Split::new(pixels.clone(), vec![3, 7], 4);
        let test = Split::new(pixels, vec![1, 2], 4);
        Dataset::from_splits("t", "t", [2, 1, 2], 10, train, test, false)
    }

    #[test]
    fn stats_are_exact_and_never_zero() {
        let ds = tiny();
        assert!((ds.mean[0] - 0.5).abs() < 1e-6 && (ds.std[0] - 0.5).abs() < 1e-6);
        assert!((ds.mean[1] - 0.2).abs() < 1e-6);
        assert_eq!(ds.std[1], 1.0, "constant channel falls back to std 1");
        assert_eq!(ds.image_len(), 4);
        assert_eq!(ds.raw_bytes(), 20);
    }

    #[test]
    fn gather_normalises_and_labels() {
        let ds = tiny();
        let (mut x, mut y) = (vec![9.0; 3], vec![5]);
        ds.gather(
            &ds.train,
            &[1, 0],
            None::<&mut rand::rngs::StdRng>,
            &mut x,
            &mut y,
        );
        assert_eq!(y, vec![7, 3]);
        let c1 = (0.2 - ds.mean[1]) / ds.std[1];
        assert_eq!(x, vec![1.0, -1.0, c1, c1, -1.0, 1.0, c1, c1]);
        ds.gather_range(&ds.test, 1..2, &mut x, &mut y);
        assert_eq!((x.len(), y), (4, vec![2]));
    }

    #[test]
    fn test_batches_cover_in_order() {
        let mut ds = tiny();
        ds.test = Split::new(vec![0; 4 * 7], vec![0; 7], 4);
        let b: Vec<_> = test_batches(&ds, 3).collect();
        assert_eq!(b, vec![0..3, 3..6, 6..7]);
        assert_eq!(test_batches(&ds, 0).count(), 7);
    }

    #[test]
    fn bad_specs_list_valid_forms() {
        for spec in [
            "",
            "cifar",
            "mnist:",
            "cifar10:",
            "imagenet:/x",
            "Synthetic",
        ] {
            let msg = load(spec, 0).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("'{spec}'")) && msg.contains("cifar10:DIR"),
                "{msg}"
            );
        }
    }
}
