//! Direct stride-1 K×K convolution for f32 on AVX-512 (an implicit im2col).
//!
//! Each register tile holds 48 output pixels × 8 output channels. It reads the zero-padded CHW
//! image at the K·K shifted offsets of every input channel, so no im2col matrix is ever written:
//! im2col + gemm spent as long copying a 9×-expanded image as multiplying it. Every shifted
//! window of a vector is contiguous in the padded image when its pixels run along one output row
//! ([`Layout::Rows`], 16 wide or more: written straight to the output, bias or `+=` fused), when
//! it holds whole rows of an image stored without column padding ([`Layout::Packed`], 8 wide and
//! narrower with "same" padding: the taps that would read a column pad are masked), or along the
//! padded-width grid `Ho · (W+2p)` ([`Layout::Grid`], the rest: computed into a scratch grid whose
//! discarded columns are dropped when copying out).
//!
//! The same kernel computes dX: for stride 1, `dX` is the correlation of the output gradient,
//! padded by `K−1−p`, with the weights flipped in space and transposed in channels.
//!
//! On the 3×3 convs of a CIFAR ResNet it takes about half the time of im2col + gemm per image
//! (README, "Performance").

use super::scratch::with_scratch;
use super::simd;
use rayon::prelude::*;

/// Pixels of one register tile row block: 3 AVX-512 vectors.
const MR: usize = 3;
/// Output channels of one register tile.
const NR: usize = 8;
const LANES: usize = 16;

/// A stride-1 correlation of `[Cin, H, W]` images, zero-padded by `pad`, with `[Cout, Cin, K, K]`
/// weights: `out[co, oy, ox] = Σ w[co, ci, ky, kx] · xpad[ci, oy + ky, ox + kx]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corr {
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub pad: usize,
}

impl Corr {
    pub(super) fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }
    fn packable(&self) -> bool {
        self.k % 2 == 1 && self.pad == self.k / 2 && LANES.is_multiple_of(self.w)
    }
    /// Row stride of the padded image in `layout`.
    fn row(&self, layout: Layout) -> usize {
        if layout == Layout::Packed {
            self.w
        } else {
            self.wp()
        }
    }
    /// Plane stride of the padded image in `layout`.
    fn plane_in(&self, layout: Layout) -> usize {
        self.hp() * self.row(layout)
    }
    /// Where pixel (0, 0) of channel 0 sits in the padded image.
    fn origin(&self, layout: Layout) -> usize {
        match layout {
            // `pad` floats of slack first, so that the leftmost tap of pixel 0 stays in bounds.
            Layout::Packed => self.pad + self.pad * self.w,
            _ => self.pad * self.wp() + self.pad,
        }
    }
    pub(super) fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }
    pub fn ho(&self) -> usize {
        self.hp() + 1 - self.k
    }
    pub fn wo(&self) -> usize {
        self.wp() + 1 - self.k
    }
    pub(super) fn plane(&self) -> usize {
        self.hp() * self.wp()
    }
    /// Grid pixels, rounded up to whole vectors (the tail's extra pixels read zero slack).
    fn pgr(&self) -> usize {
        (self.ho() * self.wp()).next_multiple_of(LANES)
    }
    /// How far past a tap's offset the vectors of either layout read: the grid, or the last
    /// row's last (whole) vector.
    fn reach(&self) -> usize {
        self.pgr()
            .max((self.ho() - 1) * self.wp() + self.wo().next_multiple_of(LANES))
    }
    /// The padded image plus the slack the last vector reads past the last plane.
    fn xpad_len(&self, layout: Layout) -> usize {
        match layout {
            Layout::Packed => {
                let last_read = (self.cin - 1) * self.plane_in(layout)
                    + (self.k - 1) * (self.w + 1)
                    + (self.h * self.w).next_multiple_of(LANES);
                last_read.max(self.pad + self.cin * self.plane_in(layout))
            }
            _ => (self.cin - 1) * self.plane() + (self.k - 1) * (self.wp() + 1) + self.reach(),
        }
    }
    /// Per tap column `kx`: the lanes of a packed vector whose input column is inside the image.
    fn packed_masks(&self) -> Vec<u16> {
        (0..self.k)
            .map(|kx| {
                (0..LANES)
                    .filter(|l| {
                        (l % self.w + kx)
                            .checked_sub(self.pad)
                            .is_some_and(|c| c < self.w)
                    })
                    .fold(0u16, |m, l| m | 1 << l)
            })
            .collect()
    }
    /// Rows when they need no more vectors than the grid: their output goes straight to `out`
    /// (bias or accumulation fused) instead of through a scratch grid and a copy, and the grid's
    /// discarded columns are not computed. 32 and 16 wide: rows (64 vs 68, 16 vs 18 vectors per
    /// channel); 8 wide: grid (8 half-empty vectors vs 5).
    fn layout(&self) -> Layout {
        if self.packable() && self.w < LANES {
            Layout::Packed
        } else if self.ho() * self.wo().div_ceil(LANES) * LANES <= self.pgr() {
            Layout::Rows
        } else {
            Layout::Grid
        }
    }
    /// Every output vector of one channel plane in `layout`, in tile order.
    fn vectors(&self, layout: Layout) -> Vec<Vec16> {
        match layout {
            Layout::Grid => (0..self.pgr())
                .step_by(LANES)
                .map(|q| Vec16 {
                    x: q,
                    dst: q,
                    mask: u16::MAX,
                })
                .collect(),
            Layout::Packed => {
                let p = self.ho() * self.wo();
                (0..p)
                    .step_by(LANES)
                    .map(|q| Vec16 {
                        x: q,
                        dst: q,
                        mask: first_lanes(p - q),
                    })
                    .collect()
            }
            Layout::Rows => (0..self.ho())
                .flat_map(|oy| {
                    (0..self.wo()).step_by(LANES).map(move |ox| Vec16 {
                        x: oy * self.wp() + ox,
                        dst: oy * self.wo() + ox,
                        mask: first_lanes(self.wo() - ox),
                    })
                })
                .collect(),
        }
    }
    pub(super) fn in_img(&self) -> usize {
        self.cin * self.h * self.w
    }
    pub(super) fn out_img(&self) -> usize {
        self.cout * self.ho() * self.wo()
    }
}

