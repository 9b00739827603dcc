//! `Network`: a runtime-built CNN (stem, blocks, head) with probes at every block boundary.

use super::block::{Block, BlockCfg, BlockShape};
use super::fold::FoldCache;
use super::layers::{BiasInit, Bn, Conv, Mode, WeightInit, uniform};
use super::params::{PId, ParamKind, ParamStore, ParamTensor};
use super::spec::{
    Knobs, ModelSpec, SeedPreset, Variant, block_name, blocks_per_stage, boundary_names,
};
use crate::engine::{
    ActStats, Float, GradSplit, ProbeRecorder, Slots, T2, T4, dead_channels, flatten,
    global_avg_pool, probe, relu, view,
};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// What the data and options fix about a network besides its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetOptions {
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    /// Channels of the first stage (`--width`); stages have w, 2w, 4w.
    pub base_width: usize,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            in_channels: 3,
            height: 32,
            width: 32,
            classes: 10,
            base_width: 16,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Stem {
    pub(super) conv: Conv,
    pub(super) bn: Option<Bn>,
    pub(super) relu: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Head {
    pub(super) bn: Option<Bn>,
    pub(super) relu: bool,
    /// Seed presets flatten; ResNets average-pool.
    pub(super) flatten: bool,
    pub(super) fc_w: PId,
    pub(super) fc_b: PId,
}

#[derive(Clone, Debug)]
pub struct Network<E: Float> {
    pub spec: ModelSpec,
    pub opts: NetOptions,
    pub store: ParamStore<E>,
    pub(super) stem: Stem,
    pub(super) blocks: Vec<Block>,
    block_names: Vec<String>,
    /// Elements per example at each block boundary (C·H·W), in `block_names` order.
    block_sizes: Vec<usize>,
    pub(super) head: Head,
    recorder: OwnRecorder,
    /// Training-mode forward passes so far: seeds each pass's dropout mask. Evaluations do not
    /// count, so how often a run is evaluated never changes its training numbers.
    passes: u64,
    /// Whether the first conv computes ∂/∂input (only the shattering experiment wants it).
    pub(super) input_grad: bool,
    /// The folded weights of the forward-only path, refolded when the weights change.
    pub(super) folded: FoldCache<E>,
}

impl<E: Float> Network<E> {
    /// Build `spec` with fresh weights drawn from `seed`.
    pub fn new(spec: ModelSpec, opts: NetOptions, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ps = ParamStore::default();
        let seed_preset = matches!(spec, ModelSpec::Seed(_));
        let (variant, knobs, stage_blocks, widths) = match spec {
            ModelSpec::Resnet {
                variant,
                depth,
                knobs,
            } => {
                let w = opts.base_width;
                (
                    variant,
                    knobs,
                    vec![blocks_per_stage(depth); 3],
                    vec![w, 2 * w, 4 * w],
                )
            }
            ModelSpec::Seed(SeedPreset::V1) => {
                (Variant::V1, Knobs::default(), vec![1, 1], vec![16, 32])
            }
            ModelSpec::Seed(SeedPreset::V2) => {
                (Variant::V2, Knobs::default(), vec![1, 1], vec![16, 32])
            }
        };
        let pre = variant.pre_activation();
        let (bias, init) = if seed_preset {
            (BiasInit::Const(0.0), WeightInit::GlorotUniform)
        } else {
            (BiasInit::None, WeightInit::KaimingOut)
        };
        let stem_conv = Conv::new_with(
            &mut ps,
            &mut rng,
            "stem.conv",
            (opts.in_channels, widths[0], 3),
            1,
            bias,
            init,
        );
        // Every stem ends in ReLU: for the pre-activation designs it is the first unit's
        // activation, moved before the split (He 2016 §4): BN + ReLU for v2, ReLU for reluonly.
        let stem_bn = (!seed_preset && variant != Variant::ReluOnly).then(|| match knobs.bn_off {
            true => Bn::identity(&mut ps, "stem.bn", widths[0]),
            false => Bn::new(&mut ps, "stem.bn", widths[0]),
        });
        let stem = Stem {
            conv: stem_conv,
            bn: stem_bn,
            relu: true,
        };

        let block_names = boundary_names(&stage_blocks);
        let mut blocks = Vec::new();
        let (mut cin, mut h, mut w) = (widths[0], opts.height, opts.width);
        let mut block_sizes = vec![cin * h * w];
        for (s, (&n, &cout)) in stage_blocks.iter().zip(&widths).enumerate() {
            for b in 0..n {
                // ResNet stages after the first halve the resolution; seed presets keep stride 1.
                let stride = if b == 0 && s > 0 && !seed_preset {
                    2
                } else {
                    1
                };
                let name = block_name(s, b);
                let shape = BlockShape { cin, cout, stride };
                let cfg = BlockCfg {
                    variant,
                    knobs,
                    seed_preset,
                    first_unit: s == 0 && b == 0 && !seed_preset,
                };
                blocks.push(Block::new(&mut ps, &mut rng, &name, cfg, shape));
                (h, w) = ((h + 2 - 3) / stride + 1, (w + 2 - 3) / stride + 1);
                cin = cout;
                block_sizes.push(cout * h * w);
            }
        }
        let head_bn = match spec {
            ModelSpec::Seed(SeedPreset::V2) => Some(Bn::keras(&mut ps, "head.bn", cin)),
            _ if knobs.bn_off => pre.then(|| Bn::identity(&mut ps, "head.bn", cin)),
            _ => pre.then(|| Bn::new(&mut ps, "head.bn", cin)),
        };
        let fc_in = if seed_preset { cin * h * w } else { cin };
        let fc_init = if seed_preset {
            DenseInit::KerasHeNormal
        } else {
            DenseInit::Torch
        };
        let (fc_w, fc_b) = linear(&mut ps, &mut rng, "fc", (fc_in, opts.classes), fc_init);
        let head = Head {
            bn: head_bn,
            relu: pre && !seed_preset,
            flatten: seed_preset,
            fc_w,
            fc_b,
        };
        let recorder = ProbeRecorder::new(block_names.len());
        Network {
            spec,
            opts,
            store: ps,
            stem,
            blocks,
            block_names,
            block_sizes,
            head,
            recorder: OwnRecorder(recorder),
            passes: 0,
            input_grad: false,
            folded: FoldCache::default(),
        }
    }

    /// Block-boundary names, input to output: `stem`, `stages.S.B`.
    pub fn block_names(&self) -> &[String] {
        &self.block_names
    }

    /// Elements per example at each block boundary (C·H·W), in `block_names` order.
    pub fn block_sizes(&self) -> &[usize] {
        &self.block_sizes
    }

    pub fn num_params(&self) -> usize {
        self.store.num_params()
    }

    /// The same net in float64: every parameter, batch-norm buffer and the dropout-mask counter
    /// copied (the Hessian's finite differences need a step below f32's resolution).
    pub fn to_f64(&self) -> Network<f64> {
        let mut out = Network::<f64>::new(self.spec.clone(), self.opts, 0);
        let wide =
            |v: &[E]| -> Vec<f64> { v.iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).collect() };
        for (o, p) in out.store.params.iter_mut().zip(&self.store.params) {
            o.data_mut().copy_from_slice(&wide(p.data()));
        }
        for (o, b) in out.store.buffers.iter_mut().zip(&self.store.buffers) {
            o.running_mean = wide(&b.running_mean);
            o.running_var = wide(&b.running_var);
            o.num_batches_tracked = b.num_batches_tracked;
        }
        out.passes = self.passes;
        out.input_grad = self.input_grad;
        out
    }

    /// Training passes so far (the dropout-mask counter), to save with a checkpoint.
    pub fn train_passes(&self) -> u64 {
        self.passes
    }

    /// Restore the dropout-mask counter of a checkpoint, so a resumed run draws the same masks.
    pub fn set_train_passes(&mut self, passes: u64) {
        self.passes = passes;
    }

    /// Every batch norm of the network, input to output (for re-estimating running statistics).
    pub(super) fn bns_mut(&mut self) -> Vec<&mut Bn> {
        let mut out: Vec<&mut Bn> = self.stem.bn.iter_mut().collect();
        for b in &mut self.blocks {
            out.extend(b.bns_mut());
        }
        out.extend(self.head.bn.iter_mut());
        out
    }

    /// Whether statistics are collected.
    pub fn probes_enabled(&self) -> bool {
        self.recorder.is_enabled()
    }

    /// Switch statistics collection off (pure pass-through probes) or on.
    pub fn set_probes_enabled(&self, on: bool) {
        self.recorder.set_enabled(on);
    }

    /// Statistics of the last pass: per block, activation stats and ‖∂L/∂x‖ if backward ran.
    pub fn probe_stats(&self) -> Vec<(ActStats, Option<f64>)> {
        self.recorder.read()
    }

    /// [`Network::probe_stats`] and, per block boundary, the eq. 5 split of the gradient at the
    /// input of the block producing it, from the last backward pass (`None` for the stem and
    /// before backward). A plain block has no shortcut: all of its input's gradient comes through
    /// the branch.
    pub fn probe_stats_and_splits(&self) -> (Slots, Vec<Option<GradSplit>>) {
        let (stats, splits) = self.recorder.read_all();
        let splits = splits
            .into_iter()
            .enumerate()
            .map(
                |(i, s)| match (i.checked_sub(1).map(|b| &self.blocks[b]), s) {
                    (Some(b), None) if !b.has_shortcut() => stats[i - 1].1.map(|g| GradSplit {
                        branch_sq: g * g,
                        ..GradSplit::default()
                    }),
                    (_, s) => s,
                },
            )
            .collect();
        (stats, splits)
    }
}

