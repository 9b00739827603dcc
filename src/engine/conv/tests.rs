//! Every conv path against a naive reference and central differences.

use super::*;
use crate::engine::gradcheck::{numeric_grad, rand_vec, rel_err};
use crate::engine::simd::test_switch::both_ways;

/// Naive 7-loop cross-correlation with zero padding.
fn reference(g: &Geom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let mut y = vec![0.0; g.n * g.cout * g.ho * g.wo];
    for n in 0..g.n {
        for co in 0..g.cout {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut acc = b.map_or(0.0, |b| b[co]);
                    for ci in 0..g.cin {
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xv =
                                    x[((n * g.cin + ci) * g.h + iy as usize) * g.w + ix as usize];
                                let wv = w[((co * g.cin + ci) * g.k + ky) * g.k + kx];
                                acc += xv * wv;
                            }
                        }
                    }
                    y[((n * g.cout + co) * g.ho + oy) * g.wo + ox] = acc;
                }
            }
        }
    }
    y
}

/// (k, stride, pad) configurations of the tests.
const CASES: [(usize, usize, usize); 5] = [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (3, 1, 0)];

fn cfg(stride: usize, pad: usize) -> ConvCfg {
    ConvCfg {
        stride,
        pad,
        input_grad: true,
    }
}

#[test]
fn forward_matches_reference() {
    let dev = Cpu::default();
    for &(k, s, p) in &CASES {
        for &(n, cin, cout, h, wd) in &[
            (3, 2, 5, 7, 6),
            (5, 3, 4, 6, 9),
            (1, 1, 1, 3, 3),
            (3, 17, 3, 5, 4),
            // more than PIXEL_MAJOR_MAX output pixels: the grid / im2col forward paths
            (3, 3, 4, 12, 11),
        ] {
            for with_bias in [false, true] {
                let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
                let xv = rand_vec(n * cin * h * wd, 1);
                let wv = rand_vec(cout * cin * k * k, 2);
                let bv = rand_vec(cout, 3);
                let want = reference(&g, &xv, &wv, with_bias.then_some(&bv[..]));
                let x: T4<f64> = dev.tensor_from_vec(xv, (n, cin, h, wd));
                let w: T4<f64> = dev.tensor_from_vec(wv, (cout, cin, k, k));
                let b: T1<f64> = dev.tensor_from_vec(bv, (cout,));
                let y = conv2d(x, w, with_bias.then_some(b), cfg(s, p));
                assert_eq!(*y.shape(), (n, cout, g.ho, g.wo));
                let err = rel_err(&y.as_vec(), &want);
                assert!(
                    err < 1e-12,
                    "k{k} s{s} p{p} n{n} bias {with_bias}: err {err}"
                );
            }
        }
    }
}

#[test]
fn forward_f32_matches_reference() {
    both_ways(forward_f32_matches_reference_once);
}

fn forward_f32_matches_reference_once() {
    let dev = Cpu::default();
    let (n, cin, cout, h, wd) = (4, 3, 6, 9, 8);
    for &(k, s, p) in &CASES {
        let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
        let xv = rand_vec(n * cin * h * wd, 4);
        let wv = rand_vec(cout * cin * k * k, 5);
        let bv = rand_vec(cout, 6);
        let want = reference(&g, &xv, &wv, Some(&bv));
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let x: T4<f32> = dev.tensor_from_vec(f(&xv), (n, cin, h, wd));
        let w: T4<f32> = dev.tensor_from_vec(f(&wv), (cout, cin, k, k));
        let b: T1<f32> = dev.tensor_from_vec(f(&bv), (cout,));
        let y: Vec<f64> = conv2d(x, w, Some(b), cfg(s, p))
            .as_vec()
            .iter()
            .map(|&a| a as f64)
            .collect();
        let err = rel_err(&y, &want);
        assert!(err < 1e-5, "k{k} s{s} p{p}: err {err}");
    }
}

