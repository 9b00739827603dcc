//! How the charts are read, apart from what is trained: the cursor readout (one step and one
//! block at which every visible run's exact values are shown, as a TensorBoard hover does), runs
//! hidden from the charts, the loss smoothing window and the time axis. These keys work in every
//! mode. The readout's values are the records themselves, picked here so tests can check them.

use std::collections::BTreeSet;

use ratatui::crossterm::event::KeyCode;

use super::App;
use crate::records::record::{BlockStat, EvalRecord, StepRecord};
use crate::tui::keys::Intent;
use crate::tui::series;

/// Smoothing windows as a share of the run's records (the EMA's span); `None`: off.
pub const SMOOTHING: [Option<f64>; 6] = [
    None,
    Some(0.01),
    Some(0.02),
    Some(0.05),
    Some(0.1),
    Some(0.2),
];
/// A twentieth of the run: the window before it could be changed.
const DEFAULT_SMOOTHING: usize = 3;

#[derive(Clone, Debug, PartialEq)]
pub struct View {
    readout: Option<Readout>,
    hidden: BTreeSet<usize>,
    smoothing: usize,
    time_axis: bool,
    /// The block the histogram panel shows, input first (clamped to the focused run's).
    pub(super) hist_block: usize,
}

impl Default for View {
    fn default() -> Self {
        Self {
            readout: None,
            hidden: BTreeSet::new(),
            smoothing: DEFAULT_SMOOTHING,
            time_axis: false,
            hist_block: 0,
        }
    }
}

/// Where the cursor readout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readout {
    /// A step number: each run shows its record at this step, or its last one before it (a
    /// long run's history keeps only some of its middle steps).
    pub step: u64,
    /// A block boundary of the deepest visible run, input first; shallower runs show the
    /// boundary at the same relative depth.
    pub block: usize,
}

/// One visible run's values at the readout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadoutRow<'a> {
    pub run: usize,
    pub record: &'a StepRecord,
    /// The loss as the chart draws it smoothed at this record; `None` with smoothing off.
    pub smoothed: Option<f64>,
    /// The last test evaluation at or before the step.
    pub test: Option<&'a EvalRecord>,
    /// The boundary's name and statistics.
    pub block: Option<(&'a str, &'a BlockStat)>,
    /// Training seconds up to this record, as the time axis counts them.
    pub elapsed: f64,
}

impl App {
    /// The view keys; `false` if `intent` is not one (or does nothing in the current state and
    /// belongs to someone else, as the arrows do outside the readout).
    pub(super) fn view_key(&mut self, code: KeyCode, intent: Intent) -> bool {
        let reading = self.view.readout.is_some();
        match intent {
            _ if reading && code == KeyCode::Esc => self.view.readout = None,
            Intent::Readout if reading => self.view.readout = None,
            Intent::Readout => self.enter_readout(),
            Intent::Hide => self.toggle_hidden(),
            Intent::LessSmooth | Intent::MoreSmooth => self.smooth(intent),
            Intent::TimeAxis => {
                self.view.time_axis = !self.view.time_axis;
                let axis = match self.view.time_axis {
                    true => "training time (each run's own seconds of steps)",
                    false => "step",
                };
                self.set_status(format!("x axis: {axis} · t toggles"), false);
            }
            Intent::Back | Intent::Forward | Intent::PageBack | Intent::PageForward if reading => {
                self.move_readout(intent)
            }
            Intent::Start | Intent::End | Intent::Up | Intent::Down if reading => {
                self.move_readout(intent)
            }
            Intent::Up | Intent::Down if self.side == super::SidePanel::Hist => {
                self.move_hist_block(intent)
            }
            // Nothing else to move outside the readout.
            Intent::Up | Intent::Down => return true,
            _ => return false,
        }
        self.dirty = true;
        true
    }

    fn enter_readout(&mut self) {
        let Some(step) = self.visible_steps().max() else {
            self.set_status("the cursor needs a step: none yet", false);
            return;
        };
        self.view.readout = Some(Readout { step, block: 0 });
    }

    fn toggle_hidden(&mut self) {
        let Some(spec) = self.runs.get(self.focus).map(|h| h.info.spec.clone()) else {
            return;
        };
        let run = self.focus;
        let text = if self.view.hidden.remove(&run) {
            format!("run {} {spec} shown", run + 1)
        } else {
            self.view.hidden.insert(run);
            format!("run {} {spec} hidden from the charts (h shows it)", run + 1)
        };
        self.set_status(text, false);
    }

    fn smooth(&mut self, intent: Intent) {
        let i = self.view.smoothing;
        self.view.smoothing = match intent {
            Intent::LessSmooth => i.saturating_sub(1),
            _ => (i + 1).min(SMOOTHING.len() - 1),
        };
        let text = match self.smoothing() {
            None => "loss smoothing off".into(),
            Some(w) => format!("loss smoothing: EMA over {:.0} % of the run", w * 100.0),
        };
        self.set_status(text, false);
    }

