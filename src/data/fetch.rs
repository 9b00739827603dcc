//! `resviz data fetch cifar10`: download the official CIFAR-10 binary archive into the per-user
//! cache, verify its MD5, unpack it, and resume an interrupted download with an HTTP Range request.
//!
//! Layout under the cache directory (`RESVIZ_CACHE_DIR`, else the platform's per-user cache, e.g.
//! `~/.cache/resviz` on Linux): `cifar10/cifar-10-binary.tar.gz.part` while downloading,
//! `cifar10/cifar-10-binary.tar.gz` once complete, `cifar10/cifar-10-batches-bin/` unpacked, and
//! `cifar10/.complete` once everything succeeded. `RESVIZ_CIFAR10_URL`, `RESVIZ_CIFAR10_MD5` and
//! `RESVIZ_CIFAR10_BYTES` replace the source, its checksum and its size (tests serve a small
//! archive from 127.0.0.1); `RESVIZ_FETCH_TIMEOUT_SECS` the 30 s a connection may stay silent.
//!
//! Nothing hangs or grows without bound: connecting, the reply's headers and every read of the
//! body time out, a body slower than 16 KiB per timeout period is given up (resumable), and no
//! more than the archive's known size is written. Redirects are followed only to http(s).

use super::http::{RETRY, header, range_start, request};
use md5::{Digest, Md5};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// The checksum the CIFAR-10 page publishes for the binary version.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
pub const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";
pub const ENV_CACHE_DIR: &str = "RESVIZ_CACHE_DIR";
pub const ENV_URL: &str = "RESVIZ_CIFAR10_URL";
pub const ENV_MD5: &str = "RESVIZ_CIFAR10_MD5";
/// The size of the official archive: no download may write more.
pub const CIFAR10_BYTES: u64 = 170_052_171;
pub const ENV_BYTES: &str = "RESVIZ_CIFAR10_BYTES";
pub const ENV_TIMEOUT: &str = "RESVIZ_FETCH_TIMEOUT_SECS";
/// Seconds a connection may stay silent (connect, headers, each read of the body).
const TIMEOUT_SECS: f64 = 30.0;
/// Bytes the body must bring per timeout period: a server trickling less is given up.
const MIN_BYTES_PER_PERIOD: u64 = 16 << 10;

const COMPLETE_MARKER: &str = ".complete";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no per-user cache directory on this platform: set {ENV_CACHE_DIR}")]
    NoCacheDir,
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error(transparent)]
    Http(#[from] super::http::HttpError),
    #[error(
        "{url}: the archive would be {size} bytes, more than the {limit} of CIFAR-10's; the partial file was deleted"
    )]
    TooBig {
        url: String,
        size: String,
        limit: u64,
    },
    #[error(
        "{url}: asked for bytes from {asked}, the server sent 'Content-Range: {}'; the partial file was deleted: {RETRY}",
        crate::numfmt::cut(got, 100)
    )]
    BadRange {
        url: String,
        asked: u64,
        got: String,
    },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "download interrupted after {got} of {} bytes ({error}); the partial file {} is kept: {RETRY}",
        total.map_or("?".to_string(), |t| t.to_string()), path.display()
    )]
    Interrupted {
        path: PathBuf,
        got: u64,
        total: Option<u64>,
        error: String,
    },
    #[error(
        "{}: MD5 {actual} differs from the published {expected}: the download is corrupt and was deleted; run the same command again to download it afresh",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: cannot unpack ({error}); nothing was unpacked", path.display())]
    Unpack { path: PathBuf, error: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |error| FetchError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The cache root: `RESVIZ_CACHE_DIR`, else the platform's per-user cache directory for resviz.
pub fn cache_root() -> Result<PathBuf, FetchError> {
    if let Some(d) = std::env::var_os(ENV_CACHE_DIR).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "resviz")
        .map(|p| p.cache_dir().to_path_buf())
        .ok_or(FetchError::NoCacheDir)
}

/// Where `fetch_cifar10` puts CIFAR-10 (`--dataset cifar10` reads it from there).
pub fn cifar10_dir() -> Result<PathBuf, FetchError> {
    Ok(cache_root()?.join("cifar10"))
}

/// Whether a fetch completed in `dir` (downloaded, verified and unpacked).
pub fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE_MARKER).is_file()
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// An earlier fetch had completed: nothing to do.
    AlreadyThere,
    /// Downloaded (`resumed_from` bytes were already there), verified and unpacked.
    Done { resumed_from: u64, bytes: u64 },
}

