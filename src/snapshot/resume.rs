//! Resuming a run: each run's weights and optimizer state saved beside a snapshot as one set, and
//! a trainer restored from them that continues with the same numbers as one that never stopped.
//!
//! [`super::set::save_with_weights`] writes the set ([`super::weights`] names the files after their content),
//! then the snapshot, whose `resume` section records the file names (relative to its
//! directory), their SHA-256, and the trainer's position: batches drawn, sampler epoch and
//! offset, base learning rate, restart counter and each run's step count. A process killed at
//! any point leaves either the old snapshot naming the old, untouched files or the new one naming
//! the new files. [`restore`] refuses a set that does not check out: a file changed since it was
//! saved, weights of another model, an optimizer that took a different number of steps.

use super::weights;
use super::{RunSnapshot, SnapshotError, atomic};
use crate::model::checkpoint::CheckpointError;
use crate::records::record::{RunHistory, RunStatus};
use crate::train::optim::Optimizer;
use crate::train::trainer::{TrainError, Trainer, TrainerState};
use std::path::{Path, PathBuf};

/// What a resumed trainer continues from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint {
    pub trainer: TrainerState,
    /// Per run, in the order of the snapshot's runs.
    pub files: Vec<RunFiles>,
}

/// A run's weight and optimizer files, relative to the snapshot's directory, with their SHA-256
/// (lowercase hex; `None` in snapshots older than format 3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFiles {
    pub weights: String,
    pub optimizer: String,
    pub weights_sha256: Option<String>,
    pub optimizer_sha256: Option<String>,
}

/// Why a run cannot be saved with weights or resumed. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Saved without weights: by `train --out` without `--save-weights`, or by the dashboard,
    /// whose saves keep the histories only (also after a change of learning rate).
    #[error(
        "{0}: no resume state to continue from: it was saved without weights (the dashboard's \
         saves keep the history only); to resume, save with `resviz train --out FILE.ron \
         --save-weights`"
    )]
    NoResumeState(PathBuf),
    #[error("cannot resume from {snapshot}: {what} file {file} is missing")]
    Missing {
        snapshot: PathBuf,
        what: &'static str,
        file: PathBuf,
    },
    /// The file is not the one the snapshot was saved with.
    #[error(
        "cannot resume from {snapshot}: {file} has changed since the snapshot was saved \
         (its SHA-256 does not match)"
    )]
    Checksum { snapshot: PathBuf, file: PathBuf },
    #[error("cannot resume from {snapshot}: {file}: {message}")]
    Damaged {
        snapshot: PathBuf,
        file: PathBuf,
        message: String,
    },
    #[error("cannot resume from {snapshot}: {file} holds {found}, but the run is {expected}")]
    WrongModel {
        snapshot: PathBuf,
        file: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "cannot resume from {snapshot}: {file} is the optimizer state after {found} steps, but \
         the run is at step {expected}"
    )]
    OptimizerStep {
        snapshot: PathBuf,
        file: PathBuf,
        found: u64,
        expected: u64,
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
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    /// The snapshot's experiment or position contradicts what its own files and history say
    /// (an edited snapshot): resuming would silently train on other settings.
    #[error(
        "cannot resume from {snapshot}: {what} (was the snapshot edited? --resume continues the \
         saved experiment unchanged; for other settings start a new run with `resviz train`)"
    )]
    Edited { snapshot: PathBuf, what: String },
}

/// The base names (`STEM.SPEC`, or `STEM.runI.SPEC` for a repeated spec) of the runs' files
/// beside the snapshot `out`.
pub fn run_bases(out: &Path, specs: &[String]) -> Vec<String> {
    let stem = stem_of(out);
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| match specs[..i].contains(spec) {
            true => format!("{stem}.run{}.{spec}", i + 1),
            false => format!("{stem}.{spec}"),
        })
        .collect()
}

/// The stem `STEM` of a snapshot path `DIR/STEM.ron`, which its weight files' names start with.
pub(super) fn stem_of(out: &Path) -> String {
    out.file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned())
}

/// The resume point of the snapshot loaded from `path`, or why there is none.
pub fn point_of<'a>(snap: &'a RunSnapshot, path: &Path) -> Result<&'a ResumePoint, ResumeError> {
    snap.resume
        .as_ref()
        .ok_or_else(|| ResumeError::NoResumeState(path.to_path_buf()))
}

/// Every weight and optimizer file of `point` (saved with the snapshot at `path`) exists.
pub fn check_files(point: &ResumePoint, path: &Path) -> Result<(), ResumeError> {
    let dir = atomic::dir_of(path);
    for f in &point.files {
        for (what, name) in [("weights", &f.weights), ("optimizer state", &f.optimizer)] {
            let file = dir.join(name);
            if !file.is_file() {
                let snapshot = path.to_path_buf();
                return Err(ResumeError::Missing {
                    snapshot,
                    what,
                    file: PathBuf::from(name),
                });
            }
        }
    }
    Ok(())
}

