//! Checks on a parsed snapshot: records agree with the names they are indexed by, are in order,
//! and hold values a training run can produce; the resume section (if any) agrees with the
//! histories. Also [`printable`], which every string read from a file goes through before it is
//! shown, so a crafted snapshot cannot send escape codes to the terminal.

use super::error::Inconsistency;
use super::{ResumePoint, RunSnapshot};
use crate::records::record::{RunHistory, RunStatus};

/// `s` with every control character (`char::is_control`: ESC, CSI, BEL, CR, newlines, …)
/// replaced by its `\u{…}` escape, so that it cannot move the cursor or talk to the terminal.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Make every string of `snap` that came from the file [`printable`].
pub fn sanitize_strings(snap: &mut RunSnapshot) {
    let fix = |s: &mut String| {
        if s.chars().any(char::is_control) {
            *s = printable(s);
        }
    };
    for s in [
        &mut snap.resviz_version,
        &mut snap.created,
        &mut snap.dataset,
    ] {
        fix(s);
    }
    snap.config.models.iter_mut().for_each(fix);
    fix(&mut snap.config.dataset);
    for run in &mut snap.runs {
        fix(&mut run.info.spec);
        run.info.block_names.iter_mut().for_each(fix);
        run.info.param_names.iter_mut().for_each(fix);
        if let RunStatus::Diverged { reason, .. } = &mut run.status {
            fix(reason);
        }
    }
}

/// The name of run `r` (0-based) in messages.
fn who(r: usize, run: &RunHistory) -> String {
    format!("run {} ({})", r + 1, printable(&run.info.spec))
}

impl RunSnapshot {
    /// Check that every record agrees with the names it is indexed by, lies in range, and that
    /// the resume section agrees with the histories.
    pub fn validate(&self) -> Result<(), Inconsistency> {
        for (r, run) in self.runs.iter().enumerate() {
            check_run(&who(r, run), run)?;
        }
        match &self.resume {
            Some(p) => check_resume(p, &self.runs, self.format_version),
            None => Ok(()),
        }
    }
}

fn check_run(who: &str, run: &RunHistory) -> Result<(), Inconsistency> {
    let run_name = || who.to_string();
    let (nb, np) = (run.info.block_names.len(), run.info.param_names.len());
    let mut prev: Option<u64> = None;
    for s in &run.steps {
        if s.blocks.len() != nb {
            let (step, found, expected) = (s.step, s.blocks.len(), nb);
            return Err(Inconsistency::BlockCount {
                run: run_name(),
                step,
                found,
                expected,
            });
        }
        let per_param = [&s.param_grad_norms, &s.update_ratios, &s.weight_norms];
        if let Some(v) = per_param.iter().find(|v| !v.is_empty() && v.len() != np) {
            let (step, found, expected) = (s.step, v.len(), np);
            return Err(Inconsistency::ParamCount {
                run: run_name(),
                step,
                found,
                expected,
            });
        }
        if let Some(previous) = prev
            && s.step <= previous
        {
            return Err(Inconsistency::StepsOutOfOrder {
                run: run_name(),
                step: s.step,
                previous,
            });
        }
        prev = Some(s.step);
        let range = |what, value: f32, ok: bool, range| match ok {
            true => Ok(()),
            false => Err(Inconsistency::OutOfRange {
                run: run_name(),
                step: s.step,
                what,
                value: value as f64,
                range,
            }),
        };
        range("training accuracy", s.acc, unit(s.acc), UNIT)?;
        range("training loss", s.loss, loss_ok(s.loss), LOSS)?;
        range(
            "learning rate",
            s.lr,
            s.lr.is_finite() && s.lr >= 0.0,
            NON_NEGATIVE,
        )?;
        range(
            "images/s",
            s.img_per_s,
            s.img_per_s.is_finite() && s.img_per_s >= 0.0,
            NON_NEGATIVE,
        )?;
        for b in &s.blocks {
            range("gradient norm", b.grad_norm, loss_ok(b.grad_norm), LOSS)?;
            let dead = b.act_zero_frac;
            range(
                "dead-ReLU fraction",
                dead,
                dead.is_nan() || unit(dead),
                UNIT,
            )?;
        }
    }
    let mut prev: Option<u64> = None;
    for e in &run.evals {
        if let Some(previous) = prev
            && e.step < previous
        {
            return Err(Inconsistency::EvalsOutOfOrder {
                run: run_name(),
                step: e.step,
                previous,
            });
        }
        prev = Some(e.step);
        let out = |what, value: f32, range| Inconsistency::OutOfRange {
            run: run_name(),
            step: e.step,
            what,
            value: value as f64,
            range,
        };
        if !unit(e.acc) {
            return Err(out("test accuracy", e.acc, UNIT));
        }
        if !loss_ok(e.loss) {
            return Err(out("test loss", e.loss, LOSS));
        }
    }
    if !(run.wall_secs.is_finite() && run.wall_secs >= 0.0) {
        let step = run.steps.last().map_or(0, |s| s.step);
        let value = run.wall_secs;
        let what = "training time (s)";
        return Err(Inconsistency::OutOfRange {
            run: run_name(),
            step,
            what,
            value,
            range: NON_NEGATIVE,
        });
    }
    Ok(())
}

