//! Where results go: standard output that may be closed (`| head -1`) or full (`> /dev/full`),
//! which is an ordinary error, and an `--out` path checked before any work is done on its behalf.

use crate::snapshot::atomic;
use color_eyre::eyre::{Result, eyre};
use std::io::{self, Write};
use std::path::Path;

/// Write `text` to standard output and flush it; a closed or full output is an error.
pub fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| eyre!("cannot write to standard output: {e}"))
}

/// Write one line of news (progress, "saved …") to standard error. A closed or full standard
/// error loses the line but is no reason to stop: the work it reports on is done (`eprintln!`
/// would panic instead).
pub fn note(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}").and_then(|_| err.flush());
}

/// Refuse an output path that a save could not write: an existing target that is not a regular
/// file (a symlink, a device), a directory that cannot be created, or one where a file named
/// `longest` (the longest name the save will create there) cannot be created. Creates the
/// directory if missing.
/// `option` names the flag the path came from (`--out`, `--plot`) in every message.
pub fn check_out(out: &Path, longest: &str, option: &str) -> Result<()> {
    let shown = out.display();
    let dir = atomic::dir_of(out);
    std::fs::create_dir_all(&dir).map_err(|e| {
        eyre!(
            "cannot create directory {}: {e} (for {option} {shown})",
            dir.display()
        )
    })?;
    atomic::check_target(out).map_err(|e| eyre!("cannot write {option} {shown}: {e}"))?;
    let probe = dir.join(atomic::temp_name(longest, u64::MAX));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(eyre!("cannot write {option} {shown}: {e}")),
    }
}
