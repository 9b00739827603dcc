//! Colours, styles and number formats shared by the views, so runs keep one colour everywhere
//! and numbers read the same in every panel.

pub use crate::numfmt::{num, pow10, ratio};
use ratatui::style::{Color, Modifier, Style};

/// Run colours by run index; chosen to stay distinct on dark and light terminals.
const RUNS: [Color; 6] = [
    Color::LightRed,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightBlue,
];

pub fn run_color(run: usize) -> Color {
    RUNS[run % RUNS.len()]
}

/// The focused run in full colour, the others dimmed so they read as context.
pub fn run_style(run: usize, focus: usize) -> Style {
    let style = Style::new().fg(run_color(run));
    if run == focus {
        style.add_modifier(Modifier::BOLD)
    } else {
        style.add_modifier(Modifier::DIM)
    }
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn muted() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn alarm() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn key() -> Style {
    Style::new().fg(Color::Black).bg(Color::Gray)
}
