//! Heatmap panel: log10 ‖∂L/∂x‖ of the focused run, blocks (input at the top) × training time,
//! time bucketed to the panel width, with a colour scale underneath.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::train::record::StepRecord;
use crate::tui::app::App;
use crate::tui::widgets::{Heatmap, heatmap};
use crate::tui::{series, theme};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let spec = app
        .histories()
        .get(app.focus())
        .map_or("", |h| h.info.spec.as_str());
    let title = format!(" log ‖∂L/∂x‖ · {spec} · blocks × steps ");
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [map_row, scale_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let [labels, map_area] =
        Layout::horizontal([Constraint::Length(4), Constraint::Fill(1)]).areas(map_row);
    let steps = app.steps(app.focus());
    let columns = bucket(steps, map_area.width as usize);
    let Some(range) = series::bounds(columns.iter().flatten().copied()) else {
        frame.render_widget(
            Paragraph::new(Span::styled("no gradient norms yet", theme::muted())),
            map_row,
        );
        return;
    };
    frame.render_widget(Heatmap::new(&columns, range), map_area);
    let mut rows = vec![Line::styled("in", theme::muted())];
    rows.resize(map_area.height.saturating_sub(1) as usize, Line::default());
    rows.push(Line::styled("out", theme::muted()));
    frame.render_widget(Paragraph::new(rows), labels);
    let span = (steps.first().map(|r| r.step), steps.last().map(|r| r.step));
    frame.render_widget(
        Paragraph::new(scale(range, span, scale_area.width)),
        scale_area,
    );
}

/// Mean log10 norm per block over `width` equal buckets of consecutive records (one record per
/// column while they fit). A bucket holding any non-finite norm for a block is NaN there, as is one whose norms
/// are all zero: both are alarms to show, not values to average.
fn bucket(steps: &[StepRecord], width: usize) -> Vec<Vec<f64>> {
    let n = steps.len();
    let cols = n.min(width);
    (0..cols)
        .map(|c| {
            let chunk = &steps[c * n / cols..(c + 1) * n / cols];
            let rows = chunk.iter().map(|r| r.blocks.len()).max().unwrap_or(0);
            (0..rows)
                .map(|b| {
                    let norms = chunk
                        .iter()
                        .filter_map(|r| r.blocks.get(b))
                        .map(|s| s.grad_norm);
                    let (mut sum, mut count) = (0.0, 0);
                    for g in norms {
                        if !g.is_finite() {
                            return f64::NAN;
                        }
                        if let Some(l) = series::log10(g) {
                            sum += l;
                            count += 1;
                        }
                    }
                    if count > 0 {
                        sum / count as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        })
        .collect()
}

fn scale(range: [f64; 2], steps: (Option<u64>, Option<u64>), width: u16) -> Line<'static> {
    let lo = theme::num(10f64.powf(range[0]));
    let hi = theme::num(10f64.powf(range[1]));
    let ramp_width = (width as usize)
        .saturating_sub(lo.len() + hi.len() + 36)
        .min(24);
    let mut spans = vec![Span::styled(format!("    {lo} "), theme::muted())];
    spans.extend((0..ramp_width).map(|i| {
        let t = i as f64 / (ramp_width.max(2) - 1) as f64;
        Span::styled("█", Style::new().fg(heatmap::ramp(t)))
    }));
    spans.push(Span::styled(format!(" {hi}  "), theme::muted()));
    spans.push(Span::styled("█", Style::new().fg(heatmap::NON_FINITE)));
    spans.push(Span::styled(" NaN/inf/0", theme::muted()));
    if let (Some(a), Some(b)) = steps {
        spans.push(Span::styled(format!("  steps {a}–{b}"), theme::muted()));
    }
    Line::from(spans)
}
