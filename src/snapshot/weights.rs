//! The weight and optimizer files of a save: written under names that carry a hash of their
//! content, stamped with the model they belong to, and checked against the snapshot on resume.
//!
//! Beside `DIR/NAME.ron`, run `i` with spec `SPEC` writes `DIR/NAME.SPEC.HASH.safetensors` (the
//! weights, PyTorch `state_dict` names, batch-norm buffers included) and
//! `DIR/NAME.SPEC.HASH.optim.safetensors` (the optimizer state, see [`crate::train::optim`]),
//! `HASH` being the first 12 hex digits of the file's SHA-256; a spec that appears more than once
//! gets `NAME.runI.SPEC…` from its second run on. A new save therefore never overwrites the files
//! an older snapshot names: the snapshot, renamed into place last, switches from one complete set
//! to the other ([`super::set::save_with_weights`]).
//!
//! Each file's metadata holds the model spec, the run's step (since issue 31) and the SHA-256 of
//! its tensor data (everything after the header), under the key `resviz` for weights and appended to the `optimizer` entry for
//! optimizer state (safetensors writes metadata keys in hash order, so a file has one key to stay
//! byte-identical for equal states). A file is read only after its size has been checked against
//! its header and the model's ([`read_checked`]).

use crate::model::checkpoint::{self, Entry};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// Metadata key of the weights' own entry.
pub const WEIGHTS_KEY: &str = "resviz";
/// Hex digits of the SHA-256 in a file name.
const NAME_HASH_LEN: usize = 12;

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A serialized file ready to be written under its content-derived name.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Encoded {
    /// `BASE.HASH.SUFFIX`, e.g. `run.v1-8.0123456789ab.safetensors`.
    pub fn name(&self, base: &str, suffix: &str) -> String {
        format!("{base}.{}.{suffix}", &self.sha256[..NAME_HASH_LEN])
    }
}

/// Serialize `dict` with one metadata entry `key` = `about` followed by the model, the run's step
/// and the hash of the tensor data, e.g. `model=v1-8 step=30 tensors_sha256=…`.
pub fn encode(
    dict: &BTreeMap<String, Entry>,
    key: &str,
    about: Option<&str>,
    spec: &str,
    step: u64,
) -> Result<Encoded, String> {
    // The data section does not depend on the metadata, so hash it from a first serialization.
    let plain = checkpoint::serialize_entries(dict, None)?;
    let data_hash = sha256_hex(data_section(&plain).ok_or("safetensors header")?);
    let stamp = format!("model={spec} step={step} tensors_sha256={data_hash}");
    let value = match about {
        Some(a) => format!("{a} {stamp}"),
        None => stamp,
    };
    let bytes = checkpoint::serialize_entries(dict, Some(HashMap::from([(key.into(), value)])))?;
    let sha256 = sha256_hex(&bytes);
    Ok(Encoded { bytes, sha256 })
}

/// The tensor data of a safetensors file: everything after the 8-byte length and the header.
fn data_section(bytes: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let start = usize::try_from(n).ok()?.checked_add(8)?;
    bytes.get(start..)
}

/// What a file's metadata says about it.
#[derive(Debug, Default, PartialEq)]
pub struct Stamp {
    pub model: Option<String>,
    /// The run's step when saved (files written since issue 31; absent before).
    pub step: Option<u64>,
    pub tensors_sha256: Option<String>,
}

/// Read the stamp of the file `bytes` from metadata entry `key` (absent in files written before
/// format 3), and check the tensor data against its hash. `Err` says what is wrong.
pub fn check_stamp(bytes: &[u8], key: &str) -> Result<Stamp, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let value = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .unwrap_or_default();
    let field = |name: &str| {
        value
            .split(' ')
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let stamp = Stamp {
        model: field("model"),
        step: field("step").and_then(|s| s.parse().ok()),
        tensors_sha256: field("tensors_sha256"),
    };
    if let Some(want) = &stamp.tensors_sha256 {
        let data = data_section(bytes).ok_or("the header is damaged")?;
        if sha256_hex(data) != *want {
            return Err("its tensor data does not match the checksum in its header \
                        (damaged or edited)"
                .to_string());
        }
    }
    Ok(stamp)
}

