//! Numbers as people read them, one format per kind of number wherever it is shown: the dashboard
//! (`tui`) and the saved-run comparison (`snapshot::compare`) both format through here.

/// At most `max` characters of `s`, with `…` and the length when cut: what an error message
/// quotes of an input that may be megabytes long.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} bytes)", &s[..at], s.len()),
        None => s.to_string(),
    }
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

/// A plain decimal with 3 significant digits and no exponent, for tables people read:
/// `0.469`, `2.27`, `226602`; NaN and ±inf as [`num`] writes them.
pub fn plain(x: f64) -> String {
    plain_digits(x, 3)
}

/// [`plain`] with `digits` significant digits (losses compared to each other need 4).
pub fn plain_digits(x: f64, digits: i32) -> String {
    if !x.is_finite() || x == 0.0 {
        return num(x);
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

/// `10` raised to an integer power, with superscript digits: `10⁻³`.
pub fn pow10(exp: i32) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits = exp.unsigned_abs().to_string();
    let sign = if exp < 0 { "⁻" } else { "" };
    let sup: String = digits.bytes().map(|d| SUP[(d - b'0') as usize]).collect();
    format!("10{sign}{sup}")
}

/// A ratio such as a gradient spread: `×3.20`, `×1.2e4`, `×inf`.
pub fn ratio(x: f64) -> String {
    format!("×{}", num(x))
}

/// A fraction as a percentage with one decimal: `42.5%`; non-finite values as they are.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        format!("{x}")
    }
}

/// A wall-clock duration: `12.3s`, `4m05s`, `1h02m`; `-` for negative or non-finite seconds.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_have_no_exponent() {
        assert_eq!(plain(0.4694), "0.469");
        assert_eq!(plain(2.268), "2.27");
        assert_eq!(plain(226602.134), "226602");
        assert_eq!(plain(-0.0012345), "-0.00123");
        assert_eq!(plain(0.0), "0");
        assert_eq!(plain_digits(2.29793, 4), "2.298");
        assert_eq!(plain(f64::INFINITY), "inf");
        for x in [1e-9, 3.5e-4, 0.5, 7.0, 1e6] {
            assert!(!plain(x).contains('e'), "{x}: {}", plain(x));
        }
    }

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
        assert_eq!(ratio(f64::INFINITY), "×inf");
        assert_eq!(ratio(29.84), "×29.8");
        assert_eq!(pct(0.425), "42.5%");
        assert_eq!(pct(f64::NAN), "NaN");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(-1.0), "-");
    }
}
