//! When a run's training loss has levelled off ("trained to a plateau"): the papers' claims are
//! about converged nets, and `--until-plateau` stops training by this rule instead of a fixed
//! step count.
//!
//! The rule, checked every `window` steps once two whole windows exist: with `prev` and `last`
//! the mean training loss over the previous and the last `window` steps (non-overlapping),
//! the run has plateaued when `last > prev · (1 − tol)`, i.e. the loss fell by less than the
//! fraction `tol` from one window to the next (or rose). A run that diverged counts as done.
//! Training stops when every run has plateaued, or at the step cap, whichever comes first.

use serde::{Deserialize, Serialize};

/// The rule's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauRule {
    /// Steps per window.
    pub window: u64,
    /// Least relative improvement of the window mean that counts as still learning.
    pub tol: f64,
    /// Never train more steps than this.
    pub max_steps: u64,
}

impl Default for PlateauRule {
    /// 200-step windows (at batch 32 the mean of 200 steps' losses scatters by a few percent
    /// of itself late in training, so 5 % is a real improvement), at most 4000 steps.
    fn default() -> Self {
        Self {
            window: 200,
            tol: 0.05,
            max_steps: 4000,
        }
    }
}

/// One run's window sums, fed its losses step by step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlateauTracker {
    /// Mean loss of each finished window, in order.
    pub windows: Vec<f64>,
    sum: f64,
    count: u64,
    /// The step at which the rule first held.
    pub reached_at: Option<u64>,
    /// Diverged: no longer trains, never blocks the stop.
    pub gave_up: bool,
}

impl PlateauTracker {
    /// Feed the loss of `step` (counted from 1 within this training). Returns whether the
    /// run is done (plateaued or given up).
    pub fn push(&mut self, rule: &PlateauRule, step: u64, loss: f64) -> bool {
        if self.done() {
            return true;
        }
        self.sum += loss;
        self.count += 1;
        if self.count == rule.window.max(1) {
            self.windows.push(self.sum / self.count as f64);
            (self.sum, self.count) = (0.0, 0);
            if let [.., prev, last] = self.windows[..]
                && !(last <= prev * (1.0 - rule.tol))
            {
                // A NaN loss also stops: it will not improve.
                self.reached_at = Some(step);
            }
        }
        self.done()
    }

    pub fn done(&self) -> bool {
        self.reached_at.is_some() || self.gave_up
    }
}

/// Whether every tracker is done (and there is at least one).
pub fn all_done(trackers: &[PlateauTracker]) -> bool {
    !trackers.is_empty() && trackers.iter().all(PlateauTracker::done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: PlateauRule = PlateauRule {
        window: 4,
        tol: 0.05,
        max_steps: 1000,
    };

    /// The rule computed naively from the whole loss series: the first multiple of the window
    /// (from the second on) where the last window's mean is not below (1 − tol) × the
    /// previous window's.
    fn naive(losses: &[f64], rule: &PlateauRule) -> Option<u64> {
        let w = rule.window as usize;
        (2..=losses.len() / w).find_map(|k| {
            let mean = |a: usize| losses[a..a + w].iter().sum::<f64>() / w as f64;
            let (prev, last) = (mean((k - 2) * w), mean((k - 1) * w));
            (!(last <= prev * (1.0 - rule.tol))).then_some((k * w) as u64)
        })
    }

    fn run(losses: &[f64]) -> Option<u64> {
        let mut t = PlateauTracker::default();
        for (i, &l) in losses.iter().enumerate() {
            if t.push(&RULE, i as u64 + 1, l) {
                break;
            }
        }
        t.reached_at
    }

    #[test]
    fn a_falling_loss_runs_on_and_a_flat_one_stops_after_two_windows() {
        let falling: Vec<f64> = (0..40).map(|i| 2.3 * 0.9f64.powi(i)).collect();
        assert_eq!(run(&falling), None, "falls 34 % per window");
        assert_eq!(run(&[1.0; 40]), Some(8));
        // 2 % per window: below the 5 % tolerance.
        let slow: Vec<f64> = (0..40).map(|i| 0.995f64.powi(i)).collect();
        assert_eq!(run(&slow), Some(8));
    }

    #[test]
    fn the_tracker_agrees_with_the_naive_rule() {
        // Decay then a noisy floor: exponential to 0.3 with a deterministic wiggle.
        let series: Vec<f64> = (0..200)
            .map(|i| {
                0.3 + 2.0 * (-(i as f64) / 15.0).exp() + 0.04 * ((i * 7919) % 13) as f64 / 13.0
            })
            .collect();
        let want = naive(&series, &RULE);
        assert!(
            want.is_some_and(|s| s > 8),
            "the example must level off late: {want:?}"
        );
        assert_eq!(run(&series), want);
        for cut in [8, 20, 37, 60] {
            assert_eq!(
                run(&series[..cut]),
                naive(&series[..cut], &RULE),
                "first {cut}"
            );
        }
    }

    #[test]
    fn a_rising_or_nan_loss_counts_as_levelled_off_and_divergence_as_done() {
        assert_eq!(run(&[1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]), Some(8));
        assert_eq!(run(&[1.0, 1.0, 1.0, 1.0, f64::NAN, 0.1, 0.1, 0.1]), Some(8));
        let mut t = [PlateauTracker::default(), PlateauTracker::default()];
        assert!(!all_done(&t));
        t[0].gave_up = true;
        assert!(!all_done(&t));
        t[1].reached_at = Some(3);
        assert!(all_done(&t));
        assert!(!all_done(&[]));
    }
}
