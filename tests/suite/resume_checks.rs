//! What `--resume` refuses to read (issue 31, items 6 and 7): weight files outside the
//! snapshot's folder, files whose size is not what their header declares (checked before they
//! are read whole), and a format 3 snapshot edited down to format 2 to drop its checksums.

use crate::common::{SMALL, edit, resume_fails, resume_files, train_saved};

use resviz::snapshot;
use std::fs;
use std::path::Path;

fn train(dir: &Path, steps: &str, out: &str) {
    train_saved(dir, steps, out, SMALL);
}

/// Item 6: a name with a path in it is refused when the snapshot is read, before any file is
/// opened; so is a long one, cut in the message.
#[test]
fn weight_file_names_must_be_bare_names_in_the_snapshots_folder() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    let text = fs::read_to_string(d.path().join("a.ron")).unwrap();
    let files = resume_files(&d.path().join("a.ron"));
    let long = "x".repeat(100_000);
    for bad in [
        "../a.ron",
        "/proc/self/environ",
        "sub/w.safetensors",
        "..",
        "",
        &long,
    ] {
        let edited = text.replace(&files[0].weights, bad);
        fs::write(d.path().join("e.ron"), edited).unwrap();
        let e = resume_fails(d.path(), "e.ron");
        assert!(
            e.contains("which is not a bare file name in the snapshot's folder"),
            "{e}"
        );
        assert!(
            e.len() < 400,
            "the message quotes a cut name: {} bytes",
            e.len()
        );
    }
}

/// Item 6: a file whose size differs from its header's declaration, or whose header declares
/// more tensor data than the model holds, is refused from its first bytes.
#[test]
fn a_weight_file_of_the_wrong_size_is_refused_before_it_is_read() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    let files = resume_files(&d.path().join("a.ron"));
    let path = d.path().join(&files[0].weights);
    let good = fs::read(&path).unwrap();
    // 64 MB more than the header declares (sparse: costs no disk).
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(good.len() as u64 + (64 << 20)).unwrap();
    drop(f);
    let e = resume_fails(d.path(), "a.ron");
    assert!(e.contains("but its header declares"), "{e}");
    // A header whose length field points past the end.
    let mut bad = good.clone();
    bad[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fs::write(&path, &bad).unwrap();
    let e = resume_fails(d.path(), "a.ron");
    assert!(e.contains("beyond the file's"), "{e}");
    // The other run's weights (plain-8's, smaller) under v1-8's name: a consistent file, but not
    // the one saved.
    fs::write(&path, fs::read(d.path().join(&files[1].weights)).unwrap()).unwrap();
    let e = resume_fails(d.path(), "a.ron");
    assert!(e.contains(&files[0].weights), "{e}");
}

/// Item 7: weights swapped between two saves and the snapshot edited to format 2 without its
/// checksums: the files' own stamps show they were saved with checksums, so it is refused.
#[test]
fn an_older_format_cannot_switch_the_checksum_off() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), "2", "a.ron");
    train(d.path(), "3", "b.ron");
    let load = |n: &str| resume_files(&d.path().join(n));
    let (fa, fb) = (load("a.ron"), load("b.ron"));
    fs::copy(d.path().join(&fb[0].weights), d.path().join(&fa[0].weights)).unwrap();
    edit(&d.path().join("a.ron"), |text| {
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains("_sha256:")).collect();
        kept.join("\n").replace(
            &format!("format_version: {}", snapshot::FORMAT_VERSION),
            "format_version: 2",
        )
    });
    let e = resume_fails(d.path(), "a.ron");
    assert!(
        e.contains("it was saved with a checksum, but the snapshot records none"),
        "{e}"
    );
}