/// Progress callback: bytes so far and the total, if the server said.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// Download, verify and unpack CIFAR-10 into [`cifar10_dir`], resuming a partial download.
pub fn fetch_cifar10(progress: Progress) -> Result<(PathBuf, Fetched), FetchError> {
    let dir = cifar10_dir()?;
    if is_complete(&dir) {
        return Ok((dir, Fetched::AlreadyThere));
    }
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let url = std::env::var(ENV_URL).unwrap_or_else(|_| CIFAR10_URL.to_string());
    let md5 = std::env::var(ENV_MD5).unwrap_or_else(|_| CIFAR10_MD5.to_string());
    let archive = dir.join(ARCHIVE_NAME);
    let mut outcome = (0, 0);
    if !archive.is_file() {
        let part = dir.join(format!("{ARCHIVE_NAME}.part"));
        outcome = download(&url, &part, progress)?;
        fs::rename(&part, &archive).map_err(io_err(&archive))?;
    }
    verify_md5(&archive, &md5)?;
    unpack(&archive, &dir)?;
    let marker = dir.join(COMPLETE_MARKER);
    fs::write(&marker, format!("{url}\n{md5}\n")).map_err(io_err(&marker))?;
    let (resumed_from, bytes) = outcome;
    Ok((
        dir,
        Fetched::Done {
            resumed_from,
            bytes,
        },
    ))
}

/// The archive's size limit: `RESVIZ_CIFAR10_BYTES`, else the official archive's.
fn size_limit() -> u64 {
    std::env::var(ENV_BYTES)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CIFAR10_BYTES)
}

fn timeout() -> Duration {
    let secs = std::env::var(ENV_TIMEOUT)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .unwrap_or(TIMEOUT_SECS);
    Duration::from_secs_f64(secs)
}

/// Fetch `url` into `part`, continuing from its current length with a Range request. Returns
/// (bytes that were already there, total bytes).
fn download(url: &str, part: &Path, progress: Progress) -> Result<(u64, u64), FetchError> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let (limit, wait) = (size_limit(), timeout());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(wait))
        .timeout_recv_response(Some(wait))
        .timeout_per_read(Some(wait))
        .build()
        .into();
    let (url, mut resp) = request(&agent, url, have)?;
    let url = url.as_str();
    let status = resp.status().as_u16();
    // 416: nothing left after `have` bytes, so the partial file is the whole file.
    if status == 416 && have > 0 {
        return Ok((have, have));
    }
    let len = header(&resp, "content-length").and_then(|v| v.parse::<u64>().ok());
    let discard = |e: FetchError| {
        let _ = fs::remove_file(part);
        e
    };
    let (start, mut file) = match status {
        206 => {
            let got = header(&resp, "content-range").unwrap_or_default();
            if range_start(&got) != Some(have) {
                return Err(discard(FetchError::BadRange {
                    url: url.into(),
                    asked: have,
                    got,
                }));
            }
            let f = OpenOptions::new().append(true).open(part);
            (have, f.map_err(io_err(part))?)
        }
        // A server that ignores Range sends everything again: start over.
        200 => (0, File::create(part).map_err(io_err(part))?),
        _ => {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
    };
    let too_big = |size: String| FetchError::TooBig {
        url: url.into(),
        size,
        limit,
    };
    let total = len.map(|l| l.saturating_add(start));
    if let Some(t) = total.filter(|&t| t > limit) {
        return Err(discard(too_big(t.to_string())));
    }
    let mut got = start;
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let interrupted = |got, error: String| FetchError::Interrupted {
        path: part.to_path_buf(),
        got,
        total,
        error,
    };
    // Bytes at the start of the current period: a trickle too slow to finish is given up.
    let mut period = (Instant::now(), got);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(interrupted(got, e.to_string())),
        };
        if got + n as u64 > limit {
            return Err(discard(too_big(format!("more than {limit}"))));
        }
        file.write_all(&buf[..n]).map_err(io_err(part))?;
        got += n as u64;
        progress(got, total);
        if period.0.elapsed() >= wait {
            if got - period.1 < MIN_BYTES_PER_PERIOD {
                let secs = wait.as_secs_f64();
                let why = format!("less than {MIN_BYTES_PER_PERIOD} bytes in {secs} s");
                return Err(interrupted(got, why));
            }
            period = (Instant::now(), got);
        }
    }
    file.sync_all().map_err(io_err(part))?;
    if let Some(t) = total.filter(|&t| got < t) {
        return Err(interrupted(
            got,
            format!("connection closed {} bytes early", t - got),
        ));
    }
    Ok((start, got))
}

/// The file's MD5 as lowercase hex.
pub fn md5_hex(path: &Path) -> Result<String, FetchError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Check the archive's MD5; a mismatch deletes it, so the next fetch starts afresh.
fn verify_md5(archive: &Path, expected: &str) -> Result<(), FetchError> {
    let actual = md5_hex(archive)?;
    if actual.eq_ignore_ascii_case(expected.trim()) {
        return Ok(());
    }
    fs::remove_file(archive).map_err(io_err(archive))?;
    Err(FetchError::Checksum {
        path: archive.to_path_buf(),
        expected: expected.trim().to_string(),
        actual,
    })
}

fn unpack(archive: &Path, dir: &Path) -> Result<(), FetchError> {
    // CIFAR-10 unpacks to a little more than its archive; twice the archive's limit bounds a
    // member that inflates without end.
    let limit = size_limit().saturating_mul(2);
    super::unpack::unpack_tar_gz(archive, dir, limit).map_err(|error| FetchError::Unpack {
        path: archive.to_path_buf(),
        error,
    })
}
