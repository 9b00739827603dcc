//! `resviz import STREAM.jsonl --out RUN.ron`: a finished training stream (ARCHITECTURE.md, *The
//! stream format*) into a snapshot that `replay` and `compare` read.

use super::output;
use crate::snapshot::{self, RunSnapshot};
use crate::stream::{self, convert};
use color_eyre::eyre::{Result, eyre};
use std::path::Path;

pub fn run(stream_path: &Path, out: &Path) -> Result<()> {
    let shown = stream_path.display();
    let file = std::fs::File::open(stream_path).map_err(|e| eyre!("cannot read {shown}: {e}"))?;
    let (header, steps) =
        stream::read_all(std::io::BufReader::new(file)).map_err(|e| eyre!("{shown}: {e}"))?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    output::check_out(out, &name.unwrap_or_default(), "--out")?;
    let count = steps.len();
    let history = convert::history(&header, steps);
    let snap = RunSnapshot::new(
        convert::config(&[&header]),
        convert::description(&header),
        vec![history],
    );
    // What `load` would refuse must not be written.
    snap.validate()
        .map_err(|e| eyre!("{shown}: the run cannot be saved: {e}"))?;
    snapshot::save_to(&snap, out)?;
    eprintln!(
        "imported {} ({count} steps) into {}",
        header.info.spec,
        out.display()
    );
    Ok(())
}
