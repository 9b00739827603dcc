//! The weights of the forward-only path (`model::infer`), with batch norm in evaluation mode
//! folded away, cached per network.
//!
//! In evaluation mode a batch norm is the per-channel affine map y = a·x + b with
//! a = γ/√(running_var + ε) and b = β − running_mean·a. Where it follows a conv (every
//! post-activation BN, the stem, projection shortcuts, `v2`'s bn2 and `reluonly`'s BNs) it is
//! folded into that conv: weights w·a per output channel, bias (bias·a + b). Where it precedes a
//! ReLU on a block's input (`v2`'s pre-activation, the pre-activation head) it stays one affine
//! map fused with the ReLU; `bnafter`'s BN after the addition likewise. a and b are computed in
//! f64, as the batch-norm op computes them.
//!
//! The cache cannot go stale: it keeps a bit-exact copy of every parameter and running statistic
//! it was folded from, and each [`FoldCache::get`] compares the network's current values with it
//! (a memory compare, far cheaper than a forward pass) and refolds on any difference, however
//! the weights were changed (optimizer, checkpoint, a test editing them).

use super::block::{Block, Shortcut};
use super::layers::{Bn, Conv};
use super::params::ParamStore;
use super::spec::Variant;
use crate::engine::{Float, PreparedConv};
use std::sync::{Arc, Mutex};

/// `y = ReLU?(a·x + b)` per channel, in `E` as the batch-norm op computes it.
#[derive(Debug)]
pub(super) struct Affine<E> {
    pub a: Vec<E>,
    pub b: Vec<E>,
    pub relu: bool,
}

/// The shortcut path s(x); projections carry their BN folded in.
#[derive(Debug)]
pub(super) enum FShortcut<E> {
    Identity,
    Pad { cout: usize, stride: usize },
    Proj(PreparedConv<E>),
    None,
}

/// What a pre-activation block applies to its input before the split.
#[derive(Debug)]
pub(super) enum Preact<E> {
    /// The first unit: the stem applied it.
    Identity,
    /// `reluonly`.
    Relu,
    /// `v2`: BN + ReLU.
    BnRelu(Affine<E>),
}

/// How a block joins its branch f and its shortcut s.
#[derive(Debug)]
pub(super) enum Join<E> {
    /// ReLU(f): plain blocks.
    Plain,
    /// ReLU(f + k·s): `v1`, `v1a`, `convsc`, `convbnsc`, `scaled` (f's factor folded into
    /// conv2), `dropsc` (k = 0.5 at evaluation), `invdropsc`.
    AddRelu(E),
    /// ReLU(g·f + (1−g)·s) when exclusive, else ReLU(f + (1−g)·s), g = σ(gate conv x).
    Gated {
        gate: PreparedConv<E>,
        exclusive: bool,
    },
    /// ReLU(BN(f + s)): `bnafter`.
    BnAfter(Affine<E>),
    /// ReLU(f) + s: `relubefore`.
    ReluThenAdd,
    /// f + s: the pre-activation designs, whose input `preact` prepares.
    Pre { preact: Preact<E>, proj_on_a: bool },
}

/// One block: conv1 (its BN folded) + ReLU, conv2 (its BN folded), the shortcut, the join.
#[derive(Debug)]
pub(super) struct FBlock<E> {
    pub conv1: PreparedConv<E>,
    pub conv2: PreparedConv<E>,
    pub shortcut: FShortcut<E>,
    pub join: Join<E>,
}

/// A network's forward-only weights.
#[derive(Debug)]
pub(super) struct Folded<E> {
    /// Every parameter, then every running mean and variance, as folded.
    pub(super) source: Vec<E>,
    /// Followed by ReLU in every design.
    pub stem: PreparedConv<E>,
    pub blocks: Vec<FBlock<E>>,
    pub head_bn: Option<Affine<E>>,
    pub flatten: bool,
    /// `[classes, features]`.
    pub fc_w: Vec<E>,
    pub fc_b: Vec<E>,
}

