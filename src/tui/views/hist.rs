//! Gradient histogram panel: for the focused run and one block (↑/↓ choose), the magnitudes of
//! its first conv weight's gradient entries over the recorded steps: half-decade bins of |g|
//! (rows, 1e-1 at the top, 1e-9 at the bottom) × steps (columns, one per step that kept its
//! histogram: the recent ones), coloured by the share of entries in the bin. What `wandb.watch`
//! logs, on fixed bins so that steps line up row for row.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::records::histogram::{BINS, bin_label};
use crate::tui::app::App;
use crate::tui::theme;
use crate::tui::widgets::Heatmap;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let spec = (app.histories().get(app.focus())).map_or("", |h| h.info.spec.as_str());
    let label_w = 5;
    let map_w = area.width.saturating_sub(2 + label_w) as usize;
    let cols = app.hist_columns(map_w);
    let name = cols
        .as_ref()
        .map_or(String::new(), |c| format!(" · {}", c.block.1));
    let title = format!(" |∂L/∂w| histogram · {spec}{name} · ↑/↓ block ");
    let title = if title.chars().count() + 2 > area.width as usize {
        format!(" |∂L/∂w| · {spec}{name} ")
    } else {
        title
    };
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(cols) = cols else {
        let text = "no gradient histograms at this step (kept for the recent steps only)";
        frame.render_widget(Paragraph::new(Span::styled(text, theme::muted())), inner);
        return;
    };
    let [map_row, foot] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let [labels, map_area] =
        Layout::horizontal([Constraint::Length(label_w), Constraint::Fill(1)]).areas(map_row);
    let top = cols.columns.iter().flatten().copied().fold(0.0, f64::max);
    frame.render_widget(Heatmap::new(&cols.columns, [0.0, top.max(1e-9)]), map_area);
    // The top row's upper edge and the bottom row's lower edge (bins fold out-of-range values).
    let mut rows = vec![Line::styled("≥3e-2", theme::muted())];
    rows.resize(map_area.height.saturating_sub(1) as usize, Line::default());
    rows.push(Line::styled(bin_label(0), theme::muted()));
    // The middle row, by the lower edge of the lowest bin it covers.
    let h = map_area.height as usize;
    if h >= 5 {
        let k = BINS - 1 - (BINS * (h / 2 + 1) - 1) / h;
        rows[h / 2] = Line::styled(bin_label(k), theme::muted());
    }
    frame.render_widget(Paragraph::new(rows), labels);
    let (first, last) = (cols.steps[0], cols.steps[cols.steps.len() - 1]);
    let zeros = cols.zeros.last().copied().unwrap_or(0.0);
    let text = format!(
        "steps {first}–{last} · brightest {} · zero {}",
        crate::numfmt::pct(top),
        crate::numfmt::pct(zeros)
    );
    let text = if text.chars().count() > foot.width as usize {
        format!(
            "{first}–{last} · max {} · 0: {}",
            crate::numfmt::pct(top),
            crate::numfmt::pct(zeros)
        )
    } else {
        text
    };
    frame.render_widget(Paragraph::new(Span::styled(text, theme::muted())), foot);
}
