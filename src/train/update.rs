//! The per-element update rules of the optimizers (PyTorch's SGD and Adam) and the ‖Δw‖/‖w‖
//! ratio of one update, over one parameter tensor.
//!
//! A tensor is updated in pieces of [`PIECE`] elements: the piece's update is written to a small
//! buffer as well as applied, so that the ratio's two sums read the piece back from L1 in
//! vectorised passes, and skip them entirely when no ratio is wanted. (Summing in the update's
//! own loop, one element at a time, kept that loop scalar: a v2-56 SGD step took 1.0 ms.)

use crate::engine::sum_squares;

/// Elements of one piece: weights, gradient, buffers and update (4 KiB each) stay in L1.
const PIECE: usize = 1024;

/// What one update did to one tensor: ‖Δw‖/‖w‖ and ‖w‖, both of w after the update (0 for an
/// all-zero tensor, and both 0 when not summed).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moved {
    pub ratio: f64,
    pub norm: f64,
}

/// One step's update rule, with its hyper-parameters resolved for this step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule {
    Sgd(Sgd),
    Adam(Adam),
}

/// d = g + wd·w; b = μ·b + d (b = d on the first step); w -= lr·b.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sgd {
    pub lr: f32,
    pub mu: f32,
    pub first: bool,
}

/// Adam with L2 weight decay folded into the gradient and bias correction: `step` is
/// lr / (1 − β₁ᵗ), `c2` is 1 − β₂ᵗ.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Adam {
    pub step: f32,
    pub b1: f32,
    pub b2: f32,
    pub c2: f32,
    pub eps: f32,
}

impl Rule {
    /// Update `w` from its gradient `g` and buffers (`m`: SGD's momentum or Adam's first moment;
    /// `v`: Adam's second moment, empty for SGD) with weight decay `wd`. With `ratio` it also
    /// sums what the update moved (else returns zeros without summing).
    pub(crate) fn update(
        self,
        w: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        wd: f32,
        ratio: bool,
    ) -> Moved {
        let mut dw = [0f32; PIECE];
        let (mut sum_dw, mut sum_w) = (0.0, 0.0);
        for (k, w) in w.chunks_mut(PIECE).enumerate() {
            let (at, len) = (k * PIECE, w.len());
            let (g, m, dw) = (&g[at..][..len], &mut m[at..][..len], &mut dw[..len]);
            match self {
                Rule::Sgd(h) => h.piece(w, g, m, dw, wd),
                Rule::Adam(h) => h.piece(w, g, (m, &mut v[at..][..len]), dw, wd),
            }
            if ratio {
                sum_dw += sum_squares(dw);
                sum_w += sum_squares(w);
            }
        }
        Moved {
            ratio: if sum_w > 0.0 {
                (sum_dw / sum_w).sqrt()
            } else {
                0.0
            },
            norm: sum_w.sqrt(),
        }
    }
}

impl Sgd {
    /// One piece, its update also written to `dw`. The first step (or μ = 0) has its own loop
    /// rather than a branch per element, so both vectorise.
    fn piece(self, w: &mut [f32], g: &[f32], b: &mut [f32], dw: &mut [f32], wd: f32) {
        let Sgd { lr, mu, first } = self;
        let it = w.iter_mut().zip(g).zip(b).zip(dw);
        if first || mu == 0.0 {
            for (((w, &g), b), dw) in it {
                let d = g + wd * *w;
                *b = d;
                *dw = lr * d;
                *w -= *dw;
            }
        } else {
            for (((w, &g), b), dw) in it {
                let d = g + wd * *w;
                *b = mu * *b + d;
                *dw = lr * *b;
                *w -= *dw;
            }
        }
    }
}

