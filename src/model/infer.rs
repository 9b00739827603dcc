//! The forward-only path: logits of a network in evaluation mode without dfdx, tapes or probes,
//! on plain slices with batch norm folded (`model::fold`). It computes what
//! `forward(x, Mode::Eval)` computes, to rounding (`infer_tests`).
//!
//! The batch is split into one contiguous part per thread of the pool, each carried through the
//! whole network on its own: no synchronisation between layers, and each thread's activations
//! stay in its own cache. The convolutions split their part again, so a thread that finishes
//! early helps the other.

use super::fold::{
    FBlock, FShortcut, Folded, Join, Preact, affine, fold_block, fold_conv, sources,
};
use super::network::Network;
use crate::engine::Float;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

/// A network's folded weights, checked against its parameters once: while this borrow lives the
/// network cannot change, so any number of passes can share the check.
pub struct Inference<'a, E: Float> {
    net: &'a Network<E>,
    folded: Arc<Folded<E>>,
}

/// Activations of one part of the batch: `[n, c, h, w]`.
struct Act<'a, E: Clone> {
    v: Cow<'a, [E]>,
    c: usize,
    h: usize,
    w: usize,
}

impl<E: Float> Network<E> {
    /// The forward-only view of this network as its weights are now.
    pub fn inference(&self) -> Inference<'_, E> {
        Inference {
            net: self,
            folded: self.folded.get(&self.store, || fold(self)),
        }
    }

    /// Logits `[n, classes]` of `x [n, C, H, W]`, batch norm in evaluation mode.
    pub fn infer(&self, x: &[E], n: usize) -> Vec<E> {
        self.inference().logits(x, n)
    }

    /// [`Network::infer`] with block `deleted` replaced by its shortcut path (as
    /// `forward_lesioned`); `None` if that block cannot be deleted.
    pub fn infer_lesioned(&self, x: &[E], n: usize, deleted: usize) -> Option<Vec<E>> {
        self.inference().logits_without(x, n, Some(deleted))
    }

    /// How many times the forward-only weights were folded (refolded after any change).
    pub fn fold_count(&self) -> u64 {
        self.folded.folds()
    }
}

/// `net`'s weights with batch norm folded into the convolutions, as they are now.
fn fold<E: Float>(net: &Network<E>) -> Folded<E> {
    let ps = &net.store;
    Folded {
        source: sources(ps).flatten().copied().collect(),
        stem: fold_conv(ps, &net.stem.conv, net.stem.bn.as_ref(), 1.0),
        blocks: net.blocks.iter().map(|b| fold_block(ps, b)).collect(),
        head_bn: net.head.bn.as_ref().map(|bn| affine(ps, bn, net.head.relu)),
        flatten: net.head.flatten,
        fc_w: ps.params[net.head.fc_w.0].data().to_vec(),
        fc_b: ps.params[net.head.fc_b.0].data().to_vec(),
    }
}

impl<E: Float> Inference<'_, E> {
    /// Logits `[n, classes]` of `x [n, C, H, W]`.
    pub fn logits(&self, x: &[E], n: usize) -> Vec<E> {
        self.logits_without(x, n, None)
            .expect("an intact network always has an output")
    }

    /// [`Inference::logits`] with block `deleted` (an index into the blocks) replaced by its
    /// shortcut path; `None` if it cannot be deleted.
    pub fn logits_without(&self, x: &[E], n: usize, deleted: Option<usize>) -> Option<Vec<E>> {
        let o = &self.net.opts;
        let img = o.in_channels * o.height * o.width;
        assert_eq!(x.len(), n * img, "infer: input size");
        if let Some(d) = deleted {
            assert!(d < self.folded.blocks.len(), "no block {d}");
            if !self.deletable(d) {
                return None;
            }
        }
        if n == 0 {
            return Some(Vec::new());
        }
        let per = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let parts: Vec<Vec<E>> = x
            .par_chunks(per * img)
            .map(|xc| self.part(xc, xc.len() / img, deleted))
            .collect();
        Some(parts.concat())
    }

    /// Whether block `d` can be deleted: a plain block only where it keeps its input's shape.
    fn deletable(&self, d: usize) -> bool {
        let b = &self.folded.blocks[d];
        !matches!(b.shortcut, FShortcut::None)
            || (b.conv1.stride == 1 && b.conv1.cin == b.conv2.cout)
    }

    /// One part of the batch through the whole network.
    fn part(&self, x: &[E], n: usize, deleted: Option<usize>) -> Vec<E> {
        let (f, o) = (&*self.folded, &self.net.opts);
        let mut h = conv(&f.stem, x, n, o.height, o.width);
        relu(h.v.to_mut());
        for (i, b) in f.blocks.iter().enumerate() {
            h = if deleted == Some(i) {
                shortcut_only(b, &h, n)
            } else {
                block(b, &h, n)
            };
        }
        let mut v = h.v.into_owned();
        let hw = h.h * h.w;
        if let Some(bn) = &f.head_bn {
            channel_affine(&mut v, hw, &bn.a, &bn.b, bn.relu);
        }
        let feats = if f.flatten {
            v
        } else {
            let inv = 1.0 / hw as f64;
            v.chunks_exact(hw)
                .map(|p| from_f64(p.iter().map(|&e| to_f64(e)).sum::<f64>() * inv))
                .collect()
        };
        dense(&feats, &f.fc_w, &f.fc_b)
    }
}

