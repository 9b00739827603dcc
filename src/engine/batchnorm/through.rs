//! The eq. 5 split (He 2016) through a batch norm whose output both sides of a block read: a
//! pre-activation v2 block with a projection shortcut, `x → a = ReLU(BN x) → {F(a), proj(a)}`.
//!
//! ∂L/∂x is the batch norm's backward of ∂L/∂a, and that backward is linear in ∂L/∂a, so the
//! part of ∂L/∂x that arrives through the shortcut is the backward of the shortcut's part of
//! ∂L/∂a, and likewise for the branch. [`super::super::Split::shortcut`] on `a` moves the
//! shortcut's part aside before the branch writes its own; this op's backward then takes both.
//! Per channel the backward is `L(g) = A·gm + c1(g) + c2(g)·(x − μ)` (gm = g under the ReLU
//! mask, c1 and c2 linear in Σgm and Σgm·(x − μ)), so ‖L(p)‖², ‖L(q)‖² and ⟨L(p), L(q)⟩ expand
//! into nine sums over the channel, one pass over both parts and x. The batch norm's own backward
//! then runs once, on their sum: the running statistics, γ and β see one batch norm, as without
//! statistics. (Before this, the shortcut side applied a second copy of the batch norm, forward
//! and backward: about 0.8 % of a v2-56 training step.)

use super::ChanNorm;
use crate::engine::grads::take_mark;
use crate::engine::par::{par_chunks, par_map};
use crate::engine::reduce::{from_f64, reduce3_planes_coarse};
use crate::engine::split::{GradSplit, Stash};
use crate::engine::tensor::Float;

/// The branch's part of ∂L/∂a is `br` (∂L/∂a as the backward found it); the shortcut's waits in
/// `stash`. Returns ∂L/∂a (their sum) and the split of ∂L/∂x. `dims` is `(N, C, H·W)`.
pub(super) fn through<E: Float>(
    stash: &Stash<E>,
    br: &[E],
    x: &[E],
    dims: (usize, usize, usize),
    norms: &[ChanNorm],
    gamma: &[f64],
    (relu, train): (bool, bool),
) -> (Vec<E>, GradSplit) {
    let len = br.len();
    // A buffer still marked new was never written: the branch passed nothing back.
    let zeros;
    let br = if take_mark(br.as_ptr() as usize) {
        zeros = vec![E::zero(); len];
        &zeros[..]
    } else {
        br
    };
    let mut id = stash
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| vec![E::zero(); len]);
    let split = part_sums(br, &id, x, dims, norms, gamma, (relu, train));
    par_chunks(&mut id, |o, c| {
        for (t, &b) in c.iter_mut().zip(&br[o..]) {
            *t = b + *t;
        }
    });
    (id, split)
}

/// [`through`]'s split: per channel the nine sums, then the expansion.
fn part_sums<E: Float>(
    br: &[E],
    id: &[E],
    x: &[E],
    (n, c_all, hw): (usize, usize, usize),
    norms: &[ChanNorm],
    gamma: &[f64],
    (relu, train): (bool, bool),
) -> GradSplit {
    let per_chan = par_map(c_all, br.len(), |c| {
        let nm = norms[c];
        // The forward's mask, bit for bit (see `channel_backward_body`).
        let (mu, a, b): (E, E, E) = (
            from_f64(nm.mean),
            from_f64(gamma[c] * nm.invstd),
            from_f64(nm.shift),
        );
        let zero = E::zero();
        let plane = |bi: usize| {
            let off = (bi * c_all + c) * hw;
            [&br[off..][..hw], &x[off..][..hw], &id[off..][..hw]]
        };
        let s = reduce3_planes_coarse(n, plane, move |q, xv, p| {
            let off = relu && xv * a + b <= zero;
            let (p, q) = if off { (zero, zero) } else { (p, q) };
            let xc = xv - mu;
            [p, p * xc, p * p, q, q * xc, q * q, p * q, xc, xc * xc]
        });
        channel_split(s, gamma[c], nm.invstd, (n * hw) as f64, train)
    });
    per_chan
        .into_iter()
        .fold(GradSplit::default(), |a, s| a + s)
}

