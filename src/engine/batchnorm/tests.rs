//! Batch norm (+ReLU) against a reference loop, hand-computed statistics, central differences
//! and the closed-form gradient, with and without the AVX-512 build of its loops.

use super::*;
use crate::engine::gradcheck::{TT, dot, t4};
use crate::engine::gradcheck::{numeric_grad, rand_vec, rel_err};
use crate::engine::simd::test_switch::{both_ways, without_avx512};
use crate::engine::tensor::Shape4;

fn t1(v: &[f64]) -> T1<f64> {
    Cpu::default().tensor_from_vec(v.to_vec(), (v.len(),))
}

fn cfg(train: bool, relu: bool) -> BnCfg {
    BnCfg {
        train,
        relu,
        ..BnCfg::default()
    }
}

/// Naive reference: output, and the (mean, biased var) used per channel.
fn reference(
    x: &[f64],
    s: Shape4,
    g: &[f64],
    b: &[f64],
    rm: &[f64],
    rv: &[f64],
    cfg: BnCfg,
) -> (Vec<f64>, Vec<(f64, f64)>) {
    let (n, c, h, w) = s;
    let mut y = vec![0.0; x.len()];
    let mut st = vec![];
    for ch in 0..c {
        let idx: Vec<usize> = (0..n)
            .flat_map(|bi| (0..h * w).map(move |i| (bi * c + ch) * h * w + i))
            .collect();
        let m = idx.len() as f64;
        let (mean, var) = if cfg.train {
            let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / m;
            (
                mean,
                idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / m,
            )
        } else {
            (rm[ch], rv[ch])
        };
        for &i in &idx {
            let v = g[ch] * (x[i] - mean) / (var + cfg.eps).sqrt() + b[ch];
            y[i] = if cfg.relu { v.max(0.0) } else { v };
        }
        st.push((mean, var));
    }
    (y, st)
}

struct Case {
    s: Shape4,
    x: Vec<f64>,
    g: Vec<f64>,
    b: Vec<f64>,
    rm: Vec<f64>,
    rv: Vec<f64>,
}

fn case(s: Shape4, seed: u64) -> Case {
    let len = s.0 * s.1 * s.2 * s.3;
    let c = s.1;
    Case {
        s,
        // Non-zero channel means, so mean handling is exercised.
        x: rand_vec(len, seed)
            .iter()
            .enumerate()
            .map(|(i, v)| 2.0 * v + (i / (s.2 * s.3) % c) as f64)
            .collect(),
        g: rand_vec(c, seed + 1)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect(),
        b: rand_vec(c, seed + 2).iter().map(|v| 0.3 * v).collect(),
        rm: rand_vec(c, seed + 3).iter().map(|v| 0.5 * v).collect(),
        rv: rand_vec(c, seed + 4)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect(),
    }
}

fn run(k: &Case, cfg: BnCfg) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
    let y = batch_norm2d(t4(&k.x, k.s), t1(&k.g), t1(&k.b), &mut rm, &mut rv, cfg);
    (y.as_vec(), rm, rv)
}