/// Loss `L = Σ conv(x, w, b) · r` and its analytic gradients (x, w, b).
fn analytic(
    dims: (usize, usize, usize, usize, usize, usize),
    xv: &[f64],
    wv: &[f64],
    bv: Option<&[f64]>,
    r: &[f64],
    c: ConvCfg,
) -> (f64, Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
    let (n, cin, cout, h, wd, k) = dims;
    let dev = Cpu::default();
    let x: T4<f64> = dev.tensor_from_vec(xv.to_vec(), (n, cin, h, wd));
    let w: T4<f64> = dev.tensor_from_vec(wv.to_vec(), (cout, cin, k, k));
    let b: Option<T1<f64>> = bv.map(|bv| dev.tensor_from_vec(bv.to_vec(), (cout,)));
    let y = conv2d(
        x.leaky_trace(),
        w.retaped(),
        b.as_ref().map(|b| b.retaped()),
        c,
    );
    let rt: T4<f64> = dev.tensor_from_vec(r.to_vec(), *y.shape());
    let loss = (y * rt).sum();
    let lv = loss.array();
    let mut grads = loss.backward();
    let gb = b.as_ref().map(|b| grads.get(b).as_vec());
    // x's gradient may be absent (input_grad = false): read it as zeros then.
    let gx = grads.get_or_alloc_mut(&x).unwrap().to_vec();
    (lv, gx, grads.get(&w).as_vec(), gb)
}

fn loss_plain(
    dims: (usize, usize, usize, usize, usize, usize),
    xv: &[f64],
    wv: &[f64],
    bv: Option<&[f64]>,
    r: &[f64],
    c: ConvCfg,
) -> f64 {
    let (n, cin, cout, h, wd, k) = dims;
    let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), c);
    let mut y = vec![0.0; n * cout * g.p()];
    forward(&g, xv, wv, bv, &mut y);
    y.iter().zip(r).map(|(a, b)| a * b).sum()
}

#[test]
fn gradients_match_central_differences() {
    both_ways(gradients_match_central_differences_once);
}

fn gradients_match_central_differences_once() {
    // Cin = 17 also exercises the explicit-im2col dW path of stride-1 convs.
    let sizes = [
        (3, 2, 5, 7, 6, false),
        (3, 2, 5, 7, 6, true),
        (3, 17, 3, 5, 4, true),
    ];
    for &(k, s, p) in &CASES {
        for (n, cin, cout, h, wd, with_bias) in sizes {
            let dims = (n, cin, cout, h, wd, k);
            let c = cfg(s, p);
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), c);
            let xv = rand_vec(n * cin * h * wd, 11);
            let wv = rand_vec(cout * cin * k * k, 12);
            let bv = rand_vec(cout, 13);
            let r = rand_vec(n * cout * g.p(), 14);
            let bo = with_bias.then_some(&bv[..]);
            let (lv, gx, gw, gb) = analytic(dims, &xv, &wv, bo, &r, c);
            assert!((lv - loss_plain(dims, &xv, &wv, bo, &r, c)).abs() < 1e-9);
            let h_ = 1e-5;
            let nx = numeric_grad(|xs| loss_plain(dims, xs, &wv, bo, &r, c), &xv, h_);
            let nw = numeric_grad(|ws| loss_plain(dims, &xv, ws, bo, &r, c), &wv, h_);
            let tag = format!("k{k} s{s} p{p} bias {with_bias}");
            assert!(
                rel_err(&gx, &nx) <= 1e-5,
                "{tag}: dx err {}",
                rel_err(&gx, &nx)
            );
            assert!(
                rel_err(&gw, &nw) <= 1e-5,
                "{tag}: dw err {}",
                rel_err(&gw, &nw)
            );
            if with_bias {
                let nb = numeric_grad(|bs| loss_plain(dims, &xv, &wv, Some(bs), &r, c), &bv, h_);
                let gb = gb.unwrap();
                assert!(
                    rel_err(&gb, &nb) <= 1e-5,
                    "{tag}: db err {}",
                    rel_err(&gb, &nb)
                );
            }
        }
    }
}

