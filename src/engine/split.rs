//! He et al. 2016, eq. 5, measured: the gradient at a residual block's input split into the part
//! that arrives through the shortcut and the part that comes back through the branch.
//!
//! A block `y = combine(F(x), s(x))` has two kinds of consumers of x: the branch (F, and a gate
//! if any) and the shortcut s. dfdx sums their contributions into one buffer, so the parts are
//! gone by the time anything reads ∂L/∂x. Two zero-size ops keep them apart without copying:
//!
//! - [`Split::enter`] on x before the branch: its backward op runs after every consumer of x.
//! - [`Split::shortcut`] on x after the branch and before the shortcut's ops: its backward op runs
//!   after the shortcut has written its part and before the branch writes anything.
//!
//! Backward order is therefore: shortcut ops write `id` into x's gradient → `shortcut`'s op moves
//! `id` aside and leaves an unwritten buffer, marked new so the branch's first op writes it with
//! `=` (see `grads::take_grad!`) → branch ops write `br` → `enter`'s op adds `id` back while
//! summing ‖id‖², ‖br‖² and ⟨id, br⟩ in the same pass. The producer of x then reads
//! `id + br`, the gradient it always read. The cost is that one pass per residual block; the
//! branch's first op saves the read of an existing buffer in exchange.

use super::grads::{mark_new, take_grad, take_mark};
use super::par::par_chunks_sum;
use super::reduce::{add_lanes, sum_squares};
use super::tensor::{Float, T4};
use dfdx::prelude::*;
use std::sync::{Arc, Mutex};

#[cfg(target_arch = "x86_64")]
mod join_avx512;

/// The two parts of ∂L/∂x at one block input, as sums over the whole tensor (batch included).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradSplit {
    /// ‖shortcut part‖²: what s passes back (the identity passes ∂L/∂s unchanged).
    pub shortcut_sq: f64,
    /// ‖branch part‖²: everything else (F, and the gate of gated blocks).
    pub branch_sq: f64,
    /// ⟨shortcut part, branch part⟩.
    pub dot: f64,
}

impl GradSplit {
    pub fn shortcut(&self) -> f64 {
        self.shortcut_sq.max(0.0).sqrt()
    }
    pub fn branch(&self) -> f64 {
        self.branch_sq.max(0.0).sqrt()
    }
    /// ‖shortcut + branch‖ = ‖∂L/∂x‖.
    pub fn total(&self) -> f64 {
        (self.shortcut_sq + self.branch_sq + 2.0 * self.dot)
            .max(0.0)
            .sqrt()
    }
    /// Cosine of the angle between the parts (0 where either is zero).
    pub fn cosine(&self) -> f64 {
        let d = self.shortcut() * self.branch();
        if d > 0.0 { self.dot / d } else { 0.0 }
    }
}

impl std::ops::Add for GradSplit {
    type Output = GradSplit;
    fn add(self, o: GradSplit) -> GradSplit {
        GradSplit {
            shortcut_sq: self.shortcut_sq + o.shortcut_sq,
            branch_sq: self.branch_sq + o.branch_sq,
            dot: self.dot + o.dot,
        }
    }
}

/// Where a split is recorded: shared by the two ops of one block and read after backward.
pub type SplitSink = Arc<Mutex<Option<GradSplit>>>;

/// The shortcut's part of a gradient, moved aside by [`Split::shortcut`] until an op adds it back.
pub type Stash<E> = Arc<Mutex<Option<Vec<E>>>>;

/// The pair of ops around one block's input (see the module docs). Create one per block and
/// pass, in forward order: `enter(x)` before the branch, `shortcut(x')` before the shortcut.
pub struct Split<E> {
    sink: SplitSink,
    stash: Stash<E>,
}

impl<E: Float> Split<E> {
    pub fn new(sink: SplitSink) -> Self {
        *lock(&sink) = None;
        Self {
            sink,
            stash: Arc::default(),
        }
    }

    /// Where the split is recorded, and where [`Split::shortcut`] leaves the shortcut's part:
    /// for an op that takes the place of [`Split::enter`] (`engine::BnSplit::Through`).
    pub fn parts(&self) -> (SplitSink, Stash<E>) {
        (self.sink.clone(), self.stash.clone())
    }

