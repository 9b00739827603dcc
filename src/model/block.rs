//! One residual (or plain) block, in every design of ARCHITECTURE.md's model contract.

use super::layers::{BiasInit, Bn, Conv, Mode, WeightInit};
use super::params::ParamStore;
use super::spec::{Knobs, Variant};
use crate::engine::{
    BnSplit, Float, T4, Tap, add, add_relu_tapped, add_tapped, dropout, gate_mix, pad_shortcut,
    relu, scale, sigmoid,
};
use dfdx::prelude::*;
use rand::rngs::StdRng;

/// The shortcut path s(x).
#[derive(Clone, Debug)]
pub enum Shortcut {
    Identity,
    /// Option A (He 2015 §4.2): x subsampled at `stride`, extra channels zero; no parameters.
    Pad {
        cout: usize,
        stride: usize,
    },
    /// 1×1 conv at the block's stride, then BN where the design has one (option B, `convbnsc`).
    Proj {
        conv: Conv,
        bn: Option<Bn>,
    },
    /// No shortcut at all (plain nets).
    None,
}

/// What, besides its shape, decides how a block is built.
#[derive(Clone, Copy, Debug)]
pub struct BlockCfg {
    pub variant: Variant,
    pub knobs: Knobs,
    /// A seed-article net: Keras layers (biased convs, glorot init, Keras batch norm).
    pub seed_preset: bool,
    /// The first unit of a pre-activation ResNet (He 2016 §4): the stem already applied its
    /// activation, so this block applies none before the split.
    pub first_unit: bool,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub variant: Variant,
    pub(super) knobs: Knobs,
    pub(super) conv1: Conv,
    /// `v2`'s pre-activation BN (absent in the first unit), else the BN after conv1.
    pub(super) bn1: Option<Bn>,
    pub(super) conv2: Conv,
    /// Absent for `bnafter`, whose BN follows the addition (`bn3`).
    pub(super) bn2: Option<Bn>,
    pub(super) bn3: Option<Bn>,
    pub(super) gate: Option<Conv>,
    pub(super) shortcut: Shortcut,
    /// Seed presets: the projection reads the raw x even in pre-activation blocks.
    pub(super) proj_on_raw: bool,
    /// Pre-activation designs' first unit: no activation before the split.
    pub(super) skip_preact: bool,
}

/// Shape of a block: channels in and out, and stride of its first conv.
#[derive(Clone, Copy, Debug)]
pub struct BlockShape {
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
}

