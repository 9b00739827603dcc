//! Read access to the dashboard state, for views and for building snapshots.

use super::{App, HeatMode, LearnMode, SaveKind, SidePanel, Status, TrainerPhase};
use crate::config::ExperimentConfig;
use crate::records::record::{EvalRecord, RunHistory, StepRecord};
use crate::tui::cursor::TimeCursor;
use crate::tui::theme;

/// Read access for views and for building snapshots. Step and eval slices end at the replay
/// cursor, so every panel shows the same moment.
impl App {
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }
    pub fn dataset(&self) -> &str {
        &self.dataset
    }
    /// Every run's full history (not cut at the cursor): what a snapshot saves.
    pub fn histories(&self) -> &[RunHistory] {
        &self.runs
    }
    /// What a save of `kind` writes: for [`SaveKind::BeforeDiscard`] the runs as they were
    /// when the discarding key was pressed (the screen may already show the new spec).
    pub fn histories_to_save(&self, kind: SaveKind) -> &[RunHistory] {
        match (kind, &self.before_discard) {
            (SaveKind::BeforeDiscard, Some((_, kept))) => kept,
            _ => &self.runs,
        }
    }
    /// The config a save of `kind` writes, naming the runs [`App::histories_to_save`] gives.
    pub fn config_to_save(&self, kind: SaveKind) -> &ExperimentConfig {
        match (kind, &self.before_discard) {
            (SaveKind::BeforeDiscard, Some((config, _))) => config,
            _ => &self.config,
        }
    }
    pub fn focus(&self) -> usize {
        self.focus
    }
    pub fn state(&self) -> &TrainerPhase {
        &self.state
    }
    pub fn lr(&self) -> f64 {
        self.lr
    }
    pub fn cursor(&self) -> Option<TimeCursor> {
        self.cursor
    }
    pub fn is_replay(&self) -> bool {
        self.cursor.is_some()
    }
    pub fn help_open(&self) -> bool {
        self.help
    }
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
    pub fn unsaved_steps(&self) -> u64 {
        self.unsaved_steps
    }
    pub fn loss_log(&self) -> bool {
        self.loss_log
    }
    pub fn playing(&self) -> bool {
        self.playing
    }
    pub fn side_panel(&self) -> SidePanel {
        self.side
    }
    pub fn experiments(&self) -> &crate::tui::experiments::Experiments {
        &self.experiments
    }
    pub fn learn_mode(&self) -> LearnMode {
        self.learn
    }

    pub fn heat_mode(&self) -> HeatMode {
        self.heat
    }
    /// The experiment's gradient-RMS colour scale (log10 units).
    pub fn rms_range(&self) -> Option<[f64; 2]> {
        self.rms_scale.range()
    }
    /// Run indices in drawing order: the others first, the focused run last so it is painted
    /// over them; runs hidden with `h` are not drawn.
    pub fn draw_order(&self) -> Vec<usize> {
        let runs = self.runs.len();
        (0..runs)
            .filter(|&i| i != self.focus)
            .chain((self.focus < runs).then_some(self.focus))
            .filter(|&i| !self.hidden(i))
            .collect()
    }
    /// Run `run`'s colour: by model family (see [`theme::run_color`]).
    pub fn run_color(&self, run: usize) -> ratatui::style::Color {
        let specs: Vec<&str> = self.runs.iter().map(|h| h.info.spec.as_str()).collect();
        theme::run_color(&specs, run)
    }
    /// Run `run`'s style: full colour when focused, dimmed otherwise; grey and struck through
    /// while hidden from the charts, so legends say so.
    pub fn run_style(&self, run: usize) -> ratatui::style::Style {
        if self.hidden(run) {
            return theme::muted().add_modifier(ratatui::style::Modifier::CROSSED_OUT);
        }
        theme::run_style(self.run_color(run), run == self.focus)
    }

    /// Run `run`'s step records up to the cursor.
    pub fn steps(&self, run: usize) -> &[StepRecord] {
        let Some(h) = self.runs.get(run) else {
            return &[];
        };
        match self.cursor {
            Some(c) => &h.steps[..h.steps.partition_point(|r| r.step <= c.at)],
            None => &h.steps,
        }
    }

    pub fn evals(&self, run: usize) -> &[EvalRecord] {
        let Some(h) = self.runs.get(run) else {
            return &[];
        };
        match self.cursor {
            Some(c) => &h.evals[..h.evals.partition_point(|e| e.step <= c.at)],
            None => &h.evals,
        }
    }

    /// The newest record of run `run` at the cursor.
    pub fn current(&self, run: usize) -> Option<&StepRecord> {
        self.steps(run).last()
    }

    /// The newest record of any run: where training as a whole stands.
    /// Run `run`'s epoch (0-based) at record `r`: data epochs since its first record, as the
    /// sampler runs on when a run restarts. A replay counts from the saved epochs.
    pub fn run_epoch(&self, run: usize, r: &StepRecord) -> u32 {
        let base = self.epoch_base.get(run).copied().unwrap_or(0);
        r.epoch.saturating_sub(base)
    }

    /// The run with the furthest step, and that step's record.
    pub fn latest_run(&self) -> Option<(usize, &StepRecord)> {
        (0..self.runs.len())
            .filter_map(|i| self.current(i).map(|r| (i, r)))
            .max_by_key(|(_, r)| r.step)
    }

    pub fn latest(&self) -> Option<&StepRecord> {
        (0..self.runs.len())
            .filter_map(|i| self.current(i))
            .max_by_key(|r| r.step)
    }

    /// The step training ends at, when the schedule names one (a cosine decays to 0 there).
    pub fn step_target(&self) -> Option<u64> {
        match self.config.schedule {
            crate::config::Schedule::Cosine { total } => Some(total),
            _ => None,
        }
    }

    /// Seconds until the furthest run reaches the step target: the steps left times the
    /// seconds a step of every running run takes (they step one after another), each from the
    /// mean of its last ten records. `None` in a replay, without a target or a throughput.
    pub fn eta_secs(&self) -> Option<f64> {
        let target = self.step_target().filter(|_| !self.is_replay())?;
        let left = target.saturating_sub(self.latest()?.step);
        let batch = self.config.batch as f64;
        let running = (0..self.runs.len())
            .filter(|&i| self.runs[i].status == crate::records::record::RunStatus::Running);
        let per_step: f64 = running
            .filter_map(|i| {
                let steps = self.steps(i);
                let secs: Vec<f64> = steps[steps.len().saturating_sub(10)..]
                    .iter()
                    .map(|r| batch / r.img_per_s as f64)
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .collect();
                (!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64)
            })
            .sum();
        (per_step > 0.0).then(|| left as f64 * per_step)
    }
}
