//! One writer at a time per snapshot name: a save to `DIR/STEM.ron` holds an exclusive lock on
//! the hidden file `DIR/.STEM.lock` from its first weight file to its clean-up.
//!
//! Why: two processes saving to one `--out` interleave otherwise (both write their files, both
//! rename their snapshot, then each one's clean-up deletes the other's files, and the snapshot
//! left names files that are gone). Under the lock the saves run one after the other, and the
//! last one leaves a complete set. The lock file stays behind (removing it would race with a
//! process about to lock it); its presence also marks `STEM` as a snapshot name, so a save to a
//! shorter sibling name never takes `STEM`'s files for its own ([`super::tidy`]).
//!
//! The lock is `flock`-style (`File::lock`): the system releases it when the holder exits, so a
//! killed save never leaves the name locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a save waits for another process's save to the same name before giving up.
const WAIT: Duration = Duration::from_secs(120);

/// The lock file of snapshots named `stem` in `dir`.
pub fn lock_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!(".{stem}.lock"))
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct SaveLock {
    _file: File,
}

/// Take the lock for snapshot `stem` in `dir`, waiting up to two minutes for another process's
/// save to finish. The error names the lock file.
pub fn acquire(dir: &Path, stem: &str) -> io::Result<SaveLock> {
    let path = lock_path(dir, stem);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(SaveLock { _file: file }),
            Err(TryLockError::WouldBlock) if start.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another process has been saving to the same name for over {} s \
                         (it holds {})",
                        WAIT.as_secs(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_name_waits_for_the_first() {
        let d = tempfile::tempdir().unwrap();
        let held = acquire(d.path(), "a").unwrap();
        let other = File::open(lock_path(d.path(), "a")).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        // Another name is independent.
        let _b = acquire(d.path(), "a.run2").unwrap();
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
