//! Footer: the latest status message, then as many key hints as fit, `? help` first so the full
//! list is always one key away.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, SidePanel};
use crate::tui::keys::{self, Binding};
use crate::tui::theme;

/// `hidden`: the layout leaves the learning panel and the heatmap out, so the footer says how
/// to see them.
pub fn render(frame: &mut Frame, area: Rect, app: &App, hidden: bool) {
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    if hidden && !matches!(app.side_panel(), SidePanel::Heatmap | SidePanel::Learning) {
        let hint = "learning: w, heatmap: p ";
        spans.push(Span::styled(hint, theme::muted()));
        used += hint.chars().count();
    }
    if let Some(status) = app.status() {
        let style = if status.error {
            theme::alarm()
        } else {
            theme::title()
        };
        spans.push(Span::styled(status.text.clone(), style));
        spans.push(Span::raw("  "));
        used += status.text.chars().count() + 2;
    }
    let mode = if app.is_replay() {
        keys::REPLAY
    } else {
        keys::LIVE
    };
    let bindings: Vec<&Binding> = keys::COMMON.iter().chain(mode).collect();
    for b in bindings {
        let width = b.keys.chars().count() + b.short.chars().count() + 5;
        if used + width > area.width as usize {
            break;
        }
        used += width;
        spans.push(Span::styled(format!(" {} ", b.keys), theme::key()));
        spans.push(Span::raw(format!(" {}  ", b.short)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