impl<E: Float> Network<E>
where
    Cpu: Device<E>,
{
    /// Logits `[N, classes]` for `x [N, C, H, W]`, recording block statistics.
    pub fn forward<T: Tape<E, Cpu> + Merge<T>>(&mut self, x: T4<E, T>, mode: Mode) -> T2<E, T> {
        self.forward_lesioned(x, mode, None)
            .expect("an intact network always has an output")
    }

    /// [`Network::forward`] with block `deleted` (an index into the blocks, not the boundaries)
    /// replaced by its shortcut ([`Block::shortcut_only`]); `None` if that block cannot be deleted.
    pub(super) fn forward_lesioned<T: Tape<E, Cpu> + Merge<T>>(
        &mut self,
        x: T4<E, T>,
        mode: Mode,
        deleted: Option<usize>,
    ) -> Option<T2<E, T>> {
        self.recorder.clear();
        if mode == Mode::Train {
            self.passes += 1;
        }
        let ps = &mut self.store;
        // The input is data: the first conv skips its input gradient unless asked for it.
        let mut h = self.stem.conv.fwd(ps, x, self.input_grad);
        // Each block boundary is probed by the op that produces it (see `engine::Tap`); where
        // the next block measures the split of its input's gradient, that gives the norm.
        let blocks = &self.blocks;
        let next_splits = |b: usize| {
            blocks.get(b).is_some_and(Block::has_shortcut)
                && deleted != Some(b)
                && !sum_every_norm()
        };
        let tap_of = |slot: usize| {
            (self.recorder.tap(slot)).map(|t| t.norm_from_next_split(next_splits(slot)))
        };
        let tap = tap_of(0);
        if let Some(bn) = &self.stem.bn {
            h = bn.fwd_tapped(ps, h, mode, self.stem.relu, tap.as_ref());
        } else {
            if self.stem.relu {
                h = relu(h);
            }
            h = probe(h, &self.recorder, 0);
        }
        record_dead(&self.recorder, 0, &h);
        for (i, block) in blocks.iter().enumerate() {
            let seed = self.passes.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
            h = if deleted == Some(i) {
                block.shortcut_only(ps, h, mode)?
            } else {
                block.forward(ps, h, mode, seed, tap_of(i + 1).as_ref())
            };
            record_dead(&self.recorder, i + 1, &h);
        }
        if let Some(bn) = &self.head.bn {
            h = bn.fwd(ps, h, mode, self.head.relu);
        }
        let feats = if self.head.flatten {
            flatten(h)
        } else {
            global_avg_pool(h)
        }; // [N, F]
        let n = feats.shape().0;
        let wt = ps.t2::<T>(self.head.fc_w).permute::<_, Axes2<1, 0>>(); // [F, classes]
        let b = ps
            .t1::<T>(self.head.fc_b)
            .broadcast_like::<_, Axis<0>>(&(n, self.opts.classes));
        Some(feats.matmul(wt) + b) // [N, classes]
    }
}

