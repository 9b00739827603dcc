//! `resviz data fetch DATASET`: put a dataset into the per-user cache (today: CIFAR-10).

use crate::data::fetch::{self, Fetched};
use color_eyre::eyre::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

pub fn fetch(dataset: &str) -> Result<()> {
    if dataset != "cifar10" {
        bail!("cannot fetch '{dataset}': only cifar10 is downloadable (mnist is bundled)");
    }
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} ETA {eta}")
            .expect("a valid template"),
    );
    let mut progress = |got: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(got);
    };
    let (dir, what) = fetch::fetch_cifar10(&mut progress)?;
    bar.finish_and_clear();
    match what {
        Fetched::AlreadyThere => {
            super::output::note(&format!("CIFAR-10 is already in {}", dir.display()))
        }
        Fetched::Done {
            resumed_from: 0,
            bytes,
        } => super::output::note(&format!(
            "CIFAR-10: {bytes} bytes downloaded, checksum verified, unpacked into {}",
            dir.display()
        )),
        Fetched::Done {
            resumed_from,
            bytes,
        } => super::output::note(&format!(
            "CIFAR-10: resumed at byte {resumed_from}, {bytes} bytes in all, checksum verified, unpacked into {}",
            dir.display()
        )),
    }
    super::output::print(&format!("{}\n", dir.display()))
}