impl Block {
    /// A CIFAR ResNet block named `prefix` (e.g. `stages.1.0`).
    pub fn new<E: Float>(
        ps: &mut ParamStore<E>,
        rng: &mut StdRng,
        prefix: &str,
        cfg: BlockCfg,
        s: BlockShape,
    ) -> Self {
        let variant = cfg.variant;
        let pre = variant.pre_activation();
        let skip_preact = pre && cfg.first_unit;
        let (bias, init) = if cfg.seed_preset {
            (BiasInit::Const(0.0), WeightInit::GlorotUniform)
        } else {
            (BiasInit::None, WeightInit::KaimingOut)
        };
        let mut conv = |ps: &mut ParamStore<E>, name: &str, shape, stride, bias| {
            Conv::new_with(
                ps,
                rng,
                &format!("{prefix}.{name}"),
                shape,
                stride,
                bias,
                init,
            )
        };
        let bn = |ps: &mut ParamStore<E>, name: &str, c| {
            let name = format!("{prefix}.{name}");
            if cfg.seed_preset {
                Bn::keras(ps, &name, c)
            } else if cfg.knobs.bn_off {
                Bn::identity(ps, &name, c)
            } else {
                Bn::new(ps, &name, c)
            }
        };
        let conv1 = conv(ps, "conv1", (s.cin, s.cout, 3), s.stride, bias);
        // v2: bn1 normalises the block input (the stem's BN does it for the first unit);
        // otherwise conv1's output.
        let bn1 = match variant {
            Variant::V2 if skip_preact => None,
            Variant::V2 => Some(bn(ps, "bn1", s.cin)),
            _ => Some(bn(ps, "bn1", s.cout)),
        };
        let conv2 = conv(ps, "conv2", (s.cout, s.cout, 3), 1, bias);
        let bn2 = (variant != Variant::BnAfter).then(|| bn(ps, "bn2", s.cout));
        let reshapes = s.cin != s.cout || s.stride != 1;
        let shape = (s.cin, s.cout, 1);
        let shortcut = match variant {
            Variant::Plain => Shortcut::None,
            Variant::ConvSc => Shortcut::Proj {
                conv: conv(ps, "shortcut.conv", shape, s.stride, bias),
                bn: None,
            },
            Variant::ConvBnSc => Shortcut::Proj {
                conv: conv(ps, "shortcut.conv", shape, s.stride, bias),
                bn: Some(bn(ps, "shortcut.bn", s.cout)),
            },
            _ if !reshapes => Shortcut::Identity,
            Variant::V1A => Shortcut::Pad {
                cout: s.cout,
                stride: s.stride,
            },
            _ => Shortcut::Proj {
                conv: conv(ps, "shortcut.conv", shape, s.stride, bias),
                bn: (!pre && !cfg.seed_preset).then(|| bn(ps, "shortcut.bn", s.cout)),
            },
        };
        let gate_bias = BiasInit::Const(f64::from(cfg.knobs.gate_bias));
        let gate = matches!(variant, Variant::Gated | Variant::SGated)
            .then(|| conv(ps, "gate", shape, s.stride, gate_bias));
        let bn3 = (variant == Variant::BnAfter).then(|| bn(ps, "bn3", s.cout));
        Block {
            variant,
            knobs: cfg.knobs,
            conv1,
            bn1,
            conv2,
            bn2,
            bn3,
            gate,
            shortcut,
            proj_on_raw: cfg.seed_preset,
            skip_preact,
        }
    }

