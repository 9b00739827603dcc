//! `DataError`: every loader failure as one line naming the file (or directory) and the problem.

use std::path::PathBuf;

/// A dataset could not be loaded. `Display` is a single line that names the offending path.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The `--dataset` spec is not one of the known forms.
    #[error(
        "unknown dataset '{}': expected one of 'synthetic', 'mnist', 'mnist:DIR', 'cifar10', 'cifar10:DIR'",
        crate::numfmt::cut(spec, 100)
    )]
    UnknownSpec { spec: String },
    /// `cifar10` without a directory, and no completed fetch in the cache.
    #[error("CIFAR-10 is not in the cache {} ({why}): run `resviz data fetch cifar10` first, or give --dataset cifar10:DIR", dir.display())]
    NotFetched { dir: PathBuf, why: String },
    /// The directory named in `mnist:DIR` / `cifar10:DIR` does not exist or is not a directory.
    #[error("{}: dataset directory not found", path.display())]
    MissingDir { path: PathBuf },
    /// A required file is absent (`alt` lists other accepted names, e.g. the `.gz` variant).
    #[error("{}: file not found{}", path.display(), alt_names(alt))]
    MissingFile { path: PathBuf, alt: Vec<String> },
    /// Reading the file failed at the OS level.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        path: PathBuf,
        // Not `source`: the message already says it, and `{e:#}` would repeat the chain.
        error: std::io::Error,
    },
    /// The file starts with the gzip magic but does not decompress.
    #[error("{}: corrupt gzip data: {error}", path.display())]
    Gzip {
        path: PathBuf,
        // Not `source`: the message already says it, and `{e:#}` would repeat the chain.
        error: std::io::Error,
    },
    /// An IDX file whose magic number is not the expected one.
    #[error("{}: wrong IDX magic 0x{found:08x}, expected 0x{expected:08x} ({what})", path.display())]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
        what: &'static str,
    },
    /// The file holds fewer bytes than its header (or format) promises.
    #[error("{}: truncated: header needs {expected} bytes, file has {found}", path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// Images and labels files disagree on the number of items.
    #[error("{}: {images} images but {} has {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    /// A CIFAR-10 batch file whose length is not a whole number of 3,073-byte records.
    #[error("{}: length {len} is not a multiple of the {record}-byte CIFAR-10 record", path.display())]
    BadLength {
        path: PathBuf,
        len: u64,
        record: usize,
    },
    /// A label outside `0..classes`.
    #[error("{}: label {label} at item {index} is out of range 0..{classes}", path.display())]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },
    /// Structurally valid, but unusable (no images, image size differs between train and test, …).
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
}

fn alt_names(alt: &[String]) -> String {
    if alt.is_empty() {
        String::new()
    } else {
        format!(" (also tried {})", alt.join(", "))
    }
}