/// How output pixels are grouped into 16-lane vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Along each output row, the row's last vector masked; written straight into the output.
    Rows,
    /// Along the padded-width grid `Ho·(W+2p)` (vectors wrap rows), into a scratch grid that
    /// [`copy_out`] then crops.
    Grid,
    /// Whole rows packed back to back (`W` divides 16, "same" padding): the image is stored
    /// without column padding, so every vector holds `16 / W` complete output rows, and the taps
    /// that would read a column pad mask those lanes off instead. No discarded lanes (the grid
    /// wastes 20 % at 8×8), output written straight to `out`, and each plane copied in one piece.
    Packed,
}

/// One output vector: where its 16 pixels start in the padded image (at tap offset 0) and in the
/// destination channel plane, and which lanes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Vec16 {
    x: usize,
    dst: usize,
    mask: u16,
}

/// The mask of a vector's first `n` lanes (all 16 when `n ≥ 16`): a row's or plane's last vector.
fn first_lanes(n: usize) -> u16 {
    (u32::MAX >> (32 - n.min(LANES))) as u16
}

/// Weights `[Cout, Cin, K, K]` → `[(ci, ky, kx), co]`, the rows the tiles broadcast from.
pub fn pack(w: &[f32], c: &Corr) -> Vec<f32> {
    let kk = c.cin * c.k * c.k;
    assert_eq!(w.len(), c.cout * kk, "direct conv: weight size");
    let mut p = vec![0.0; w.len()];
    for (co, wrow) in w.chunks_exact(kk).enumerate() {
        for (j, &v) in wrow.iter().enumerate() {
            p[j * c.cout + co] = v;
        }
    }
    p
}

/// Weights of the adjoint (dX) correlation `c`, whose input channels are the forward's outputs:
/// `packed[(co, ky, kx), ci] = w[co, ci, K−1−ky, K−1−kx]` for forward weights `[c.cin, c.cout, K, K]`.
pub fn pack_adjoint(w: &[f32], c: &Corr) -> Vec<f32> {
    let k2 = c.k * c.k;
    assert_eq!(w.len(), c.cin * c.cout * k2, "direct conv: weight size");
    let mut p = vec![0.0; w.len()];
    for co in 0..c.cin {
        for ci in 0..c.cout {
            for t in 0..k2 {
                let flipped = k2 - 1 - t; // (K−1−ky)·K + (K−1−kx)
                p[(co * k2 + t) * c.cout + ci] = w[(co * c.cout + ci) * k2 + flipped];
            }
        }
    }
    p
}

