//! The shapes of one convolution and how its work is split into tasks and gemm groups.

use super::ConvCfg;

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geom {
    /// Checks the shapes (panics with a clear message on a mismatch: a programmer error).
    pub fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        cfg: ConvCfg,
    ) -> Self {
        let (n, cin, h, wd) = x;
        let (cout, wcin, kh, kw) = w;
        assert!(cfg.stride >= 1, "conv2d: stride must be at least 1");
        assert_eq!(
            wcin, cin,
            "conv2d: input has {cin} channels but the weight [{cout}, {wcin}, {kh}, {kw}] expects {wcin}"
        );
        assert_eq!(
            kh, kw,
            "conv2d: only square kernels are supported, got {kh}×{kw}"
        );
        assert!(kh >= 1, "conv2d: empty kernel");
        assert!(
            h + 2 * cfg.pad >= kh && wd + 2 * cfg.pad >= kh,
            "conv2d: kernel {kh}×{kh} larger than the padded input {}×{}",
            h + 2 * cfg.pad,
            wd + 2 * cfg.pad
        );
        Geom {
            n,
            cin,
            h,
            w: wd,
            cout,
            k: kh,
            stride: cfg.stride,
            pad: cfg.pad,
            ho: (h + 2 * cfg.pad - kh) / cfg.stride + 1,
            wo: (wd + 2 * cfg.pad - kh) / cfg.stride + 1,
        }
    }
    /// Output pixels per image.
    pub(super) fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// Rows of the im2col matrix: `Cin·K·K`.
    pub(super) fn kk(&self) -> usize {
        self.cin * self.k * self.k
    }
    pub(super) fn in_img(&self) -> usize {
        self.cin * self.h * self.w
    }
    pub(super) fn out_img(&self) -> usize {
        self.cout * self.p()
    }
    /// 1×1, stride 1, no padding: the image itself is the im2col matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
    /// Stride-1 convs with a kernel compute on the *padded-width grid*: output pixel `(oy, ox)`
    /// for `ox < W+2p` (the `ox >= Wo` columns are discarded), so that each im2col row is one
    /// contiguous window of the padded image and col2im is one long vector add per row.
    pub(super) fn on_grid(&self) -> bool {
        self.stride == 1 && !self.is_pointwise()
    }
    /// Floating-point operations of the forward pass (2 per multiply-add).
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.cout * self.p() * self.kk()) as f64
    }
}

/// Images per rayon task: the batch is split into one contiguous range per thread.
pub(super) fn imgs_per_task(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads).max(1)
}

/// Images per gemm: small images are grouped so that the gemm's pixel dimension reaches about
/// [`GROUP_PIXELS`].
pub(super) fn group_size(pixels: usize) -> usize {
    GROUP_PIXELS.div_ceil(pixels.max(1)).max(1)
}
const GROUP_PIXELS: usize = 512;
