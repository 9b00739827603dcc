//! Which weight and optimizer files a save to `DIR/STEM.ron` may delete once its snapshot is in
//! place: files of its own earlier saves, never a sibling snapshot's.
//!
//! File names alone are ambiguous: `a.run2.plain-8.HASH.safetensors` is both "run 2 (plain-8) of
//! `a`" and "plain-8 of the snapshot `a.run2`". So a candidate named `P.….safetensors` is left
//! alone if a longer stem `P` (cut at one of the name's dots) is in use in the directory: a
//! snapshot `P.ron` exists, or the lock file `.P.lock` that every save with weights takes
//! ([`super::lock`]) — the lock file is there from the sibling's first save on, even before its
//! snapshot is renamed into place.

use super::lock;
use super::resume::RunFiles;
use super::weights;
use crate::model::ModelSpec;
use std::path::Path;

/// Delete the weight and optimizer files of earlier saves to `stem` in `dir` that `keep` does not
/// name and no sibling snapshot may own. Errors are ignored: this only tidies. Returns how many
/// files were removed.
pub fn remove_unnamed(dir: &Path, stem: &str, keep: &[RunFiles]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let is_spec = |s: &str| s.parse::<ModelSpec>().is_ok();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kept = keep
            .iter()
            .any(|f| f.weights == name || f.optimizer == name);
        if kept || !weights::is_set_file(&name, stem, is_spec) || claimed(dir, stem, &name, is_spec)
        {
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether `name` is also a set file of a stem longer than `stem` (cut at one of its dots) that
/// is a snapshot name in use in `dir`.
fn claimed(dir: &Path, stem: &str, name: &str, is_spec: impl Fn(&str) -> bool + Copy) -> bool {
    name.char_indices()
        .filter(|&(i, c)| c == '.' && i > stem.len())
        .map(|(i, _)| &name[..i])
        .filter(|p| weights::is_set_file(name, p, is_spec))
        .any(|p| dir.join(format!("{p}.ron")).exists() || lock::lock_path(dir, p).exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_sibling_snapshots_files_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let h = "0123456789ab";
        let names = [
            format!("a.plain-8.{h}.safetensors"),
            format!("a.run2.plain-8.{h}.safetensors"),
            format!("a.run3.plain-8.{h}.safetensors"),
            format!("a.run4.plain-8.{h}.optim.safetensors"),
        ];
        for n in &names {
            fs::write(d.path().join(n), b"x").unwrap();
        }
        fs::write(d.path().join("a.run2.ron"), b"x").unwrap();
        fs::write(lock::lock_path(d.path(), "a.run4"), b"").unwrap();
        // `a`'s own v1-8 file, whose name starts with the sibling snapshot `a.v1-8`'s stem but
        // is not one of its set's names.
        let own = format!("a.v1-8.{h}.safetensors");
        fs::write(d.path().join(&own), b"x").unwrap();
        fs::write(d.path().join("a.v1-8.ron"), b"x").unwrap();
        // a.run3's file is an orphan of `a` too (no snapshot or lock named a.run3).
        assert_eq!(remove_unnamed(d.path(), "a", &[]), 3);
        assert!(!d.path().join(&own).exists());
        assert!(!d.path().join(&names[0]).exists());
        assert!(d.path().join(&names[1]).exists());
        assert!(!d.path().join(&names[2]).exists());
        assert!(d.path().join(&names[3]).exists());
    }
}
