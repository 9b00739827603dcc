//! Colours, styles and number formats shared by the views, so runs keep one colour everywhere
//! and numbers read the same in every panel.

pub use crate::numfmt::{num, pow10, ratio};
use ratatui::style::{Color, Modifier, Style};

/// The colour of run `run` given every run's spec: the family palette of
/// [`crate::plotting::run_swatch`], shared with the comparison plot.
pub fn run_color(specs: &[&str], run: usize) -> Color {
    match crate::plotting::run_swatch(specs, run) {
        crate::plotting::Swatch::Ansi(9) => Color::LightRed,
        crate::plotting::Swatch::Ansi(10) => Color::LightGreen,
        crate::plotting::Swatch::Ansi(11) => Color::LightYellow,
        crate::plotting::Swatch::Ansi(12) => Color::LightBlue,
        crate::plotting::Swatch::Ansi(13) => Color::LightMagenta,
        crate::plotting::Swatch::Ansi(_) => Color::LightCyan,
        crate::plotting::Swatch::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

/// The focused run in full colour, the others dimmed so they read as context.
pub fn run_style(color: Color, focused: bool) -> Style {
    let style = Style::new().fg(color);
    if focused {
        style.add_modifier(Modifier::BOLD)
    } else {
        style.add_modifier(Modifier::DIM)
    }
}

/// A faint line: a run's profile at its first step, left on screen as a reference.
pub fn ghost_style(color: Color) -> Style {
    Style::new().fg(color).add_modifier(Modifier::DIM)
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn muted() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Alarms: white on red, which no run's colour is.
pub fn alarm() -> Style {
    Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD)
}

pub fn key() -> Style {
    Style::new().fg(Color::Black).bg(Color::Gray)
}
