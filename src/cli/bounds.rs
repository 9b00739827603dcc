//! Numeric options bounded by what the machine can hold: a count whose results would not fit
//! in memory is refused with one line before anything is allocated for it (a `Vec` of
//! 18446744073709551615 points panics with "capacity overflow"; one of 10⁹ aborts the process).

use color_eyre::eyre::{Result, bail};

/// Refuse `option` = `value` when the `count` items it asks for (`value` itself, or its square
/// for a grid: an f64, so that it cannot wrap), of about `bytes_each` bytes each, need more than
/// half the memory available (the networks and the dataset need the rest).
pub fn fits(option: &str, value: u64, count: f64, bytes_each: f64) -> Result<()> {
    within(
        &format!("{option} {value}"),
        count * bytes_each,
        "its results",
    )
}

/// Refuse `--bn-batches` = `batches` of `batch` images each when their product does not fit a
/// count (`PreciseBn::indices` multiplies them: a product past `usize::MAX` wrapped, e.g. to no
/// batch-norm batches at all), or when the images it gathers — at most the `train_len` of the
/// training split, as f32s of `image_len` values — need more than half the memory available.
pub fn bn_batches(batches: usize, batch: usize, train_len: usize, image_len: usize) -> Result<()> {
    let Some(images) = batches.checked_mul(batch) else {
        bail!(
            "--bn-batches {batches} × batch {batch} is more images than a count holds (the \
             training split has {train_len}; at most all of them are used)"
        );
    };
    let images = images.min(train_len) as f64;
    let bytes_each = image_len as f64 * 4.0;
    within(
        &format!("--bn-batches {batches} × batch {batch}"),
        images * bytes_each,
        "its images",
    )
}

/// Refuse a plateau rule whose two windows (`window` steps each, the least it compares) do not
/// fit under the step cap `max_steps`: it could never stop training early, so
/// `--until-plateau` would silently train to the cap.
pub fn plateau_window(window: u64, max_steps: u64) -> Result<(), String> {
    match window.checked_mul(2) {
        Some(two) if two <= max_steps => Ok(()),
        _ => Err(format!(
            "--plateau-window {window} never fits: the rule compares two windows ({} steps), \
             more than the cap of {max_steps} steps (--steps)",
            2.0 * window as f64
        )),
    }
}

/// Refuse `what` needing `need` bytes for `held` when that is more than half the memory
/// available.
fn within(what: &str, need: f64, held: &str) -> Result<()> {
    let available = crate::train::budget::available_bytes();
    if need.is_finite() && need <= available / 2.0 {
        return Ok(());
    }
    bail!(
        "{what} would need about {} for {held} alone, more than half the {} available",
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

    #[test]
    fn bn_batches_that_wrap_or_outgrow_memory_are_refused() {
        use super::bn_batches;
        assert!(bn_batches(8, 32, 10_000, 3072).is_ok());
        // More batches than the split holds use the whole split: 10 000 images of 12 KB.
        assert!(bn_batches(1 << 40, 32, 10_000, 3072).is_ok());
        let e = bn_batches(1 << 62, 4, 10_000, 3072)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more images than a count holds"), "{e}");
        // A split of 10¹² images of 12 KB each: no machine holds them as f32s.
        let e = bn_batches(1 << 40, 1 << 20, 1 << 40, 3072)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("would need about") && e.contains("its images"),
            "{e}"
        );
    }

    #[test]
    fn a_plateau_window_must_fit_twice_under_the_cap() {
        use super::plateau_window;
        assert!(plateau_window(200, 4000).is_ok());
        assert!(plateau_window(250, 500).is_ok());
        let e = plateau_window(251, 500).unwrap_err();
        assert!(e.contains("(502 steps)") && e.contains("cap of 500"), "{e}");
        assert!(plateau_window(u64::MAX, u64::MAX).is_err());
    }
}