fn to_f64<E: Float>(v: E) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

fn from_f64<E: Float>(v: f64) -> E {
    E::from_f64(v).unwrap_or_else(E::nan)
}

fn conv<'a, E: Float>(
    c: &crate::engine::PreparedConv<E>,
    x: &[E],
    n: usize,
    h: usize,
    w: usize,
) -> Act<'a, E> {
    let (ho, wo) = c.out_hw(h, w);
    Act {
        v: Cow::Owned(c.forward(x, n, h, w)),
        c: c.cout,
        h: ho,
        w: wo,
    }
}

/// As the engine's ReLU (anything not above zero, NaN too, becomes zero), as a branch-free
/// `max` the compiler vectorises.
fn relu<E: Float>(v: &mut [E]) {
    let zero = E::zero();
    v.iter_mut().for_each(|e| *e = e.max(zero));
}

/// `v = ReLU?(a[c]·v + b[c])` on `[n, C, hw]`, with the batch-norm op's arithmetic.
fn channel_affine<E: Float>(v: &mut [E], hw: usize, a: &[E], b: &[E], relu: bool) {
    let zero = E::zero();
    for (i, plane) in v.chunks_exact_mut(hw).enumerate() {
        let (ac, bc) = (a[i % a.len()], b[i % a.len()]);
        if relu {
            plane.iter_mut().for_each(|e| *e = (*e * ac + bc).max(zero));
        } else {
            plane.iter_mut().for_each(|e| *e = *e * ac + bc);
        }
    }
}

/// `y [n, classes] = x [n, F] · wᵀ + b`, summed in f64.
fn dense<E: Float>(x: &[E], w: &[E], b: &[E]) -> Vec<E> {
    let f = w.len() / b.len().max(1);
    x.chunks_exact(f)
        .flat_map(|row| {
            w.chunks_exact(f).zip(b).map(move |(wr, &bv)| {
                let s: f64 = row
                    .iter()
                    .zip(wr)
                    .map(|(&a, &c)| to_f64(a) * to_f64(c))
                    .sum();
                from_f64(s + to_f64(bv))
            })
        })
        .collect()
}

/// Option A: `x` at every `stride`-th row and column, zero channels appended up to `cout`.
fn pad<E: Float>(x: &Act<'_, E>, n: usize, cout: usize, stride: usize) -> Vec<E> {
    let (ho, wo) = ((x.h - 1) / stride + 1, (x.w - 1) / stride + 1);
    let mut out = vec![E::zero(); n * cout * ho * wo];
    for (yo, xi) in out
        .chunks_exact_mut(cout * ho * wo)
        .zip(x.v.chunks_exact(x.c * x.h * x.w))
    {
        for (yp, xp) in yo.chunks_exact_mut(ho * wo).zip(xi.chunks_exact(x.h * x.w)) {
            for i in 0..ho {
                for j in 0..wo {
                    yp[i * wo + j] = xp[i * stride * x.w + j * stride];
                }
            }
        }
    }
    out
}

/// s(x) on the shortcut's input.
fn shortcut<'a, E: Float>(b: &FBlock<E>, x: &'a Act<'_, E>, n: usize) -> Act<'a, E> {
    match &b.shortcut {
        FShortcut::Identity | FShortcut::None => Act {
            v: Cow::Borrowed(&x.v[..]),
            c: x.c,
            h: x.h,
            w: x.w,
        },
        FShortcut::Pad { cout, stride } => Act {
            v: Cow::Owned(pad(x, n, *cout, *stride)),
            c: *cout,
            h: (x.h - 1) / stride + 1,
            w: (x.w - 1) / stride + 1,
        },
        FShortcut::Proj(p) => conv(p, &x.v, n, x.h, x.w),
    }
}

