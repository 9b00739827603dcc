//! Parameters of the focused run at the current step: each tensor's gradient norm and the size of
//! its last update relative to the tensor, ‖Δw‖/‖w‖ (about 1e-3 per step is a common healthy
//! figure; far above, the layer is being rewritten every step; far below, it is not learning).
//! Tensors beyond the panel's rows share one: the largest gradient norm and update ratio of the
//! group, so grouping never hides an outlier.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::tui::app::App;
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focus = app.focus();
    let Some(h) = app.histories().get(focus) else {
        return;
    };
    // Per-parameter figures are kept for the recent steps only (the history's tail).
    let rec = app
        .steps(focus)
        .iter()
        .rev()
        .find(|r| !r.param_grad_norms.is_empty());
    let names = &h.info.param_names;
    let capacity = (area.height.saturating_sub(3) as usize).max(1);
    let group = names.len().div_ceil(capacity).max(1);
    let grouped = if group > 1 {
        format!(" · max of {group} tensors a row")
    } else {
        String::new()
    };
    let title = format!(" parameters · {}{grouped} ", h.info.spec);
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let Some(rec) = rec else {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Span::styled(
                "no per-parameter figures at this step",
                theme::muted(),
            )),
            inner,
        );
        return;
    };
    let max_of = |v: &[f32], a: usize, b: usize| {
        v.get(a..b.min(v.len()))
            .and_then(|s| s.iter().map(|&x| x as f64).reduce(f64::max))
    };
    let rows = (0..names.len()).step_by(group).map(|first| {
        let last = (first + group).min(names.len());
        let label = if last - first > 1 {
            format!("{} … ({})", short(&names[first]), last - first)
        } else {
            short(&names[first]).to_string()
        };
        let fmt = |v: Option<f64>| v.map_or("—".to_string(), theme::num);
        Row::new([
            Cell::from(label),
            Cell::from(fmt(max_of(&rec.param_grad_norms, first, last))),
            Cell::from(fmt(max_of(&rec.update_ratios, first, last))),
        ])
    });
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let header = Row::new(["tensor", "‖∂L/∂w‖", "‖Δw‖/‖w‖"]).style(theme::muted());
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

/// `stages.2.3.conv1.weight` → `2.3.conv1.weight`.
fn short(name: &str) -> &str {
    name.strip_prefix("stages.").unwrap_or(name)
}