/// What a run's file must be: the file saved for `spec` at `step`, with at most `max_data` bytes
/// of tensors (what the trainer's model of that spec holds).
struct Expected<'a> {
    spec: &'a str,
    step: u64,
    max_data: u64,
}

/// Check the file `name` beside the snapshot at `path` against the checksum the snapshot recorded
/// and the stamp in its own metadata (under `key`). Its size is checked against its header
/// before it is read ([`weights::read_checked`]). Without a recorded checksum (formats 1 and 2),
/// a file that carries a stamp was written by a format 3 save, so the snapshot was edited down
/// to drop its checksums: refused; a stamp's model and step must match in every format.
fn verify_file(
    path: &Path,
    name: &str,
    sha256: Option<&str>,
    key: &str,
    want: &Expected,
) -> Result<(), ResumeError> {
    let snapshot = path.to_path_buf();
    let file = PathBuf::from(name);
    let damaged = |message: String| ResumeError::Damaged {
        snapshot: snapshot.clone(),
        file: file.clone(),
        message,
    };
    let bytes =
        weights::read_checked(&atomic::dir_of(path).join(name), want.max_data).map_err(damaged)?;
    if let Some(sum) = sha256
        && weights::sha256_hex(&bytes) != sum
    {
        return Err(ResumeError::Checksum { snapshot, file });
    }
    let stamp = weights::check_stamp(&bytes, key).map_err(damaged)?;
    if sha256.is_none() && stamp.tensors_sha256.is_some() {
        return Err(damaged(
            "it was saved with a checksum, but the snapshot records none (a format 3 snapshot \
             edited to an older format?)"
                .into(),
        ));
    }
    if let Some(found) = stamp.model.filter(|m| m != want.spec) {
        return Err(ResumeError::WrongModel {
            snapshot,
            file,
            found: super::printable(&found),
            expected: super::printable(want.spec),
        });
    }
    match stamp.step.filter(|&s| s != want.step) {
        Some(found) => Err(damaged(format!(
            "it was saved at step {found}, but the run is at step {}",
            want.step
        ))),
        None => Ok(()),
    }
}

/// Check every file of `point` before anything is loaded: present, of the size its header
/// declares and no larger than the model needs, matching its checksum and stamp.
fn verify_files(trainer: &Trainer, point: &ResumePoint, path: &Path) -> Result<(), ResumeError> {
    check_files(point, path)?;
    for (i, ((spec, step), f)) in point.trainer.runs.iter().zip(&point.files).enumerate() {
        // The optimizer holds at most two buffers per parameter (Adam) and its step count; a
        // fresh one has no buffers yet, so it is bounded by the weights.
        let w_max = trainer
            .runs
            .get(i)
            .map_or(0, |r| weights::data_bytes(&r.net.state_dict()));
        let o_max = 2 * w_max + 8;
        let mut want = Expected {
            spec,
            step: *step,
            max_data: w_max,
        };
        let w_sum = f.weights_sha256.as_deref();
        verify_file(path, &f.weights, w_sum, weights::WEIGHTS_KEY, &want)?;
        want.max_data = o_max;
        let o_sum = f.optimizer_sha256.as_deref();
        verify_file(path, &f.optimizer, o_sum, Optimizer::METADATA_KEY, &want)?;
        if let Some(run) = trainer.runs.get(i) {
            check_hyper(path, &f.optimizer, &run.opt.about())?;
        }
    }
    Ok(())
}

/// The optimizer file's own `momentum=` and `weight_decay=` (what it was saved with) must be the
/// experiment's: an edited `momentum` in the snapshot would otherwise apply from the next step.
fn check_hyper(path: &Path, name: &str, expected: &str) -> Result<(), ResumeError> {
    let bytes = std::fs::read(atomic::dir_of(path).join(name)).unwrap_or_default();
    let Ok((_, meta)) = safetensors::SafeTensors::read_metadata(&bytes) else {
        return Ok(()); // verify_file has read this header already
    };
    let about = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(Optimizer::METADATA_KEY).cloned())
        .unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.split(' ')
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    for key in ["momentum", "weight_decay"] {
        if let (Some(saved), Some(now)) = (field(&about, key), field(expected, key))
            && saved != now
        {
            return Err(ResumeError::Edited {
                snapshot: path.to_path_buf(),
                what: format!(
                    "{name} was saved with {key} {}, but the experiment says {now}",
                    crate::numfmt::cut(&saved, 40)
                ),
            });
        }
    }
    Ok(())
}

