//! Helpers the integration tests share.

use std::process::Output;

/// The single error line of a failed run (no panic, exit 1).
pub fn failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected an error exit: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("resviz: error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    lines[0].to_string()
}
