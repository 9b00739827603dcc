//! Zero-size probes: placed at a block output, they record the activation's statistics in forward
//! and the fully accumulated ‖∂L/∂x‖ in backward, into a recorder the network owns.
//!
//! Why the backward hook sees the *total* gradient: dfdx runs backward ops in reverse order of
//! registration. The probe's op is registered after x's producer and before every consumer of x,
//! so it runs after all consumers have accumulated into ∂L/∂x and before the producer reads it.

use super::par::par_sum;
use super::reduce::{reduce1_coarse, reduce3_planes_coarse, sum_squares, to_f64};
use super::split::{GradSplit, Split, SplitSink};
use super::tensor::{Float, T4, view};
use dfdx::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Forward statistics of one activation tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ActStats {
    pub mean: f32,
    pub std: f32,
    /// Fraction of exactly-zero entries (sparsity).
    pub zero_frac: f32,
    /// Fraction of channels that are zero in every example (dead units); 0 where not measured.
    pub dead_frac: f32,
}

/// Per slot (block boundary): activation statistics and, once backward has run, ‖∂L/∂x‖.
pub type Slots = Vec<(ActStats, Option<f64>)>;

/// Shared, cheaply clonable store of per-slot statistics for one forward/backward pass.
#[derive(Clone, Debug, Default)]
pub struct ProbeRecorder {
    inner: Arc<Mutex<Slots>>,
    /// Shared by all clones; `false` (the default) means enabled.
    disabled: Arc<AtomicBool>,
    /// Per slot: the eq. 5 split of ∂L/∂x at the input of the block whose output is the slot.
    splits: Arc<Mutex<Vec<SplitSink>>>,
}

impl ProbeRecorder {
    pub fn new(slots: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(vec![Default::default(); slots])),
            disabled: Arc::default(),
            splits: Arc::default(),
        }
    }
    /// Forget the previous pass (all slots back to default / no gradient).
    pub fn clear(&self) {
        self.lock().fill(Default::default());
        for s in self.splits.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *s.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
    /// Per slot, the eq. 5 split recorded at the input of the block that produces the slot
    /// (`None` for the stem, for plain blocks, and before backward).
    pub fn read_splits(&self) -> Vec<Option<GradSplit>> {
        let sinks = self.splits.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.len())
            .map(|i| {
                sinks
                    .get(i)
                    .and_then(|s| *s.lock().unwrap_or_else(|e| e.into_inner()))
            })
            .collect()
    }
    fn split_sink(&self, slot: usize) -> SplitSink {
        let mut sinks = self.splits.lock().unwrap_or_else(|e| e.into_inner());
        if sinks.len() <= slot {
            sinks.resize_with(slot + 1, SplitSink::default);
        }
        sinks[slot].clone()
    }
    /// `(activation stats, ‖∂L/∂x‖ if backward reached the slot)` per slot. Where the slot's
    /// tap left the norm to the next block ([`Tap::norm_from_next_split`]), it is that block's
    /// split total, ‖shortcut part + branch part‖.
    pub fn read(&self) -> Vec<(ActStats, Option<f64>)> {
        self.read_all().0
    }
    /// [`ProbeRecorder::read`] and [`ProbeRecorder::read_splits`] from one read of the splits.
    pub fn read_all(&self) -> (Slots, Vec<Option<GradSplit>>) {
        let splits = self.read_splits();
        let mut slots = self.lock().clone();
        for (i, s) in slots.iter_mut().enumerate() {
            if s.1.is_none() {
                s.1 = splits.get(i + 1).copied().flatten().map(|sp| sp.total());
            }
        }
        (slots, splits)
    }
    /// Number of slots.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A disabled recorder turns [`probe`] into a pure pass-through (no statistics, no backward
    /// hook): the baseline for measuring what the statistics cost. Enabled by default; shared by
    /// all clones.
    /// A recorder of the same size and enabled state that shares nothing with this one: for a
    /// copy of a network that runs its own passes (possibly on another thread).
    pub fn detached(&self) -> Self {
        let r = Self::new(self.len());
        r.set_enabled(self.is_enabled());
        r
    }
    pub fn set_enabled(&self, on: bool) {
        self.disabled.store(!on, Ordering::Relaxed);
    }
    pub fn is_enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    /// Record the dead-unit fraction of `slot` (see [`dead_channels`]).
    pub fn set_dead(&self, slot: usize, frac: f32) {
        self.with_slot(slot, |s| s.0.dead_frac = frac);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_slot(&self, slot: usize, f: impl FnOnce(&mut (ActStats, Option<f64>))) {
        let mut v = self.lock();
        if slot >= v.len() {
            v.resize(slot + 1, Default::default());
        }
        f(&mut v[slot]);
    }
}