/// How results reach `out`.
#[derive(Clone, Copy, Debug)]
pub enum Write<'a> {
    /// Overwrite, adding `bias[co]` to channel `co` if given.
    Set(Option<&'a [f32]>),
    /// Accumulate (`+=`).
    Add,
}

/// Correlates whole images `x` (`[Cin, H, W]` back to back) into `out` (`[Cout, Ho, Wo]` each),
/// on the calling thread. `packed` comes from [`pack`] or [`pack_adjoint`].
///
/// Panics if [`simd::direct_conv`] is false or a buffer has the wrong size (programmer errors).
pub fn correlate(c: &Corr, packed: &[f32], x: &[f32], out: &mut [f32], write: Write<'_>) {
    correlate_in(c, c.layout(), packed, x, out, write, None);
}

/// [`correlate`] with the pixel layout chosen by the caller (the tests run both on every shape).
fn correlate_in(
    c: &Corr,
    layout: Layout,
    packed: &[f32],
    x: &[f32],
    out: &mut [f32],
    write: Write<'_>,
    sums: Option<&mut [f64; 3]>,
) {
    assert!(simd::direct_conv(), "direct conv needs AVX-512F");
    assert!(c.cin >= 1 && c.k >= 1 && c.pad < c.k, "direct conv: {c:?}");
    let n = x.len() / c.in_img().max(1);
    assert_eq!(x.len(), n * c.in_img(), "direct conv: input size");
    assert_eq!(out.len(), n * c.out_img(), "direct conv: output size");
    assert_eq!(
        packed.len(),
        c.cout * c.cin * c.k * c.k,
        "direct conv: packed size"
    );
    if let Write::Set(Some(b)) = write {
        assert_eq!(b.len(), c.cout, "direct conv: bias size");
    }
    assert!(
        layout != Layout::Packed || c.packable(),
        "direct conv: {c:?} cannot be packed"
    );
    let (row, plane) = (c.row(layout), c.plane_in(layout));
    let offs: Vec<isize> = (0..c.cin * c.k * c.k)
        .map(|j| {
            let (ci, ky, kx) = (j / (c.k * c.k), (j / c.k) % c.k, j % c.k);
            (ci * plane + ky * row + kx) as isize
        })
        .collect();
    // Packed: the lane mask of every tap (by its column kx), parallel to `offs`.
    let masks: Vec<u16> = match layout {
        Layout::Packed => {
            let by_kx = c.packed_masks();
            (0..offs.len()).map(|j| by_kx[j % c.k]).collect()
        }
        _ => Vec::new(),
    };
    let vecs = c.vectors(layout);
    let grid_len = if layout == Layout::Grid {
        c.cout * c.pgr()
    } else {
        0
    };
    // With `sums` on the grid layout, each image goes to `branch` (in cache) and is then added
    // onto `out`; the other layouts measure in the tiles' own `+=`.
    let branch_len = if sums.is_some() && layout == Layout::Grid {
        c.out_img()
    } else {
        0
    };
    with_scratch::<f32, _>(c.xpad_len(layout) + grid_len + branch_len, |buf| {
        let (xpad, rest) = buf.split_at_mut(c.xpad_len(layout));
        let (grid, branch) = rest.split_at_mut(grid_len);
        xpad.fill(0.0); // borders and slack stay zero; interiors are rewritten per image
        let mut sums = sums;
        let taps = Taps {
            offs: &offs,
            masks: &masks,
            vecs: &vecs,
            packed,
        };
        for (xi, oi) in x
            .chunks_exact(c.in_img())
            .zip(out.chunks_exact_mut(c.out_img()))
        {
            copy_image(c, layout, xi, xpad);
            let sums = sums.as_deref_mut();
            // SAFETY: AVX-512F checked above; `xpad` covers every offset + vector read
            // (xpad_len ≥ max offs + reach), every vector's lanes lie in its channel plane of
            // `grid` ([Cout, pgr]) or `oi` ([Cout, Ho·Wo]), and `packed` is [Cin·K·K, Cout].
            unsafe {
                match layout {
                    Layout::Rows | Layout::Packed => {
                        let cs = c.ho() * c.wo();
                        tiles(c, &taps, xpad, oi, cs, write, sums)
                    }
                    Layout::Grid => {
                        tiles(c, &taps, xpad, grid, c.pgr(), Write::Set(None), None);
                        if let Some(sums) = sums {
                            copy_out(c, grid, branch, Write::Set(None));
                            let s = super::split::add_into(oi, branch);
                            *sums = std::array::from_fn(|k| sums[k] + s[k]);
                        } else {
                            copy_out(c, grid, oi, write);
                        }
                    }
                }
            }
        }
    });
}

