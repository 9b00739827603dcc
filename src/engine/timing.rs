//! Timings of the engine's hot kernels alone (the 3×3 stride-1 conv and the fused BN+ReLU, at the
//! shapes of a CIFAR ResNet's three stages), returned as plain numbers for `resviz bench
//! --kernels` to format. The kernels are timed on plain slices, without dfdx's tape.

use super::batchnorm::{self, BnCfg};
use super::conv::{self, ConvCfg, Geom};

/// One kernel's timing: the fastest of the runs, forward and backward.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// `conv3x3 C->C` or `bn+relu C`.
    pub kernel: String,
    /// `[N, C, H, W]` of the input.
    pub shape: [usize; 4],
    pub fwd_ms: f64,
    /// Conv: dX and dW; batch norm: dX, dγ, dβ.
    pub bwd_ms: f64,
    /// Work of one forward pass in the rate's unit times 10⁻³ s: GFLOP for convs, giga-elements
    /// of input for batch norm (memory-bound: elements per second say more than FLOP/s).
    pub fwd_work: f64,
    /// The backward pass's work in the same unit (a conv's backward is two products).
    pub bwd_work: f64,
    pub unit: &'static str,
}

impl KernelTiming {
    pub fn fwd_rate(&self) -> f64 {
        self.fwd_work / self.fwd_ms
    }
    pub fn bwd_rate(&self) -> f64 {
        self.bwd_work / self.bwd_ms
    }
}

/// Times the conv and the fused BN+ReLU at 16/32/64 channels on 32/16/8 pixels, batch `n`: the
/// fastest of `reps` runs each (after a warm-up run); the kernels split their work over rayon's pool.
pub fn kernel_timings(n: usize, reps: usize) -> Vec<KernelTiming> {
    let mut rows = Vec::new();
    for (c, hw) in [(16, 32), (32, 16), (64, 8)] {
        let len = n * c * hw * hw;
        let (x, gy) = (fill(len, 1), fill(len, 3));
        rows.push(conv_timing(n, c, hw, &x, &gy, reps));
        rows.push(bn_timing(n, c, hw, &x, &gy, reps));
    }
    rows
}

fn conv_timing(n: usize, c: usize, hw: usize, x: &[f32], gy: &[f32], reps: usize) -> KernelTiming {
    let cfg = ConvCfg {
        stride: 1,
        pad: 1,
        input_grad: true,
    };
    let g = Geom::new((n, c, hw, hw), (c, c, 3, 3), cfg);
    let w = fill(c * c * 9, 2);
    let mut y = vec![0f32; x.len()];
    let (mut gx, mut gw) = (vec![0f32; x.len()], vec![0f32; w.len()]);
    let fwd_ms = super::best_ms(reps, &mut || conv::forward(&g, x, &w, None, &mut y));
    let bwd_ms = super::best_ms(reps, &mut || {
        conv::backward(&g, x, &w, gy, Some((&mut gx, false)), Some(&mut gw), None)
    });
    let gflop_ms = g.flops() / 1e6; // per ms → GFLOP/s
    KernelTiming {
        kernel: format!("conv3x3 {c}->{c}"),
        shape: [n, c, hw, hw],
        fwd_ms,
        bwd_ms,
        fwd_work: gflop_ms,
        bwd_work: 2.0 * gflop_ms,
        unit: "GFLOP/s",
    }
}

fn bn_timing(n: usize, c: usize, hw: usize, x: &[f32], gy: &[f32], reps: usize) -> KernelTiming {
    let bn = BnCfg {
        relu: true,
        ..BnCfg::default()
    };
    let gamma = vec![1.0f64; c];
    let beta = vec![0.1f32; c];
    let (mut rm, mut rv) = (vec![0f32; c], vec![1f32; c]);
    // The output is only written: the forward kernel takes uninitialised space.
    let mut out: Vec<f32> = Vec::with_capacity(x.len());
    let mut gx = vec![0f32; x.len()];
    let dims = (n, c, hw * hw);
    let mut norms = Vec::new();
    let fwd_ms = super::best_ms(reps, &mut || {
        let o = &mut out.spare_capacity_mut()[..x.len()];
        norms = batchnorm::forward(x, dims, &gamma, &beta, &mut rm, &mut rv, bn, o, false).0;
    });
    let bwd_ms = super::best_ms(reps, &mut || {
        std::hint::black_box(batchnorm::backward(
            x,
            gy,
            (&mut gx, false),
            dims,
            &norms,
            &gamma,
            bn,
            false,
        ));
    });
    let gelem_ms = x.len() as f64 / 1e6; // Melements per ms = Gelements/s
    KernelTiming {
        kernel: format!("bn+relu {c}"),
        shape: [n, c, hw, hw],
        fwd_ms,
        bwd_ms,
        fwd_work: gelem_ms,
        bwd_work: gelem_ms,
        unit: "Gelem/s",
    }
}

/// `len` values in [−1, 1] from a multiplicative hash of the index (no RNG state to carry).
fn fill(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(0x9E37_79B9).rotate_left(13);
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six kernels, each with positive, finite times and rates, at the batch asked for.
    #[test]
    fn timings_cover_every_kernel_at_the_batch() {
        let rows = kernel_timings(2, 1);
        let names: Vec<&str> = rows.iter().map(|r| r.kernel.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv3x3 16->16",
                "bn+relu 16",
                "conv3x3 32->32",
                "bn+relu 32",
                "conv3x3 64->64",
                "bn+relu 64"
            ]
        );
        for r in &rows {
            assert_eq!(r.shape[0], 2);
            assert!(r.fwd_ms > 0.0 && r.bwd_ms > 0.0, "{r:?}");
            assert!(r.fwd_rate().is_finite() && r.bwd_rate() > 0.0, "{r:?}");
        }
    }
}