/// Largest safetensors header read (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Read the safetensors file at `path` whole, but only after checking from its first bytes that
/// its size is the one its header declares and that it declares at most `max_data` bytes of
/// tensors (what the run's model can need), so a huge or endless file is never read.
pub fn read_checked(path: &std::path::Path, max_data: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    let mut head = [0u8; 8];
    if len < 8 || f.read_exact(&mut head).is_err() {
        return Err(format!(
            "it is {len} bytes, too short for a safetensors file"
        ));
    }
    let n = u64::from_le_bytes(head);
    if n > MAX_HEADER || n > len - 8 {
        return Err(format!(
            "its header claims {n} bytes, beyond the file's {len}"
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    let data = declared_data(&header).ok_or("its header is not a safetensors header")?;
    if data > max_data {
        return Err(format!(
            "its header declares {data} bytes of tensors, more than the run's model holds \
             ({max_data})"
        ));
    }
    if 8 + n + data != len {
        return Err(format!(
            "it is {len} bytes, but its header declares {} (damaged or edited)",
            8 + n + data
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(&header);
    f.take(data)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    match bytes.len() as u64 == len {
        true => Ok(bytes),
        false => Err("it changed while being read".to_string()),
    }
}

/// The end of the tensor data a safetensors JSON header declares (its largest data offset).
fn declared_data(header: &[u8]) -> Option<u64> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let mut end = 0u64;
    for (name, v) in &map {
        if name == "__metadata__" {
            continue;
        }
        let offsets = v.get("data_offsets")?.as_array()?;
        end = end.max(offsets.get(1)?.as_u64()?);
    }
    Some(end)
}

/// Bytes of tensor data of `dict` as [`encode`] writes it.
pub fn data_bytes(dict: &BTreeMap<String, Entry>) -> u64 {
    dict.values()
        .map(|e| match e {
            Entry::F32 { data, .. } => 4 * data.len() as u64,
            Entry::I64(_) => 8,
        })
        .sum()
}

/// Whether `name` looks like a file of this module's naming for the snapshot stem `stem`:
/// `STEM.[runI.]SPEC.HASH.safetensors` or `….optim.safetensors`, with `is_spec` judging SPEC.
pub fn is_set_file(name: &str, stem: &str, is_spec: impl Fn(&str) -> bool) -> bool {
    let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let Some(rest) = rest
        .strip_suffix(".optim.safetensors")
        .or_else(|| rest.strip_suffix(".safetensors"))
    else {
        return false;
    };
    let Some((base, hash)) = rest.rsplit_once('.') else {
        return false;
    };
    let hex = hash.len() == NAME_HASH_LEN
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let spec = match base.split_once('.') {
        Some((run, spec)) if run.starts_with("run") && run[3..].parse::<usize>().is_ok() => spec,
        _ => base,
    };
    hex && is_spec(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> BTreeMap<String, Entry> {
        BTreeMap::from([
            (
                "a".into(),
                Entry::F32 {
                    shape: vec![2],
                    data: vec![1.0, 2.0],
                },
            ),
            ("n".into(), Entry::I64(3)),
        ])
    }

    #[test]
    fn stamp_round_trips_and_catches_a_flipped_byte() {
        let e = encode(&dict(), "k", Some("sgd momentum=0.9"), "v1-8", 30).unwrap();
        let stamp = check_stamp(&e.bytes, "k").unwrap();
        assert_eq!(stamp.model.as_deref(), Some("v1-8"));
        assert_eq!(stamp.step, Some(30));
        assert_eq!(
            e.name("x.v1-8", "safetensors").len(),
            "x.v1-8..safetensors".len() + 12
        );
        let mut bad = e.bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            check_stamp(&bad, "k")
                .unwrap_err()
                .contains("does not match")
        );
        // Deterministic: equal states give equal files.
        assert_eq!(
            encode(&dict(), "k", Some("sgd momentum=0.9"), "v1-8", 30)
                .unwrap()
                .bytes,
            e.bytes
        );
    }

    #[test]
    fn a_file_is_read_only_if_its_size_is_what_its_header_declares() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.safetensors");
        let e = encode(&dict(), "k", None, "v1-8", 1).unwrap();
        assert_eq!(data_bytes(&dict()), 16);
        std::fs::write(&p, &e.bytes).unwrap();
        assert_eq!(read_checked(&p, 16).unwrap(), e.bytes);
        assert!(
            read_checked(&p, 15)
                .unwrap_err()
                .contains("more than the run's model")
        );
        let mut longer = e.bytes.clone();
        longer.extend_from_slice(&[0; 100]);
        std::fs::write(&p, &longer).unwrap();
        assert!(
            read_checked(&p, 16)
                .unwrap_err()
                .contains("but its header declares")
        );
        std::fs::write(&p, &e.bytes[..e.bytes.len() - 1]).unwrap();
        assert!(
            read_checked(&p, 16)
                .unwrap_err()
                .contains("but its header declares")
        );
        let mut huge = e.bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&p, &huge).unwrap();
        assert!(
            read_checked(&p, 16)
                .unwrap_err()
                .contains("beyond the file's")
        );
        std::fs::write(&p, b"abc").unwrap();
        assert!(read_checked(&p, 16).unwrap_err().contains("too short"));
        // A file whose size is 0 by its metadata (as /proc files are).
        let proc = std::path::Path::new("/proc/self/environ");
        if proc.exists() {
            assert!(read_checked(proc, 16).is_err());
        }
    }

    #[test]
    fn set_file_names_are_recognised_narrowly() {
        let spec = |s: &str| s == "v1-8";
        assert!(is_set_file("a.v1-8.0123456789ab.safetensors", "a", spec));
        assert!(is_set_file(
            "a.run3.v1-8.0123456789ab.optim.safetensors",
            "a",
            spec
        ));
        assert!(!is_set_file("a.v1-8.safetensors", "a", spec));
        assert!(!is_set_file("a.b.v1-8.0123456789ab.safetensors", "a", spec));
        assert!(!is_set_file("a.v1-8.0123456789AB.safetensors", "a", spec));
        assert!(!is_set_file("ab.v1-8.0123456789ab.safetensors", "a", spec));
    }
}