/// The f32 path (direct kernels on AVX-512 for stride-1 convs) against the f64 path, which
/// the central-difference checks above verify.
#[test]
fn f32_gradients_match_f64() {
    both_ways(f32_gradients_match_f64_once);
}

fn f32_gradients_match_f64_once() {
    let dev = Cpu::default();
    let sizes = [(3, 2, 5, 7, 6), (2, 16, 16, 8, 8), (2, 3, 20, 12, 11)];
    for &(k, s, p) in &CASES {
        for (n, cin, cout, h, wd) in sizes {
            let dims = (n, cin, cout, h, wd, k);
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let xv = rand_vec(n * cin * h * wd, 41);
            let wv = rand_vec(cout * cin * k * k, 42);
            let bv = rand_vec(cout, 43);
            let r = rand_vec(n * cout * g.p(), 44);
            let (_, gx, gw, gb) = analytic(dims, &xv, &wv, Some(&bv), &r, cfg(s, p));
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            let x: T4<f32> = dev.tensor_from_vec(f(&xv), (n, cin, h, wd));
            let w: T4<f32> = dev.tensor_from_vec(f(&wv), (cout, cin, k, k));
            let b: T1<f32> = dev.tensor_from_vec(f(&bv), (cout,));
            let rt: T4<f32> = dev.tensor_from_vec(f(&r), (n, cout, g.ho, g.wo));
            let y = conv2d(x.leaky_trace(), w.retaped(), Some(b.retaped()), cfg(s, p));
            let grads = (y * rt).sum().backward();
            let d = |t: Vec<f32>| t.into_iter().map(|a| a as f64).collect::<Vec<f64>>();
            let tag = format!("k{k} s{s} p{p} n{n} cin{cin} cout{cout}");
            let ex = rel_err(&d(grads.get(&x).as_vec()), &gx);
            let ew = rel_err(&d(grads.get(&w).as_vec()), &gw);
            let eb = rel_err(&d(grads.get(&b).as_vec()), &gb.unwrap());
            assert!(ex < 1e-5 && ew < 1e-5 && eb < 1e-5, "{tag}: {ex} {ew} {eb}");
        }
    }
}

/// dW over a batch (images grouped per gemm, with a short last group) equals the sum of
/// one-image dWs (no grouping), for every configuration; Cin = 17 takes the explicit
/// pixel-major path at stride 1 too.
#[test]
fn batched_weight_grad_is_the_sum_of_per_image_ones() {
    for &(k, s, p) in &CASES {
        let (n, cin, cout, h, wd) = (37, 17, 3, 12, 11);
        let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
        let xv = rand_vec(n * cin * h * wd, 51);
        let wv = rand_vec(cout * cin * k * k, 52);
        let gy = rand_vec(n * g.out_img(), 53);
        let mut gw = vec![0.0; wv.len()];
        backward(&g, &xv, &wv, &gy, None, Some(&mut gw), None);
        let g1 = Geom::new((1, cin, h, wd), (cout, cin, k, k), cfg(s, p));
        let mut want = vec![0.0; wv.len()];
        for (xi, gi) in xv.chunks(g.in_img()).zip(gy.chunks(g.out_img())) {
            backward(&g1, xi, &wv, gi, None, Some(&mut want), None);
        }
        let err = rel_err(&gw, &want);
        assert!(err < 1e-12, "k{k} s{s} p{p}: err {err}");
    }
}

