//! Colours, styles and number formats shared by the views, so runs keep one colour everywhere
//! and numbers read the same in every panel.

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

/// A compact number: 3 significant digits, scientific outside [0.01, 10⁴), explicit NaN and ±inf.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        (if x > 0.0 { "inf" } else { "-inf" }).into()
    } else if x == 0.0 {
        "0".into()
    } else if (0.01..1e4).contains(&x.abs()) {
        let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 4) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.1e}")
    }
}

/// `10` raised to an integer power, with superscript digits: `10⁻³`.
pub fn pow10(exp: i32) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits = exp.unsigned_abs().to_string();
    let sign = if exp < 0 { "⁻" } else { "" };
    let sup: String = digits.bytes().map(|d| SUP[(d - b'0') as usize]).collect();
    format!("10{sign}{sup}")
}

/// A ratio such as a gradient spread: `×3.2`, `×1.2e4`.
pub fn ratio(x: f64) -> String {
    format!("×{}", num(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::NEG_INFINITY), "-inf");
        assert_eq!(num(0.1), "0.100");
        assert_eq!(num(2.2966), "2.30");
        assert_eq!(num(812.4), "812");
        assert_eq!(num(12345.0), "1.2e4");
        assert_eq!(num(1e-4), "1.0e-4");
        assert_eq!(pow10(-3), "10⁻³");
        assert_eq!(pow10(12), "10¹²");
    }
}