    /// Before the branch's ops: records the split once every consumer of x has written.
    pub fn enter<T: Tape<E, Cpu>>(&self, x: T4<E, T>) -> T4<E, T> {
        if !T::OWNS_TAPE {
            return x;
        }
        let (x, mut tape) = x.split_tape();
        let (xg, stash, sink) = (x.ghost(), self.stash.clone(), self.sink.clone());
        tape.add_backward_op(move |grads| {
            // The entry exists: `shortcut`'s op put a buffer there.
            let mut g = std::mem::take(&mut **grads.get_or_alloc_mut(&xg)?);
            let untouched = take_mark(g.as_ptr() as usize);
            let id = lock(&stash).take();
            let split = merge(&mut g, untouched, id.as_deref());
            *lock(&sink) = Some(split);
            **grads.get_or_alloc_mut(&xg)? = g;
            Ok(())
        });
        x.put_tape(tape)
    }

    /// After the branch's ops, before the shortcut's: moves the shortcut's part aside.
    pub fn shortcut<T: Tape<E, Cpu>>(&self, x: T4<E, T>) -> T4<E, T> {
        if !T::OWNS_TAPE {
            return x;
        }
        let (x, mut tape) = x.split_tape();
        let (xg, stash) = (x.ghost(), self.stash.clone());
        let len = x.shape().num_elements();
        tape.add_backward_op(move |grads| {
            let (id, fresh) = take_grad!(grads, xg)?;
            // New means nothing on the shortcut side wrote it: its bits are arbitrary.
            *lock(&stash) = (!fresh).then_some(id);
            **grads.get_or_alloc_mut(&xg)? = new_buffer(len);
            Ok(())
        });
        x.put_tape(tape)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer the next `take_grad!` of it reports new (to be written, not read): unwritten when
/// new-buffer writes are on, zeroed otherwise (then ops accumulate into it as usual).
fn new_buffer<E: Float>(len: usize) -> Vec<E> {
    if !super::alloc::fresh_enabled() {
        return vec![E::zero(); len];
    }
    let mut v = Vec::with_capacity(len);
    // SAFETY: f32/f64 have no invalid bit patterns, and the buffer is marked new, so the op
    // that takes it writes every element before anything reads it (`take_grad!`'s contract);
    // `merge` treats a buffer still marked as never written.
    #[allow(clippy::uninit_vec)]
    unsafe {
        v.set_len(len)
    };
    mark_new(v.as_ptr() as usize);
    v
}

/// `g = br + id` in place, with the split's three sums. `untouched`: the branch wrote nothing
/// (g holds arbitrary bits); `id` is `None` where the shortcut wrote nothing.
fn merge<E: Float>(g: &mut [E], untouched: bool, id: Option<&[E]>) -> GradSplit {
    match (id, untouched) {
        (Some(id), false) => par_chunks_sum(g, |o, c| {
            let [bb, ii, ib] = add_into(c, &id[o..][..c.len()]);
            GradSplit {
                shortcut_sq: ii,
                branch_sq: bb,
                dot: ib,
            }
        }),
        (Some(id), true) => {
            g.copy_from_slice(id);
            GradSplit {
                shortcut_sq: sum_squares(id),
                ..GradSplit::default()
            }
        }
        (None, false) => GradSplit {
            branch_sq: sum_squares(g),
            ..GradSplit::default()
        },
        (None, true) => {
            g.fill(E::zero());
            GradSplit::default()
        }
    }
}

/// `d += s` over two equally long slices, returning `[Σ d², Σ s², Σ d·s]` of the values before
/// the add: the eq. 5 sums with `d` the shortcut's part and `s` the branch's.
///
/// Out of line, with an AVX-512 build, as `reduce::reduce_lanes`: the crate's SSE2 baseline
/// made the merge pass of every v1 block cost about 2 % of a 56-layer step. The lanes are
/// explicit, so both builds give the same sums in the same order.
#[inline(never)]
pub(crate) fn add_into<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
            add_into_body(d, s)
        }
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { wide(d, s) };
    }
    add_into_body(d, s)
}

