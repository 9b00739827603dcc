//! The weight and optimizer files of a save: written under names that carry a hash of their
//! content, stamped with the model they belong to, and checked against the snapshot on resume.
//!
//! Beside `DIR/NAME.ron`, run `i` with spec `SPEC` writes `DIR/NAME.SPEC.HASH.safetensors` (the
//! weights, PyTorch `state_dict` names, batch-norm buffers included) and
//! `DIR/NAME.SPEC.HASH.optim.safetensors` (the optimizer state, see [`crate::train::optim`]),
//! `HASH` being the first 12 hex digits of the file's SHA-256; a spec that appears more than once
//! gets `NAME.runI.SPEC…` from its second run on. A new save therefore never overwrites the files
//! an older snapshot names: the snapshot, renamed into place last, switches from one complete set
//! to the other ([`super::resume::save_with_weights`]).
//!
//! Each file's metadata holds the model spec and the SHA-256 of its tensor data (everything
//! after the header), under the key `resviz` for weights and appended to the `optimizer` entry for
//! optimizer state (safetensors writes metadata keys in hash order, so a file has one key to stay
//! byte-identical for equal states).

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

/// Serialize `dict` with one metadata entry `key` = `about` followed by the model and the hash of
/// the tensor data, e.g. `model=v1-8 tensors_sha256=…`.
pub fn encode(
    dict: &BTreeMap<String, Entry>,
    key: &str,
    about: Option<&str>,
    spec: &str,
) -> Result<Encoded, String> {
    // The data section does not depend on the metadata, so hash it from a first serialization.
    let plain = checkpoint::serialize_entries(dict, None)?;
    let data_hash = sha256_hex(data_section(&plain).ok_or("safetensors header")?);
    let stamp = format!("model={spec} tensors_sha256={data_hash}");
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
        let e = encode(&dict(), "k", Some("sgd momentum=0.9"), "v1-8").unwrap();
        let stamp = check_stamp(&e.bytes, "k").unwrap();
        assert_eq!(stamp.model.as_deref(), Some("v1-8"));
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
            encode(&dict(), "k", Some("sgd momentum=0.9"), "v1-8")
                .unwrap()
                .bytes,
            e.bytes
        );
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
