//! Atomic file writes: the bytes go to a hidden temporary file in the target's directory, are
//! flushed to disk, and only then renamed over the target, so a crash or a full disk never leaves
//! a half-written file or clobbers an older one.
//!
//! Temporary files are named `.NAME.<pid>-<n>.tmp`. A process killed mid-write leaves its
//! temporary behind; [`remove_stale_temps`] deletes those of processes that no longer run.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory a file path lives in (`.` for a bare name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` to `path` through a flushed temporary file renamed over it. The directory must
/// exist. An existing target that is not a regular file (a symlink, a device, a directory) is
/// refused rather than replaced.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    check_target(path)?;
    let dir = dir_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    let tmp = write_temp(&dir, &name, bytes)?;
    rename_into(&tmp, path, &dir)
}

/// `Ok` if `path` is missing or a regular file; an error naming what it is otherwise.
pub fn check_target(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "not a regular file (a device, pipe or socket)"
            };
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is {what}; refusing to replace it"),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `bytes` to a fresh hidden temporary file for `name` in `dir` and flush it to disk.
pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempt = 0;
    loop {
        let tmp = dir.join(temp_name(name, COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = file.write_all(bytes).and_then(|_| file.sync_all());
        drop(file);
        return match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        };
    }
}

/// The temporary file name this process uses for its `n`th write of `name`.
pub fn temp_name(name: &str, n: u64) -> String {
    format!(".{name}.{}-{n}.tmp", std::process::id())
}

/// Rename the finished temporary file onto `target` and make the rename durable.
pub fn rename_into(tmp: &Path, target: &Path, dir: &Path) -> io::Result<()> {
    if let Err(e) = fs::rename(tmp, target) {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    // Persist the directory entry; not every platform or filesystem allows syncing a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Delete the temporary files `.PREFIX….<pid>[-n].tmp` in `dir` left by processes that no longer
/// run (killed during a write). Files of live processes and anything else are left alone; errors
/// are ignored, as this only tidies up. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_pid(&name, prefix) else {
            continue;
        };
        if !process_alive(pid) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The process id in a temporary file name `.PREFIX….<pid>[-n].tmp`, if `name` is one.
fn stale_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_prefix(prefix)?;
    let body = rest.strip_suffix(".tmp")?;
    let last = &body[body.rfind('.')? + 1..];
    let pid = last.split_once('-').map_or(last, |(p, _)| p);
    let n = last.split_once('-').map_or("0", |(_, n)| n);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok())?
}

/// Whether process `pid` exists. Where that cannot be told (no `/proc`), every process counts as
/// alive, so nothing is deleted.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_parse_back_to_their_pid() {
        assert_eq!(stale_pid(".a.ron.123-4.tmp", "a.ron"), Some(123));
        assert_eq!(stale_pid(".a.v1-8.safetensors.77.tmp", "a."), Some(77));
        assert_eq!(stale_pid(".a.ron.x-4.tmp", "a.ron"), None);
        assert_eq!(stale_pid("a.ron.123-4.tmp", "a.ron"), None);
        assert_eq!(stale_pid(".b.ron.123-4.tmp", "a.ron"), None);
        let own = temp_name("z.ron", 5);
        assert_eq!(stale_pid(&own, "z.ron"), Some(std::process::id()));
        assert!(process_alive(std::process::id()));
    }
}