/// A network's probe recorder. Cloning a network gives the copy a recorder of its own: sharing
/// one, a copy evaluated on another thread (an experiment) would overwrite the original's
/// statistics and could switch them off.
#[derive(Debug)]
struct OwnRecorder(ProbeRecorder);

impl Clone for OwnRecorder {
    fn clone(&self) -> Self {
        Self(self.0.detached())
    }
}

impl std::ops::Deref for OwnRecorder {
    type Target = ProbeRecorder;
    fn deref(&self) -> &ProbeRecorder {
        &self.0
    }
}

#[cfg(test)]
thread_local! {
    /// Makes every tap sum its own ‖∂L/∂x‖ on this thread (the tests compare that with the norms
    /// read from the next block's split).
    pub(crate) static SUM_EVERY_NORM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn sum_every_norm() -> bool {
    #[cfg(test)]
    return SUM_EVERY_NORM.with(|s| s.get());
    #[cfg(not(test))]
    false
}

/// Dead units of a block boundary, when statistics are on.
fn record_dead<E: Float, T>(rec: &ProbeRecorder, slot: usize, h: &T4<E, T>) {
    if rec.is_enabled() {
        rec.set_dead(slot, dead_channels(*h.shape(), view(h)));
    }
}

/// How the dense layer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DenseInit {
    /// PyTorch's default `nn.Linear`: weight and bias uniform(±1/√in).
    Torch,
    /// Keras's `he_normal` kernel (a normal of std √(2/in) truncated at two std, rescaled by
    /// 1/0.8796 so its variance stays 2/in) and a zero bias, as the seed article writes it.
    KerasHeNormal,
}

