//! Unpacking a downloaded `.tar.gz` into the cache without trusting it: only regular files and
//! directories under plain relative names (a symlink, a hard link, a device, an absolute name or
//! a `..` is refused), no more bytes than a limit, and all of it into a hidden staging folder
//! that replaces the old content only once every member is out, so a failed unpack leaves
//! nothing behind.

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path};

/// Name of the staging folder inside the destination.
const STAGING: &str = ".unpacking";

fn refused(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Unpack `archive` (gzip-compressed tar) into `dir`: each top-level member of the archive
/// replaces the one of that name in `dir`. At most `limit` bytes of member content.
pub fn unpack_tar_gz(archive: &Path, dir: &Path, limit: u64) -> io::Result<()> {
    let staging = dir.join(STAGING);
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let result = unpack_into(archive, &staging, limit).and_then(|()| move_out(&staging, dir));
    // On success the staging folder is empty; on failure it holds what was unpacked so far.
    let _ = fs::remove_dir_all(&staging);
    result
}

fn unpack_into(archive: &Path, staging: &Path, limit: u64) -> io::Result<()> {
    let gz = flate2::read::GzDecoder::new(File::open(archive)?);
    let mut tar = tar::Archive::new(gz);
    let mut total = 0u64;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let shown = crate::numfmt::cut(&name.display().to_string(), 80);
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(refused(format!(
                "member {shown} is not a regular file or directory ({kind:?}): refused"
            )));
        }
        if !name.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(refused(format!(
                "member {shown} points outside the cache folder: refused"
            )));
        }
        total = total.saturating_add(entry.size());
        if total > limit {
            return Err(refused(format!(
                "the members hold more than {limit} bytes: refused"
            )));
        }
        if !entry.unpack_in(staging)? {
            return Err(refused(format!(
                "member {shown} could not be placed: refused"
            )));
        }
    }
    Ok(())
}

/// Move every top-level entry of `staging` into `dir`, replacing one of the same name.
fn move_out(staging: &Path, dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(staging)? {
        let e = e?;
        let target = dir.join(e.file_name());
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&target)?,
            Ok(_) => fs::remove_file(&target)?,
            Err(_) => {}
        }
        fs::rename(e.path(), &target)?;
    }
    Ok(())
}
