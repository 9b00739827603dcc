//! Conv and batch-norm layers over a `ParamStore`, with PyTorch's initialisation.

use super::params::{BId, PId, ParamKind, ParamStore, ParamTensor};
use crate::engine::{BnCfg, BnSplit, ConvCfg, Float, T4, Tap, batch_norm2d_probed, conv2d};
use dfdx::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// Whether a forward pass trains (batch statistics, dropout) or evaluates (running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;
/// Keras's `BatchNormalization` defaults (its momentum 0.99 is PyTorch's 0.01), for the seed nets.
pub const KERAS_BN_EPS: f64 = 1e-3;
pub const KERAS_BN_MOMENTUM: f64 = 0.01;

#[derive(Clone, Debug)]
pub struct Conv {
    pub w: PId,
    pub b: Option<PId>,
    pub stride: usize,
    pub pad: usize,
}

/// How a conv's kernel starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightInit {
    /// Kaiming-normal, fan-out, ReLU gain: torchvision's ResNets (and He 2015's CIFAR nets).
    KaimingOut,
    /// Keras's default `glorot_uniform`: uniform(±√(6 / (fan_in + fan_out))), for the seed nets.
    GlorotUniform,
}

/// How a conv's bias starts: PyTorch's default uniform(±1/√fan_in), or a constant (gates: b_g;
/// Keras: 0).
#[derive(Clone, Copy, Debug)]
pub enum BiasInit {
    None,
    Default,
    Const(f64),
}

impl Conv {
    /// Kaiming-normal (fan-out, ReLU gain) weights `[out, in, k, k]`, as `nn.init.kaiming_normal_(
    /// mode="fan_out", nonlinearity="relu")` in torchvision's ResNets.
    pub fn new<E: Float>(
        ps: &mut ParamStore<E>,
        rng: &mut StdRng,
        name: &str,
        shape: (usize, usize, usize),
        stride: usize,
        bias: BiasInit,
    ) -> Self {
        Self::new_with(ps, rng, name, shape, stride, bias, WeightInit::KaimingOut)
    }

    /// [`Conv::new`] with the kernel drawn as `init` says.
    pub fn new_with<E: Float>(
        ps: &mut ParamStore<E>,
        rng: &mut StdRng,
        name: &str,
        (cin, cout, k): (usize, usize, usize),
        stride: usize,
        bias: BiasInit,
        init: WeightInit,
    ) -> Self {
        let n = cout * cin * k * k;
        let w: Vec<f64> = match init {
            WeightInit::KaimingOut => {
                let std = (2.0 / (cout * k * k) as f64).sqrt();
                let normal = Normal::new(0.0, std).expect("finite std");
                (0..n).map(|_| normal.sample(rng)).collect()
            }
            WeightInit::GlorotUniform => {
                uniform(rng, n, (6.0 / ((cin + cout) * k * k) as f64).sqrt())
            }
        };
        let w: Vec<E> = w.into_iter().map(|v| E::from_f64(v).unwrap()).collect();
        let dev = Cpu::default();
        let w = ps.push(
            format!("{name}.weight"),
            ParamKind::Weight,
            ParamTensor::R4(dev.tensor_from_vec(w, (cout, cin, k, k))),
        );
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let b = match bias {
            BiasInit::None => None,
            BiasInit::Default => Some(uniform(rng, cout, bound)),
            BiasInit::Const(c) => Some(vec![c; cout]),
        }
        .map(|b| {
            let b: Vec<E> = b.into_iter().map(|v| E::from_f64(v).unwrap()).collect();
            ps.push(
                format!("{name}.bias"),
                ParamKind::NoDecay,
                ParamTensor::R1(dev.tensor_from_vec(b, (cout,))),
            )
        });
        Conv {
            w,
            b,
            stride,
            pad: k / 2,
        }
    }

    pub fn fwd<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &ParamStore<E>,
        x: T4<E, T>,
        input_grad: bool,
    ) -> T4<E, T> {
        let cfg = ConvCfg {
            stride: self.stride,
            pad: self.pad,
            input_grad,
        };
        conv2d(x, ps.t4(self.w), self.b.map(|b| ps.t1(b)), cfg)
    }
}