/// What every tile of one correlation reads besides the image: tap offsets (and lane masks),
/// the output vectors, the packed weights.
struct Taps<'a> {
    offs: &'a [isize],
    masks: &'a [u16],
    vecs: &'a [Vec16],
    packed: &'a [f32],
}

/// [`correlate`] over a batch in parallel: `per` images per rayon task.
pub fn correlate_batch(
    c: &Corr,
    packed: &[f32],
    x: &[f32],
    out: &mut [f32],
    per: usize,
    write: Write<'_>,
) {
    let per = per.max(1);
    out.par_chunks_mut(per * c.out_img())
        .zip(x.par_chunks(per * c.in_img()))
        .for_each(|(o, x)| correlate(c, packed, x, o, write));
}

/// [`correlate_batch`] adding onto `out`, which already holds another part of the same gradient:
/// the shortcut's part of ∂L/∂x at a residual block whose branch starts with this conv. Returns
/// `[Σ out², Σ new², Σ out·new]` of the values before the add (He 2016 eq. 5's sums). The tiles
/// sum them in the `+=` they make anyway (`kernel::Store::Measure`), so the split costs no pass
/// over memory; the grid layout adds each image from a buffer in cache (`split::add_into`). On
/// 64 images of 16×32×32 this dX takes 5 % longer than a plain `+=` (8×8: 1 %); adding each
/// image from a buffer had cost 15–19 %, the separate merge pass more.
pub fn correlate_batch_measured(
    c: &Corr,
    packed: &[f32],
    x: &[f32],
    out: &mut [f32],
    per: usize,
) -> [f64; 3] {
    let (per, (oi, xi)) = (per.max(1), (c.out_img(), c.in_img()));
    out.par_chunks_mut(per * oi)
        .zip(x.par_chunks(per * xi))
        .map(|(o, x)| {
            let mut sums = [0.0; 3];
            correlate_in(c, c.layout(), packed, x, o, Write::Add, Some(&mut sums));
            sums
        })
        .reduce(|| [0.0; 3], |a, b| std::array::from_fn(|k| a[k] + b[k]))
}

/// Copies one image `[Cin, H, W]` into the interiors of its padded planes in `xpad`, laid out
/// for `layout` (the zero borders are left as they are).
pub(super) fn copy_image(c: &Corr, layout: Layout, xi: &[f32], xpad: &mut [f32]) {
    let (row, plane, origin) = (c.row(layout), c.plane_in(layout), c.origin(layout));
    for (ci, xc) in xi.chunks_exact(c.h * c.w).enumerate() {
        let dst = &mut xpad[origin + ci * plane..];
        if layout == Layout::Packed {
            dst[..xc.len()].copy_from_slice(xc);
        } else {
            copy_plane(dst, row, xc, c.w);
        }
    }
}

