//! Plain-data records of training: what one step of one run measured, evaluations, and a run's
//! bounded history. No tensors here: these cross to the UI and into snapshots.

use serde::{Deserialize, Serialize};

/// Statistics at one block boundary (`stem`, `stages.S.B`) for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockStat {
    /// ‖∂L/∂x_l‖ over the whole batch tensor.
    pub grad_norm: f32,
    /// ‖∂L/∂x_l‖·√B/√n with n = C·H·W: the RMS per element of one example's gradient of its own
    /// loss. Unlike the norm it does not grow with the tensor's size or shrink with the batch,
    /// so boundaries of different stages, and runs of different depth, compare. 0 if unknown.
    #[serde(default)]
    pub grad_rms: f32,
    pub act_mean: f32,
    pub act_std: f32,
    /// Fraction of exactly-zero activations (sparsity: about half for a healthy ReLU output).
    pub act_zero_frac: f32,
    /// Fraction of channels that are zero for every example of the batch (dead units).
    #[serde(default)]
    pub dead_frac: f32,
    /// He 2016 eq. 5 at the input of the block that produces this boundary (`None` for the
    /// stem, for blocks without a shortcut, and for records older than the measurement).
    #[serde(default)]
    pub split: Option<Eq5>,
    /// ‖ΔW‖/‖W‖ of this step's update over the convolution weights of the block that produces
    /// this boundary (the stem's for `stem`; the branch's, not a projection shortcut's): how fast
    /// the block is learning relative to its size. 0 if unknown.
    #[serde(default)]
    pub update_ratio: f32,
    /// ‖W‖ of the same weights after the update. 0 if unknown.
    #[serde(default)]
    pub weight_norm: f32,
}

/// ∂L/∂x_l of a residual block's input as the sum of what arrives through the shortcut and what
/// comes back through the branch (He et al. 2016, eq. 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Eq5 {
    /// ‖shortcut part‖: for an identity shortcut, ∂L/∂(block output side) passed back unchanged.
    pub shortcut: f32,
    /// ‖branch part‖: through F (and a gate, for gated blocks).
    pub branch: f32,
    /// Cosine of the angle between the two parts.
    pub cos: f32,
}

impl Eq5 {
    /// ‖shortcut‖ / (‖shortcut‖ + ‖branch‖): the share of ∂L/∂x_l that arrives through the
    /// shortcut (0 for a plain block, 1 when the branch passes nothing back).
    pub fn share(&self) -> Option<f32> {
        let d = self.shortcut + self.branch;
        (d > 0.0 && d.is_finite()).then(|| self.shortcut / d)
    }
}

/// One optimizer step of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based: the first step taken is step 1.
    pub step: u64,
    pub epoch: u32,
    pub loss: f32,
    /// Training accuracy on this batch, in [0, 1].
    pub acc: f32,
    pub lr: f32,
    pub img_per_s: f32,
    /// One per block boundary, input to output, in `RunInfo::block_names` order.
    pub blocks: Vec<BlockStat>,
    /// One per parameter, in `RunInfo::param_names` order.
    pub param_grad_norms: Vec<f32>,
    /// One per parameter: ‖Δw‖/‖w‖ of this step's update (empty where not kept, as above).
    #[serde(default)]
    pub update_ratios: Vec<f32>,
    /// One per parameter: ‖w‖ after this step's update (empty where not kept, as above).
    #[serde(default)]
    pub weight_norms: Vec<f32>,
    /// One per block, in `RunInfo::block_names` order: the [`crate::records::histogram::counts`]
    /// of its first conv weight's gradient (empty for a block without one, and for the whole
    /// step where not kept, as above).
    #[serde(default)]
    pub grad_hists: Vec<Vec<u32>>,
}

/// An evaluation on the test split (batch norm in evaluation mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    pub loss: f32,
    pub acc: f32,
}

/// What a run is: its model and the names its records are indexed by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The model spec as given, e.g. `v1-56`.
    pub spec: String,
    pub block_names: Vec<String>,
    pub param_names: Vec<String>,
    pub num_params: usize,
    /// One per parameter: ‖w‖ at initialisation, before the first step (empty if unknown, as
    /// in records older than the measurement).
    #[serde(default)]
    pub init_weight_norms: Vec<f32>,
}

/// Where a run stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    #[default]
    Running,
    Diverged {
        step: u64,
        reason: String,
    },
    Finished,
    /// Stopped by a signal (Ctrl-C, SIGTERM, …) before its last step.
    Interrupted,
}

/// Records [`RunHistory::push`] keeps exactly from the start of a run.
pub const HISTORY_HEAD: usize = 100;
/// Most recent records [`RunHistory::push`] keeps exactly, the only ones with parameter norms.
pub const HISTORY_TAIL: usize = 300;
/// Most records [`RunHistory::push`] keeps between the head and the tail (downsampled).
pub const HISTORY_MIDDLE: usize = 600;
/// Upper bound on `RunHistory::steps.len()` when every record goes through [`RunHistory::push`].
pub const HISTORY_MAX: usize = HISTORY_HEAD + HISTORY_MIDDLE + HISTORY_TAIL;