pub fn uniform(rng: &mut StdRng, n: usize, bound: f64) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
}

#[derive(Clone, Debug)]
pub struct Bn {
    pub gamma: PId,
    pub beta: PId,
    pub buf: BId,
    pub eps: f64,
    /// PyTorch's convention: the weight of the new batch statistic in the running average.
    pub momentum: f64,
    /// Not a batch norm ([`Bn::identity`]): evaluation mode always, statistics never updated.
    pub off: bool,
}

impl Bn {
    /// A batch norm with PyTorch's defaults (eps 1e-5, momentum 0.1).
    pub fn new<E: Float>(ps: &mut ParamStore<E>, name: &str, channels: usize) -> Self {
        Self::with(ps, name, channels, BN_EPS, BN_MOMENTUM)
    }

    /// A batch norm with Keras's defaults (eps 1e-3, momentum 0.99 = PyTorch's 0.01).
    pub fn keras<E: Float>(ps: &mut ParamStore<E>, name: &str, channels: usize) -> Self {
        Self::with(ps, name, channels, KERAS_BN_EPS, KERAS_BN_MOMENTUM)
    }

    /// The layer of a net without batch normalisation (`:bn=off`): evaluation mode always, with
    /// running mean 0, variance 1 and ε 0 that are never updated, so it computes γ·x + β,
    /// exactly x at initialisation (γ = 1, β = 0). γ and β stay trainable (a per-channel affine,
    /// no normalisation), and the probes, taps and folding of every other layer apply unchanged.
    pub fn identity<E: Float>(ps: &mut ParamStore<E>, name: &str, channels: usize) -> Self {
        Self {
            off: true,
            ..Self::with(ps, name, channels, 0.0, BN_MOMENTUM)
        }
    }

    fn with<E: Float>(
        ps: &mut ParamStore<E>,
        name: &str,
        channels: usize,
        eps: f64,
        momentum: f64,
    ) -> Self {
        let dev = Cpu::default();
        let gamma = ps.push(
            format!("{name}.weight"),
            ParamKind::NoDecay,
            ParamTensor::R1(dev.tensor_from_vec(vec![E::one(); channels], (channels,))),
        );
        let beta = ps.push(
            format!("{name}.bias"),
            ParamKind::NoDecay,
            ParamTensor::R1(dev.tensor_from_vec(vec![E::zero(); channels], (channels,))),
        );
        let buf = ps.push_bn(name.to_string(), channels);
        Bn {
            gamma,
            beta,
            buf,
            eps,
            momentum,
            off: false,
        }
    }

    pub fn fwd<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        relu: bool,
    ) -> T4<E, T> {
        self.fwd_tapped(ps, x, mode, relu, None)
    }

    /// [`Bn::fwd`] whose output is probed by `tap` (fused into the batch norm).
    pub fn fwd_tapped<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        relu: bool,
        tap: Option<&Tap>,
    ) -> T4<E, T> {
        self.fwd_probed(ps, x, mode, relu, (tap, None))
    }

    /// [`Bn::fwd`] on a block's input, measuring the eq. 5 split there in its backward as `join`
    /// says (`engine::BnSplit`).
    pub fn fwd_joined<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        relu: bool,
        join: BnSplit<E>,
    ) -> T4<E, T> {
        self.fwd_probed(ps, x, mode, relu, (None, Some(join)))
    }

    fn fwd_probed<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        relu: bool,
        (tap, join): (Option<&Tap>, Option<BnSplit<E>>),
    ) -> T4<E, T> {
        let (gamma, beta) = (ps.t1(self.gamma), ps.t1(self.beta));
        let train = mode == Mode::Train && !self.off;
        let buf = &mut ps.buffers[self.buf.0];
        if train {
            buf.num_batches_tracked += 1;
        }
        let cfg = BnCfg {
            eps: self.eps,
            momentum: self.momentum,
            train,
            relu,
        };
        let stats = (&mut buf.running_mean[..], &mut buf.running_var[..]);
        batch_norm2d_probed(x, gamma, beta, stats, cfg, tap, join)
    }
}