/// The experiment against the history: the learning rate each run's last step recorded must be
/// the schedule's (base rate, schedule and warm-up), and the sampler's position the one its
/// batches of `cfg.batch` images reach.
fn check_history(
    trainer: &Trainer,
    point: &ResumePoint,
    path: &Path,
    histories: &[RunHistory],
) -> Result<(), ResumeError> {
    let edited = |what: String| ResumeError::Edited {
        snapshot: path.to_path_buf(),
        what,
    };
    let t = &point.trainer;
    let batch = trainer.cfg.batch.min(t.train_len).max(1);
    let per_epoch = crate::data::Sampler::batches_per_epoch(t.train_len, batch).max(1) as u64;
    let expected = match t.batches {
        0 => (0, 0),
        b => (
            ((b - 1) / per_epoch) as u32,
            (((b - 1) % per_epoch + 1) * batch as u64) as usize,
        ),
    };
    if t.sampler != expected {
        return Err(edited(format!(
            "after {} batches of {batch} the sampler would be at epoch {}, image {}, but the \
             snapshot says epoch {}, image {} (batch size changed?)",
            t.batches, expected.0, expected.1, t.sampler.0, t.sampler.1
        )));
    }
    // Only the dashboard changes the base rate while training, and its saves hold no resume
    // state: in a resumable snapshot the config's `lr` is the base rate. Resuming trains at
    // `base_lr`, so an edited `lr` alone would be ignored without a word.
    let (lr, base) = (trainer.cfg.lr, t.base_lr);
    if (lr - base).abs() > 1e-9 * base.abs() {
        return Err(edited(format!(
            "the config's lr is {lr}, but the run's base learning rate (resume.base_lr) is \
             {base} (lr changed?)"
        )));
    }
    for h in histories {
        let Some(last) = h.last() else { continue };
        let lr = crate::train::schedule::lr_at(&trainer.cfg, t.base_lr, last.step);
        let recorded = f64::from(last.lr);
        if (lr as f32 - last.lr).abs() > 1e-6 * recorded.abs().max(1e-12) as f32 {
            return Err(edited(format!(
                "{}'s step {} ran at learning rate {recorded}, but the experiment's schedule \
                 gives {lr} there (lr, schedule, warm-up or base rate changed?)",
                crate::numfmt::cut(&h.info.spec, 40),
                last.step
            )));
        }
    }
    Ok(())
}

/// The config's `seed` against the runs' initial weights: `trainer` has just rebuilt each run
/// from that seed, and each history recorded the norms of the weights it started from. The seed
/// also orders the batches, draws the augmentation and the weights of a later restart, so an
/// edited seed would go on training as another run would. After a reset or swap
/// (`restarts` > 0: the dashboard's, whose saves hold no resume state) runs start from later
/// seeds: not checked.
fn check_seed(
    trainer: &Trainer,
    point: &ResumePoint,
    path: &Path,
    histories: &[RunHistory],
) -> Result<(), ResumeError> {
    if point.trainer.restarts > 0 {
        return Ok(());
    }
    for (run, h) in trainer.runs.iter().zip(histories) {
        let (now, saved) = (&run.init_weight_norms, &h.info.init_weight_norms);
        let same = |(a, b): (&f32, &f32)| (a - b).abs() <= 1e-5 * b.abs().max(1e-12);
        if saved.is_empty() || (now.len() == saved.len() && now.iter().zip(saved).all(same)) {
            continue;
        }
        return Err(ResumeError::Edited {
            snapshot: path.to_path_buf(),
            what: format!(
                "{}'s initial weights were not drawn with the config's seed {} (seed changed?)",
                crate::numfmt::cut(&h.info.spec, 40),
                trainer.cfg.seed
            ),
        });
    }
    Ok(())
}

/// Put `trainer` (built from the snapshot's config) where the snapshot at `path` left off: its
/// position, each run's weights and optimizer state, and the runs' status and wall time from
/// `histories` (a diverged run stays stopped). Every file is checked before it is loaded.
pub fn restore(
    trainer: &mut Trainer,
    point: &ResumePoint,
    path: &Path,
    histories: &[RunHistory],
) -> Result<(), ResumeError> {
    verify_files(trainer, point, path)?;
    check_history(trainer, point, path, histories)?;
    let snapshot = path.to_path_buf();
    let dir = atomic::dir_of(path);
    trainer
        .restore(&point.trainer)
        .map_err(|error| ResumeError::Train {
            snapshot: snapshot.clone(),
            error,
        })?;
    check_seed(trainer, point, path, histories)?;
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
        // A diverged run's last step took no optimizer step.
        let diverged = matches!(h.status, RunStatus::Diverged { .. });
        let expected = run.step - u64::from(diverged && run.step > 0);
        if run.opt.steps() != expected {
            return Err(ResumeError::OptimizerStep {
                snapshot,
                file: PathBuf::from(&f.optimizer),
                found: run.opt.steps(),
                expected,
            });
        }
        run.wall_secs = h.wall_secs;
        // The record's initial norms, not the rebuilt net's: a restarted run had other weights.
        run.init_weight_norms = h.info.init_weight_norms.clone();
        if diverged {
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
        let b = run_bases(Path::new("saves/x.ron"), &specs);
        assert_eq!(b, ["x.v1-8", "x.plain-8", "x.run3.v1-8"]);
    }
}