/// Copies the `[H, w]` plane `src` into rows `row` floats apart at the start of `dst`. The short
/// rows (8–32 floats) of small images are copied inline in one call per plane: a `memcpy` call
/// per row showed up in a training step's profile. Needs AVX-512F (checked by the callers).
fn copy_plane(dst: &mut [f32], row: usize, src: &[f32], w: usize) {
    let h = src.len() / w.max(1);
    assert!(w <= row && src.len() == h * w, "direct conv: plane copy");
    assert!(
        h == 0 || dst.len() >= (h - 1) * row + w,
        "direct conv: plane copy"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F was checked by the callers; row iy reads src[iy·w ..][..w] and writes
    // dst[iy·row ..][..w], inside both slices (asserted).
    unsafe {
        kernel::copy_plane(dst.as_mut_ptr(), row, src.as_ptr(), w, h)
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (iy, s) in src.chunks_exact(w).enumerate() {
        dst[iy * row..][..w].copy_from_slice(s);
    }
}

/// Grid `[Cout, pgr]` → `[Cout, Ho, Wo]`, dropping the discarded columns.
fn copy_out(c: &Corr, grid: &[f32], out: &mut [f32], write: Write<'_>) {
    let (wp, wo, pgr) = (c.wp(), c.wo(), c.pgr());
    for (co, oc) in out.chunks_exact_mut(c.ho() * wo).enumerate() {
        let gc = &grid[co * pgr..];
        for (orow, grow) in oc.chunks_exact_mut(wo).zip(gc.chunks(wp)) {
            match write {
                Write::Set(bias) => {
                    let b = bias.map_or(0.0, |b| b[co]);
                    for (o, &v) in orow.iter_mut().zip(grow) {
                        *o = v + b;
                    }
                }
                Write::Add => {
                    for (o, &v) in orow.iter_mut().zip(grow) {
                        *o += v;
                    }
                }
            }
        }
    }
}

/// Every tile of one image: `dst[co·dst_cs + v.dst + l] (=|+=) Σ_j xpad[offs[j] + v.x + l] ·
/// packed[j, co]` (+ bias) for every vector `v` of `vecs` and each of its stored lanes `l`;
/// with `sums` (and `Write::Add`), `[Σ dst², Σ new², Σ dst·new]` of the values before the add
/// are added to it.
///
/// # Safety
/// AVX-512F must be available; `xpad.len() >= max(offs) + v.x + 16` and
/// `dst.len() >= (cout − 1)·dst_cs + v.dst + lanes(v)` for every vector `v`,
/// `packed.len() == offs.len()·cout`.
#[cfg(target_arch = "x86_64")]
unsafe fn tiles(
    c: &Corr,
    t: &Taps<'_>,
    xpad: &[f32],
    dst: &mut [f32],
    dst_cs: usize,
    write: Write<'_>,
    mut sums: Option<&mut [f64; 3]>,
) {
    let cout = c.cout;
    debug_assert!(t.packed.len() == t.offs.len() * cout);
    debug_assert!(t.masks.is_empty() || t.masks.len() == t.offs.len());
    let bias = match write {
        Write::Set(b) => b,
        Write::Add => None,
    };
    for tile in t.vecs.chunks(MR) {
        let mut c0 = 0;
        while c0 < cout {
            let nr = (cout - c0).min(NR);
            let store = match (write, sums.as_deref_mut()) {
                (Write::Add, Some(s)) => kernel::Store::Measure(s),
                (Write::Add, None) => kernel::Store::Add,
                (Write::Set(_), _) => kernel::Store::Set,
            };
            // SAFETY: the tile reads xpad[offs[j] + v.x .. + 16] (in bounds by the caller's
            // contract), packed[j·cout + c0 .. + nr] and bias[c0 .. + nr]; it writes the stored
            // lanes of dst[(c0 + jj)·dst_cs + v.dst ..].
            unsafe {
                let src = kernel::Src {
                    x: xpad.as_ptr(),
                    offs: t.offs,
                    masks: t.masks,
                };
                let b = bias.map_or(std::ptr::null(), |b| b.as_ptr().add(c0));
                let w = t.packed.as_ptr().add(c0);
                let d = dst.as_mut_ptr().add(c0 * dst_cs);
                kernel::tile_any(tile, nr, &src, w, cout, d, dst_cs, b, store);
            }
            c0 += nr;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tiles(
    _: &Corr,
    _: &Taps<'_>,
    _: &[f32],
    _: &mut [f32],
    _: usize,
    _: Write<'_>,
    _: Option<&mut [f64; 3]>,
) {
    unreachable!("direct conv needs AVX-512F (checked by `correlate`)")
}

#[cfg(target_arch = "x86_64")]
mod kernel;

#[cfg(test)]
mod tests;
