//! Heatmap panel: the focused run's blocks (input at the top) × training time, time bucketed to
//! the panel width, coloured by the gradient RMS (log10, on one scale for the whole experiment:
//! see `tui::scale`), by the shortcut's share (0 to 1) or by the update ratio ‖ΔW‖/‖W‖ of each
//! block's convolution weights (log, on the range shown: the moment a plain net's input blocks
//! freeze is where their rows go dark); `m` switches. A colour scale underneath.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::records::record::{BlockStat, StepRecord};
use crate::tui::app::{App, HeatMode};
use crate::tui::widgets::{Heatmap, heatmap};
use crate::tui::{series, theme};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let spec = app
        .histories()
        .get(app.focus())
        .map_or("", |h| h.info.spec.as_str());
    let mode = app.heat_mode();
    let what = match mode {
        HeatMode::Rms => "grad RMS (log)",
        HeatMode::Share => "shortcut share",
        HeatMode::Learn => "‖ΔW‖/‖W‖ (log)",
    };
    let title = format!(" {what} · {spec} · blocks × steps ");
    let title = if title.chars().count() + 2 > area.width as usize {
        format!(" {what} · {spec} ")
    } else {
        title
    };
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [map_row, scale_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let [labels, map_area] =
        Layout::horizontal([Constraint::Length(4), Constraint::Fill(1)]).areas(map_row);
    let steps = app.steps(app.focus());
    let (columns, range) = match mode {
        HeatMode::Rms => (
            bucket(steps, map_area.width as usize, log_rms, f64::NAN),
            app.rms_range(),
        ),
        HeatMode::Share => (
            bucket(steps, map_area.width as usize, share, heatmap::NOT_MEASURED),
            Some([0.0, 1.0]),
        ),
        HeatMode::Learn => {
            let columns = bucket(steps, map_area.width as usize, log_update, f64::NAN);
            let range = series::bounds(columns.iter().flatten().copied().filter(|v| v.is_finite()));
            (columns, range)
        }
    };
    let Some(range) = range.filter(|_| columns.iter().flatten().any(|v| v.is_finite())) else {
        frame.render_widget(
            Paragraph::new(Span::styled("nothing measured yet", theme::muted())),
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
        Paragraph::new(scale(range, mode, span, scale_area.width)),
        scale_area,
    );
}

/// log10 of the size-free RMS; `None` for a zero (a gap: nothing flowed), NaN for non-finite.
fn log_rms(b: &BlockStat) -> Option<f64> {
    if !b.grad_rms.is_finite() {
        return Some(f64::NAN);
    }
    series::log10(b.grad_rms)
}

/// log10 of the block's update ratio; `None` where not measured.
fn log_update(b: &BlockStat) -> Option<f64> {
    if !b.update_ratio.is_finite() {
        return Some(f64::NAN);
    }
    series::log10(b.update_ratio)
}

/// The shortcut's share; `None` where not measured (the stem).
fn share(b: &BlockStat) -> Option<f64> {
    b.split.and_then(|s| s.share()).map(|s| s as f64)
}

/// Mean of `value` per block over `width` equal buckets of consecutive records (one record per
/// column while they fit). A bucket holding any non-finite value for a block is NaN there; one
/// with no value at all is `empty` (NaN for the RMS: shown, not averaged away; not measured for
/// the share, whose stem has none).
fn bucket(
    steps: &[StepRecord],
    width: usize,
    value: fn(&BlockStat) -> Option<f64>,
    empty: f64,
) -> Vec<Vec<f64>> {
    let n = steps.len();
    let cols = n.min(width);
    (0..cols)
        .map(|c| {
            let chunk = &steps[c * n / cols..(c + 1) * n / cols];
            let rows = chunk.iter().map(|r| r.blocks.len()).max().unwrap_or(0);
            (0..rows)
                .map(|b| {
                    let values = chunk.iter().filter_map(|r| r.blocks.get(b)).map(value);
                    let (mut sum, mut count) = (0.0, 0);
                    for v in values.flatten() {
                        if !v.is_finite() {
                            return f64::NAN;
                        }
                        sum += v;
                        count += 1;
                    }
                    if count > 0 { sum / count as f64 } else { empty }
                })
                .collect()
        })
        .collect()
}

fn scale(
    range: [f64; 2],
    mode: HeatMode,
    steps: (Option<u64>, Option<u64>),
    width: u16,
) -> Line<'static> {
    let (lo, hi) = match mode {
        HeatMode::Rms | HeatMode::Learn => (
            theme::num(10f64.powf(range[0])),
            theme::num(10f64.powf(range[1])),
        ),
        HeatMode::Share => ("0".into(), "100%".into()),
    };
    // What is left for the colour ramp once the labels are placed; the step span only where it
    // still leaves a ramp of 8.
    let fixed = lo.chars().count() + hi.chars().count() + 20;
    let span = match steps {
        (Some(a), Some(b)) => format!("  steps {a}–{b}"),
        _ => String::new(),
    };
    let room = (width as usize).saturating_sub(fixed);
    let span = if room >= span.chars().count() + 8 {
        span
    } else {
        String::new()
    };
    let ramp_width = room.saturating_sub(span.chars().count()).min(24);
    let mut spans = vec![Span::styled(format!("    {lo} "), theme::muted())];
    spans.extend((0..ramp_width).map(|i| {
        let t = i as f64 / (ramp_width.max(2) - 1) as f64;
        Span::styled("█", Style::new().fg(heatmap::ramp(t)))
    }));
    spans.push(Span::styled(format!(" {hi}  "), theme::muted()));
    spans.push(Span::styled("█", Style::new().fg(heatmap::NON_FINITE)));
    spans.push(Span::styled(" none/NaN", theme::muted()));
    spans.push(Span::styled(span, theme::muted()));
    Line::from(spans)
}