/// Elements an op writes before it sums their [`Moments`] (8 KiB of f32): read back at once they
/// come from L1. Summed per 16K-element chunk, they came back from L2, and the moments of a
/// v1-20 step at batch 64 took 0.9 ms instead of 0.6.
pub(crate) const L1_PIECE: usize = 2048;

/// Count, mean, sum of squared deviations and exact zeros of one part of a tensor. Parts merge
/// exactly (Chan et al.'s pairwise update), so each can be summed with its own shift, by
/// whichever op has it in cache: [`probe`] in CHUNK-sized pieces, or the producing op chunk by
/// chunk as it writes them (see [`Tap`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    zeros: f64,
}

impl Moments {
    /// One pass over `v`, shifted by its first element (so the f32 blocks of sums keep their
    /// precision when the mean is large against the spread).
    pub(crate) fn of<E: Float>(v: &[E]) -> Self {
        Self::of_planes(1, |_| v)
    }

    /// [`Moments::of`] the concatenation of `plane(0..planes)` (one channel's planes), in one
    /// reduction whose blocks run across planes: per-plane calls spent more on their own set-up
    /// and merge than on the 49 or 196 elements of a small image's plane.
    pub(crate) fn of_planes<'s, E: Float>(planes: usize, plane: impl Fn(usize) -> &'s [E]) -> Self {
        let n: usize = (0..planes).map(|i| plane(i).len()).sum();
        let Some(&k) = (0..planes).find_map(|i| plane(i).first()) else {
            return Self::default();
        };
        let (zero, one) = (E::zero(), E::one());
        // `move`: selecting between *references* to `one` and `zero` compiles to a branch per
        // element (mispredicted on ReLU outputs); between values it is a vector blend.
        let each = |i| {
            let p = plane(i);
            [p, p, p]
        };
        let [s1, s2, z] = reduce3_planes_coarse(planes, each, move |x, _, _| {
            let d = x - k;
            [d, d * d, if x == zero { one } else { zero }]
        });
        let n = n as f64;
        let d = s1 / n;
        Moments {
            n,
            mean: to_f64(k) + d,
            m2: (s2 - s1 * d).max(0.0),
            zeros: z,
        }
    }

    pub(crate) fn stats(self) -> ActStats {
        if self.n == 0.0 {
            return ActStats::default();
        }
        ActStats {
            mean: self.mean as f32,
            std: (self.m2 / self.n).sqrt() as f32,
            zero_frac: (self.zeros / self.n) as f32,
            dead_frac: 0.0,
        }
    }
}

impl std::ops::Add for Moments {
    type Output = Moments;
    fn add(self, o: Moments) -> Moments {
        let n = self.n + o.n;
        if self.n == 0.0 || o.n == 0.0 {
            return if self.n == 0.0 { o } else { self };
        }
        let d = o.mean - self.mean;
        Moments {
            n,
            mean: self.mean + d * (o.n / n),
            m2: self.m2 + o.m2 + d * d * (self.n * o.n / n),
            zeros: self.zeros + o.zeros,
        }
    }
}

/// Mean, population std and exact-zero fraction of `v`, in one pass.
pub(crate) fn act_stats<E: Float>(v: &[E]) -> ActStats {
    par_sum(v.len(), |s, e| Moments::of(&v[s..e])).stats()
}