/// [`add_into`]'s body: eight lanes in `E` over blocks of 1024 (as `reduce1_coarse`), then f64.
#[inline(always)]
fn add_into_body<E: Float>(d: &mut [E], s: &[E]) -> [f64; 3] {
    const LANES: usize = 8;
    const BLOCK: usize = 1024;
    let s = &s[..d.len()];
    let mut total = [[0.0f64; LANES]; 3];
    for (db, sb) in d.chunks_mut(BLOCK).zip(s.chunks(BLOCK)) {
        let mut acc = [[E::zero(); LANES]; 3];
        let (dc, dr) = db.as_chunks_mut::<LANES>();
        let (sc, sr) = sb.as_chunks::<LANES>();
        for (p, q) in dc.iter_mut().zip(sc) {
            for l in 0..LANES {
                acc[0][l] += p[l] * p[l];
                acc[1][l] += q[l] * q[l];
                acc[2][l] += p[l] * q[l];
                p[l] += q[l];
            }
        }
        for (p, &q) in dr.iter_mut().zip(sr) {
            acc[0][0] += *p * *p;
            acc[1][0] += q * q;
            acc[2][0] += *p * q;
            *p += q;
        }
        for (t, a) in total.iter_mut().zip(&acc) {
            add_lanes(t, a);
        }
    }
    total.map(|t| t.iter().sum())
}

/// Batch norm's backward for one channel, as its write pass evaluates it (so that a joining
/// pass writes the same bits): `dx = a·gm + c1 + c2·(x − μ)` in training, `a·gm` in evaluation,
/// with `gm = g` masked where `x·a + b ≤ 0` when a ReLU follows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BnDx<E> {
    pub a: E,
    pub b: E,
    pub c1: E,
    pub c2: E,
    pub mu: E,
    pub train: bool,
}

impl<E: Float> BnDx<E> {
    #[inline(always)]
    pub(crate) fn dx(&self, g: E, x: E, relu: bool) -> E {
        let gm = if relu && x * self.a + self.b <= E::zero() {
            E::zero()
        } else {
            g
        };
        if self.train {
            self.a * gm + self.c1 + self.c2 * (x - self.mu)
        } else {
            self.a * gm
        }
    }

    fn to_f32(self) -> Option<BnDx<f32>> {
        let f = |v: E| v.to_f32();
        Some(BnDx {
            a: f(self.a)?,
            b: f(self.b)?,
            c1: f(self.c1)?,
            c2: f(self.c2)?,
            mu: f(self.mu)?,
            train: self.train,
        })
    }
}

/// `d += k.dx(g, x)` over planes `0..planes` (`plane(i)` gives one plane's `(d, g, x)`),
/// returning [`add_into`]'s sums with `dx` as the branch's part: batch norm's write pass over one
/// channel when it joins a split. f32 on AVX-512 runs one fused loop in intrinsics; elsewhere
/// the branch's part goes through a small buffer (that loop vectorises on its own) and
/// [`add_into`] adds it with the sums.
pub(crate) fn join_planes<'a, E: Float>(
    planes: usize,
    plane: impl Fn(usize) -> (&'a mut [E], &'a [E], &'a [E]),
    k: BnDx<E>,
    relu: bool,
) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512()
        && E::as_f32(&[]).is_some()
        && let Some(k) = k.to_f32()
    {
        let f32_plane = |i| {
            let (d, g, x) = plane(i);
            let f32_of = "E is f32: checked above";
            let d = E::as_f32_mut(d).expect(f32_of);
            (d, E::as_f32(g).expect(f32_of), E::as_f32(x).expect(f32_of))
        };
        // SAFETY: the CPU has AVX-512F (checked at run time); the kernel checks the lengths.
        return unsafe { join_avx512::join_planes_f32(planes, &f32_plane, k, relu) };
    }
    const CHUNK: usize = 512;
    let mut buf = [E::zero(); CHUNK];
    let mut sums = [0.0; 3];
    for i in 0..planes {
        let (d, gp, xp) = plane(i);
        for ((dc, gc), xc) in d
            .chunks_mut(CHUNK)
            .zip(gp.chunks(CHUNK))
            .zip(xp.chunks(CHUNK))
        {
            let br = &mut buf[..dc.len()];
            if relu {
                for ((o, &g), &xv) in br.iter_mut().zip(gc).zip(xc) {
                    *o = k.dx(g, xv, true);
                }
            } else {
                for ((o, &g), &xv) in br.iter_mut().zip(gc).zip(xc) {
                    *o = k.dx(g, xv, false);
                }
            }
            for (s, v) in sums.iter_mut().zip(add_into(dc, br)) {
                *s += v;
            }
        }
    }
    sums
}

