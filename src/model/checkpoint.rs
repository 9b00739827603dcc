//! Weights as safetensors with PyTorch `state_dict` names, so `load_state_dict` accepts them.

use super::network::Network;
use crate::engine::Float;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Mismatch { path: String, message: String },
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
            out.insert(
                p.name.clone(),
                Entry::F32 {
                    shape: p.shape(),
                    data: f(p.data()),
                },
            );
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
        let err = |m: String| CheckpointError::Write {
            path: path.display().to_string(),
            message: m,
        };
        let dict = self.state_dict();
        let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = dict
            .iter()
            .map(|(k, e)| match e {
                Entry::F32 { shape, .. } => (k.clone(), e.bytes(), Dtype::F32, shape.clone()),
                Entry::I64(_) => (k.clone(), e.bytes(), Dtype::I64, vec![]),
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, b, d, s)| TensorView::new(*d, s.clone(), b).map(|v| (k.as_str(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        safetensors::serialize_to_file(views, None, path).map_err(|e| err(e.to_string()))
    }

    /// Replace every parameter and buffer with the file's; names and shapes must match exactly.
    pub fn load_safetensors(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| CheckpointError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let mismatch = |m: String| CheckpointError::Mismatch {
            path: p.clone(),
            message: m,
        };
        let read_f32 = |name: &str, shape: &[usize]| -> Result<Vec<E>, CheckpointError> {
            let t = st
                .tensor(name)
                .map_err(|_| mismatch(format!("missing tensor {name}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(mismatch(format!(
                    "{name}: expected f32 {shape:?}, found {:?} {:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| E::from_f32(f32::from_le_bytes(c.try_into().unwrap())).unwrap())
                .collect())
        };
        for i in 0..self.store.params.len() {
            let (name, shape) = (
                self.store.params[i].name.clone(),
                self.store.params[i].shape(),
            );
            let v = read_f32(&name, &shape)?;
            self.store.params[i].data_mut().copy_from_slice(&v);
        }
        for b in &mut self.store.buffers {
            let c = [b.running_mean.len()];
            b.running_mean = read_f32(&format!("{}.running_mean", b.prefix), &c)?;
            b.running_var = read_f32(&format!("{}.running_var", b.prefix), &c)?;
            let name = format!("{}.num_batches_tracked", b.prefix);
            if let Ok(t) = st.tensor(&name)
                && t.dtype() == Dtype::I64
                && t.data().len() == 8
            {
                b.num_batches_tracked = i64::from_le_bytes(t.data().try_into().unwrap());
            }
        }
        Ok(())
    }
}