fn linear<E: Float>(
    ps: &mut ParamStore<E>,
    rng: &mut StdRng,
    name: &str,
    (fan_in, out): (usize, usize),
    init: DenseInit,
) -> (PId, PId) {
    let (w, b) = match init {
        DenseInit::Torch => {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (uniform(rng, out * fan_in, bound), uniform(rng, out, bound))
        }
        DenseInit::KerasHeNormal => {
            // The std of a unit normal truncated to ±2.
            let std = (2.0 / fan_in as f64).sqrt() / 0.879_625_661_034_239_8;
            let normal = Normal::new(0.0, std).expect("finite std");
            let draw = |rng: &mut StdRng| loop {
                let v: f64 = normal.sample(rng);
                if v.abs() <= 2.0 * std {
                    break v;
                }
            };
            (
                (0..out * fan_in).map(|_| draw(rng)).collect(),
                vec![0.0; out],
            )
        }
    };
    let conv = |v: Vec<f64>| {
        v.into_iter()
            .map(|x| E::from_f64(x).unwrap())
            .collect::<Vec<E>>()
    };
    let dev = Cpu::default();
    let w = dev.tensor_from_vec(conv(w), (out, fan_in));
    let b = dev.tensor_from_vec(conv(b), (out,));
    let w = ps.push(
        format!("{name}.weight"),
        ParamKind::Weight,
        ParamTensor::R2(w),
    );
    let b = ps.push(
        format!("{name}.bias"),
        ParamKind::NoDecay,
        ParamTensor::R1(b),
    );
    (w, b)
}

/// Index of the largest logit per row.
pub fn argmax_rows<E: Float>(logits: &[E], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, E::neg_infinity()), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0
        })
        .collect()
}
