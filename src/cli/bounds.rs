//! Numeric options bounded by what the machine can hold: a count whose results would not fit
//! in memory is refused with one line before anything is allocated for it (a `Vec` of
//! 18446744073709551615 points panics with "capacity overflow"; one of 10⁹ aborts the process).

use color_eyre::eyre::{Result, bail};

/// Refuse `option` = `value` when the `count` items it asks for (`value` itself, or its square
/// for a grid: an f64, so that it cannot wrap), of about `bytes_each` bytes each, need more than
/// half the memory available (the networks and the dataset need the rest).
pub fn fits(option: &str, value: u64, count: f64, bytes_each: f64) -> Result<()> {
    let need = count * bytes_each;
    let available = crate::train::budget::available_bytes();
    if need.is_finite() && need <= available / 2.0 {
        return Ok(());
    }
    bail!(
        "{option} {value} would need about {} for its results alone, more than half the {} \
         available",
        gb(need),
        gb(available)
    )
}

fn gb(bytes: f64) -> String {
    match bytes / 1e9 {
        g if g < 1e6 => format!("{g:.1} GB"),
        g => format!("{g:.1e} GB"),
    }
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn absurd_counts_are_refused_and_small_ones_pass() {
        assert!(fits("--points", 256, 256.0, 128.0).is_ok());
        let e = fits("--points", u64::MAX, u64::MAX as f64, 128.0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--points 18446744073709551615 would"),
            "{e}"
        );
        let big = u64::MAX as f64;
        assert!(fits("--grid", u64::MAX, big * big * big, 1.0).is_err());
        let e = fits("--points", 1_000_000_000_000, 1e12, 128.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--points 1000000000000 would need about 128000.0 GB"),
            "{e}"
        );
    }
}
