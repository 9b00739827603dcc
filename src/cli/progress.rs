//! Headless progress for `train`, the experiments' training and the experiments themselves
//! (`PlainCount`) when stderr is not a terminal:
//! indicatif draws nothing there, so a log (`resviz train 2>log`) gets one plain line every few
//! seconds instead — step, each run's latest loss, images per second and the time left.

use crate::records::RunHistory;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between lines; `RESVIZ_PROGRESS_SECS` changes it (tests, very long runs).
const DEFAULT_EVERY: f64 = 5.0;

pub struct PlainProgress {
    every: Duration,
    started: Instant,
    last: Instant,
    first_step: u64,
    total: u64,
    /// Images one step of one run consumes.
    batch: usize,
}

impl PlainProgress {
    /// `Some` only when stderr is not a terminal (the bar is drawn otherwise).
    pub fn for_stderr(first_step: u64, total: u64, batch: usize) -> Option<Self> {
        if std::io::stderr().is_terminal() {
            return None;
        }
        let secs = std::env::var("RESVIZ_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_EVERY);
        let now = Instant::now();
        Some(Self {
            every: Duration::from_secs_f64(secs),
            started: now,
            last: now,
            first_step,
            total,
            batch,
        })
    }

    /// The line to print now, if the interval has passed since the last one.
    pub fn tick(&mut self, histories: &[RunHistory]) -> Option<String> {
        let now = Instant::now();
        if now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        Some(self.line(histories, now.duration_since(self.started)))
    }

    /// The closing line, printed whatever the interval.
    pub fn done(&mut self, histories: &[RunHistory]) -> String {
        self.line(histories, self.started.elapsed())
    }

    fn line(&self, histories: &[RunHistory], elapsed: Duration) -> String {
        let step = histories
            .iter()
            .filter_map(|r| r.last().map(|s| s.step))
            .max()
            .unwrap_or(self.first_step);
        let losses: Vec<String> = histories
            .iter()
            .map(|r| match r.last() {
                Some(s) => format!("{} {:.4}", r.info.spec, s.loss),
                None => format!("{} -", r.info.spec),
            })
            .collect();
        let done = step.saturating_sub(self.first_step) as f64;
        let secs = elapsed.as_secs_f64().max(1e-9);
        let images = done * self.batch as f64 * histories.len() as f64;
        let left = self.total.saturating_sub(step) as f64;
        let eta = match done > 0.0 {
            true => clock(left * secs / done),
            false => "-".to_string(),
        };
        format!(
            "step {step}/{}  {}  {:.0} img/s  elapsed {}  ETA {eta}",
            self.total,
            losses.join("  "),
            images / secs,
            clock(secs),
        )
    }
}

/// An experiment's progress when stderr is not a terminal, as [`PlainProgress`] is training's:
/// one line every few seconds (`shatter 120/768 passes (v1-56)  elapsed 12s  ETA 1m05s`) and a
/// last one when it is done, so a log shows the experiment is under way.
pub struct PlainCount {
    what: String,
    unit: &'static str,
    total: u64,
    every: Duration,
    started: Instant,
    last: Instant,
}

impl PlainCount {
    /// `Some` only when stderr is not a terminal (indicatif's bar is drawn otherwise).
    pub fn for_stderr(what: &str, unit: &'static str, total: u64) -> Option<Self> {
        let every = PlainProgress::for_stderr(0, 0, 0)?.every;
        let now = Instant::now();
        Some(Self {
            what: what.to_string(),
            unit,
            total,
            every,
            started: now,
            last: now,
        })
    }

    /// The line to print now, if the interval has passed since the last one.
    pub fn tick(&mut self, done: u64, msg: &str) -> Option<String> {
        let now = Instant::now();
        if now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        Some(self.line(done, msg))
    }

    /// The closing line, printed whatever the interval.
    pub fn done(&self) -> String {
        self.line(self.total, "done")
    }

    fn line(&self, done: u64, msg: &str) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let eta = match done > 0 {
            true => clock(self.total.saturating_sub(done) as f64 * secs / done as f64),
            false => "-".to_string(),
        };
        format!(
            "{} {done}/{} {} ({msg})  elapsed {}  ETA {eta}",
            self.what,
            self.total,
            self.unit,
            clock(secs)
        )
    }
}

/// `1h02m03s`, `4m05s` or `7s`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_reads_like_a_clock() {
        assert_eq!(clock(7.4), "7s");
        assert_eq!(clock(245.0), "4m05s");
        assert_eq!(clock(3723.0), "1h02m03s");
    }
}