/// The cached [`Folded`] of one network. A clone starts empty (it folds on first use).
pub(crate) struct FoldCache<E> {
    slot: Mutex<Option<Arc<Folded<E>>>>,
    /// How many times this network was folded: tests check the cache is used and refreshed.
    folds: std::sync::atomic::AtomicU64,
}

impl<E> Default for FoldCache<E> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
            folds: Default::default(),
        }
    }
}

impl<E> Clone for FoldCache<E> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<E> std::fmt::Debug for FoldCache<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FoldCache")
    }
}

impl<E: Float> FoldCache<E> {
    /// The folded weights of the network whose parameters and statistics `store` holds, as they
    /// are now; `fold` folds them when the cached ones are stale.
    pub(super) fn get(
        &self,
        store: &ParamStore<E>,
        fold: impl FnOnce() -> Folded<E>,
    ) -> Arc<Folded<E>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_ref().filter(|f| same_source(store, &f.source)) {
            return f.clone();
        }
        self.folds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = Arc::new(fold());
        *slot = Some(f.clone());
        f
    }

    /// Folds so far.
    pub(super) fn folds(&self) -> u64 {
        self.folds.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Every value the folded weights depend on, in store order.
pub(super) fn sources<E: Float>(ps: &ParamStore<E>) -> impl Iterator<Item = &[E]> {
    let params = ps.params.iter().map(|p| p.data());
    let stats = ps
        .buffers
        .iter()
        .flat_map(|b| [&b.running_mean[..], &b.running_var[..]]);
    params.chain(stats)
}

/// Whether `ps` holds bit for bit the values `copy` was taken from.
fn same_source<E: Float>(ps: &ParamStore<E>, copy: &[E]) -> bool {
    let mut rest = copy;
    for s in sources(ps) {
        if rest.len() < s.len() || bytes(s) != bytes(&rest[..s.len()]) {
            return false;
        }
        rest = &rest[s.len()..];
    }
    rest.is_empty()
}

fn bytes<E: Float>(s: &[E]) -> &[u8] {
    // SAFETY: E is f32 or f64 (the only `Float`s): plain bytes without padding, and the byte
    // slice borrows `s`, so it lives no longer than the data.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

fn to_f64<E: Float>(v: E) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

fn from_f64<E: Float>(v: f64) -> E {
    E::from_f64(v).unwrap_or_else(E::nan)
}

/// Evaluation-mode batch norm as `(a, b)` per channel, in f64.
fn bn_coeffs<E: Float>(ps: &ParamStore<E>, bn: &Bn) -> (Vec<f64>, Vec<f64>) {
    let (gamma, beta) = (ps.params[bn.gamma.0].data(), ps.params[bn.beta.0].data());
    let buf = &ps.buffers[bn.buf.0];
    let mut a = Vec::with_capacity(gamma.len());
    let mut b = Vec::with_capacity(gamma.len());
    for c in 0..gamma.len() {
        let invstd = 1.0 / (to_f64(buf.running_var[c]) + bn.eps).sqrt();
        let ac = to_f64(gamma[c]) * invstd;
        a.push(ac);
        b.push(to_f64(beta[c]) - to_f64(buf.running_mean[c]) * ac);
    }
    (a, b)
}

pub(super) fn affine<E: Float>(ps: &ParamStore<E>, bn: &Bn, relu: bool) -> Affine<E> {
    let (a, b) = bn_coeffs(ps, bn);
    Affine {
        a: a.into_iter().map(from_f64).collect(),
        b: b.into_iter().map(from_f64).collect(),
        relu,
    }
}

/// `conv`, then `bn` (if any), then a factor `k`, as one conv.
pub(super) fn fold_conv<E: Float>(
    ps: &ParamStore<E>,
    conv: &Conv,
    bn: Option<&Bn>,
    k: f64,
) -> PreparedConv<E> {
    let p = &ps.params[conv.w.0];
    let shape = p.shape(); // [out, in, k, k]
    let (cout, cin, ks) = (shape[0], shape[1], shape[2]);
    let w = p.data();
    let bias = conv.b.map(|b| ps.params[b.0].data());
    let (w, bias) = match bn {
        None if k == 1.0 => (w.to_vec(), bias.map(<[E]>::to_vec)),
        _ => {
            let (a, b) = match bn {
                Some(bn) => bn_coeffs(ps, bn),
                None => (vec![1.0; cout], vec![0.0; cout]),
            };
            let per = w.len() / cout.max(1);
            let w = w
                .chunks_exact(per)
                .zip(&a)
                .flat_map(|(row, &ac)| row.iter().map(move |&v| from_f64(to_f64(v) * ac * k)))
                .collect();
            let bias = (0..cout)
                .map(|c| {
                    let cb = bias.map_or(0.0, |bv| to_f64(bv[c]));
                    from_f64((cb * a[c] + b[c]) * k)
                })
                .collect();
            (w, Some(bias))
        }
    };
    PreparedConv::new(w, (cout, cin, ks), conv.stride, conv.pad, bias)
}

pub(super) fn fold_block<E: Float>(ps: &ParamStore<E>, b: &Block) -> FBlock<E> {
    let shortcut = match &b.shortcut {
        Shortcut::Identity => FShortcut::Identity,
        Shortcut::Pad { cout, stride } => FShortcut::Pad {
            cout: *cout,
            stride: *stride,
        },
        Shortcut::Proj { conv, bn } => FShortcut::Proj(fold_conv(ps, conv, bn.as_ref(), 1.0)),
        Shortcut::None => FShortcut::None,
    };
    let one = |c, bn| fold_conv(ps, c, bn, 1.0);
    let (conv1, conv2, join) = match b.variant {
        Variant::V2 => {
            let preact = match (&b.bn1, b.skip_preact) {
                (Some(bn1), false) => Preact::BnRelu(affine(ps, bn1, true)),
                _ => Preact::Identity,
            };
            let conv1 = one(&b.conv1, b.bn2.as_ref());
            let proj_on_a = matches!(b.shortcut, Shortcut::Proj { .. }) && !b.proj_on_raw;
            (conv1, one(&b.conv2, None), Join::Pre { preact, proj_on_a })
        }
        Variant::ReluOnly => {
            let preact = if b.skip_preact {
                Preact::Identity
            } else {
                Preact::Relu
            };
            let proj_on_a = matches!(b.shortcut, Shortcut::Proj { .. }) && !b.proj_on_raw;
            let join = Join::Pre { preact, proj_on_a };
            (
                one(&b.conv1, b.bn1.as_ref()),
                one(&b.conv2, b.bn2.as_ref()),
                join,
            )
        }
        v => {
            let conv1 = one(&b.conv1, b.bn1.as_ref());
            let kf = if v == Variant::Scaled {
                b.knobs.f_scale()
            } else {
                1.0
            };
            let conv2 = fold_conv(ps, &b.conv2, b.bn2.as_ref(), kf);
            (conv1, conv2, post_join(ps, b))
        }
    };
    FBlock {
        conv1,
        conv2,
        shortcut,
        join,
    }
}

/// The join of a post-activation design, at evaluation.
fn post_join<E: Float>(ps: &ParamStore<E>, b: &Block) -> Join<E> {
    if matches!(b.shortcut, Shortcut::None) {
        return Join::Plain;
    }
    let k = |v: f64| Join::AddRelu(from_f64(v));
    match b.variant {
        Variant::Scaled => k(b.knobs.sc_scale()),
        // The mask's expectation: m = 0.5 at evaluation (inverted dropout: the identity).
        Variant::DropSc => k(0.5),
        Variant::Gated | Variant::SGated => Join::Gated {
            gate: fold_conv(
                ps,
                b.gate.as_ref().expect("gated blocks have a gate"),
                None,
                1.0,
            ),
            exclusive: b.variant == Variant::Gated,
        },
        Variant::BnAfter => {
            Join::BnAfter(affine(ps, b.bn3.as_ref().expect("bnafter has bn3"), true))
        }
        Variant::ReluBefore => Join::ReluThenAdd,
        _ => k(1.0),
    }
}
