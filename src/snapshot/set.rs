//! Saving a snapshot with its set of weight and optimizer files, all or nothing.
//!
//! Order: take the name's lock ([`super::lock`]), write every run's files under content-hash
//! names ([`super::weights`]), rename the snapshot into place, then delete the files of earlier
//! saves that it no longer names ([`super::tidy`]). A process killed at any point leaves the old
//! snapshot naming its old, untouched files or the new one naming the new files. A save that
//! fails (a full disk, a read-only file) removes the files it created itself and leaves the
//! snapshot and the files of the previous save as they were.

use super::resume::{ResumeError, ResumePoint, RunFiles, run_bases, stem_of};
use super::weights::{self, Encoded};
use super::{RunSnapshot, atomic, lock, tidy};
use crate::train::optim::Optimizer;
use crate::train::trainer::Trainer;
use std::io;
use std::path::{Path, PathBuf};

/// Test hooks, read from the environment at the points of a save: `RESVIZ_FAULT_AT=N` aborts the
/// process (as if killed) at the Nth point (after each file, after the snapshot, after clean-up;
/// `tests/suite/save_set.rs` kills a save at every point); `RESVIZ_FAIL_WRITE_AT=N` makes the Nth
/// write (the files, then the snapshot) fail as a full disk would; `RESVIZ_SAVE_PAUSE_MS=T`
/// sleeps T ms before the snapshot is renamed, so tests can overlap two saves.
#[derive(Default)]
struct Hooks {
    points: u32,
    writes: u32,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

impl Hooks {
    fn point(&mut self) {
        self.points += 1;
        if env_number("RESVIZ_FAULT_AT") == Some(self.points.into()) {
            std::process::abort();
        }
    }

    fn write(&mut self) -> io::Result<()> {
        self.writes += 1;
        match env_number("RESVIZ_FAIL_WRITE_AT") == Some(self.writes.into()) {
            true => Err(io::Error::from_raw_os_error(28)), // ENOSPC
            false => Ok(()),
        }
    }

    fn pause(&self) {
        if let Some(ms) = env_number("RESVIZ_SAVE_PAUSE_MS") {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

/// Write every run's weights and optimizer state beside `out` (its directory must exist), then
/// `snap` with a resume section naming them, then remove the files of earlier saves to `out`
/// that the new snapshot no longer names. On an error, everything this call created is removed
/// again and what was at `out` before is untouched.
pub fn save_with_weights(
    snap: &mut RunSnapshot,
    trainer: &Trainer,
    out: &Path,
) -> Result<Vec<RunFiles>, ResumeError> {
    let dir = atomic::dir_of(out);
    let stem = stem_of(out);
    let _lock = lock::acquire(&dir, &stem).map_err(|e| ResumeError::Write {
        path: lock::lock_path(&dir, &stem),
        message: e.to_string(),
    })?;
    atomic::remove_stale_temps(&dir, &format!("{stem}."));
    let mut hooks = Hooks::default();
    let mut created = Vec::new();
    match write_set(snap, trainer, out, &mut hooks, &mut created) {
        Ok(files) => {
            hooks.point();
            tidy::remove_unnamed(&dir, &stem, &files);
            hooks.point();
            Ok(files)
        }
        Err(e) => {
            for path in created {
                let _ = std::fs::remove_file(path);
            }
            snap.resume = None;
            Err(e)
        }
    }
}

/// The files, then the snapshot. `created` collects the files that did not exist before (a file
/// of the previous save can have the same content, hence the same name, and must stay).
fn write_set(
    snap: &mut RunSnapshot,
    trainer: &Trainer,
    out: &Path,
    hooks: &mut Hooks,
    created: &mut Vec<PathBuf>,
) -> Result<Vec<RunFiles>, ResumeError> {
    let dir = atomic::dir_of(out);
    let write_err = |path: &Path, message: String| ResumeError::Write {
        path: path.to_path_buf(),
        message,
    };
    let specs: Vec<String> = trainer.runs.iter().map(|r| r.spec.to_string()).collect();
    let mut files = Vec::new();
    for ((run, base), spec) in trainer.runs.iter().zip(run_bases(out, &specs)).zip(&specs) {
        let w = weights::encode(
            &run.net.state_dict(),
            weights::WEIGHTS_KEY,
            None,
            spec,
            run.step,
        );
        let about = run.opt.about();
        let dict = run.opt.state_dict(&run.net.store);
        let o = weights::encode(&dict, Optimizer::METADATA_KEY, Some(&about), spec, run.step);
        let mut write = |e: Result<Encoded, String>, suffix| {
            let e = e.map_err(|m| write_err(out, m))?;
            let name = e.name(&base, suffix);
            let path = dir.join(&name);
            let existed = std::fs::symlink_metadata(&path).is_ok();
            hooks
                .write()
                .and_then(|_| atomic::write(&path, &e.bytes))
                .map_err(|err| write_err(&path, err.to_string()))?;
            if !existed {
                created.push(path);
            }
            hooks.point();
            Ok::<_, ResumeError>((name, e.sha256))
        };
        let (weights, w_sum) = write(w, "safetensors")?;
        let (optimizer, o_sum) = write(o, "optim.safetensors")?;
        files.push(RunFiles {
            weights,
            optimizer,
            weights_sha256: Some(w_sum),
            optimizer_sha256: Some(o_sum),
        });
    }
    snap.resume = Some(ResumePoint {
        trainer: trainer.state(),
        files: files.clone(),
    });
    hooks.pause();
    hooks.write().map_err(|e| ResumeError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    super::write_snapshot(snap, out)?;
    Ok(files)
}