/// Fraction of the channels of `v` (`[N, C, H, W]`) that are zero in every example: dead units,
/// as opposed to the zeros any ReLU output has. A channel is alive as soon as one of its entries
/// is non-zero, so the scan of a live channel usually stops within its first plane's first
/// elements; only dead channels are read in full.
pub fn dead_channels<E: Float>((n, c, h, w): (usize, usize, usize, usize), v: &[E]) -> f32 {
    let plane = h * w;
    if c == 0 || plane == 0 || v.len() != n * c * plane {
        return 0.0;
    }
    let zero = E::zero();
    let dead = (0..c)
        .filter(|&ch| {
            (0..n).all(|i| {
                let p = &v[(i * c + ch) * plane..][..plane];
                p.iter().all(|&x| x == zero)
            })
        })
        .count();
    dead as f32 / c as f32
}

/// A probe fused into the op that produces the probed tensor, from [`ProbeRecorder::tap`]. That
/// op records the tensor's [`Moments`] chunk by chunk as it writes them, and in backward
/// ‖∂L/∂x‖ as it reads the gradient, both while the data is in cache: [`probe`] makes a separate
/// pass over each (about 2 % of a 56-layer step). The op's backward runs exactly where the
/// probe's would have (after every consumer of x, before anything reads x's producer), so it sees
/// the same fully accumulated gradient.
#[derive(Clone, Debug)]
pub struct Tap {
    rec: ProbeRecorder,
    slot: usize,
    /// Whether the producing op sums ‖∂L/∂x‖² in backward (see [`Tap::norm_from_next_split`]).
    sums_grad: bool,
}

impl ProbeRecorder {
    /// A tap for `slot`, or `None` when statistics are off (then nothing is computed).
    pub fn tap(&self, slot: usize) -> Option<Tap> {
        self.is_enabled().then(|| Tap {
            rec: self.clone(),
            slot,
            sums_grad: true,
        })
    }
}

impl Tap {
    /// Forward: the statistics of the whole output (clears the slot's gradient norm).
    pub(crate) fn forward(&self, m: Moments) {
        self.rec.with_slot(self.slot, |s| *s = (m.stats(), None));
    }
    /// When `next_splits`, the block reading this output measures the eq. 5 split of its
    /// gradient, whose parts sum to the whole: ‖∂L/∂x‖² = ‖id‖² + ‖br‖² + 2⟨id, br⟩. The norm is
    /// then read from that split ([`ProbeRecorder::read`]) and the producing op skips its own
    /// pass of Σ g² ([`Tap::sums_grad`]).
    pub fn norm_from_next_split(self, next_splits: bool) -> Self {
        Self {
            sums_grad: !next_splits,
            ..self
        }
    }
    /// Whether the producing op is to sum Σ g² over the output's gradient in backward.
    pub(crate) fn sums_grad(&self) -> bool {
        self.sums_grad
    }
    /// Backward: Σ g² over the output's gradient (ignored where the next split gives it).
    pub(crate) fn backward(&self, sum_squares: f64) {
        if self.sums_grad {
            self.rec
                .with_slot(self.slot, |s| s.1 = Some(sum_squares.sqrt()));
        }
    }
    /// The eq. 5 split of the gradient at the input of the block whose output this tap probes.
    pub fn split<E: Float>(&self) -> Split<E> {
        Split::new(self.rec.split_sink(self.slot))
    }
    /// Where a joining op (`batch_norm2d_probed`) records the split instead of [`Split`]'s
    /// ops; cleared, like [`Tap::split`], so a pass that never reaches it leaves none.
    pub fn join_sink(&self) -> SplitSink {
        let sink = self.rec.split_sink(self.slot);
        *sink.lock().unwrap_or_else(|e| e.into_inner()) = None;
        sink
    }
    /// For an op that fuses no statistics: the separate [`probe`] passes.
    pub fn probe<E: Float, T: Tape<E, Cpu>>(&self, x: T4<E, T>) -> T4<E, T> {
        probe(x, &self.rec, self.slot)
    }
}

/// Σ g² of a chunk of a gradient an op has just read (so it is in cache), if tapped.
pub(crate) fn chunk_sum_squares<E: Float>(tapped: bool, g: &[E]) -> f64 {
    if tapped {
        reduce1_coarse(g, |x| [x * x])[0]
    } else {
        0.0
    }
}

