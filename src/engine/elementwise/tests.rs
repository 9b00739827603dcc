//! The element-wise ops against their definitions, by central differences, and on the
//! parallel path.

use super::*;
use crate::engine::gradcheck::{TT, grad_check, rand_vec, t4};
use crate::engine::reduce::sum_squares;
use crate::engine::tensor::Shape4;

const S: Shape4 = (2, 3, 4, 5);

fn n() -> usize {
    S.0 * S.1 * S.2 * S.3
}

/// Inputs kept away from 0 so ReLU's kink is never within ±h.
fn away_from_zero(v: Vec<f64>) -> Vec<f64> {
    v.into_iter()
        .map(|x| if x.abs() < 0.05 { x + 0.1 } else { x })
        .collect()
}

fn two(v: Vec<T4<f64, TT>>) -> (T4<f64, TT>, T4<f64, TT>) {
    let mut it = v.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn add_matches_reference_and_gradcheck() {
    let (a, b) = (rand_vec(n(), 1), rand_vec(n(), 2));
    let y = add(t4(&a, S), t4(&b, S)).as_vec();
    for i in 0..n() {
        assert_eq!(y[i], a[i] + b[i]);
    }
    grad_check(
        &[a, b],
        S,
        |v| add(v[0].clone(), v[1].clone()),
        |v| {
            let (a, b) = two(v);
            add(a, b)
        },
    );
}

#[test]
fn add_of_a_tensor_with_itself_doubles_the_gradient() {
    let a = rand_vec(n(), 3);
    let t = t4(&a, S);
    let y = add(t.leaky_trace(), t.retaped());
    let g = y.sum().backward();
    assert!(g.get(&t).as_vec().iter().all(|&v| v == 2.0));
}

#[test]
fn add_relu_matches_reference_and_gradcheck() {
    let (a, b) = (rand_vec(n(), 14), rand_vec(n(), 15));
    // Sums kept away from 0 so ReLU's kink is never within ±h.
    let b: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(&p, &q)| if (p + q).abs() < 0.05 { q + 0.1 } else { q })
        .collect();
    let y = add_relu(t4(&a, S), t4(&b, S)).as_vec();
    for i in 0..n() {
        assert_eq!(y[i], (a[i] + b[i]).max(0.0));
    }
    grad_check(
        &[a, b],
        S,
        |v| add_relu(v[0].clone(), v[1].clone()),
        |v| {
            let (a, b) = two(v);
            add_relu(a, b)
        },
    );
}

#[test]
fn add_relu_matches_relu_of_add_in_parallel_and_with_itself() {
    let sh = (4, 16, 32, 32);
    let len = 4 * 16 * 32 * 32;
    let (a, b, r) = (rand_vec(len, 16), rand_vec(len, 17), rand_vec(len, 18));
    let (ta, tb, tr) = (t4(&a, sh), t4(&b, sh), t4(&r, sh));
    let g1 = (add_relu(ta.leaky_trace(), tb.retaped()) * tr.clone())
        .sum()
        .backward();
    let g2 = (relu(add(ta.leaky_trace(), tb.retaped())) * tr.clone())
        .sum()
        .backward();
    assert_eq!(g1.get(&ta).as_vec(), g2.get(&ta).as_vec());
    assert_eq!(g1.get(&tb).as_vec(), g2.get(&tb).as_vec());
    let g1 = (add_relu(ta.leaky_trace(), ta.retaped()) * tr.clone())
        .sum()
        .backward();
    let g2 = (relu(add(ta.leaky_trace(), ta.retaped())) * tr)
        .sum()
        .backward();
    assert_eq!(g1.get(&ta).as_vec(), g2.get(&ta).as_vec());
}

#[test]
fn relu_matches_reference_and_gradcheck() {
    let a = away_from_zero(rand_vec(n(), 4));
    let y = relu(t4(&a, S)).as_vec();
    for i in 0..n() {
        assert_eq!(y[i], a[i].max(0.0));
    }
    grad_check(
        &[a],
        S,
        |v| relu(v[0].clone()),
        |v| relu(v.into_iter().next().unwrap()),
    );
}

#[test]
fn scale_matches_reference_and_gradcheck() {
    let a = rand_vec(n(), 5);
    let y = scale(t4(&a, S), 0.5).as_vec();
    for i in 0..n() {
        assert_eq!(y[i], 0.5 * a[i]);
    }
    grad_check(
        &[a],
        S,
        |v| scale(v[0].clone(), -1.7),
        |v| scale(v.into_iter().next().unwrap(), -1.7),
    );
}

#[test]
fn sigmoid_matches_reference_and_gradcheck() {
    let a: Vec<f64> = rand_vec(n(), 6).iter().map(|x| 4.0 * x).collect();
    let y = sigmoid(t4(&a, S)).as_vec();
    for i in 0..n() {
        assert!((y[i] - 1.0 / (1.0 + (-a[i]).exp())).abs() < 1e-15);
    }
    grad_check(
        &[a],
        S,
        |v| sigmoid(v[0].clone()),
        |v| sigmoid(v.into_iter().next().unwrap()),
    );
}