#[test]
fn no_input_grad_leaves_x_alone_and_same_w_grad() {
    for &(k, s, p) in &CASES {
        let dims @ (n, cin, cout, h, wd, _) = (3, 2, 5, 7, 6, k);
        let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
        let xv = rand_vec(n * cin * h * wd, 21);
        let wv = rand_vec(cout * cin * k * k, 22);
        let bv = rand_vec(cout, 23);
        let r = rand_vec(n * cout * g.p(), 24);
        let (_, _, gw1, gb1) = analytic(dims, &xv, &wv, Some(&bv), &r, cfg(s, p));
        let c = ConvCfg {
            stride: s,
            pad: p,
            input_grad: false,
        };
        let (_, gx2, gw2, gb2) = analytic(dims, &xv, &wv, Some(&bv), &r, c);
        assert!(gx2.iter().all(|&v| v == 0.0), "x grad must stay zero");
        assert_eq!(gw1, gw2);
        assert_eq!(gb1, gb2);
    }
}

#[test]
fn without_weight_grads_same_x_grad_and_no_w_grad() {
    let dev = Cpu::default();
    for &(k, s, p) in &CASES {
        // The second size has more output pixels than PIXEL_MAJOR_MAX: the grid dX path.
        for &(n, cin, cout, h, wd) in &[(3, 2, 5, 7, 6), (2, 3, 4, 12, 11)] {
            let dims = (n, cin, cout, h, wd, k);
            let g = Geom::new((n, cin, h, wd), (cout, cin, k, k), cfg(s, p));
            let xv = rand_vec(n * cin * h * wd, 41);
            let wv = rand_vec(cout * cin * k * k, 42);
            let bv = rand_vec(cout, 43);
            let r = rand_vec(n * cout * g.p(), 44);
            let (_, gx1, _, _) = analytic(dims, &xv, &wv, Some(&bv), &r, cfg(s, p));
            let x: T4<f64> = dev.tensor_from_vec(xv, (n, cin, h, wd));
            let w: T4<f64> = dev.tensor_from_vec(wv, (cout, cin, k, k));
            let b: T1<f64> = dev.tensor_from_vec(bv, (cout,));
            let y = without_weight_grads(|| {
                conv2d(x.leaky_trace(), w.retaped(), Some(b.retaped()), cfg(s, p))
            });
            let rt: T4<f64> = dev.tensor_from_vec(r, *y.shape());
            let mut grads = (y * rt).sum().backward();
            let gx2 = grads.get(&x).as_vec();
            assert!(rel_err(&gx1, &gx2) < 1e-12, "k{k} s{s} p{p}: dX differs");
            // Absent entries allocate as zeros: dW and db were never written.
            let zero = |g: &[f64]| g.iter().all(|&v| v == 0.0);
            assert!(zero(&grads.get_or_alloc_mut(&w).unwrap()[..]), "dW written");
            assert!(zero(&grads.get_or_alloc_mut(&b).unwrap()[..]), "db written");
        }
    }
    // The switch ends with its scope.
    assert!(!NO_WEIGHT_GRADS.with(Cell::get));
}

#[test]
fn gradients_accumulate_over_two_uses() {
    let dev = Cpu::default();
    let (n, cin, cout, h, wd, k) = (3, 2, 5, 7, 6, 3);
    let c = cfg(1, 1);
    let xv = rand_vec(n * cin * h * wd, 31);
    let wv = rand_vec(cout * cin * k * k, 32);
    let bv = rand_vec(cout, 33);
    let r = rand_vec(n * cout * h * wd, 34);
    let dims = (n, cin, cout, h, wd, k);
    let (_, gx1, gw1, gb1) = analytic(dims, &xv, &wv, Some(&bv), &r, c);

    let x: T4<f64> = dev.tensor_from_vec(xv, (n, cin, h, wd));
    let w: T4<f64> = dev.tensor_from_vec(wv, (cout, cin, k, k));
    let b: T1<f64> = dev.tensor_from_vec(bv, (cout,));
    let rt: T4<f64> = dev.tensor_from_vec(r, (n, cout, h, wd));
    let xt = x.leaky_trace();
    let y1 = conv2d(xt.with_empty_tape(), w.retaped(), Some(b.retaped()), c);
    let y2 = conv2d(xt, w.retaped(), Some(b.retaped()), c);
    let loss = (y1 * rt.clone()).sum() + (y2 * rt).sum();
    let grads = loss.backward();
    let twice = |v: Vec<f64>| v.into_iter().map(|a| 2.0 * a).collect::<Vec<_>>();
    assert!(rel_err(&grads.get(&x).as_vec(), &twice(gx1)) < 1e-12);
    assert!(rel_err(&grads.get(&w).as_vec(), &twice(gw1)) < 1e-12);
    assert!(rel_err(&grads.get(&b).as_vec(), &twice(gb1.unwrap())) < 1e-12);
}