    /// Every batch norm of the block (branch, after the addition, projection).
    pub(super) fn bns_mut(&mut self) -> Vec<&mut Bn> {
        let proj = match &mut self.shortcut {
            Shortcut::Proj { bn, .. } => bn.as_mut(),
            _ => None,
        };
        [
            self.bn1.as_mut(),
            self.bn2.as_mut(),
            self.bn3.as_mut(),
            proj,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The BN that every design but `v2` puts after conv1.
    fn bn1(&self) -> &Bn {
        self.bn1.as_ref().expect("only v2's first unit lacks bn1")
    }

    /// Whether the block has a shortcut path at all (plain blocks have none).
    pub fn has_shortcut(&self) -> bool {
        !matches!(self.shortcut, Shortcut::None)
    }

    /// The block's output, probed by `tap` (fused into the op that produces it where that op
    /// can, else the separate probe passes).
    pub fn forward<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        dropout_seed: u64,
        tap: Option<&Tap>,
    ) -> T4<E, T> {
        match self.variant {
            Variant::V2 | Variant::ReluOnly => self.forward_pre(ps, x, mode, tap),
            _ => self.forward_post(ps, x, mode, dropout_seed, tap),
        }
    }

    /// `v2`: conv(ReLU(BN(conv(ReLU(BN x))))) + s(x); `reluonly`: BN(conv(ReLU(BN(conv(ReLU x))))) + s(x).
    fn forward_pre<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        tap: Option<&Tap>,
    ) -> T4<E, T> {
        let v2 = self.variant == Variant::V2;
        // A projection reads the pre-activated input (the seed presets: the raw x), so both paths
        // share the pre-activation.
        let proj_on_a = matches!(self.shortcut, Shortcut::Proj { .. }) && !self.proj_on_raw;
        // With statistics, a v2 block's pre-activation batch norm measures the split (no extra
        // pass, see `engine::BnSplit`): where it is the branch's only reader of x it adds its part
        // onto the shortcut's (`Onto`); where the projection reads its output too, the shortcut's
        // part of that output's gradient is set aside and both go through it (`Through`). The
        // first unit, which has no pre-activation, and `reluonly` use `Split`'s pair of ops.
        let bn_measures = T::OWNS_TAPE && v2 && !self.skip_preact;
        let through = tap
            .filter(|_| bn_measures && proj_on_a)
            .map(|t| t.split::<E>());
        let onto = tap
            .filter(|_| bn_measures && !proj_on_a)
            .map(|t| t.join_sink());
        let split = tap
            .filter(|_| T::OWNS_TAPE && !bn_measures)
            .map(|t| t.split::<E>().with_one_reader(true));
        let x = match &split {
            Some(sp) => sp.enter(x),
            None => x,
        };
        // Branch first, shortcut second (see `forward_post`).
        let (a, sc_in) = if proj_on_a && split.is_none() {
            let a = match &through {
                Some(sp) => {
                    let (sink, stash) = sp.parts();
                    let join = BnSplit::Through(sink, stash);
                    self.bn1().fwd_joined(ps, x, mode, true, join)
                }
                None => self.preact(ps, x, mode),
            };
            let s = a.with_empty_tape();
            (a, s)
        } else {
            let s = x.with_empty_tape();
            let a = match onto {
                Some(j) => self.bn1().fwd_joined(ps, x, mode, true, BnSplit::Onto(j)),
                None => self.preact(ps, x, mode),
            };
            (a, s)
        };
        let h = self.conv1.fwd(ps, a, true);
        let h = if v2 {
            let bn2 = self.bn2.as_ref().expect("v2 has bn2");
            let h = bn2.fwd(ps, h, mode, true);
            self.conv2.fwd(ps, h, true)
        } else {
            let h = self.bn1().fwd(ps, h, mode, true);
            let bn2 = self.bn2.as_ref().expect("reluonly has bn2");
            let h = self.conv2.fwd(ps, h, true);
            bn2.fwd(ps, h, mode, false)
        };
        let sc_in = match (&split, &through) {
            // The shortcut's own pre-activation, so that the split is of ∂L/∂x_l: a stateless
            // ReLU here (`reluonly`; v2's batch norm measures the split instead, or is skipped).
            (Some(sp), _) if proj_on_a => self.preact(ps, sp.shortcut(sc_in), mode),
            (Some(sp), _) | (None, Some(sp)) => sp.shortcut(sc_in),
            (None, None) => sc_in,
        };
        let s = match &self.shortcut {
            Shortcut::Proj { conv, .. } => conv.fwd(ps, sc_in, true),
            Shortcut::Pad { cout, stride } => pad_shortcut(sc_in, *cout, *stride),
            Shortcut::Identity | Shortcut::None => sc_in,
        };
        add_tapped(h, s, tap)
    }

