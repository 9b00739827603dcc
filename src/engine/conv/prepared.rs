//! A convolution prepared once for many forward-only passes (inference): its weights and bias
//! owned as plain vectors, and, in f32, already packed for the direct kernel, so a pass neither
//! touches dfdx nor repacks the weights per call. Whatever path [`forward`] takes for a shape,
//! this takes too.

use super::ConvCfg;
use super::forward::{direct_corr, forward};
use super::geom::{Geom, imgs_per_task};
use crate::engine::direct;
use crate::engine::tensor::Float;

/// Weights `[Cout, Cin, K, K]`, an optional bias `[Cout]`, stride and zero padding.
#[derive(Clone, Debug)]
pub struct PreparedConv<E> {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub w: Vec<E>,
    pub bias: Option<Vec<E>>,
    /// The direct kernel's packing of `w` (f32 stride-1 convs with a kernel only).
    packed: Option<Vec<f32>>,
}

impl<E: Float> PreparedConv<E> {
    /// Panics if `w` or `bias` do not have the sizes `(cout, cin, k)` says (a programmer error).
    pub fn new(
        w: Vec<E>,
        (cout, cin, k): (usize, usize, usize),
        stride: usize,
        pad: usize,
        bias: Option<Vec<E>>,
    ) -> Self {
        assert_eq!(w.len(), cout * cin * k * k, "prepared conv: weight size");
        if let Some(b) = &bias {
            assert_eq!(b.len(), cout, "prepared conv: bias size");
        }
        let corr = direct::Corr {
            cin,
            cout,
            h: 1,
            w: 1,
            k,
            pad,
        };
        // The packing depends on channels and kernel only; whether it is used is decided per
        // pass (image size, the SIMD switches of the calling thread).
        let packed = (stride == 1 && k > 1 && pad < k)
            .then(|| E::as_f32(&w).map(|w32| direct::pack(w32, &corr)))
            .flatten();
        PreparedConv {
            cin,
            cout,
            k,
            stride,
            pad,
            w,
            bias,
            packed,
        }
    }

    fn geom(&self, n: usize, h: usize, w: usize) -> Geom {
        let cfg = ConvCfg {
            stride: self.stride,
            pad: self.pad,
            input_grad: false,
        };
        Geom::new(
            (n, self.cin, h, w),
            (self.cout, self.cin, self.k, self.k),
            cfg,
        )
    }

    /// Output height and width for `h × w` inputs.
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        let g = self.geom(1, h, w);
        (g.ho, g.wo)
    }

    /// `x [n, Cin, h, w]` → `[n, Cout, Ho, Wo]`, split over the pool as [`forward`] splits it.
    pub fn forward(&self, x: &[E], n: usize, h: usize, w: usize) -> Vec<E> {
        let g = self.geom(n, h, w);
        let len = n * self.cout * g.ho * g.wo;
        // Zeroed although both paths below overwrite every element, as in `conv2d`.
        let mut out = vec![E::zero(); len];
        if len == 0 {
            return out;
        }
        let direct = match (&self.packed, direct_corr(&g)) {
            (Some(p), Some(c)) => Some((p, c)),
            _ => None,
        };
        match (direct, E::as_f32(x), E::as_f32_mut(&mut out)) {
            (Some((packed, c)), Some(x32), Some(out32)) => {
                let b32 = self
                    .bias
                    .as_deref()
                    .map(|b| E::as_f32(b).expect("f32 bias"));
                let set = direct::Write::Set(b32);
                direct::correlate_batch(&c, packed, x32, out32, imgs_per_task(n), set);
            }
            _ => forward(&g, x, &self.w, self.bias.as_deref(), &mut out),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::simd::test_switch::both_ways;

    /// The prepared conv computes what `conv::forward` computes, on every path.
    #[test]
    fn prepared_equals_forward() {
        both_ways(|| {
            for &(cin, cout, k, stride, hw) in &[
                (3, 8, 3, 1, 12),
                (8, 16, 3, 2, 9),
                (8, 16, 1, 2, 8),
                (16, 16, 3, 1, 8),
                (4, 4, 1, 1, 5),
            ] {
                let n = 5;
                let pad = k / 2;
                let x: Vec<f32> = rand_vec(n * cin * hw * hw, 1)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let w: Vec<f32> = rand_vec(cout * cin * k * k, 2)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let b: Vec<f32> = rand_vec(cout, 3).iter().map(|&v| v as f32).collect();
                let p = PreparedConv::new(w.clone(), (cout, cin, k), stride, pad, Some(b.clone()));
                let got = p.forward(&x, n, hw, hw);
                let g = p.geom(n, hw, hw);
                let mut want = vec![0f32; got.len()];
                forward(&g, &x, &w, Some(&b), &mut want);
                assert_eq!(got, want, "{cin}->{cout} k{k} s{stride} {hw}");
            }
        });
    }
}
