//! The histogram panel's state: which block it shows, and the columns it draws from the focused
//! run's records (the steps that kept their gradient histograms).

use super::App;
use crate::records::histogram::{self, BINS};
use crate::tui::keys::Intent;

/// What the histogram panel draws for the focused run.
#[derive(Clone, Debug, PartialEq)]
pub struct HistColumns {
    /// The block's index and name.
    pub block: (usize, String),
    /// The step of each column, oldest first.
    pub steps: Vec<u64>,
    /// Per column, the fraction of entries in each magnitude bin, largest magnitude first (the
    /// heatmap's top row); exact zeros are left out of the rows.
    pub columns: Vec<Vec<f64>>,
    /// Per column, the fraction of entries that are exactly zero.
    pub zeros: Vec<f64>,
}

impl App {
    /// The block the histogram panel shows, clamped to the focused run's blocks.
    pub fn hist_block(&self) -> usize {
        let n = (self.runs.get(self.focus)).map_or(0, |h| h.info.block_names.len());
        self.view.hist_block.min(n.saturating_sub(1))
    }

    /// ↑ toward the output, ↓ toward the input, as in the cursor readout.
    pub(super) fn move_hist_block(&mut self, intent: Intent) {
        let b = self.hist_block();
        self.view.hist_block = match intent {
            Intent::Up => b + 1,
            _ => b.saturating_sub(1),
        };
        self.view.hist_block = self.hist_block();
    }

    /// The last `width` steps up to the cursor that kept histograms, for the chosen block;
    /// `None` before the focused run has any.
    pub fn hist_columns(&self, width: usize) -> Option<HistColumns> {
        let b = self.hist_block();
        let name = self.runs.get(self.focus)?.info.block_names.get(b)?.clone();
        let kept: Vec<_> = (self.steps(self.focus).iter())
            .filter_map(|r| Some((r.step, r.grad_hists.get(b).filter(|h| h.len() == BINS + 1)?)))
            .collect();
        let kept = &kept[kept.len().saturating_sub(width.max(1))..];
        if kept.is_empty() {
            return None;
        }
        let fracs: Vec<Vec<f32>> = kept.iter().map(|(_, h)| histogram::fractions(h)).collect();
        Some(HistColumns {
            block: (b, name),
            steps: kept.iter().map(|(s, _)| *s).collect(),
            columns: (fracs.iter())
                .map(|f| f[1..].iter().rev().map(|&x| x as f64).collect())
                .collect(),
            zeros: fracs.iter().map(|f| f[0] as f64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Msg, SidePanel};
    use crate::records::histogram;
    use crate::tui::render_tests::live;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn key(app: &mut super::App, code: KeyCode) {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    /// The panel's columns are the records' histograms of the chosen block as fractions, largest
    /// magnitude on top; ↑/↓ move the block only while the panel is shown, within the run.
    #[test]
    fn hist_columns_equal_the_records_and_arrows_choose_the_block() {
        let mut app = live();
        key(&mut app, KeyCode::Up);
        assert_eq!(
            app.hist_block(),
            0,
            "↑ is not the panel's while it is not shown"
        );
        while app.side_panel() != SidePanel::Hist {
            key(&mut app, KeyCode::Char('p'));
        }
        for _ in 0..3 {
            key(&mut app, KeyCode::Up);
        }
        key(&mut app, KeyCode::Down);
        assert_eq!(app.hist_block(), 2);
        let h = app.hist_columns(25).unwrap();
        assert_eq!(h.steps.len(), 25);
        let recs = &app.histories()[0].steps;
        assert_eq!(*h.steps.last().unwrap(), recs.last().unwrap().step);
        for (x, step) in h.steps.iter().enumerate() {
            let rec = recs.iter().find(|r| r.step == *step).unwrap();
            let counts = &rec.grad_hists[2];
            let total: u32 = counts.iter().sum();
            for k in 0..histogram::BINS {
                let want = counts[histogram::BINS - k] as f64 / total as f64;
                assert!((h.columns[x][k] - want).abs() < 1e-6, "step {step} row {k}");
            }
            assert!((h.zeros[x] - counts[0] as f64 / total as f64).abs() < 1e-6);
        }
        for _ in 0..100 {
            key(&mut app, KeyCode::Up);
        }
        assert_eq!(
            app.hist_block(),
            app.histories()[0].info.block_names.len() - 1
        );
    }
}
