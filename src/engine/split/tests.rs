//! Tests of the eq. 5 split: `Split`'s pair of ops, batch norm's joining write pass and the
//! direct conv's measured dX against autograd on separate copies of x.

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
    assert_split_is(got, (&gs, &gb), &g.get(&x).as_vec(), (1e-10, 1e-12));
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
    assert_split_is(got, (&gs, &gb), &g.get(&x).as_vec(), (1e-10, 1e-12));
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

/// `y = ReLU(conv(ReLU(BN(conv xb))) + sc(xs))`: the branch reads x in one 3×3 conv, the one
/// that measures the split as it writes dX (`Split::with_one_reader`), in `E`.
fn one_reader_block<E: Float>(
    xb: T4<E, OwnedTape<E, Cpu>>,
    xs: T4<E, OwnedTape<E, Cpu>>,
    sc: impl FnOnce(T4<E, OwnedTape<E, Cpu>>) -> T4<E, OwnedTape<E, Cpu>>,
) -> T4<E, OwnedTape<E, Cpu>> {
    let dev = Cpu::default();
    let w = |seed: u64| {
        let v = rand_vec(8 * 8 * 9, seed)
            .iter()
            .map(|v| E::from_f64(v * 0.3).unwrap())
            .collect();
        dev.tensor_from_vec(v, (8, 8, 3, 3))
            .retaped::<OwnedTape<E, Cpu>>()
    };
    let cfg = ConvCfg {
        stride: 1,
        pad: 1,
        input_grad: true,
    };
    let (mut rm, mut rv) = (vec![E::zero(); 8], vec![E::one(); 8]);
    let ones = dev.tensor_from_vec(vec![E::one(); 8], (8,));
    let zeros = dev.tensor_from_vec(vec![E::zero(); 8], (8,));
    let bn = BnCfg {
        relu: true,
        ..BnCfg::default()
    };
    let h = conv2d(xb, w(31), None, cfg);
    let h = batch_norm2d(h, ones.retaped(), zeros.retaped(), &mut rm, &mut rv, bn);
    let f = conv2d(h, w(32), None, cfg);
    add_relu(f, sc(xs))
}

/// [`one_reader_block`]'s split against autograd on two copies of x, to `tol`; returns how many
/// splits the conv measured itself (0 where it declined: f64, or no AVX-512).
fn check_one_reader<E: Float>(tol: (f64, f64)) -> usize
where
    Cpu: Device<E>,
{
    let dev = Cpu::default();
    let n = S.0 * S.1 * S.2 * S.3;
    let e = |v: Vec<f64>| -> Vec<E> { v.into_iter().map(|x| E::from_f64(x).unwrap()).collect() };
    let f = |v: Vec<E>| -> Vec<f64> { v.into_iter().map(|x| x.to_f64().unwrap()).collect() };
    let (xv, r) = (e(rand_vec(n, 8)), dev.tensor_from_vec(e(rand_vec(n, 9)), S));
    let (xb, xs) = (
        dev.tensor_from_vec(xv.clone(), S),
        dev.tensor_from_vec(xv.clone(), S),
    );
    let y = one_reader_block(xb.leaky_trace(), xs.leaky_trace(), |x| x);
    let g = (y * r.clone()).sum().backward();
    let (gb, gs) = (f(g.get(&xb).as_vec()), f(g.get(&xs).as_vec()));
    let sink = SplitSink::default();
    let sp = Split::<E>::new(sink.clone()).with_one_reader(true);
    let x = dev.tensor_from_vec(xv, S);
    let xt = sp.enter(x.leaky_trace());
    let before = crate::engine::conv::DX_MEASURED.with(|c| c.get());
    let y = one_reader_block(xt.with_empty_tape(), xt, |x| sp.shortcut(x));
    let g = (y * r).sum().backward();
    let measured = crate::engine::conv::DX_MEASURED.with(|c| c.get()) - before;
    let got = lock(&sink).expect("backward recorded the split");
    assert_split_is(got, (&gs, &gb), &f(g.get(&x).as_vec()), tol);
    measured
}

/// f32 tolerances: the sums to 1e-4, the total to the rounding of one f32 add.
const F32: (f64, f64) = (1e-4, 1e-6);

#[test]
fn the_branch_conv_measures_the_split_as_it_writes_dx() {
    use crate::engine::simd::{self, test_switch::without_avx512};
    let direct = simd::direct_conv();
    assert_eq!(check_one_reader::<f32>(F32), usize::from(direct));
    assert_eq!(check_one_reader::<f64>((1e-10, 1e-12)), 0, "f64 declines");
    without_avx512(|| assert_eq!(check_one_reader::<f32>(F32), 0));
    without_fresh(|| assert_eq!(check_one_reader::<f32>(F32), usize::from(direct)));
}