impl Adam {
    /// One piece with its moments `(m, v)`, its update also written to `dw`.
    fn piece(
        self,
        w: &mut [f32],
        g: &[f32],
        (m, v): (&mut [f32], &mut [f32]),
        dw: &mut [f32],
        wd: f32,
    ) {
        let Adam {
            step,
            b1,
            b2,
            c2,
            eps,
        } = self;
        let it = w.iter_mut().zip(g).zip(m).zip(v).zip(dw);
        for ((((w, &g), m), v), dw) in it {
            let d = g + wd * *w;
            *m = b1 * *m + (1.0 - b1) * d;
            *v = b2 * *v + (1.0 - b2) * d * d;
            *dw = step * *m / ((*v / c2).sqrt() + eps);
            *w -= *dw;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGD: Rule = Rule::Sgd(Sgd {
        lr: 0.1,
        mu: 0.9,
        first: true,
    });

    #[test]
    fn sgd_matches_hand_computation() {
        let (mut w, mut b) = (vec![1.0f32], vec![0.0f32]);
        SGD.update(&mut w, &[0.5], &mut b, &mut [], 0.01, false);
        // d = 0.5 + 0.01·1 = 0.51; b = 0.51; w = 1 − 0.051
        assert!((w[0] - 0.949).abs() < 1e-6 && (b[0] - 0.51).abs() < 1e-6);
        let later = Rule::Sgd(Sgd {
            lr: 0.1,
            mu: 0.9,
            first: false,
        });
        later.update(&mut w, &[0.5], &mut b, &mut [], 0.01, false);
        let d = 0.5 + 0.01 * 0.949;
        let b2 = 0.9 * 0.51 + d;
        assert!((w[0] - (0.949 - 0.1 * b2)).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let (mut w, mut m, mut v) = (vec![1.0f32], vec![0.0f32], vec![0.0f32]);
        let (b1, b2) = (0.9f32, 0.999f32);
        let rule = Rule::Adam(Adam {
            step: 0.01 / (1.0 - b1),
            b1,
            b2,
            c2: 1.0 - b2,
            eps: 1e-8,
        });
        rule.update(&mut w, &[0.3], &mut m, &mut v, 0.0, false);
        // With bias correction the first step is lr·sign(g).
        assert!((w[0] - 0.99).abs() < 1e-5, "{}", w[0]);
    }

    /// Over tensors with a partial last piece, the pieces' update equals an element-by-element
    /// one bit for bit, and the ratio equals one summed in f64.
    #[test]
    fn pieces_match_a_plain_loop_and_the_ratio_an_f64_sum() {
        let n = 2 * PIECE + 37;
        let w0: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
            .collect();
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.003)
            .collect();
        let (mut w, mut b) = (w0.clone(), vec![0.25f32; n]);
        let later = Rule::Sgd(Sgd {
            lr: 0.05,
            mu: 0.9,
            first: false,
        });
        let moved = later.update(&mut w, &g, &mut b, &mut [], 1e-4, true);
        let (mut sum_dw, mut sum_w) = (0.0f64, 0.0f64);
        for i in 0..n {
            let d = g[i] + 1e-4 * w0[i];
            let bi = 0.9 * 0.25f32 + d;
            let wi = w0[i] - 0.05 * bi;
            assert_eq!((w[i], b[i]), (wi, bi), "element {i}");
            sum_dw += (0.05 * bi as f64).powi(2);
            sum_w += (wi as f64).powi(2);
        }
        let want = (sum_dw / sum_w).sqrt();
        let ratio = moved.ratio;
        assert!((ratio - want).abs() < 1e-5 * want, "{ratio} vs {want}");
        let norm = sum_w.sqrt();
        assert!(
            (moved.norm - norm).abs() < 1e-5 * norm,
            "{moved:?} vs {norm}"
        );
        let mut w2 = w0.clone();
        assert_eq!(
            later.update(&mut w2, &g, &mut vec![0.25; n], &mut [], 1e-4, false),
            Moved::default()
        );
        assert_eq!(w2, w, "the ratio does not change the update");
    }
}