/// The split a joining backward measured: its per-channel sums, or (if the shortcut wrote
/// nothing, so the branch wrote a new buffer) all of the gradient as the branch's part.
pub(crate) fn record_join<E: Float>(
    sink: &SplitSink,
    sums: impl Iterator<Item = [f64; 3]>,
    fresh: bool,
    gx: &[E],
) {
    let split = if fresh {
        GradSplit {
            branch_sq: sum_squares(gx),
            ..GradSplit::default()
        }
    } else {
        sums.fold(GradSplit::default(), |acc, [ii, bb, ib]| {
            acc + GradSplit {
                shortcut_sq: ii,
                branch_sq: bb,
                dot: ib,
            }
        })
    };
    *lock(sink) = Some(split);
}

/// Test check: `got` holds ‖gs‖², ‖gb‖² and ⟨gs, gb⟩ of a reference computed on separate inputs
/// (shortcut's part `gs`, branch's `gb`) to `tol` relative (the dot product relative to
/// ‖gs‖·‖gb‖), both parts are non-zero, and the gradient actually seen, `total`, is gs + gb.
#[cfg(test)]
pub(crate) fn assert_split_is(got: GradSplit, (gs, gb): (&[f64], &[f64]), total: &[f64], tol: f64) {
    use super::gradcheck::dot;
    let (ss, bb, sb) = (dot(gs, gs), dot(gb, gb), dot(gs, gb));
    let close = |a: f64, b: f64| (a - b).abs() <= tol * b.abs().max(1e-30);
    assert!(close(got.shortcut_sq, ss), "{got:?} vs ‖gs‖² {ss}");
    assert!(close(got.branch_sq, bb), "{got:?} vs ‖gb‖² {bb}");
    assert!(
        (got.dot - sb).abs() <= tol * (ss * bb).sqrt(),
        "{got:?} vs {sb}"
    );
    assert!(got.shortcut_sq > 0.0 && got.branch_sq > 0.0 && got.dot != 0.0);
    for (t, (b, s)) in total.iter().zip(gb.iter().zip(gs)) {
        assert!((t - (b + s)).abs() <= 1e-12 * (1.0 + t.abs()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::alloc::without_fresh;
    use crate::engine::gradcheck::rand_vec;
    use crate::engine::gradcheck::{TT, t4};
    use crate::engine::{BnCfg, ConvCfg, add_relu, batch_norm2d, conv2d, scale};

    const S: (usize, usize, usize, usize) = (4, 8, 16, 16); // 8192: the parallel paths

    fn w(seed: u64, s: (usize, usize, usize, usize)) -> T4<f64> {
        let n = s.0 * s.1 * s.2 * s.3;
        t4(
            &rand_vec(n, seed)
                .iter()
                .map(|v| v * 0.3)
                .collect::<Vec<_>>(),
            s,
        )
    }

    /// y = ReLU(F(xb) + s(xs)) with F = conv(ReLU(BN(conv xb))) + 0.5·conv1×1(xb) (two branch
    /// consumers, like a gate) and s = conv1×1 (projection) or the identity.
    /// `sc` runs on xs after the branch's ops are recorded (where `Split::shortcut` must go).
    fn block(
        xb: T4<f64, TT>,
        xs: T4<f64, TT>,
        proj: bool,
        sc: impl FnOnce(T4<f64, TT>) -> T4<f64, TT>,
    ) -> T4<f64, TT> {
        let c = |k: usize| ConvCfg {
            stride: 1,
            pad: k / 2,
            input_grad: true,
        };
        let second = conv2d(
            xb.with_empty_tape(),
            w(11, (8, 8, 1, 1)).retaped::<TT>(),
            None,
            c(1),
        );
        let h = conv2d(xb, w(12, (8, 8, 3, 3)).retaped::<TT>(), None, c(3));
        let (mut rm, mut rv) = (vec![0.0; 8], vec![1.0; 8]);
        let ones = Cpu::default().tensor_from_vec(vec![1.0; 8], (8,));
        let zeros = Cpu::default().tensor_from_vec(vec![0.0; 8], (8,));
        let bn = BnCfg {
            relu: true,
            ..BnCfg::default()
        };
        let h = batch_norm2d(h, ones.retaped(), zeros.retaped(), &mut rm, &mut rv, bn);
        let f = conv2d(h, w(13, (8, 8, 3, 3)).retaped::<TT>(), None, c(3));
        let f = crate::engine::add(f, scale(second, 0.5));
        let xs = sc(xs);
        let s = if proj {
            conv2d(xs, w(14, (8, 8, 1, 1)).retaped::<TT>(), None, c(1))
        } else {
            xs
        };
        add_relu(f, s)
    }

    /// The split's three sums against autograd on a graph whose branch and shortcut read two
    /// separate copies of x; and x's total gradient unchanged by the split ops.
    fn check(proj: bool) {
        let xv = rand_vec(S.0 * S.1 * S.2 * S.3, 1);
        let r = t4(&rand_vec(xv.len(), 2), S);
        // Reference: two leaves.
        let (xb, xs) = (t4(&xv, S), t4(&xv, S));
        let y = block(xb.leaky_trace(), xs.leaky_trace(), proj, |x| x);
        let g = (y * r.clone()).sum().backward();
        let (gb, gs) = (g.get(&xb).as_vec(), g.get(&xs).as_vec());
        // Measured: one x, split.
        let sink = SplitSink::default();
        let sp = Split::<f64>::new(sink.clone());
        let x = t4(&xv, S);
        let xt = sp.enter(x.leaky_trace());
        let y = block(xt.with_empty_tape(), xt, proj, |x| sp.shortcut(x));
        let g = (y * r).sum().backward();
        let got = lock(&sink).expect("backward recorded the split");
        assert_split_is(got, (&gs, &gb), &g.get(&x).as_vec(), 1e-10);
    }

    #[test]
    fn split_matches_autograd_on_separate_inputs() {
        check(false);
        check(true);
        without_fresh(|| check(false));
    }

    /// A pre-activation block, `conv(ReLU(BN x)) + s(x)`, whose batch norm joins the split
    /// (`batch_norm2d_probed`) instead of `Split`'s ops: same sums as autograd on two copies of
    /// x, and the same total gradient.
    fn check_joined(proj: bool) {
        let xv = rand_vec(S.0 * S.1 * S.2 * S.3, 4);
        let r = t4(&rand_vec(xv.len(), 5), S);
        let bn = BnCfg {
            relu: true,
            ..BnCfg::default()
        };
        let block = |xb: T4<f64, TT>, xs: T4<f64, TT>, join: Option<SplitSink>| {
            let (mut rm, mut rv) = (vec![0.0; 8], vec![1.0; 8]);
            let gamma = Cpu::default().tensor_from_vec(rand_vec(8, 6), (8,));
            let beta = Cpu::default().tensor_from_vec(rand_vec(8, 7), (8,));
            let stats = (&mut rm[..], &mut rv[..]);
            let a = crate::engine::batch_norm2d_probed(
                xb,
                gamma.retaped(),
                beta.retaped(),
                stats,
                bn,
                None,
                join.map(crate::engine::BnSplit::Onto),
            );
            let cfg = ConvCfg {
                stride: 1,
                pad: 1,
                input_grad: true,
            };
            let f = conv2d(a, w(21, (8, 8, 3, 3)).retaped::<TT>(), None, cfg);
            let s = if proj {
                let cfg = ConvCfg { pad: 0, ..cfg };
                conv2d(xs, w(22, (8, 8, 1, 1)).retaped::<TT>(), None, cfg)
            } else {
                xs
            };
            crate::engine::add(f, s)
        };
        let (xb, xs) = (t4(&xv, S), t4(&xv, S));
        let y = block(xb.leaky_trace(), xs.leaky_trace(), None);
        let g = (y * r.clone()).sum().backward();
        let (gb, gs) = (g.get(&xb).as_vec(), g.get(&xs).as_vec());
        let sink = SplitSink::default();
        let x = t4(&xv, S);
        let xt = x.leaky_trace();
        let y = block(xt.with_empty_tape(), xt, Some(sink.clone()));
        let g = (y * r).sum().backward();
        let got = lock(&sink).expect("backward recorded the split");
        assert_split_is(got, (&gs, &gb), &g.get(&x).as_vec(), 1e-10);
    }

    #[test]
    fn batch_norm_joins_the_split_exactly() {
        use crate::engine::simd::test_switch::both_ways;
        both_ways(|| {
            check_joined(false);
            check_joined(true);
        });
        without_fresh(|| check_joined(false));
    }

    #[test]
    fn untouched_sides_are_zero_not_garbage() {
        // Only the shortcut reads x: the branch part is 0 and x's gradient is exactly gy.
        let xv = rand_vec(S.0 * S.1 * S.2 * S.3, 3);
        let sink = SplitSink::default();
        let sp = Split::<f64>::new(sink.clone());
        let x = t4(&xv, S);
        let xt = sp.enter(x.leaky_trace());
        let y = scale(sp.shortcut(xt), 2.0);
        let g = y.sum().backward();
        let got = lock(&sink).unwrap();
        assert_eq!(got.branch_sq, 0.0);
        assert!((got.shortcut_sq - 4.0 * xv.len() as f64).abs() < 1e-9);
        assert!(g.get(&x).as_vec().iter().all(|&v| v == 2.0));
        assert!((got.total() - got.shortcut()).abs() < 1e-12);
    }

    /// Batch norm's joining write pass, f32: the AVX-512 kernel and the portable path (the
    /// process as configured, then with AVX-512 off) leave `d` bit for bit as the plain write
    /// pass (`d += k.dx(g, x)`), and their sums match an f64 loop, for every ReLU/mode pair, over
    /// planes whose lengths leave tails past whole vectors and blocks.
    #[test]
    fn joining_write_pass_matches_the_plain_one() {
        use crate::engine::simd::test_switch::both_ways;
        let f = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|x| x as f32).collect() };
        both_ways(|| {
            for (planes, hw) in [(1, 5), (3, 16), (2, 1024 + 37), (40, 64), (5, 3000)] {
                let n = planes * hw;
                let (g, x, d0) = (f(rand_vec(n, 11)), f(rand_vec(n, 12)), f(rand_vec(n, 13)));
                for (relu, train) in [(true, true), (true, false), (false, true), (false, false)] {
                    let k = BnDx {
                        a: 1.3f32,
                        b: -0.1,
                        c1: 0.02,
                        c2: -0.4,
                        mu: 0.05,
                        train,
                    };
                    let mut d = d0.clone();
                    let dp = crate::engine::par::SharedMut::new(&mut d);
                    let plane = |i: usize| {
                        // SAFETY: planes are disjoint and each is taken once.
                        let d = unsafe { dp.slice(i * hw, hw) };
                        (d, &g[i * hw..][..hw], &x[i * hw..][..hw])
                    };
                    let got = join_planes(planes, plane, k, relu);
                    let mut want = [0.0f64; 3];
                    for i in 0..n {
                        let br = k.dx(g[i], x[i], relu);
                        let want_d = d0[i] + br;
                        let at = format!("{planes}×{hw} relu {relu} train {train} i {i}");
                        assert_eq!(d[i].to_bits(), want_d.to_bits(), "{at}");
                        let (id, br) = (f64::from(d0[i]), f64::from(br));
                        want[0] += id * id;
                        want[1] += br * br;
                        want[2] += id * br;
                    }
                    for (g, w) in got.iter().zip(want) {
                        let tol = 1e-5 * w.abs().max(1.0);
                        assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
                    }
                }
            }
        });
    }
}