    /// ReLU(BN x) for `v2`, ReLU x for `reluonly`; x itself in the first unit, whose
    /// activation the stem applied.
    fn preact<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
    ) -> T4<E, T> {
        if self.skip_preact {
            x
        } else if self.variant != Variant::V2 {
            relu(x)
        } else {
            self.bn1().fwd(ps, x, mode, true)
        }
    }

    fn forward_post<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
        dropout_seed: u64,
        tap: Option<&Tap>,
    ) -> T4<E, T> {
        // The branch's ops (gate included) are recorded before the shortcut's: backward runs in
        // reverse, so the shortcut's gradient reaches x first and the branch's after it, and
        // `Split` can tell them apart (He 2016 eq. 5).
        // The gate reads x too: then the split waits until both have written (`Split::enter`).
        let split = tap
            .filter(|_| !matches!(self.shortcut, Shortcut::None))
            .map(|t| t.split::<E>().with_one_reader(self.gate.is_none()));
        let x = match &split {
            Some(sp) => sp.enter(x),
            None => x,
        };
        let gate = self
            .gate
            .as_ref()
            .map(|g| sigmoid(g.fwd(ps, x.with_empty_tape(), true)));
        let sc_in = x.with_empty_tape();
        let h = self.bn1().fwd(ps, self.conv1.fwd(ps, x, true), mode, true);
        let f = self.conv2.fwd(ps, h, true);
        // Plain blocks end in ReLU(BN f): fused, rather than a separate ReLU pass and buffer.
        let plain = matches!(self.shortcut, Shortcut::None);
        let f = match &self.bn2 {
            Some(bn2) => bn2.fwd_tapped(ps, f, mode, plain, tap.filter(|_| plain)),
            None => f,
        };
        let sc_in = match &split {
            Some(sp) => sp.shortcut(sc_in),
            None => sc_in,
        };
        let Some(s) = self.shortcut_path(ps, sc_in, mode) else {
            return if self.bn2.is_some() {
                f
            } else {
                probed(relu(f), tap)
            };
        };
        match self.variant {
            Variant::Scaled => {
                let (kf, ks) = (self.knobs.f_scale(), self.knobs.sc_scale());
                add_relu_tapped(scaled(f, kf), scaled(s, ks), tap)
            }
            Variant::Gated | Variant::SGated => {
                let g = gate.expect("gated blocks have a gate");
                probed(relu(gate_mix(g, f, s, self.variant == Variant::Gated)), tap)
            }
            // The paper's reading: m·s with m ~ Bernoulli(0.5) in training (inverted dropout's
            // 2·m·s halved), 0.5·s at evaluation; expectation 0.5·s either way.
            Variant::DropSc => {
                let s = dropout(s, 0.5, mode == Mode::Train, dropout_seed);
                add_relu_tapped(f, scale(s, 0.5), tap)
            }
            Variant::InvDropSc => {
                let s = dropout(s, 0.5, mode == Mode::Train, dropout_seed);
                add_relu_tapped(f, s, tap)
            }
            Variant::BnAfter => {
                let bn3 = self.bn3.as_ref().expect("bnafter has bn3");
                bn3.fwd_tapped(ps, add(f, s), mode, true, tap)
            }
            Variant::ReluBefore => add_tapped(relu(f), s, tap),
            // relu(f + s) as one op: no stored sum, one backward pass.
            _ => add_relu_tapped(f, s, tap),
        }
    }
}

impl Block {
    /// The block deleted at test time (Veit et al. 2016, §4): the shortcut path alone, s(x) as
    /// the block's forward computes it (a pre-activation projection reads ReLU(BN x)), without
    /// the residual branch, the final ReLU, scaling or gates. A plain block becomes the identity
    /// where its output has its input's shape, and `None` (not deletable) where it does not.
    pub fn shortcut_only<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
    ) -> Option<T4<E, T>> {
        match &self.shortcut {
            Shortcut::None => {
                let cout = ps.t4::<NoneTape>(self.conv2.w).shape().0;
                (self.conv1.stride == 1 && cout == x.shape().1).then_some(x)
            }
            Shortcut::Proj { .. } if self.variant.pre_activation() && !self.proj_on_raw => {
                let a = self.preact(ps, x, mode);
                self.shortcut_path(ps, a, mode)
            }
            _ => self.shortcut_path(ps, x, mode),
        }
    }

    /// s(x) on the shortcut's input; `None` for plain blocks.
    fn shortcut_path<E: Float, T: Tape<E, Cpu> + Merge<T>>(
        &self,
        ps: &mut ParamStore<E>,
        x: T4<E, T>,
        mode: Mode,
    ) -> Option<T4<E, T>> {
        match &self.shortcut {
            Shortcut::None => None,
            Shortcut::Identity => Some(x),
            Shortcut::Pad { cout, stride } => Some(pad_shortcut(x, *cout, *stride)),
            Shortcut::Proj { conv, bn } => {
                let s = conv.fwd(ps, x, true);
                Some(match bn {
                    Some(bn) => bn.fwd(ps, s, mode, false),
                    None => s,
                })
            }
        }
    }
}

/// `k·x`, skipping the pass when `k` is 1.
fn scaled<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, k: f64) -> T4<E, T> {
    if k == 1.0 { x } else { scale(x, k) }
}

/// `x` through the separate probe passes, for blocks whose last op fuses none.
fn probed<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, tap: Option<&Tap>) -> T4<E, T> {
    match tap {
        Some(t) => t.probe(x),
        None => x,
    }
}