/// Record stats of `x` into `slot` and return `x` unchanged, with a backward hook that records
/// ‖∂L/∂x‖ (L2 norm over the whole tensor, batch included) without copying the gradient.
pub fn probe<E: Float, T: Tape<E, Cpu>>(x: T4<E, T>, rec: &ProbeRecorder, slot: usize) -> T4<E, T> {
    if !rec.is_enabled() {
        return x;
    }
    let stats = act_stats(view(&x));
    rec.with_slot(slot, |s| *s = (stats, None));
    if !T::OWNS_TAPE {
        return x;
    }
    let (x, mut tape) = x.split_tape();
    let xg = x.ghost();
    let rec = rec.clone();
    tape.add_backward_op(move |grads| {
        let g = grads.get_or_alloc_mut(&xg)?;
        let norm = sum_squares(&g[..]).sqrt();
        rec.with_slot(slot, |s| s.1 = Some(norm));
        Ok(())
    });
    x.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::elementwise::{add, scale, sigmoid};
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::gradcheck::{TT, t4};

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn forward_stats_match_a_reference_loop() {
        let s = (4, 8, 16, 16); // large enough for the parallel path
        let n = 4 * 8 * 16 * 16;
        let v: Vec<f64> = rand_vec(n, 1)
            .iter()
            .map(|&x| if x < -0.2 { 0.0 } else { 3.0 + x })
            .collect();
        let rec = ProbeRecorder::new(2);
        let x = t4(&v, s);
        let y = probe(x.clone(), &rec, 1);
        assert_eq!(
            view(&y).as_ptr(),
            view(&x).as_ptr(),
            "probe returns x itself"
        );
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let zf = v.iter().filter(|&&x| x == 0.0).count() as f64 / n as f64;
        let r = rec.read();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], (ActStats::default(), None));
        let st = r[1].0;
        assert!(
            (st.mean as f64 - mean).abs() < 1e-6,
            "{} vs {mean}",
            st.mean
        );
        assert!(
            (st.std as f64 - var.sqrt()).abs() < 1e-6,
            "{} vs {}",
            st.std,
            var.sqrt()
        );
        assert!((st.zero_frac as f64 - zf).abs() < 1e-7);
        assert!(zf > 0.3 && zf < 0.5);
        assert_eq!(r[1].1, None, "no backward without a tape");
        // f32 agrees.
        let x32: T4<f32> = Cpu::default().tensor_from_vec(v.iter().map(|&a| a as f32).collect(), s);
        let _ = probe(x32, &rec, 0);
        let st32 = rec.read()[0].0;
        assert!(
            (st32.mean as f64 - mean).abs() < 1e-5 && (st32.std as f64 - var.sqrt()).abs() < 1e-5
        );
        rec.clear();
        assert!(rec.read().iter().all(|s| *s == (ActStats::default(), None)));
    }

    #[test]
    fn backward_records_the_fully_accumulated_gradient_of_an_inner_node() {
        let s = (2, 3, 4, 5);
        let n = 120;
        let xv = rand_vec(n, 2);
        let r = rand_vec(n, 3);
        let x = t4(&xv, s);
        let rec = ProbeRecorder::new(1);
        // h = 1.5·x, probed, then used by two consumers: y = 2·h + σ(h).
        let h = probe(scale(x.leaky_trace(), 1.5), &rec, 0);
        let a = scale(h.with_empty_tape(), 2.0);
        let b = sigmoid(h);
        let g = (add(a, b) * t4(&r, s)).sum().backward();
        // ∂L/∂h = r·(2 + σ'(h)).
        let want: Vec<f64> = (0..n)
            .map(|i| {
                let sg = 1.0 / (1.0 + (-1.5 * xv[i]).exp());
                r[i] * (2.0 + sg * (1.0 - sg))
            })
            .collect();
        let got = rec.read()[0].1.expect("backward reached the probe");
        assert!(
            (got - norm(&want)).abs() < 1e-12 * norm(&want),
            "{got} vs {}",
            norm(&want)
        );
        // …and x's gradient is 1.5× that (the probe does not alter the flow).
        let gx = g.get(&x).as_vec();
        for i in 0..n {
            assert!((gx[i] - 1.5 * want[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn backward_on_a_leaf_matches_dfdx_total_gradient() {
        let s = (2, 3, 4, 5);
        let n = 120;
        let x = t4(&rand_vec(n, 4), s);
        let r = t4(&rand_vec(n, 5), s);
        let rec = ProbeRecorder::new(1);
        let xp: T4<f64, TT> = probe(x.leaky_trace(), &rec, 0);
        // Two consumers of the probed leaf, the second via a cloned (empty) tape.
        let y = add(sigmoid(xp.with_empty_tape()), scale(xp, -3.0));
        let g = (y * r).sum().backward();
        let total = norm(&g.get(&x).as_vec());
        let got = rec.read()[0].1.unwrap();
        assert!((got - total).abs() < 1e-12 * total, "{got} vs {total}");
    }

    #[test]
    fn dead_channels_counts_channels_zero_in_every_example() {
        // [2, 4, 2, 2]: channel 0 zero everywhere (dead), channel 1 zero in one example only
        // (alive), channel 2 half zeros (alive), channel 3 zero everywhere.
        let mut v = vec![0.0f64; 2 * 4 * 4];
        let at = |i: usize, c: usize, k: usize| (i * 4 + c) * 4 + k;
        v[at(1, 1, 3)] = 0.5;
        v[at(0, 2, 0)] = 1.0;
        v[at(1, 2, 2)] = -1.0;
        assert_eq!(dead_channels((2, 4, 2, 2), &v), 0.5);
        assert_eq!(
            dead_channels((2, 4, 2, 2), &v[..8]),
            0.0,
            "shape mismatch: not measured"
        );
        v.iter_mut().for_each(|x| *x = 0.1);
        assert_eq!(dead_channels((2, 4, 2, 2), &v), 0.0);
    }

    #[test]
    fn disabled_recorder_is_a_pass_through() {
        let s = (2, 3, 4, 5);
        let x = t4(&rand_vec(120, 6), s);
        let rec = ProbeRecorder::new(1);
        rec.set_enabled(false);
        assert!(!rec.clone().is_enabled(), "clones share the switch");
        let y = probe(x.leaky_trace(), &rec, 0);
        let _ = y.sum().backward();
        assert_eq!(rec.read()[0], (ActStats::default(), None));
        rec.set_enabled(true);
        let y = probe(x.leaky_trace(), &rec, 0);
        let _ = (y * 2.0).sum().backward();
        let (_, gn) = rec.read()[0];
        assert!((gn.unwrap() - 2.0 * 120f64.sqrt()).abs() < 1e-12);
        // Slots beyond the initial count are added on demand.
        let _ = probe(x, &rec, 3);
        assert_eq!(rec.len(), 4);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::engine::gradcheck::rand_vec;

    /// `cargo test --release --lib engine::probe::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn probe_speed() {
        for s in [
            (64usize, 16usize, 32usize, 32usize),
            (64, 32, 16, 16),
            (64, 64, 8, 8),
        ] {
            let len = s.0 * s.1 * s.2 * s.3;
            let v: Vec<f32> = rand_vec(len, 1)
                .iter()
                .map(|&x| x.max(0.0) as f32)
                .collect();
            let time = |f: &mut dyn FnMut()| crate::engine::best_ms(30, f);
            let ta = time(&mut || {
                std::hint::black_box(act_stats(&v));
            });
            let tn = time(&mut || {
                std::hint::black_box(sum_squares(&v));
            });
            let tc = time(&mut || {
                std::hint::black_box(v.clone());
            });
            println!("{s:?}: act_stats {ta:.3} ms, sum_squares {tn:.3} ms, clone {tc:.3} ms");
        }
        // One thread, in cache: what a fused tap pays per element.
        let v: Vec<f32> = rand_vec(4096, 2)
            .iter()
            .map(|&x| x.max(0.0) as f32)
            .collect();
        let ms = crate::engine::best_ms(30, &mut || {
            for _ in 0..1000 {
                std::hint::black_box(Moments::of(std::hint::black_box(&v[..])));
            }
        });
        println!(
            "moments in cache: {:.4} ns per element",
            ms * 1e6 / (4096.0 * 1000.0)
        );
    }
}
