//! The forward-only path against dfdx's evaluation-mode forward, for every design, in f64 and
//! f32, intact and lesioned, and its cache against weights that change.

use super::super::{Mode, ModelSpec, NetOptions, Network};
use crate::engine::Float;
use crate::engine::gradcheck::rand_vec;
use crate::engine::simd::test_switch::without_avx512;
use dfdx::prelude::*;

/// Every design (several knob settings among them), at two depths; the seed presets.
pub(crate) const SPECS: &[&str] = &[
    "plain-8",
    "v1-8",
    "v1a-8",
    "v2-8",
    "scaled-8",
    "scaled-8:f=1",
    "gated-8",
    "gated-8:bg=-2",
    "sgated-8:bg=-1",
    "convsc-8",
    "convbnsc-8",
    "dropsc-8",
    "invdropsc-8",
    "bnafter-8",
    "relubefore-8",
    "reluonly-8",
    "seed-v1",
    "seed-v2",
    "plain-14",
    "v1-14",
    "v2-14",
    "reluonly-14",
];

const N: usize = 6;

fn opts() -> NetOptions {
    NetOptions {
        in_channels: 3,
        height: 16,
        width: 16,
        classes: 5,
        base_width: 4,
    }
}

fn input<E: Float>(n: usize, seed: u64) -> Vec<E> {
    let o = opts();
    rand_vec(n * o.in_channels * o.height * o.width, seed)
        .into_iter()
        .map(|v| E::from_f64(v).unwrap())
        .collect()
}

/// A few SGD steps, so running statistics and BN parameters are away from their start.
fn train<E: Float>(net: &mut Network<E>, steps: usize)
where
    Cpu: Device<E>,
{
    for s in 0..steps {
        let y: Vec<usize> = (0..N).map(|i| (i + s) % 5).collect();
        let (_, mut grads) = net.train_pass(input(N, 10 + s as u64), &y);
        let lr = E::from_f64(0.1).unwrap();
        for p in 0..net.store.params.len() {
            let g = net.store.params[p].grad(&mut grads).to_vec();
            for (w, g) in net.store.params[p].data_mut().iter_mut().zip(g) {
                *w -= lr * g;
            }
        }
    }
}

fn trained<E: Float>(spec: &str) -> Network<E>
where
    Cpu: Device<E>,
{
    let spec: ModelSpec = spec.parse().unwrap();
    let mut net = Network::new(spec, opts(), 3);
    train(&mut net, 3);
    net
}

/// Logits of dfdx's forward in evaluation mode, with `deleted` deleted.
fn reference<E: Float>(net: &mut Network<E>, x: &[E], deleted: Option<usize>) -> Option<Vec<E>>
where
    Cpu: Device<E>,
{
    let o = opts();
    let t = Cpu::default().tensor_from_vec(x.to_vec(), (N, o.in_channels, o.height, o.width));
    net.forward_lesioned(t, Mode::Eval, deleted)
        .map(|l| l.as_vec())
}

/// max |a − b| / max |b|.
fn rel_err<E: Float>(a: &[E], b: &[E]) -> f64 {
    assert_eq!(a.len(), b.len());
    let f = |v: E| v.to_f64().unwrap();
    let d = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f(x) - f(y)).abs())
        .fold(0.0, f64::max);
    let m = b.iter().map(|&y| f(y).abs()).fold(0.0, f64::max);
    d / m.max(f64::MIN_POSITIVE)
}

fn check_all<E: Float>(tol: f64)
where
    Cpu: Device<E>,
{
    for spec in SPECS {
        let mut net = trained::<E>(spec);
        let x = input::<E>(N, 1);
        let want = reference(&mut net, &x, None).unwrap();
        let got = net.infer(&x, N);
        let err = rel_err(&got, &want);
        assert!(err <= tol, "{spec}: relative error {err:e} > {tol:e}");
        assert!(
            want.iter().any(|v| v.abs() > E::from_f64(1e-3).unwrap()),
            "{spec}: trivial"
        );
    }
}

#[test]
fn infer_equals_the_eval_forward_in_f64() {
    check_all::<f64>(1e-10);
}

#[test]
fn infer_equals_the_eval_forward_in_f32() {
    check_all::<f32>(1e-5);
}

#[test]
fn infer_equals_the_eval_forward_without_avx512() {
    without_avx512(|| {
        check_all::<f32>(1e-5);
        check_all::<f64>(1e-10);
    });
}

#[test]
fn lesioned_infer_equals_the_lesioned_forward() {
    for spec in [
        "plain-8",
        "v1-8",
        "v1a-8",
        "v2-8",
        "reluonly-8",
        "convbnsc-8",
        "seed-v2",
    ] {
        let mut net = trained::<f64>(spec);
        let x = input::<f64>(N, 2);
        for b in 0..net.num_blocks() {
            let want = reference(&mut net, &x, Some(b));
            let got = net.infer_lesioned(&x, N, b);
            match (got, want) {
                (Some(g), Some(w)) => {
                    let err = rel_err(&g, &w);
                    assert!(err <= 1e-10, "{spec} without block {b}: {err:e}");
                }
                (None, None) => assert!(spec.starts_with("plain"), "{spec} block {b}"),
                (g, w) => panic!("{spec} block {b}: {:?} vs {:?}", g.is_some(), w.is_some()),
            }
        }
    }
}

#[test]
fn the_folded_weights_follow_every_change() {
    let mut net = trained::<f32>("v1-8");
    let x = input::<f32>(N, 4);
    let before = net.infer(&x, N);
    assert_eq!(net.infer(&x, N), before);
    assert_eq!(net.fold_count(), 1, "unchanged weights are folded once");
    // A training step changes weights and running statistics.
    train(&mut net, 1);
    let after = net.infer(&x, N);
    assert_eq!(net.fold_count(), 2);
    assert_ne!(after, before);
    assert!(rel_err(&after, &reference(&mut net, &x, None).unwrap()) <= 1e-5);
    // A running statistic alone.
    net.store.buffers[3].running_var[0] *= 4.0;
    let stats = net.infer(&x, N);
    assert_ne!(stats, after);
    assert!(rel_err(&stats, &reference(&mut net, &x, None).unwrap()) <= 1e-5);
    // One weight, by one ulp.
    let w = &mut net.store.params[0].data_mut()[0];
    *w = f32::from_bits(w.to_bits() + 1);
    net.infer(&x, N);
    assert_eq!(net.fold_count(), 4);
    // A clone folds its own.
    let c = net.clone();
    assert_eq!(c.infer(&x, N), net.infer(&x, N));
    assert_eq!((c.fold_count(), net.fold_count()), (1, 4));
}

/// `cargo test --release --lib model::infer::tests::speed -- --ignored --nocapture`: the
/// forward-only path of v1-56 on MNIST-shaped batches (for profiling).
#[test]
#[ignore]
fn speed() {
    let o = NetOptions {
        in_channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        base_width: 16,
    };
    for spec in ["plain-56", "v1-56", "v2-56"] {
        let net = Network::<f32>::new(spec.parse().unwrap(), o, 1);
        for n in [32, 128] {
            let x: Vec<f32> = rand_vec(n * 28 * 28, 5).iter().map(|&v| v as f32).collect();
            let ms = crate::engine::best_ms(20, &mut || {
                std::hint::black_box(crate::engine::on_pool(|| net.infer(&x, n)));
            });
            println!(
                "{spec} batch {n}: {ms:.1} ms, {:.0} img/s",
                n as f64 / ms * 1e3
            );
        }
    }
}
