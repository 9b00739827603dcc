//! Named parameters and buffers of a network, PyTorch-style names and layouts.
//!
//! Layers hold indices into one `ParamStore`, so the optimizer, gradient norms and checkpoint
//! export walk a single list in a stable order.

use crate::engine::{Float, T1, T2, T4, sum_squares, view, view_mut};
use dfdx::prelude::*;
use rayon::prelude::*;

/// A trainable tensor of its natural rank (conv `[out, in, kh, kw]`, linear `[out, in]`, vectors).
#[derive(Clone, Debug)]
pub enum ParamTensor<E: Float> {
    R1(T1<E>),
    R2(T2<E>),
    R4(T4<E>),
}

/// Whether weight decay applies: not to batch-norm parameters and biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    NoDecay,
}

#[derive(Clone, Debug)]
pub struct Param<E: Float> {
    pub name: String,
    pub kind: ParamKind,
    pub tensor: ParamTensor<E>,
}

impl<E: Float> Param<E> {
    pub fn shape(&self) -> Vec<usize> {
        match &self.tensor {
            ParamTensor::R1(t) => vec![t.shape().0],
            ParamTensor::R2(t) => vec![t.shape().0, t.shape().1],
            ParamTensor::R4(t) => {
                let (a, b, c, d) = *t.shape();
                vec![a, b, c, d]
            }
        }
    }

    pub fn data(&self) -> &[E] {
        match &self.tensor {
            ParamTensor::R1(t) => view(t),
            ParamTensor::R2(t) => view(t),
            ParamTensor::R4(t) => view(t),
        }
    }

    pub fn data_mut(&mut self) -> &mut [E] {
        match &mut self.tensor {
            ParamTensor::R1(t) => view_mut(t),
            ParamTensor::R2(t) => view_mut(t),
            ParamTensor::R4(t) => view_mut(t),
        }
    }

    /// This parameter's gradient in `grads` (allocated as zeros if backward never reached it).
    pub fn grad<'g>(&self, grads: &'g mut Gradients<E, Cpu>) -> &'g mut [E] {
        self.grad_vec(grads).as_mut_slice()
    }

    /// [`Param::grad`] as the buffer itself, so it can be moved out and back.
    fn grad_vec<'g>(&self, grads: &'g mut Gradients<E, Cpu>) -> &'g mut Vec<E> {
        let g = match &self.tensor {
            ParamTensor::R1(t) => grads.get_or_alloc_mut(t),
            ParamTensor::R2(t) => grads.get_or_alloc_mut(t),
            ParamTensor::R4(t) => grads.get_or_alloc_mut(t),
        };
        g.expect("allocating a gradient on the CPU cannot fail")
    }

    fn r1(&self) -> &T1<E> {
        match &self.tensor {
            ParamTensor::R1(t) => t,
            _ => panic!("parameter {} is not rank 1", self.name),
        }
    }
    fn r2(&self) -> &T2<E> {
        match &self.tensor {
            ParamTensor::R2(t) => t,
            _ => panic!("parameter {} is not rank 2", self.name),
        }
    }
    fn r4(&self) -> &T4<E> {
        match &self.tensor {
            ParamTensor::R4(t) => t,
            _ => panic!("parameter {} is not rank 4", self.name),
        }
    }
}

/// Batch-norm running statistics, PyTorch buffers `running_mean`, `running_var`,
/// `num_batches_tracked`.
#[derive(Clone, Debug)]
pub struct BnBuffers<E> {
    pub prefix: String,
    pub running_mean: Vec<E>,
    pub running_var: Vec<E>,
    pub num_batches_tracked: i64,
}

/// Index of a parameter in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PId(pub usize);

/// Index of a batch-norm buffer set in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BId(pub usize);

#[derive(Clone, Debug, Default)]
pub struct ParamStore<E: Float> {
    pub params: Vec<Param<E>>,
    pub buffers: Vec<BnBuffers<E>>,
}

impl<E: Float> ParamStore<E> {
    /// ‖∂L/∂p‖ of every parameter, in store order, summed on the pool's threads: one after
    /// another, most are too small to split and ran on one core while the other waited (0.4 % of
    /// a 56-layer step).
    pub fn grad_norms(&self, grads: &mut Gradients<E, Cpu>) -> Vec<f64> {
        let bufs = self.take_grads(grads);
        let norms = bufs.par_iter().map(|b| sum_squares(b).sqrt()).collect();
        self.put_grads(grads, bufs);
        norms
    }

    /// Every parameter's gradient buffer in store order, moved out of `grads` (no copy; zeros
    /// where backward never reached it), so that they can be read in parallel beside the
    /// parameters; [`ParamStore::put_grads`] moves them back.
    pub fn take_grads(&self, grads: &mut Gradients<E, Cpu>) -> Vec<Vec<E>> {
        (self.params.iter())
            .map(|p| std::mem::take(p.grad_vec(grads)))
            .collect()
    }

    /// Return the buffers of [`ParamStore::take_grads`] to `grads`.
    pub fn put_grads(&self, grads: &mut Gradients<E, Cpu>, bufs: Vec<Vec<E>>) {
        for (p, b) in self.params.iter().zip(bufs) {
            *p.grad_vec(grads) = b;
        }
    }

    pub fn push(&mut self, name: String, kind: ParamKind, tensor: ParamTensor<E>) -> PId {
        self.params.push(Param { name, kind, tensor });
        PId(self.params.len() - 1)
    }

    pub fn push_bn(&mut self, prefix: String, channels: usize) -> BId {
        self.buffers.push(BnBuffers {
            prefix,
            running_mean: vec![E::zero(); channels],
            running_var: vec![E::one(); channels],
            num_batches_tracked: 0,
        });
        BId(self.buffers.len() - 1)
    }

    /// A tape-carrying handle on parameter `id` for one forward pass.
    pub fn t1<T: Tape<E, Cpu>>(&self, id: PId) -> T1<E, T> {
        self.params[id.0].r1().retaped()
    }
    pub fn t2<T: Tape<E, Cpu>>(&self, id: PId) -> T2<E, T> {
        self.params[id.0].r2().retaped()
    }
    pub fn t4<T: Tape<E, Cpu>>(&self, id: PId) -> T4<E, T> {
        self.params[id.0].r4().retaped()
    }

    pub fn num_params(&self) -> usize {
        self.params.iter().map(|p| p.data().len()).sum()
    }

    pub fn names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }
}
