//! The `?` overlay: every key of the current mode, from the same table the footer uses, and a
//! few lines on how to read the panels.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::{keys, theme};

const READING: [&str; 3] = [
    "Gradient flow: ‖∂L/∂x‖ at each block boundary, input left. A plain deep stack's norm grows",
    "geometrically toward the input; shortcuts keep the profile flat. The spread is max/min.",
    "Activations in red: dead ReLUs > 50 %, std < 1e-3 or > 1e3, or NaN/inf.",
];

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mode = if app.is_replay() {
        keys::REPLAY
    } else {
        keys::LIVE
    };
    let mut lines: Vec<Line> = mode
        .iter()
        .chain(keys::COMMON)
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:>9} ", b.keys), theme::key()),
                Span::raw(format!("  {}", b.long)),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.extend(READING.iter().map(|t| Line::styled(*t, theme::muted())));
    let width = area.width.saturating_sub(4).min(96);
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(" keys · any key closes ", theme::title()));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
