//! Batch assembly: raw `u8` images → normalised `f32` NCHW, optionally with the He et al. (2015,
//! §4.2) CIFAR augmentation: pad 4 pixels on each side, take a random H×W crop, flip horizontally
//! with probability ½.
//!
//! Padding value: He et al. pad the raw image with zeros *after* per-pixel mean subtraction, i.e.
//! the padded border equals the mean. We do the same per channel: the border is the channel mean,
//! which normalises to exactly `0.0`.

use super::{Dataset, Split};
use rand::Rng;

/// Pixels of padding on each side before the random crop.
pub const PAD: usize = 4;

impl Dataset {
    /// Lookup table `lut[c * 256 + v] = (v / 255 − mean[c]) / std[c]`.
    pub fn lut(&self) -> Vec<f32> {
        (0..self.channels)
            .flat_map(|c| {
                let (m, s) = (self.mean[c], self.std[c]);
                (0..256).map(move |v| (v as f32 / 255.0 - m) / s)
            })
            .collect()
    }

    /// Write normalised f32 NCHW images of the given `split` indices into `x` (resized to
    /// `idx.len() × C×H×W`) and their labels into `y`. With `augment = Some(rng)` every image is
    /// padded, randomly cropped and randomly flipped (whatever `self.augment` says — the
    /// [`Sampler`](super::Sampler) decides when to ask for it). Panics if an index is out of range.
    pub fn gather(
        &self,
        split: &Split,
        idx: &[usize],
        mut augment: Option<&mut impl Rng>,
        x: &mut Vec<f32>,
        y: &mut Vec<usize>,
    ) {
        let n = self.image_len();
        let lut = self.lut();
        x.resize(idx.len() * n, 0.0);
        y.clear();
        for (&i, out) in idx.iter().zip(x.chunks_exact_mut(n.max(1))) {
            y.push(split.label(i));
            let src = split.image(i);
            match augment.as_deref_mut() {
                None => normalise(src, &lut, self.height * self.width, out),
                Some(rng) => {
                    let dy = rng.gen_range(0..=2 * PAD);
                    let dx = rng.gen_range(0..=2 * PAD);
                    let flip = rng.gen_bool(0.5);
                    let shape = [self.channels, self.height, self.width];
                    augment_image(src, shape, &lut, dy, dx, flip, out);
                }
            }
        }
    }

    /// [`gather`](Self::gather) without augmentation for a contiguous range of `split`, e.g. one
    /// of [`test_batches`](super::test_batches).
    pub fn gather_range(
        &self,
        split: &Split,
        range: std::ops::Range<usize>,
        x: &mut Vec<f32>,
        y: &mut Vec<usize>,
    ) {
        let idx: Vec<usize> = range.collect();
        self.gather(split, &idx, None::<&mut rand::rngs::StdRng>, x, y);
    }
}

fn normalise(src: &[u8], lut: &[f32], plane: usize, out: &mut [f32]) {
    for ((src, out), lut) in src
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(plane))
        .zip(lut.chunks_exact(256))
    {
        out.iter_mut()
            .zip(src)
            .for_each(|(o, &p)| *o = lut[p as usize]);
    }
}

