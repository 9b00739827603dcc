//! File helpers shared by the loaders: locate a file (plain or `.gz`), read it, and transparently
//! gunzip anything that starts with the gzip magic `1f 8b`, whatever its name.

use super::DataError;
use std::io::Read;
use std::path::{Path, PathBuf};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Fail with [`DataError::MissingDir`] unless `dir` is an existing directory.
pub(crate) fn require_dir(dir: &Path) -> Result<(), DataError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(DataError::MissingDir {
            path: dir.to_path_buf(),
        })
    }
}

/// `dir/base` if it exists, else `dir/base.gz`, else [`DataError::MissingFile`].
pub(crate) fn find_file(dir: &Path, base: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(base);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::MissingFile {
        path: plain,
        alt: vec![format!("{base}.gz")],
    })
}

/// `dir/name`, which must exist.
pub(crate) fn require_file(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::MissingFile { path, alt: vec![] })
    }
}

/// Read `path`, decompressing it if it is gzip data.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile {
            path: path.to_path_buf(),
            alt: vec![],
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            error: source,
        },
    })?;
    if is_gzip(&bytes) {
        gunzip(&bytes, path)
    } else {
        Ok(bytes)
    }
}

/// Whether `bytes` starts with the gzip magic.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompress (possibly multi-member) gzip data; `path` is only used for error messages.
pub(crate) fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    // The trailer's ISIZE is the uncompressed length mod 2^32: a good capacity hint that avoids the
    // doubling reallocations (and 2× peak memory) of growing a Vec blindly. Capped against garbage.
    let hint = bytes
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(bytes[at..].try_into().unwrap()) as usize)
        .unwrap_or(0)
        .min(bytes.len().saturating_mul(1100));
    let mut out = Vec::with_capacity(hint);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|error| DataError::Gzip {
            path: path.to_path_buf(),
            error,
        })?;
    Ok(out)
}