    /// Every recorded step of the visible runs (up to the replay cursor), unsorted.
    fn visible_steps(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.runs.len())
            .filter(|&i| !self.hidden(i))
            .flat_map(|i| self.steps(i).iter().map(|r| r.step))
    }

    /// Arrows move to the previous / next recorded step of any visible run, pages by a tenth of
    /// the range (to the recorded step there), ↑/↓ by one block of the deepest run.
    fn move_readout(&mut self, intent: Intent) {
        let Some(r) = self.view.readout else {
            return;
        };
        let steps: BTreeSet<u64> = self.visible_steps().collect();
        let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
            return;
        };
        let page = ((last - first) / 10).max(1);
        let before = |s: u64| steps.range(..=s).next_back().copied().unwrap_or(first);
        let after = |s: u64| steps.range(s..).next().copied().unwrap_or(last);
        let deepest = self.readout_blocks();
        let mut next = r;
        match intent {
            Intent::Back => next.step = before(r.step.saturating_sub(1)),
            Intent::Forward => next.step = after(r.step + 1),
            Intent::PageBack => next.step = before(r.step.saturating_sub(page)),
            Intent::PageForward => next.step = after(r.step + page),
            Intent::Start => next.step = first,
            Intent::End => next.step = last,
            Intent::Up => next.block = (r.block + 1).min(deepest.saturating_sub(1)),
            _ => next.block = r.block.saturating_sub(1),
        }
        self.view.readout = Some(next);
    }

    /// Block boundaries of the deepest visible run: the readout's ↑/↓ move along them.
    pub fn readout_blocks(&self) -> usize {
        (0..self.runs.len())
            .filter(|&i| !self.hidden(i))
            .filter_map(|i| self.current(i).map(|r| r.blocks.len()))
            .max()
            .unwrap_or(0)
    }

    /// The cursor readout, when it is on.
    pub fn readout(&self) -> Option<Readout> {
        self.view.readout
    }

    /// Every visible run's values at the readout, run order; runs without a record by then are
    /// left out.
    pub fn readout_rows(&self) -> Vec<ReadoutRow<'_>> {
        let Some(at) = self.view.readout else {
            return Vec::new();
        };
        let deepest = self.readout_blocks();
        (0..self.runs.len())
            .filter(|&i| !self.hidden(i))
            .filter_map(|run| {
                let steps = self.steps(run);
                let k = steps
                    .partition_point(|r| r.step <= at.step)
                    .checked_sub(1)?;
                let record = &steps[k];
                let evals = self.evals(run);
                let test = evals.partition_point(|e| e.step <= at.step).checked_sub(1);
                let blocks = record.blocks.len();
                let j = match (blocks, deepest) {
                    (0, _) => None,
                    (_, 0 | 1) => Some(0),
                    _ => Some(
                        ((at.block.min(deepest - 1) as f64 * (blocks - 1) as f64
                            / (deepest - 1) as f64)
                            .round() as usize)
                            .min(blocks - 1),
                    ),
                };
                let names = &self.runs[run].info.block_names;
                let block =
                    j.map(|j| (names.get(j).map_or("?", String::as_str), &record.blocks[j]));
                let smoothed = self.smoothing().and_then(|w| {
                    let pts: Vec<(f64, f64)> = steps
                        .iter()
                        .map(|r| (r.step as f64, r.loss as f64))
                        .collect();
                    let ema = series::ema(&pts, w);
                    ema.iter()
                        .rev()
                        .find(|p| p.0 <= record.step as f64)
                        .map(|p| p.1)
                });
                Some(ReadoutRow {
                    run,
                    record,
                    smoothed,
                    test: test.map(|t| &evals[t]),
                    block,
                    elapsed: self.elapsed(run).get(k).copied().unwrap_or(0.0),
                })
            })
            .collect()
    }

    /// Whether run `run` is hidden from the charts (`h`).
    pub fn hidden(&self, run: usize) -> bool {
        self.view.hidden.contains(&run)
    }

    /// The loss smoothing window as a share of the run; `None`: off.
    pub fn smoothing(&self) -> Option<f64> {
        SMOOTHING[self.view.smoothing]
    }

    /// Whether the time charts run over training time instead of steps (`t`).
    pub fn time_axis(&self) -> bool {
        self.view.time_axis
    }

    /// Run `run`'s training seconds at each of its records up to the cursor (aligned with
    /// [`App::steps`]): each step's time is the batch over its throughput, and a record stands
    /// for the steps since the previous one, as a long run's middle keeps only some records.
    /// Derived rather than stored, so saved runs and streams of any age have it.
    pub fn elapsed(&self, run: usize) -> Vec<f64> {
        series::elapsed(self.steps(run), self.config.batch as f64)
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
