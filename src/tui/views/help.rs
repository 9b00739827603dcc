//! The `?` overlay: every key of the current mode, from the same table the footer uses, and a
//! few lines on how to read the panels.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::{keys, theme};

/// Lines of at most 94 columns: the overlay's inside at 100 columns and wider, so none wraps.
const READING: [&str; 12] = [
    "Gradient flow: RMS per element of each example's ∂ℓ/∂x at every block boundary, input left,",
    "output right; dots: the first step. At init a plain BN stack's gradient grows ×1.3-1.4 per",
    "block toward the input (mean-field theory: ×1.47), a residual net's about ×1.1.",
    "Why plain-56 stops learning: those large first gradients make the input blocks' first",
    "updates as large as their weights, so their norms grow (×10 and more); batch norm makes a",
    "conv's output blind to its weights' scale, so its effective learning rate ‖ΔW‖/‖W‖ falls as",
    "1/‖W‖²: the input blocks freeze (learning panel, w) while the output blocks learn. The",
    "identity path keeps growth, first updates and ‖ΔW‖/‖W‖ even across depth (why lines).",
    "Shortcut share (He 2016 eq. 5, one unit): the part of ∂L/∂xₗ arriving through the shortcut.",
    "Plain: 0; residual: about half or more. In v1 the ReLU after the sum breaks eq. 5's form.",
    "Activations: zeros = sparsity (about half is a healthy ReLU); dead = channels zero in every",
    "example. Flagged: dead > 10 %, std < 1e-3 or > 1e3, NaN/inf.",
];

/// The bindings of `app`'s mode: replay, watching streams (only what works there), or a live
/// trainer. The footer prints the same.
pub(super) fn mode_keys(app: &App) -> &'static [keys::Binding] {
    if app.is_replay() {
        keys::REPLAY
    } else if app.watching().is_some() {
        keys::WATCH
    } else {
        keys::LIVE
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines: Vec<Line> = mode_keys(app)
        .iter()
        .chain(keys::COMMON)
        .chain(keys::VIEW)
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:>9} ", b.keys), theme::key()),
                Span::raw(format!("  {}", b.long)),
            ])
        })
        .collect();
    // Every key always fits (80×24 and up: the overlay may cover the header and the footer);
    // the notes on reading the panels only when they do.
    let room = area.height.saturating_sub(2) as usize;
    if lines.len() + 1 + READING.len() <= room {
        lines.push(Line::default());
        lines.extend(READING.iter().map(|t| Line::styled(*t, theme::muted())));
    } else if lines.len() < room {
        lines.push(Line::styled(
            "(notes on reading the panels: in a taller terminal)",
            theme::muted(),
        ));
    }
    let width = area.width.saturating_sub(4).min(96);
    let height = (lines.len() as u16 + 2).min(area.height);
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

#[cfg(test)]
mod tests {
    /// Every reading line fits the overlay's inside at 100 columns (94), so none wraps mid-phrase.
    #[test]
    fn reading_lines_fit_the_overlay() {
        for line in super::READING {
            assert!(
                line.chars().count() <= 94,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}
