//! Colours, styles and number formats shared by the views, so runs keep one colour everywhere
//! and numbers read the same in every panel.

pub use crate::numfmt::{num, pow10, ratio};
use ratatui::style::{Color, Modifier, Style};

/// Run colours by model family, so a plain stack has the same colour in every preset: plain,
/// v1 (and v1a), v2, then the other variants. A second run of the same family takes the
/// family's second shade. Chosen to stay distinct on dark and light terminals; none is the
/// alarm colour.
const FAMILIES: [(&str, [Color; 2]); 6] = [
    ("plain", [Color::LightRed, Color::Rgb(200, 120, 60)]),
    ("v1", [Color::LightCyan, Color::Rgb(70, 130, 220)]),
    ("v2", [Color::LightGreen, Color::Rgb(150, 200, 60)]),
    ("seed", [Color::LightYellow, Color::Rgb(200, 170, 90)]),
    ("", [Color::LightMagenta, Color::Rgb(170, 120, 220)]),
    ("", [Color::LightBlue, Color::Rgb(120, 160, 170)]),
];

/// The colour of run `run` given every run's spec (for a run's family and how many runs of
/// that family precede it). Variants outside the three main families share the last two rows,
/// alternating by run index.
pub fn run_color(specs: &[&str], run: usize) -> Color {
    let family = |s: &str| {
        let v = s.split('-').next().unwrap_or("");
        match v {
            "plain" => 0,
            "v1" | "v1a" => 1,
            "v2" => 2,
            "seed" => 3,
            _ => 4,
        }
    };
    let Some(spec) = specs.get(run) else {
        return FAMILIES[4].1[0];
    };
    let f = family(spec);
    let nth = specs[..run].iter().filter(|s| family(s) == f).count();
    if f == 4 {
        return FAMILIES[4 + nth % 2].1[(nth / 2) % 2];
    }
    FAMILIES[f].1[nth % 2]
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
