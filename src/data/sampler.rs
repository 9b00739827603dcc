//! Seeded shuffling over the training split: epoch `e` visits the images in a permutation drawn from
//! `(seed, e)` alone, so a run is reproducible and can resume mid-epoch from `(epoch, position)`.

use super::Dataset;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// SplitMix64 finaliser: a cheap, well-mixed hash for deriving sub-seeds.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const AUGMENT_STREAM: u64 = 0xa5a5_5a5a_0f0f_f0f0;

/// Seeded shuffling sampler over the train split: every epoch a fresh permutation from
/// `(seed, epoch)`.
#[derive(Debug, Clone)]
pub struct Sampler {
    seed: u64,
    epoch: u32,
    pos: usize,
    perm: Vec<usize>,
}

impl Sampler {
    /// A sampler at the start of epoch 0.
    pub fn new(train_len: usize, seed: u64) -> Self {
        Self::resume(train_len, seed, 0, 0)
    }

    /// A sampler positioned `pos` images into `epoch` (as reported by [`position`](Self::position)),
    /// for resuming a run.
    pub fn resume(train_len: usize, seed: u64, epoch: u32, pos: usize) -> Self {
        let mut s = Self {
            seed,
            epoch,
            pos: pos.min(train_len),
            perm: (0..train_len).collect(),
        };
        s.shuffle();
        s
    }

    fn shuffle(&mut self) {
        self.perm.sort_unstable();
        let mut rng = StdRng::seed_from_u64(mix(mix(self.seed) ^ self.epoch as u64));
        self.perm.shuffle(&mut rng);
    }

    /// The permutation of the current epoch.
    pub fn order(&self) -> &[usize] {
        &self.perm
    }

    /// The epoch of the most recent batch (0 before the first).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// `(epoch, images already served in that epoch)`: enough to [`resume`](Self::resume).
    pub fn position(&self) -> (u32, usize) {
        (self.epoch, self.pos)
    }

    /// Full batches of size `batch` in one epoch of `train_len` images.
    pub fn batches_per_epoch(train_len: usize, batch: usize) -> usize {
        train_len / batch.max(1)
    }

    /// Fill `x`, `y` with the next batch of `batch` training images (normalised; augmented if
    /// `ds.augment && augment`); returns the epoch (0-based) the batch belongs to. An epoch's tail
    /// shorter than `batch` is dropped and the batch comes from the next epoch. A `batch` larger
    /// than the training split is clamped to the split size (one batch per epoch).
    pub fn next_batch(
        &mut self,
        ds: &Dataset,
        batch: usize,
        augment: bool,
        x: &mut Vec<f32>,
        y: &mut Vec<usize>,
    ) -> u32 {
        debug_assert_eq!(
            self.perm.len(),
            ds.train.len(),
            "sampler built for another split"
        );
        let batch = batch.min(self.perm.len());
        if self.pos + batch > self.perm.len() {
            self.epoch += 1;
            self.pos = 0;
            self.shuffle();
        }
        let idx = &self.perm[self.pos..self.pos + batch];
        if ds.augment && augment {
            let stream = mix(self.seed ^ AUGMENT_STREAM) ^ ((self.epoch as u64) << 32);
            let mut rng = StdRng::seed_from_u64(mix(stream ^ self.pos as u64));
            ds.gather(&ds.train, idx, Some(&mut rng), x, y);
        } else {
            ds.gather(&ds.train, idx, None::<&mut StdRng>, x, y);
        }
        self.pos += batch;
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;

    fn ds(n: usize) -> Dataset {
        let train = Split::new(
            (0..n as u8).collect(),
            (0..n as u8).map(|i| i % 10).collect(),
            1,
        );
        let test = Split::new(vec![0], vec![0], 1);
        Dataset::from_splits("t", "t", [1, 1, 1], 10, train, test, false)
    }

    /// Image indices of the next batch (each image's single pixel is its index).
    fn next(s: &mut Sampler, d: &Dataset, batch: usize) -> (u32, Vec<usize>) {
        let (mut x, mut y) = (vec![], vec![]);
        let e = s.next_batch(d, batch, true, &mut x, &mut y);
        let idx = x
            .iter()
            .map(|v| (v * d.std[0] + d.mean[0]) * 255.0)
            .map(|v| v.round() as usize);
        (e, idx.collect())
    }

    #[test]
    fn same_seed_same_order_and_epochs_differ() {
        let a = Sampler::new(100, 7);
        assert_eq!(a.order(), Sampler::new(100, 7).order());
        assert_ne!(a.order(), Sampler::new(100, 8).order());
        let e1 = Sampler::resume(100, 7, 1, 0);
        assert_ne!(a.order(), e1.order());
        for s in [&a, &e1] {
            let mut sorted = s.order().to_vec();
            sorted.sort();
            assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "a permutation");
        }
    }

    #[test]
    fn batches_walk_the_permutation_and_drop_the_tail() {
        let d = ds(10);
        let mut s = Sampler::new(10, 3);
        let order0 = s.order().to_vec();
        let mut seen = vec![];
        for _ in 0..3 {
            let (e, idx) = next(&mut s, &d, 3);
            assert_eq!(e, 0);
            seen.extend(idx);
        }
        assert_eq!(seen, order0[..9]);
        let (e, idx) = next(&mut s, &d, 3);
        assert_eq!((e, s.epoch(), s.position()), (1, 1, (1, 3)));
        assert_eq!(idx, Sampler::resume(10, 3, 1, 0).order()[..3]);
        let mut r = Sampler::resume(10, 3, 1, 3);
        assert_eq!(
            next(&mut r, &d, 3),
            next(&mut s, &d, 3),
            "resume continues identically"
        );
    }

    #[test]
    fn oversized_and_empty_batches_do_not_hang() {
        let d = ds(4);
        let mut s = Sampler::new(4, 0);
        assert_eq!(next(&mut s, &d, 100).1.len(), 4);
        assert_eq!(next(&mut s, &d, 100).0, 1);
        assert_eq!(next(&mut s, &d, 0), (1, vec![]));
        assert_eq!(Sampler::batches_per_epoch(10, 3), 3);
    }
}
