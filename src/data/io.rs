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

/// How many bytes a file's decompressed content may hold, decided from its first `head` bytes
/// (fewer if the content is shorter): the size its header declares, so that a small gzip file
/// cannot inflate into gigabytes. A header the parser will refuse may return its own length.
pub(crate) struct Declared {
    pub head: usize,
    pub size: fn(&[u8]) -> u64,
}

/// Read `path`, decompressing it if it is gzip data, to at most the size `declared` allows.
pub(crate) fn read_maybe_gz(path: &Path, declared: &Declared) -> Result<Vec<u8>, DataError> {
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
        gunzip(&bytes, path, declared)
    } else {
        Ok(bytes)
    }
}

/// Whether `bytes` starts with the gzip magic.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompress (possibly multi-member) gzip data, refusing content longer than its header
/// declares; `path` is only used for error messages.
pub(crate) fn gunzip(bytes: &[u8], path: &Path, declared: &Declared) -> Result<Vec<u8>, DataError> {
    let gzip_error = |error| DataError::Gzip {
        path: path.to_path_buf(),
        error,
    };
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::with_capacity(declared.head);
    (&mut decoder)
        .take(declared.head as u64)
        .read_to_end(&mut out)
        .map_err(gzip_error)?;
    let limit = (declared.size)(&out).max(out.len() as u64);
    // The trailer's ISIZE is the uncompressed length mod 2^32: a capacity hint that avoids the
    // doubling reallocations (and 2× peak memory) of growing a Vec blindly, within the limit.
    let isize = bytes.len().checked_sub(4).map_or(0, |at| {
        u32::from_le_bytes(bytes[at..].try_into().unwrap()) as u64
    });
    out.reserve(isize.min(limit).saturating_sub(out.len() as u64) as usize);
    // One byte past the limit tells a file that is too long from one that is exactly right.
    let room = limit - out.len() as u64 + 1;
    (&mut decoder)
        .take(room)
        .read_to_end(&mut out)
        .map_err(gzip_error)?;
    // A header the parser refuses (the limit is the header itself) is left for the parser to
    // name; more content than a valid header declares is refused here.
    if out.len() as u64 > limit && limit <= declared.head as u64 {
        out.truncate(limit as usize);
    } else if out.len() as u64 > limit {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "decompresses to more than the {limit} bytes its header (or format) allows"
            ),
        });
    }
    Ok(out)
}
