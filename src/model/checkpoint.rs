//! Weights as safetensors with PyTorch `state_dict` names, so `load_state_dict` accepts them.
//!
//! [`save_entries`] and [`load_entries`] read and write any named f32 tensors and i64 scalars
//! (the optimizer state uses them too). Files are written atomically: a temporary file in the
//! same directory, flushed, then renamed over the target, so a failed write never leaves a
//! half-written checkpoint or clobbers an older one.

use super::network::Network;
use crate::engine::Float;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Mismatch { path: String, message: String },
}

impl CheckpointError {
    pub fn mismatch(path: &Path, message: impl Into<String>) -> Self {
        Self::Mismatch {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// One named entry of a state dict: f32 tensor or an i64 scalar (`num_batches_tracked`).
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    I64(i64),
}

impl Entry {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Entry::F32 { data, .. } => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Entry::I64(v) => v.to_le_bytes().to_vec(),
        }
    }
}

/// A state dict as read from a file, with the file's string metadata.
pub struct Loaded {
    pub entries: BTreeMap<String, Entry>,
    pub metadata: HashMap<String, String>,
}

/// Write `dict` (and `metadata`) to `path` as safetensors, atomically.
pub fn save_entries(
    path: &Path,
    dict: &BTreeMap<String, Entry>,
    metadata: Option<HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let err = |m: String| CheckpointError::Write {
        path: path.display().to_string(),
        message: m,
    };
    let data = serialize_entries(dict, metadata).map_err(err)?;
    write_atomic(path, &data).map_err(|e| err(e.to_string()))
}

/// `dict` (and `metadata`) as the bytes of a safetensors file.
pub fn serialize_entries(
    dict: &BTreeMap<String, Entry>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, String> {
    let bytes: Vec<(&str, Vec<u8>, Dtype, Vec<usize>)> = dict
        .iter()
        .map(|(k, e)| match e {
            Entry::F32 { shape, .. } => (k.as_str(), e.bytes(), Dtype::F32, shape.clone()),
            Entry::I64(_) => (k.as_str(), e.bytes(), Dtype::I64, vec![]),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, d, s)| TensorView::new(*d, s.clone(), b).map(|v| (*k, v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, metadata).map_err(|e| e.to_string())
}

/// Temporary file beside `path`, flushed, then renamed over it.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let tmp: PathBuf = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    let result = written.and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Every f32 tensor and i64 scalar in the safetensors file at `path`.
pub fn load_entries(path: &Path) -> Result<Loaded, CheckpointError> {
    let read_err = |m: String| CheckpointError::Read {
        path: path.display().to_string(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| read_err(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| read_err(e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| read_err(e.to_string()))?;
    let mut entries = BTreeMap::new();
    for (name, t) in st.tensors() {
        let entry = match t.dtype() {
            Dtype::F32 => Entry::F32 {
                shape: t.shape().to_vec(),
                data: t
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            },
            Dtype::I64 if t.data().len() == 8 => {
                Entry::I64(i64::from_le_bytes(t.data().try_into().unwrap()))
            }
            d => {
                let m = format!("{name}: unsupported {d:?} tensor of shape {:?}", t.shape());
                return Err(CheckpointError::mismatch(path, m));
            }
        };
        entries.insert(name, entry);
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok(Loaded { entries, metadata })
}

/// The f32 entry `name` of `dict`, which must have `shape`.
pub fn take_f32(
    dict: &BTreeMap<String, Entry>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f32>, CheckpointError> {
    match dict.get(name) {
        Some(Entry::F32 { shape: s, data }) if s == shape => Ok(data.clone()),
        Some(Entry::F32 { shape: s, .. }) => Err(CheckpointError::mismatch(
            path,
            format!("{name}: expected shape {shape:?}, found {s:?}"),
        )),
        Some(Entry::I64(_)) => Err(CheckpointError::mismatch(
            path,
            format!("{name}: expected f32 {shape:?}, found an i64 scalar"),
        )),
        None => Err(CheckpointError::mismatch(
            path,
            format!("missing tensor {name} (the file is for another model?)"),
        )),
    }
}

/// Fail if `dict` holds a name not in `expected`, as PyTorch's strict `load_state_dict` does.
pub fn check_no_extra<'a>(
    dict: &BTreeMap<String, Entry>,
    expected: impl IntoIterator<Item = &'a str>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let expected: std::collections::HashSet<&str> = expected.into_iter().collect();
    match dict.keys().find(|k| !expected.contains(k.as_str())) {
        Some(k) => Err(CheckpointError::mismatch(
            path,
            format!("unexpected tensor {k} (the file is for another model?)"),
        )),
        None => Ok(()),
    }
}

impl<E: Float> Network<E> {
    /// Parameters and batch-norm buffers by PyTorch name.
    pub fn state_dict(&self) -> BTreeMap<String, Entry> {
        let f = |v: &[E]| {
            v.iter()
                .map(|x| x.to_f32().unwrap_or(f32::NAN))
                .collect::<Vec<f32>>()
        };
        let mut out = BTreeMap::new();
        for p in &self.store.params {
            let e = Entry::F32 {
                shape: p.shape(),
                data: f(p.data()),
            };
            out.insert(p.name.clone(), e);
        }
        for b in &self.store.buffers {
            let c = b.running_mean.len();
            let t = |v: &[E]| Entry::F32 {
                shape: vec![c],
                data: f(v),
            };
            out.insert(format!("{}.running_mean", b.prefix), t(&b.running_mean));
            out.insert(format!("{}.running_var", b.prefix), t(&b.running_var));
            out.insert(
                format!("{}.num_batches_tracked", b.prefix),
                Entry::I64(b.num_batches_tracked),
            );
        }
        out
    }

    pub fn save_safetensors(&self, path: &Path) -> Result<(), CheckpointError> {
        save_entries(path, &self.state_dict(), None)
    }

    /// Replace every parameter and buffer with the file's; names and shapes must match exactly
    /// (`num_batches_tracked` may be missing), and the file may hold nothing else.
    pub fn load_safetensors(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let dict = load_entries(path)?.entries;
        let names: Vec<String> = self.state_dict().into_keys().collect();
        check_no_extra(&dict, names.iter().map(String::as_str), path)?;
        let conv = |v: Vec<f32>| v.into_iter().map(|x| E::from_f32(x).unwrap()).collect();
        // Check everything before changing anything.
        let params = self
            .store
            .params
            .iter()
            .map(|p| take_f32(&dict, &p.name, &p.shape(), path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut bufs = Vec::new();
        for b in &self.store.buffers {
            let c = [b.running_mean.len()];
            let mean = take_f32(&dict, &format!("{}.running_mean", b.prefix), &c, path)?;
            let var = take_f32(&dict, &format!("{}.running_var", b.prefix), &c, path)?;
            let tracked = match dict.get(&format!("{}.num_batches_tracked", b.prefix)) {
                Some(Entry::I64(n)) => *n,
                _ => b.num_batches_tracked,
            };
            bufs.push((mean, var, tracked));
        }
        for (p, v) in self.store.params.iter_mut().zip(params) {
            let v: Vec<E> = conv(v);
            p.data_mut().copy_from_slice(&v);
        }
        for (b, (mean, var, tracked)) in self.store.buffers.iter_mut().zip(bufs) {
            b.running_mean = conv(mean);
            b.running_var = conv(var);
            b.num_batches_tracked = tracked;
        }
        Ok(())
    }
}