#[test]
fn forward_and_running_stats_match_reference() {
    for (shape, seed) in [((2, 3, 4, 5), 10), ((8, 16, 16, 16), 20)] {
        let k = case(shape, seed);
        for train in [true, false] {
            for relu in [false, true] {
                let c = cfg(train, relu);
                let (y, rm, rv) = run(&k, c);
                let (want, st) = reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, c);
                let e = rel_err(&y, &want);
                assert!(e < 1e-12, "train {train} relu {relu}: {e:e}");
                let m = (shape.0 * shape.2 * shape.3) as f64;
                for ch in 0..shape.1 {
                    let (want_m, want_v) = if train {
                        let (mu, var) = st[ch];
                        (
                            0.9 * k.rm[ch] + 0.1 * mu,
                            0.9 * k.rv[ch] + 0.1 * var * m / (m - 1.0),
                        )
                    } else {
                        (k.rm[ch], k.rv[ch])
                    };
                    assert!((rm[ch] - want_m).abs() < 1e-12 && (rv[ch] - want_v).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn running_stats_hand_computed() {
    // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3.
    let x = t4(&[1.0, 2.0, 3.0, 4.0], (2, 1, 1, 2));
    let (mut rm, mut rv) = (vec![0.0], vec![1.0]);
    let y = batch_norm2d(
        x,
        t1(&[1.0]),
        t1(&[0.0]),
        &mut rm,
        &mut rv,
        cfg(true, false),
    );
    assert!((rm[0] - 0.25).abs() < 1e-15);
    assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-15);
    let inv = 1.0 / (1.25f64 + 1e-5).sqrt();
    let want = [-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv];
    assert!(
        y.as_vec()
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() < 1e-15)
    );
    // f32 running stats too.
    let x32: T4<f32> = Cpu::default().tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], (2, 1, 1, 2));
    let g32: T1<f32> = Cpu::default().tensor_from_vec(vec![1.0], (1,));
    let (mut rm, mut rv) = (vec![0.0f32], vec![1.0f32]);
    let _ = batch_norm2d(
        x32,
        g32.clone(),
        g32 * 0.0,
        &mut rm,
        &mut rv,
        cfg(true, false),
    );
    assert!((rm[0] - 0.25).abs() < 1e-7 && (rv[0] - 1.0666667).abs() < 1e-6);
}

#[test]
fn gradcheck_train_and_eval_with_and_without_relu() {
    both_ways(gradcheck_train_and_eval_with_and_without_relu_once);
}

fn gradcheck_train_and_eval_with_and_without_relu_once() {
    let k = case((3, 2, 3, 4), 30);
    for train in [true, false] {
        for relu in [false, true] {
            let c = cfg(train, relu);
            if relu {
                // Pre-activations must stay on one side of the kink under ±h.
                let (pre, _) = reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, cfg(train, false));
                let margin = pre.iter().map(|v| v.abs()).fold(f64::MAX, f64::min);
                assert!(margin > 1e-3, "pick another seed: margin {margin}");
                assert!(
                    pre.iter().filter(|&&v| v <= 0.0).count() > 5,
                    "ReLU must clip some"
                );
            }
            let r = rand_vec(k.x.len(), 31);
            let loss = |x: &[f64], g: &[f64], b: &[f64]| {
                let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
                let y = batch_norm2d(t4(x, k.s), t1(g), t1(b), &mut rm, &mut rv, c);
                dot(&y.as_vec(), &r)
            };
            let (x, g, b) = (t4(&k.x, k.s), t1(&k.g), t1(&k.b));
            let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
            let y = batch_norm2d(
                x.leaky_trace(),
                g.retaped::<TT>(),
                b.retaped::<TT>(),
                &mut rm,
                &mut rv,
                c,
            );
            let grads = (y * t4(&r, k.s)).sum().backward();
            let h = 1e-6;
            let nx = numeric_grad(|v| loss(v, &k.g, &k.b), &k.x, h);
            let ng = numeric_grad(|v| loss(&k.x, v, &k.b), &k.g, h);
            let nb = numeric_grad(|v| loss(&k.x, &k.g, v), &k.b, h);
            for (name, a, nu) in [
                ("x", grads.get(&x).as_vec(), nx),
                ("gamma", grads.get(&g).as_vec(), ng),
                ("beta", grads.get(&b).as_vec(), nb),
            ] {
                let e = rel_err(&a, &nu);
                assert!(
                    e <= 1e-5,
                    "train {train} relu {relu} d{name}: rel err {e:e}"
                );
            }
        }
    }
}

#[test]
fn gradients_accumulate_and_parallel_path_matches_closed_form() {
    both_ways(gradients_accumulate_and_parallel_path_matches_closed_form_once);
}

