//! Footer: `? help` first, always, so the full list is one key away; then the latest status
//! message (cut to fit; it expires) and as many key hints as fit.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, SidePanel, TrainerPhase};
use crate::tui::keys;
use crate::tui::theme;

/// `hidden`: the layout leaves the learning panel and the heatmap out, so the footer says how
/// to see them.
pub fn render(frame: &mut Frame, area: Rect, app: &App, hidden: bool) {
    let width = area.width as usize;
    let mut bindings = keys::COMMON
        .iter()
        .chain(super::help::mode_keys(app))
        .chain(keys::VIEW);
    // `? help` first and always: a status message never pushes it off.
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    if let Some(help) = bindings.next() {
        used += push_binding(&mut spans, help.keys, help.short);
    }
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
        // Cut to the room left; it expires after a few seconds and the hints come back.
        let text = cut(&status.text, width.saturating_sub(used + 2));
        used += text.chars().count() + 2;
        spans.push(Span::styled(text, style));
        spans.push(Span::raw("  "));
    }
    let paused = !app.is_replay() && *app.state() == TrainerPhase::Paused;
    for b in bindings {
        // While paused, space resumes: say that, not "pause".
        let short = if paused && b.keys == "space" {
            "resume"
        } else {
            b.short
        };
        if used + b.keys.chars().count() + short.chars().count() + 5 > width {
            break;
        }
        used += push_binding(&mut spans, b.keys, short);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// ` KEYS  SHORT  `; returns its width.
fn push_binding(spans: &mut Vec<Span<'static>>, keys: &str, short: &str) -> usize {
    spans.push(Span::styled(format!(" {keys} "), theme::key()));
    spans.push(Span::raw(format!(" {short}  ")));
    keys.chars().count() + short.chars().count() + 5
}

/// `text` in at most `room` characters, ending in `…` when cut.
fn cut(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_string();
    }
    let mut out: String = text.chars().take(room.saturating_sub(1)).collect();
    out.push('…');
    out
}
