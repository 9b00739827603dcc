//! Resuming a run: each run's weights and optimizer state saved beside a snapshot, and a trainer
//! restored from them that continues with the same numbers as one that never stopped.
//!
//! Beside `DIR/NAME.ron` run `i` with spec `SPEC` writes `DIR/NAME.SPEC.safetensors` (the weights,
//! PyTorch `state_dict` names, batch-norm buffers included) and `DIR/NAME.SPEC.optim.safetensors`
//! (the optimizer state, see [`crate::train::optim`]); a spec that appears more than once gets
//! `NAME.runI.SPEC…` from its second run on. The snapshot's `resume` section records the file
//! names (relative to its directory) and the trainer's position: batches drawn, sampler epoch and
//! offset, base learning rate, restart counter and each run's step count.

use super::SnapshotError;
use crate::model::checkpoint::CheckpointError;
use crate::train::record::{RunHistory, RunStatus};
use crate::train::trainer::{TrainError, Trainer, TrainerState};
use std::path::{Path, PathBuf};

/// What a resumed trainer continues from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint {
    pub trainer: TrainerState,
    /// Per run, in the order of the snapshot's runs.
    pub files: Vec<RunFiles>,
}

/// A run's weight and optimizer files, relative to the snapshot's directory.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFiles {
    pub weights: String,
    pub optimizer: String,
}

/// Why a run cannot resume. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{0}: no resume state to continue from (save it with --out FILE.ron --save-weights)")]
    NoResumeState(PathBuf),
    #[error("cannot resume from {snapshot}: {what} file {file} is missing")]
    Missing {
        snapshot: PathBuf,
        what: &'static str,
        file: PathBuf,
    },
    #[error("cannot resume from {snapshot}: {error}")]
    Checkpoint {
        snapshot: PathBuf,
        error: CheckpointError,
    },
    #[error("cannot resume from {snapshot}: {error}")]
    Train {
        snapshot: PathBuf,
        error: TrainError,
    },
}

impl ResumePoint {
    /// The resume section agrees with the runs it belongs to.
    pub(crate) fn validate(&self, runs: &[RunHistory]) -> Result<(), String> {
        let n = self.trainer.runs.len();
        if n != runs.len() || self.files.len() != n {
            return Err(format!(
                "the resume state has {n} runs and {} pairs of files but the snapshot has {} runs",
                self.files.len(),
                runs.len()
            ));
        }
        for (i, ((spec, _), h)) in self.trainer.runs.iter().zip(runs).enumerate() {
            if *spec != h.info.spec {
                return Err(format!(
                    "run {}: resume state is for {spec} but the run is {}",
                    i + 1,
                    h.info.spec
                ));
            }
        }
        Ok(())
    }
}

/// File names for the runs' weights and optimizer state beside the snapshot `out`.
pub fn run_files(out: &Path, specs: &[String]) -> Vec<RunFiles> {
    let stem = out
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let base = if specs[..i].contains(spec) {
                format!("{stem}.run{}.{spec}", i + 1)
            } else {
                format!("{stem}.{spec}")
            };
            RunFiles {
                weights: format!("{base}.safetensors"),
                optimizer: format!("{base}.optim.safetensors"),
            }
        })
        .collect()
}

/// The directory of `path`; empty (the working directory) for a bare file name.
fn dir_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Write every run's weights and optimizer state beside the snapshot `out` (its directory is
/// created if missing); returns the resume point that refers to them.
pub fn save_weights(trainer: &Trainer, out: &Path) -> Result<ResumePoint, CheckpointError> {
    let dir = dir_of(out);
    std::fs::create_dir_all(&dir).map_err(|e| CheckpointError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let specs: Vec<String> = trainer.runs.iter().map(|r| r.spec.to_string()).collect();
    let files = run_files(out, &specs);
    for (run, f) in trainer.runs.iter().zip(&files) {
        run.net.save_safetensors(&dir.join(&f.weights))?;
        run.opt.save(&run.net.store, &dir.join(&f.optimizer))?;
    }
    Ok(ResumePoint {
        trainer: trainer.state(),
        files,
    })
}

/// The resume point of the snapshot loaded from `path`, or why there is none.
pub fn point_of<'a>(
    snap: &'a super::RunSnapshot,
    path: &Path,
) -> Result<&'a ResumePoint, ResumeError> {
    snap.resume
        .as_ref()
        .ok_or_else(|| ResumeError::NoResumeState(path.to_path_buf()))
}

/// Every weight and optimizer file of `point` (saved with the snapshot at `path`) exists.
pub fn check_files(point: &ResumePoint, path: &Path) -> Result<(), ResumeError> {
    let dir = dir_of(path);
    for f in &point.files {
        for (what, name) in [("weights", &f.weights), ("optimizer state", &f.optimizer)] {
            let file = dir.join(name);
            if !file.is_file() {
                let snapshot = path.to_path_buf();
                return Err(ResumeError::Missing {
                    snapshot,
                    what,
                    file,
                });
            }
        }
    }
    Ok(())
}

/// Put `trainer` (built from the snapshot's config) where the snapshot at `path` left off: its
/// position, each run's weights and optimizer state, and the runs' status and wall time from
/// `histories` (a diverged run stays stopped).
pub fn restore(
    trainer: &mut Trainer,
    point: &ResumePoint,
    path: &Path,
    histories: &[RunHistory],
) -> Result<(), ResumeError> {
    check_files(point, path)?;
    let snapshot = path.to_path_buf();
    let dir = dir_of(path);
    trainer
        .restore(&point.trainer)
        .map_err(|error| ResumeError::Train {
            snapshot: snapshot.clone(),
            error,
        })?;
    let ck = |error| ResumeError::Checkpoint {
        snapshot: snapshot.clone(),
        error,
    };
    for ((run, f), h) in trainer.runs.iter_mut().zip(&point.files).zip(histories) {
        run.net
            .load_safetensors(&dir.join(&f.weights))
            .map_err(ck)?;
        run.opt
            .load(&run.net.store, &dir.join(&f.optimizer))
            .map_err(ck)?;
        run.wall_secs = h.wall_secs;
        if let RunStatus::Diverged { .. } = h.status {
            run.status = h.status.clone();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sit_beside_the_snapshot_and_stay_unique() {
        let specs = ["v1-8".to_string(), "plain-8".into(), "v1-8".into()];
        let f = run_files(Path::new("saves/x.ron"), &specs);
        assert_eq!(f[0].weights, "x.v1-8.safetensors");
        assert_eq!(f[0].optimizer, "x.v1-8.optim.safetensors");
        assert_eq!(f[1].weights, "x.plain-8.safetensors");
        assert_eq!(f[2].weights, "x.run3.v1-8.safetensors");
        assert_eq!(dir_of(Path::new("x.ron")).join("y"), PathBuf::from("y"));
    }
}