fn gradients_accumulate_and_parallel_path_matches_closed_form_once() {
    // Large enough to run channels in parallel; x feeds BN and also a second consumer, so
    // BN must add to (not overwrite) x's gradient.
    let k = case((8, 16, 16, 16), 40);
    let (n, c, h, w) = k.s;
    let r = rand_vec(k.x.len(), 41);
    let x = t4(&k.x, k.s);
    let (g, b) = (t1(&k.g), t1(&k.b));
    let (mut rm, mut rv) = (k.rm.clone(), k.rv.clone());
    let y = batch_norm2d(
        x.leaky_trace(),
        g.retaped::<TT>(),
        b.retaped::<TT>(),
        &mut rm,
        &mut rv,
        cfg(true, true),
    );
    let y = crate::engine::add(y, x.retaped::<TT>() * 3.0);
    let grads = (y * t4(&r, k.s)).sum().backward();
    let (gx, gg, gb) = (
        grads.get(&x).as_vec(),
        grads.get(&g).as_vec(),
        grads.get(&b).as_vec(),
    );
    let (out, st) = reference(&k.x, k.s, &k.g, &k.b, &k.rm, &k.rv, cfg(true, true));
    let m = (n * h * w) as f64;
    for ch in 0..c {
        let (mu, var) = st[ch];
        let inv = 1.0 / (var + 1e-5).sqrt();
        let idx: Vec<usize> = (0..n)
            .flat_map(|bi| (0..h * w).map(move |i| (bi * c + ch) * h * w + i))
            .collect();
        let gy = |i: usize| if out[i] > 0.0 { r[i] } else { 0.0 };
        let db: f64 = idx.iter().map(|&i| gy(i)).sum();
        let dg: f64 = idx.iter().map(|&i| gy(i) * (k.x[i] - mu) * inv).sum();
        assert!((gb[ch] - db).abs() < 1e-9 * (1.0 + db.abs()));
        assert!((gg[ch] - dg).abs() < 1e-9 * (1.0 + dg.abs()));
        for &i in &idx {
            let xh = (k.x[i] - mu) * inv;
            let want = k.g[ch] * inv / m * (m * gy(i) - db - xh * dg) + 3.0 * r[i];
            assert!((gx[i] - want).abs() < 1e-9, "gx[{i}] {} vs {want}", gx[i]);
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    both_ways(f32_agrees_with_f64_once);
}

fn f32_agrees_with_f64_once() {
    let k = case((8, 16, 16, 16), 50);
    let r = rand_vec(k.x.len(), 51);
    let (y32, gx32, _, _, _, rv) = f32_pass(&k, &r);

    let x = t4(&k.x, k.s);
    let (mut rm64, mut rv64) = (k.rm.clone(), k.rv.clone());
    let y = batch_norm2d(
        x.leaky_trace(),
        t1(&k.g).retaped(),
        t1(&k.b).retaped(),
        &mut rm64,
        &mut rv64,
        cfg(true, true),
    );
    let y64 = y.retaped::<NoneTape>().as_vec();
    let grads = (y * t4(&r, k.s)).sum().backward();
    let gx64 = grads.get(&x).as_vec();
    let d = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
    let (y32, gx32) = (d(y32), d(gx32));
    assert!(rel_err(&y32, &y64) < 1e-5);
    assert!(rel_err(&gx32, &gx64) < 1e-4, "{:e}", rel_err(&gx32, &gx64));
    assert!(rel_err(&d(rv), &rv64) < 1e-5);
}

/// `(y, dx, dγ, dβ, running mean, running var)`.
type F32Pass = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// One f32 training pass of `k` (BN + ReLU) with loss Σ y·r.
fn f32_pass(k: &Case, r: &[f64]) -> F32Pass {
    let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let dev = Cpu::default();
    let x: T4<f32> = dev.tensor_from_vec(to32(&k.x), k.s);
    let g: T1<f32> = dev.tensor_from_vec(to32(&k.g), (k.s.1,));
    let b: T1<f32> = dev.tensor_from_vec(to32(&k.b), (k.s.1,));
    let (mut rm, mut rv) = (to32(&k.rm), to32(&k.rv));
    let y = batch_norm2d(
        x.leaky_trace(),
        g.retaped(),
        b.retaped(),
        &mut rm,
        &mut rv,
        cfg(true, true),
    );
    let yv = y.retaped::<NoneTape>().as_vec();
    let grads = (y * dev.tensor_from_vec(to32(r), k.s)).sum().backward();
    let (gx, gg, gb) = (
        grads.get(&x).as_vec(),
        grads.get(&g).as_vec(),
        grads.get(&b).as_vec(),
    );
    (yv, gx, gg, gb, rm, rv)
}

/// The AVX-512 build of batch norm's loops computes the same bits as the SSE2 build (same sums in
/// the same order), so `RESVIZ_AVX512=0` changes speed only.
#[test]
fn f32_results_are_the_same_without_avx512() {
    let k = case((8, 16, 16, 16), 60);
    let r = rand_vec(k.x.len(), 61);
    let with = f32_pass(&k, &r);
    assert_eq!(with, without_avx512(|| f32_pass(&k, &r)));
}