const UNIT: &str = "[0, 1]";
const LOSS: &str = "[0, ∞] (or NaN for a diverged run)";
const NON_NEGATIVE: &str = "[0, ∞)";

fn unit(v: f32) -> bool {
    (0.0..=1.0).contains(&v)
}

/// Losses and norms are never negative; NaN and +∞ are what a diverging run records.
fn loss_ok(v: f32) -> bool {
    v.is_nan() || v >= 0.0
}

/// The resume section agrees with the runs it belongs to: one entry per run with the same spec,
/// at the step the run's history ends at, a usable base rate, and (from format 3) checksums.
/// Whether `name` is a plain file name: not empty, not `.` or `..`, no path separator or NUL.
pub fn is_bare_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

pub use crate::numfmt::cut;

fn check_resume(p: &ResumePoint, runs: &[RunHistory], version: u32) -> Result<(), Inconsistency> {
    let t = &p.trainer;
    let n = t.runs.len();
    if n != runs.len() || p.files.len() != n {
        let (files, expected) = (p.files.len(), runs.len());
        return Err(Inconsistency::ResumeRunCount {
            runs: n,
            files,
            expected,
        });
    }
    if !(t.base_lr.is_finite() && t.base_lr > 0.0) {
        return Err(Inconsistency::BaseLr(t.base_lr));
    }
    for (r, (((spec, step), f), h)) in t.runs.iter().zip(&p.files).zip(runs).enumerate() {
        let run = who(r, h);
        if *spec != h.info.spec {
            return Err(Inconsistency::ResumeSpec {
                run,
                resume_spec: printable(spec),
            });
        }
        let history_step = h.steps.last().map_or(0, |s| s.step);
        if *step != history_step {
            return Err(Inconsistency::ResumeStep {
                run,
                resume_step: *step,
                history_step,
            });
        }
        if *step > t.batches {
            return Err(Inconsistency::ResumeBatches {
                run,
                step: *step,
                batches: t.batches,
            });
        }
        for (what, name) in [("weights", &f.weights), ("optimizer", &f.optimizer)] {
            if !is_bare_name(name) {
                let name = printable(&cut(name, 80));
                return Err(Inconsistency::ResumeFileName { run, what, name });
            }
        }
        if version >= 3 {
            let missing = [
                ("weights", &f.weights_sha256),
                ("optimizer", &f.optimizer_sha256),
            ]
            .into_iter()
            .find(|(_, sum)| sum.is_none());
            if let Some((what, _)) = missing {
                return Err(Inconsistency::MissingChecksum { run, what });
            }
        }
    }
    Ok(())
}