/// One channel's split from `[Σp, Σp·xc, Σp², Σq, Σq·xc, Σq², Σp·q, Σxc, Σxc²]` (p, q the masked
/// shortcut and branch parts of ∂L/∂a, xc = x − μ), `m` elements, γ and 1/σ.
fn channel_split(s: [f64; 9], gamma: f64, invstd: f64, m: f64, train: bool) -> GradSplit {
    let [sp, spx, spp, sq, sqx, sqq, spq, sx, sxx] = s;
    let a = gamma * invstd;
    // c1, c2 of one part, and the part's Σgm and Σgm·xc.
    let part = |sg: f64, sgx: f64| {
        if train {
            (-a * sg / m, -a * invstd * invstd * sgx / m, sg, sgx)
        } else {
            (0.0, 0.0, sg, sgx)
        }
    };
    let inner = |(s1, s2, sg, sgx): (f64, f64, f64, f64), (t1, t2, tg, tgx), sst: f64| {
        a * a * sst
            + a * (t1 * sg + s1 * tg)
            + a * (t2 * sgx + s2 * tgx)
            + m * s1 * t1
            + (s1 * t2 + s2 * t1) * sx
            + s2 * t2 * sxx
    };
    let (p, q) = (part(sp, spx), part(sq, sqx));
    GradSplit {
        shortcut_sq: inner(p, p, spp).max(0.0),
        branch_sq: inner(q, q, sqq).max(0.0),
        dot: inner(p, q, spq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::{TT, rand_vec, t4};
    use crate::engine::split::{Split, SplitSink, assert_split_is};
    use crate::engine::{BnCfg, BnSplit, ConvCfg, T4, add, batch_norm2d_probed, conv2d};
    use dfdx::prelude::*;

    const S: (usize, usize, usize, usize) = (4, 8, 16, 16); // 8192: the parallel paths

    fn w(seed: u64, s: (usize, usize, usize, usize)) -> T4<f64> {
        let v: Vec<f64> = rand_vec(s.0 * s.1 * s.2 * s.3, seed);
        t4(&v.iter().map(|v| v * 0.3).collect::<Vec<_>>(), s)
    }

    /// A v2 projection block's pre-activation, measured through: against autograd on two
    /// copies of x, one read by the branch (conv3×3 ∘ ReLU ∘ BN) and one by the shortcut
    /// (conv1×1 ∘ ReLU ∘ BN), each with the same batch norm; x's gradient is their sum.
    fn check_through(train: bool) {
        let xv = rand_vec(S.0 * S.1 * S.2 * S.3, 4);
        let r = t4(&rand_vec(xv.len(), 5), S);
        let bn = BnCfg {
            relu: true,
            train,
            ..BnCfg::default()
        };
        let norm = |x: T4<f64, TT>, join: Option<BnSplit<f64>>| {
            let (mut rm, mut rv) = (vec![0.1; 8], vec![1.3; 8]);
            let gamma = Cpu::default().tensor_from_vec(rand_vec(8, 6), (8,));
            let beta = Cpu::default().tensor_from_vec(rand_vec(8, 7), (8,));
            let stats = (&mut rm[..], &mut rv[..]);
            batch_norm2d_probed(x, gamma.retaped(), beta.retaped(), stats, bn, None, join)
        };
        let conv = |a: T4<f64, TT>, k: usize, seed: u64| {
            let cfg = ConvCfg {
                stride: 1,
                pad: k / 2,
                input_grad: true,
            };
            conv2d(a, w(seed, (8, 8, k, k)).retaped::<TT>(), None, cfg)
        };
        // Reference: two leaves.
        let (xb, xs) = (t4(&xv, S), t4(&xv, S));
        let f = conv(norm(xb.leaky_trace(), None), 3, 21);
        let s = conv(norm(xs.leaky_trace(), None), 1, 22);
        let g = (add(f, s) * r.clone()).sum().backward();
        let (gb, gs) = (g.get(&xb).as_vec(), g.get(&xs).as_vec());
        // Measured: one x, one batch norm.
        let sink = SplitSink::default();
        let sp = Split::<f64>::new(sink.clone());
        let (sink2, stash) = sp.parts();
        let x = t4(&xv, S);
        let a = norm(x.leaky_trace(), Some(BnSplit::Through(sink2, stash)));
        let f = conv(a.with_empty_tape(), 3, 21);
        let s = conv(sp.shortcut(a), 1, 22);
        let g = (add(f, s) * r).sum().backward();
        let got = sink.lock().unwrap().expect("backward recorded the split");
        assert_split_is(got, (&gs, &gb), &g.get(&x).as_vec(), (1e-9, 1e-12));
    }

    #[test]
    fn the_split_through_batch_norm_matches_autograd() {
        use crate::engine::simd::test_switch::both_ways;
        both_ways(|| {
            check_through(true);
            check_through(false);
        });
    }

    /// The expansion against the per-element backward written out, on one channel.
    #[test]
    fn channel_split_expands_the_backward() {
        let m = 50;
        let f = |i: usize, k: f64| ((i as f64 * k).sin() * 1.7).round() / 1.7;
        let (x, p, q): (Vec<f64>, Vec<f64>, Vec<f64>) = (
            (0..m).map(|i| f(i, 0.9) + 0.3).collect(),
            (0..m).map(|i| f(i, 2.3)).collect(),
            (0..m).map(|i| f(i, 3.1) - 0.2).collect(),
        );
        let (gamma, mu, invstd) = (1.4, 0.25, 0.8);
        for train in [true, false] {
            let back = |g: &[f64]| -> Vec<f64> {
                let sg: f64 = g.iter().sum();
                let sgx: f64 = g.iter().zip(&x).map(|(g, x)| g * (x - mu)).sum();
                let a = gamma * invstd;
                let (c1, c2) = if train {
                    (-a * sg / m as f64, -a * invstd * invstd * sgx / m as f64)
                } else {
                    (0.0, 0.0)
                };
                g.iter()
                    .zip(&x)
                    .map(|(g, x)| a * g + c1 + c2 * (x - mu))
                    .collect()
            };
            let (lp, lq) = (back(&p), back(&q));
            let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
            let xc: Vec<f64> = x.iter().map(|x| x - mu).collect();
            let sum = |v: &[f64]| v.iter().sum::<f64>();
            let s = [
                sum(&p),
                dot(&p, &xc),
                dot(&p, &p),
                sum(&q),
                dot(&q, &xc),
                dot(&q, &q),
                dot(&p, &q),
                sum(&xc),
                dot(&xc, &xc),
            ];
            let got = channel_split(s, gamma, invstd, m as f64, train);
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
            assert!(close(got.shortcut_sq, dot(&lp, &lp)), "{got:?}");
            assert!(close(got.branch_sq, dot(&lq, &lq)), "{got:?}");
            assert!(close(got.dot, dot(&lp, &lq)), "{got:?}");
        }
    }
}