/// The pre-activation designs' input to the branch (and to a projection).
fn preact<'a, E: Float>(p: &Preact<E>, x: &'a Act<'_, E>) -> Act<'a, E> {
    let mut v = match p {
        Preact::Identity => Cow::Borrowed(&x.v[..]),
        _ => Cow::Owned(x.v.to_vec()),
    };
    match p {
        Preact::Identity => {}
        Preact::Relu => relu(v.to_mut()),
        Preact::BnRelu(bn) => channel_affine(v.to_mut(), x.h * x.w, &bn.a, &bn.b, bn.relu),
    }
    Act {
        v,
        c: x.c,
        h: x.h,
        w: x.w,
    }
}

/// The block deleted: its shortcut path alone (a pre-activation projection reads the
/// pre-activated input); the caller checked that it can be deleted.
fn shortcut_only<'a, E: Float>(b: &FBlock<E>, x: &Act<'_, E>, n: usize) -> Act<'a, E> {
    match (&b.join, &b.shortcut) {
        (Join::Pre { preact: p, .. }, FShortcut::Proj(_)) if proj_on_a(&b.join) => {
            shortcut(b, &preact(p, x), n).into_owned()
        }
        _ => shortcut(b, x, n).into_owned(),
    }
}

fn proj_on_a<E>(j: &Join<E>) -> bool {
    matches!(
        j,
        Join::Pre {
            proj_on_a: true,
            ..
        }
    )
}

impl<E: Clone> Act<'_, E> {
    fn into_owned<'b>(self) -> Act<'b, E> {
        Act {
            v: Cow::Owned(self.v.into_owned()),
            c: self.c,
            h: self.h,
            w: self.w,
        }
    }
}

/// One block's output.
fn block<'a, E: Float>(b: &FBlock<E>, x: &Act<'_, E>, n: usize) -> Act<'a, E> {
    if let Join::Pre {
        preact: p,
        proj_on_a,
    } = &b.join
    {
        let a = preact(p, x);
        let mut h = conv(&b.conv1, &a.v, n, a.h, a.w);
        relu(h.v.to_mut());
        let mut f = conv(&b.conv2, &h.v, n, h.h, h.w);
        let s = shortcut(b, if *proj_on_a { &a } else { x }, n);
        add(f.v.to_mut(), &s.v, E::one(), false);
        return f;
    }
    let mut h = conv(&b.conv1, &x.v, n, x.h, x.w);
    relu(h.v.to_mut());
    let mut f = conv(&b.conv2, &h.v, n, h.h, h.w);
    let fv = f.v.to_mut();
    match &b.join {
        Join::Plain => relu(fv),
        Join::AddRelu(k) => add(fv, &shortcut(b, x, n).v, *k, true),
        Join::ReluThenAdd => {
            relu(fv);
            add(fv, &shortcut(b, x, n).v, E::one(), false);
        }
        Join::BnAfter(bn) => {
            add(fv, &shortcut(b, x, n).v, E::one(), false);
            channel_affine(fv, f.h * f.w, &bn.a, &bn.b, bn.relu);
        }
        Join::Gated { gate, exclusive } => {
            let g = conv(gate, &x.v, n, x.h, x.w);
            let s = shortcut(b, x, n);
            let one = E::one();
            for ((y, &gg), &ss) in fv.iter_mut().zip(&g.v[..]).zip(&s.v[..]) {
                let gg = one / (one + (-gg).exp());
                let t = if *exclusive {
                    gg * *y + (one - gg) * ss
                } else {
                    *y + (one - gg) * ss
                };
                *y = t.max(E::zero());
            }
        }
        Join::Pre { .. } => unreachable!("handled above"),
    }
    f
}

/// `f = f + k·s`, then ReLU when asked; each case its own loop, so each vectorises.
fn add<E: Float>(f: &mut [E], s: &[E], k: E, relu: bool) {
    assert_eq!(f.len(), s.len(), "infer: branch and shortcut shapes differ");
    let zero = E::zero();
    let pairs = f.iter_mut().zip(s);
    match (k == E::one(), relu) {
        (true, true) => pairs.for_each(|(y, &v)| *y = (*y + v).max(zero)),
        (true, false) => pairs.for_each(|(y, &v)| *y += v),
        (false, true) => pairs.for_each(|(y, &v)| *y = (*y + k * v).max(zero)),
        (false, false) => pairs.for_each(|(y, &v)| *y += k * v),
    }
}

#[cfg(test)]
#[path = "infer_tests.rs"]
pub(super) mod tests;