#[test]
#[should_panic(expected = "channels")]
fn channel_mismatch_panics() {
    let dev = Cpu::default();
    let x: T4<f32> = dev.zeros_like(&(1, 3, 4, 4));
    let w: T4<f32> = dev.zeros_like(&(2, 2, 3, 3));
    let _ = conv2d(x, w, None, cfg(1, 1));
}

/// `cargo test --release --lib engine::conv::tests::conv_speed -- --ignored --nocapture`
#[test]
#[ignore]
fn conv_speed() {
    let dev = Cpu::default();
    let shapes = [
        ("16->16 32x32 s1", 16, 16, 32, 3, 1, 1),
        ("16->32 32x32 s2", 16, 32, 32, 3, 2, 1),
        ("32->32 16x16 s1", 32, 32, 16, 3, 1, 1),
        ("64->64 8x8 s1  ", 64, 64, 8, 3, 1, 1),
        ("16->32 1x1 s2  ", 16, 32, 32, 1, 2, 0),
        ("32->64 1x1 s1  ", 32, 64, 16, 1, 1, 0),
    ];
    let n = 64;
    println!("threads: {}", rayon::current_num_threads());
    for (name, cin, cout, hw, k, s, p) in shapes {
        let c = cfg(s, p);
        let g = Geom::new((n, cin, hw, hw), (cout, cin, k, k), c);
        let xv: Vec<f32> = rand_vec(n * cin * hw * hw, 1)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let wv: Vec<f32> = rand_vec(cout * cin * k * k, 2)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let x: T4<f32> = dev.tensor_from_vec(xv, (n, cin, hw, hw));
        let w: T4<f32> = dev.tensor_from_vec(wv, (cout, cin, k, k));
        let gyv: Vec<f32> = rand_vec(n * cout * g.p(), 3)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let reps = 20;
        // Best of 5 rounds: the machine may be shared.
        let time = |f: &mut dyn FnMut()| {
            f();
            (0..5)
                .map(|_| {
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    t.elapsed().as_secs_f64() / reps as f64
                })
                .fold(f64::MAX, f64::min)
        };
        let tf = time(&mut || {
            let y = conv2d(x.clone(), w.clone(), None, c);
            std::hint::black_box(y);
        });
        let mut gx = vec![0f32; x.shape().num_elements()];
        let mut gw = vec![0f32; w.shape().num_elements()];
        let tb = time(&mut || {
            backward(
                &g,
                view(&x),
                view(&w),
                &gyv,
                Some((&mut gx, false)),
                Some(&mut gw),
                None,
            )
        });
        let tw = time(&mut || backward(&g, view(&x), view(&w), &gyv, None, Some(&mut gw), None));
        let tfb = time(&mut || {
            let y = conv2d(x.leaky_trace(), w.retaped(), None, c);
            let grads = y.sum().backward();
            std::hint::black_box(grads);
        });
        let f = g.flops() / 1e9;
        println!(
            "{name}: fwd {:6.1} GFLOP/s ({:6.2} ms) | bwd dX+dW {:6.1} ({:6.2} ms) | bwd dW only {:6.1} ({:6.2} ms) | fwd+bwd via tape {:6.1} GFLOP/s ({:6.2} ms)",
            f / tf,
            tf * 1e3,
            2.0 * f / tb,
            tb * 1e3,
            f / tw,
            tw * 1e3,
            3.0 * f / tfb,
            tfb * 1e3
        );
    }
}