/// A run's record over time. `steps` is bounded: see [`RunHistory::push`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHistory {
    pub info: RunInfo,
    pub status: RunStatus,
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
    /// Wall-clock seconds spent training this run.
    pub wall_secs: f64,
}

impl RunHistory {
    pub fn new(info: RunInfo) -> Self {
        Self {
            info,
            ..Default::default()
        }
    }

    /// "Final" training loss or accuracy, the one definition `train`'s summary and `compare`
    /// share: the mean of `f` over the recorded steps in the last 10 % of the run, i.e. steps
    /// after `last − max(1, last / 10)` (steps 451–500 of 500; the last step alone below 10
    /// steps). Counted in steps, not records, so a downsampled or resumed history gives the same
    /// figure. `None` without steps.
    pub fn final_mean(&self, f: impl Fn(&StepRecord) -> f32) -> Option<f64> {
        let tail: Vec<f64> = self.final_steps()?.map(|s| f(s) as f64).collect();
        (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64)
    }

    /// The recorded steps in the last 10 % of the run: the window of
    /// [`final_mean`](Self::final_mean). `None` without steps.
    pub fn final_steps(&self) -> Option<impl Iterator<Item = &StepRecord>> {
        let last = self.last()?.step;
        let after = last - (last / 10).max(1).min(last);
        Some(self.steps.iter().filter(move |s| s.step > after))
    }

    /// Append a step record, keeping memory bounded for long runs.
    ///
    /// `steps` holds at most [`HISTORY_MAX`] records, in three parts:
    ///
    /// - the **head**: the first [`HISTORY_HEAD`] records pushed, every one kept;
    /// - the **tail**: the [`HISTORY_TAIL`] most recent records, every one kept, complete;
    /// - the **middle**: records that have left the tail, downsampled to those whose `step` is a
    ///   multiple of a power-of-two stride `s`. `s` is the smallest power of two for which the
    ///   step span of the middle, divided by `s`, is below [`HISTORY_MIDDLE`]; as the run grows
    ///   `s` doubles and the middle thins to every 2nd, 4th, 8th … step.
    ///
    /// Per-parameter gradient norms, update ratios and weight norms (~170 floats each a step for
    /// a 56-layer net, more than the block statistics) and the gradient histograms (17 counts a
    /// block) are kept only in the tail: a record leaving the tail, head or middle, has its
    /// per-parameter vectors and histograms emptied. Loss, accuracy, learning rate and block statistics are kept
    /// for every retained record.
    ///
    /// The rule depends only on the records themselves (no hidden state), so it is deterministic
    /// and a history loaded from a snapshot keeps being thinned the same way when a run resumes.
    /// Steps are expected to increase; records are never reordered.
    pub fn push(&mut self, rec: StepRecord) {
        self.steps.push(rec);
        let n = self.steps.len();
        if n <= HISTORY_TAIL {
            return;
        }
        // The record at `i` has just left the tail: into the head, or into the middle
        // [HISTORY_HEAD, i].
        let i = n - HISTORY_TAIL - 1;
        self.steps[i].param_grad_norms = Vec::new();
        self.steps[i].update_ratios = Vec::new();
        self.steps[i].weight_norms = Vec::new();
        self.steps[i].grad_hists = Vec::new();
        if i < HISTORY_HEAD {
            return;
        }
        let lo = self.steps[HISTORY_HEAD - 1].step;
        let stride = middle_stride(self.steps[i].step.saturating_sub(lo));
        let prev_stride = if i > HISTORY_HEAD {
            middle_stride(self.steps[i - 1].step.saturating_sub(lo))
        } else {
            1
        };
        let mut mid_end = i + 1;
        if !self.steps[i].step.is_multiple_of(stride) {
            self.steps.remove(i);
            mid_end = i;
        }
        if stride != prev_stride || mid_end - HISTORY_HEAD > HISTORY_MIDDLE {
            self.thin_middle(mid_end, stride);
        }
    }

    /// Keep, in the middle `[HISTORY_HEAD, mid_end)`, only steps that are multiples of `stride`,
    /// doubling it until the middle fits (a guard for unusual step numbers).
    fn thin_middle(&mut self, mut mid_end: usize, mut stride: u64) {
        loop {
            let mut idx = 0;
            let before = self.steps.len();
            self.steps.retain(|r| {
                let keep = idx < HISTORY_HEAD || idx >= mid_end || r.step.is_multiple_of(stride);
                idx += 1;
                keep
            });
            mid_end -= before - self.steps.len();
            let count = mid_end - HISTORY_HEAD;
            if count <= HISTORY_MIDDLE {
                return;
            }
            if stride >= 1 << 62 {
                // Step numbers that no stride thins (e.g. all equal): drop the oldest excess.
                self.steps
                    .drain(HISTORY_HEAD..HISTORY_HEAD + count - HISTORY_MIDDLE);
                return;
            }
            stride *= 2;
        }
    }