/// One augmented image: the `[C, H, W]` image `src`, padded by [`PAD`] (normalised value 0), cropped
/// at offset `(dy, dx)` into the padded image (each in `0..=2·PAD`, `(PAD, PAD)` = no shift), then
/// mirrored left↔right if `flip`; normalised through `lut` (see [`Dataset::gather`]) into `out`.
pub fn augment_image(
    src: &[u8],
    [c, h, w]: [usize; 3],
    lut: &[f32],
    dy: usize,
    dx: usize,
    flip: bool,
    out: &mut [f32],
) {
    for ch in 0..c {
        let lut = &lut[ch * 256..][..256];
        for yo in 0..h {
            let row = &mut out[(ch * h + yo) * w..][..w];
            let sy = (yo + dy).wrapping_sub(PAD);
            if sy >= h {
                row.fill(0.0);
                continue;
            }
            let src_row = &src[(ch * h + sy) * w..][..w];
            for (xo, o) in row.iter_mut().enumerate() {
                let xc = if flip { w - 1 - xo } else { xo };
                let sx = (xc + dx).wrapping_sub(PAD);
                *o = if sx < w {
                    lut[src_row[sx] as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A 2-channel 3×5 dataset whose pixel (c, y, x) is 100·c + 10·y + x + 1, normalised by the
    /// identity-ish LUT `v ↦ v` (mean 0, std 1/255) so outputs read back as raw bytes.
    fn ds() -> Dataset {
        let img: Vec<u8> = (0..2)
            .flat_map(|c| (0..3).flat_map(move |y| (0..5).map(move |x| 100 * c + 10 * y + x + 1)))
            .collect();
        let train = Split::new(img.repeat(2), vec![0, 1], 30);
        let mut d = Dataset::from_splits("t", "t", [2, 3, 5], 10, train.clone(), train, true);
        d.mean = vec![0.0; 2];
        d.std = vec![1.0 / 255.0; 2];
        d
    }

    fn px(c: usize, y: usize, x: usize) -> f32 {
        (100 * c + 10 * y + x + 1) as f32
    }

    fn aug(dy: usize, dx: usize, flip: bool) -> Vec<f32> {
        let d = ds();
        let mut out = vec![f32::NAN; 30];
        augment_image(
            d.train.image(0),
            [2, 3, 5],
            &d.lut(),
            dy,
            dx,
            flip,
            &mut out,
        );
        out.iter().map(|v| v.round()).collect()
    }

    #[test]
    fn centred_crop_without_flip_is_identity() {
        let d = ds();
        let (mut x, mut y) = (vec![], vec![]);
        d.gather(
            &d.train,
            &[0],
            None::<&mut rand::rngs::StdRng>,
            &mut x,
            &mut y,
        );
        let x: Vec<f32> = x.iter().map(|v| v.round()).collect();
        assert_eq!(aug(PAD, PAD, false), x);
        assert_eq!(x[0], px(0, 0, 0));
    }

    #[test]
    fn flip_mirrors_each_row() {
        let out = aug(PAD, PAD, true);
        for (c, y, x) in [(0, 0, 0), (1, 2, 1), (1, 1, 4)] {
            assert_eq!(out[(c * 3 + y) * 5 + x], px(c, y, 4 - x));
        }
    }

    #[test]
    fn shifted_crop_exposes_zero_padding() {
        // dy = dx = PAD - 1: content moves one down and one right; row 0 and column 0 are padding.
        let out = aug(PAD - 1, PAD - 1, false);
        for c in 0..2 {
            for y in 0..3 {
                for x in 0..5 {
                    let want = if y == 0 || x == 0 {
                        0.0
                    } else {
                        px(c, y - 1, x - 1)
                    };
                    assert_eq!(out[(c * 3 + y) * 5 + x], want, "({c},{y},{x})");
                }
            }
        }
        // dx = PAD + 1: shifted one column left, last column is padding.
        let out = aug(PAD, PAD + 1, false);
        assert_eq!(out[0], px(0, 0, 1));
        assert_eq!(out[4], 0.0);
        // dy = 2·PAD on a 3-row image: every row is padding.
        assert!(aug(2 * PAD, PAD, true).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn padding_is_the_channel_mean() {
        let mut d = ds();
        d.mean = vec![0.3, 0.6];
        d.std = vec![0.2, 0.1];
        let mut out = vec![f32::NAN; 30];
        augment_image(d.train.image(0), [2, 3, 5], &d.lut(), 0, 0, false, &mut out);
        assert!(
            out.iter().all(|&v| v == 0.0),
            "pad normalises to 0 (= mean)"
        );
    }

    #[test]
    fn random_augmentation_keeps_shape_and_values() {
        let d = ds();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (mut x, mut y) = (vec![], vec![]);
        let values: Vec<f32> = (0..2)
            .flat_map(|c| (0..3).flat_map(move |y| (0..5).map(move |x| px(c, y, x))))
            .collect();
        for _ in 0..50 {
            d.gather(&d.train, &[1, 0, 1], Some(&mut rng), &mut x, &mut y);
            assert_eq!((x.len(), &y[..]), (90, &[1, 0, 1][..]));
            assert!(x.iter().all(|v| *v == 0.0 || values.contains(&v.round())));
        }
    }
}