#[test]
fn gate_mix_matches_reference_and_gradcheck() {
    let g: Vec<f64> = rand_vec(n(), 7).iter().map(|x| 0.5 + 0.45 * x).collect();
    let (f, s) = (rand_vec(n(), 8), rand_vec(n(), 9));
    for exclusive in [true, false] {
        let y = gate_mix(t4(&g, S), t4(&f, S), t4(&s, S), exclusive).as_vec();
        for i in 0..n() {
            let want = if exclusive {
                g[i] * f[i] + (1.0 - g[i]) * s[i]
            } else {
                f[i] + (1.0 - g[i]) * s[i]
            };
            assert!((y[i] - want).abs() < 1e-15);
        }
        grad_check(
            &[g.clone(), f.clone(), s.clone()],
            S,
            |v| gate_mix(v[0].clone(), v[1].clone(), v[2].clone(), exclusive),
            |v| {
                let mut it = v.into_iter();
                let (a, b, c) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
                gate_mix(a, b, c, exclusive)
            },
        );
    }
}

#[test]
fn dropout_scales_is_seeded_and_eval_is_identity() {
    let sh = (8, 16, 32, 32); // big enough to take the parallel path
    let len = 8 * 16 * 32 * 32;
    let x = vec![1.0f64; len];
    let p = 0.3;
    let y1 = dropout(t4(&x, sh), p, true, 42).as_vec();
    let y2 = dropout(t4(&x, sh), p, true, 42).as_vec();
    let y3 = dropout(t4(&x, sh), p, true, 43).as_vec();
    assert_eq!(y1, y2, "same seed, same mask");
    assert_ne!(y1, y3, "different seed, different mask");
    // p is quantised to 2^-16: kept values are scaled by 1/(1 − p_q), E[y] = x exactly.
    let pq = (p * 65536.0).round() / 65536.0;
    let keep = 1.0 / (1.0 - pq);
    assert!((keep - 1.0 / (1.0 - p)).abs() < 1e-4);
    assert!(y1.iter().all(|&v| v == 0.0 || (v - keep).abs() < 1e-12));
    let dropped = y1.iter().filter(|&&v| v == 0.0).count() as f64 / len as f64;
    // Binomial std ≈ sqrt(0.21/131072) ≈ 0.0013.
    assert!((dropped - p).abs() < 0.01, "drop fraction {dropped}");
    let mean = y1.iter().sum::<f64>() / len as f64;
    assert!((mean - 1.0).abs() < 0.02, "E[y] = {mean}, want E[x] = 1");
    // Eval and p = 0 are the identity (the very same buffer).
    let xt = t4(&rand_vec(len, 1), sh);
    assert_eq!(dropout(xt.clone(), p, false, 42).as_vec(), xt.as_vec());
    assert_eq!(dropout(xt.clone(), 0.0, true, 42).as_vec(), xt.as_vec());
    // p = 1 drops everything.
    assert!(
        dropout(xt.clone(), 1.0, true, 1)
            .as_vec()
            .iter()
            .all(|&v| v == 0.0)
    );
    // f32 uses the same mask.
    let x32: T4<f32> = Cpu::default().tensor_from_vec(vec![1.0f32; len], sh);
    let y32 = dropout(x32, p, true, 42).as_vec();
    assert!(y32.iter().zip(&y1).all(|(&a, &b)| (a == 0.0) == (b == 0.0)));
}

#[test]
fn dropout_gradcheck() {
    let a = rand_vec(n(), 10);
    grad_check(
        &[a],
        S,
        |v| dropout(v[0].clone(), 0.4, true, 7),
        |v| dropout(v.into_iter().next().unwrap(), 0.4, true, 7),
    );
}

#[test]
fn large_tensors_take_the_parallel_path_correctly() {
    let sh = (4, 16, 32, 32);
    let len = 4 * 16 * 32 * 32;
    let (a, b) = (rand_vec(len, 11), rand_vec(len, 12));
    let ta = t4(&a, sh);
    let tb = t4(&b, sh);
    let y = add(ta.leaky_trace(), tb.retaped());
    let r = rand_vec(len, 13);
    let g = (relu(y) * t4(&r, sh)).sum().backward();
    let ga = g.get(&ta).as_vec();
    let gb = g.get(&tb).as_vec();
    for i in 0..len {
        let want = if a[i] + b[i] > 0.0 { r[i] } else { 0.0 };
        assert_eq!(ga[i], want);
        assert_eq!(gb[i], want);
    }
    assert!((sum_squares(&a) - a.iter().map(|v| v * v).sum::<f64>()).abs() < 1e-9);
}