    pub fn last(&self) -> Option<&StepRecord> {
        self.steps.last()
    }
}

/// Smallest power of two `s` with `span / s < HISTORY_MIDDLE`: at most `HISTORY_MIDDLE` multiples
/// of `s` fit in a span of `span` steps.
fn middle_stride(span: u64) -> u64 {
    let mut s = 1u64;
    while span / s >= HISTORY_MIDDLE as u64 && s < 1 << 62 {
        s *= 2;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: u64) -> StepRecord {
        StepRecord {
            step,
            loss: step as f32,
            blocks: vec![BlockStat::default(); 3],
            param_grad_norms: vec![1.0; 5],
            update_ratios: Vec::new(),
            ..Default::default()
        }
    }

    fn run(n: u64) -> RunHistory {
        let mut h = RunHistory::new(RunInfo::default());
        for s in 1..=n {
            h.push(rec(s));
        }
        h
    }

    #[test]
    fn short_runs_are_kept_exactly() {
        let n = (HISTORY_HEAD + HISTORY_TAIL) as u64;
        let h = run(n);
        assert_eq!(h.steps.len(), n as usize);
        assert!(
            h.steps
                .iter()
                .enumerate()
                .all(|(i, r)| r.step == i as u64 + 1)
        );
        let (old, recent) = h.steps.split_at(n as usize - HISTORY_TAIL);
        assert!(old.iter().all(|r| r.param_grad_norms.is_empty()));
        assert!(recent.iter().all(|r| r.param_grad_norms.len() == 5));
        let h = run(HISTORY_TAIL as u64);
        assert!(h.steps.iter().all(|r| r.param_grad_norms.len() == 5));
    }

    #[test]
    fn long_runs_are_bounded_with_exact_head_and_tail() {
        for n in [401u64, 1_001, 1_002, 2_000, 10_000, 64_000, 200_000] {
            let h = run(n);
            assert!(h.steps.len() <= HISTORY_MAX, "{n}: {}", h.steps.len());
            // Head: steps 1..=HEAD, without parameter norms.
            for (i, r) in h.steps[..HISTORY_HEAD].iter().enumerate() {
                assert_eq!(r.step, i as u64 + 1);
                assert!(r.param_grad_norms.is_empty());
            }
            // Tail: the last TAIL steps, complete.
            let tail = &h.steps[h.steps.len() - HISTORY_TAIL..];
            for (k, r) in tail.iter().enumerate() {
                assert_eq!(r.step, n - HISTORY_TAIL as u64 + 1 + k as u64);
                assert_eq!(r.param_grad_norms.len(), 5);
            }
            // Middle: strictly increasing, one stride, no parameter norms.
            let mid = &h.steps[HISTORY_HEAD..h.steps.len() - HISTORY_TAIL];
            assert!(mid.windows(2).all(|w| w[0].step < w[1].step));
            assert!(mid.iter().all(|r| r.param_grad_norms.is_empty()));
            let span = n - HISTORY_TAIL as u64 - HISTORY_HEAD as u64;
            let stride = middle_stride(span);
            assert!(mid.iter().all(|r| r.step.is_multiple_of(stride)), "{n}");
            // Evenly covered: every multiple of the stride in the middle's span is present.
            let expected = (HISTORY_HEAD as u64 + 1..=n - HISTORY_TAIL as u64)
                .filter(|s| s.is_multiple_of(stride))
                .count();
            assert_eq!(mid.len(), expected, "{n}");
            assert!(
                mid.len() >= HISTORY_MIDDLE / 2 || n < 1_700,
                "{n}: {}",
                mid.len()
            );
        }
    }

    #[test]
    fn thinning_is_deterministic_and_resumable() {
        let a = run(12_345);
        // A history saved at 7,000 steps and resumed gives the same records.
        let mut b = run(7_000);
        for s in 7_001..=12_345 {
            b.push(rec(s));
        }
        assert_eq!(a, b);
    }

    #[test]
    fn odd_step_numbers_stay_bounded() {
        let mut h = RunHistory::new(RunInfo::default());
        for _ in 0..5_000 {
            h.push(rec(7)); // all equal: no stride thins them
        }
        assert!(h.steps.len() <= HISTORY_MAX);
        let mut h = RunHistory::new(RunInfo::default());
        for s in 0..20_000u64 {
            h.push(rec(2 * s + 1)); // all odd
        }
        assert!(h.steps.len() <= HISTORY_MAX);
        assert_eq!(h.last().unwrap().step, 39_999);
    }
}
