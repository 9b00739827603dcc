//! Gradient shattering (Balduzzi et al. 2017) against independent computations: g(t) against
//! central differences of the logit along the line on small f64 nets, the f32 engine against the
//! f64 one, the autocorrelation against a naive one, and its two limits (white noise, a sine).

use resviz::data;
use resviz::experiments::shatter::{self, along_line, autocorrelation, line, shatter_images};
use resviz::experiments::{ExperimentError, Passes, precise_bn};
use resviz::model::{ModelSpec, NetOptions, Network};
use resviz::records::PreciseBn;
use resviz::records::ShatterParams;
use std::sync::atomic::AtomicBool;

fn opts(c: usize, hw: usize) -> NetOptions {
    NetOptions {
        in_channels: c,
        height: hw,
        width: hw,
        classes: 10,
        base_width: 4,
    }
}

/// Deterministic values in [-1, 1).
fn noise(n: usize, mut state: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn cast(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[test]
fn gradient_along_the_line_equals_central_differences_of_the_logit() {
    let never = AtomicBool::new(false);
    for model in ["plain-8", "v1-8", "v2-8"] {
        let spec: ModelSpec = model.parse().unwrap();
        let o = opts(3, 8);
        let len = 3 * 8 * 8;
        let mut net = Network::<f64>::new(spec, o, 5);
        // Running statistics from training-mode passes over random batches (the precise-BN path).
        let bn: Vec<Vec<f64>> = (0..3).map(|k| noise(16 * len, 11 + k)).collect();
        let mut quiet = |_: usize, _: usize| {};
        let mut passes = Passes::new(100, &mut quiet, &never);
        precise_bn(&mut net, &bn, &mut passes).unwrap();
        let (x0, x1) = (noise(len, 3), noise(len, 4));
        let class = 3;
        let points = 12;
        let (logit, g) = along_line(&mut net, (&x0, &x1), class, points, 5, &mut passes).unwrap();
        let h = 1e-6;
        let at = |net: &mut Network<f64>, t: f64| {
            let x: Vec<f64> = x0.iter().zip(&x1).map(|(a, b)| a + t * (b - a)).collect();
            net.eval_logits(x, 1)[class]
        };
        let scale = g.iter().map(|v| v.abs()).sum::<f64>() / g.len() as f64;
        assert!(
            scale > 1e-6,
            "{model}: a line with no gradient tests nothing"
        );
        for (i, &t) in line(points).iter().enumerate() {
            assert!((at(&mut net, t) - logit[i]).abs() <= 1e-12 * logit[i].abs().max(1.0));
            let fd = (at(&mut net, t + h) - at(&mut net, t - h)) / (2.0 * h);
            let err = (g[i] - fd).abs() / g[i].abs().max(scale);
            assert!(
                err <= 1e-6,
                "{model} t={t}: backprop {} vs differences {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn shatter_images_is_precise_bn_then_the_line_and_leaves_the_net_alone() {
    let never = AtomicBool::new(false);
    let spec: ModelSpec = "v1-8".parse().unwrap();
    let net = Network::<f64>::new(spec, opts(3, 8), 9);
    let len = 3 * 64;
    let bn: Vec<Vec<f64>> = (0..2).map(|k| noise(8 * len, 40 + k)).collect();
    let (x0, x1) = (noise(len, 1), noise(len, 2));
    let params = ShatterParams {
        points: 20,
        lags: 4,
        eval_batch: 6,
        ..ShatterParams::default()
    };
    let mut seen = Vec::new();
    let mut progress = |d: usize, t: usize| seen.push((d, t));
    let r = shatter_images(&net, (&x0, &x1), &bn, (&params, 7), &mut progress, &never).unwrap();
    // 2 precise-BN batches + ceil(20 / 6) = 4 line passes.
    assert_eq!(seen.first(), Some(&(0, 6)));
    assert_eq!(seen.last(), Some(&(6, 6)));
    assert_eq!(seen.len(), 7);
    let mut manual = net.clone();
    let mut quiet = |_: usize, _: usize| {};
    let mut passes = Passes::new(9, &mut quiet, &never);
    precise_bn(&mut manual, &bn, &mut passes).unwrap();
    let (_, g) = along_line(&mut manual, (&x0, &x1), 7, 20, 6, &mut passes).unwrap();
    assert_eq!(r.grad, g);
    assert_eq!(r.autocorr, autocorrelation(&g, 4));
    assert_eq!(r.lag1, r.autocorr[0]);
    assert_eq!((r.class, r.model.as_str()), (7, "v1-8"));
    // The caller's net keeps its default running statistics.
    assert!(
        net.store
            .buffers
            .iter()
            .all(|b| b.running_var.iter().all(|&v| v == 1.0))
    );
}

#[test]
fn the_f32_engine_agrees_with_f64_on_mnist_shaped_inputs() {
    let never = AtomicBool::new(false);
    let mut quiet = |_: usize, _: usize| {};
    let mut passes = Passes::new(100, &mut quiet, &never);
    let spec: ModelSpec = "v2-8".parse().unwrap();
    let len = 28 * 28;
    let bn = vec![noise(32 * len, 8)];
    let (x0, x1) = (noise(len, 5), noise(len, 6));
    let mut n64 = Network::<f64>::new(spec, opts(1, 28), 2);
    let mut n32 = Network::<f32>::new(spec, opts(1, 28), 2);
    precise_bn(&mut n64, &bn, &mut passes).unwrap();
    precise_bn(&mut n32, &[cast(&bn[0])], &mut passes).unwrap();
    let (_, g64) = along_line(&mut n64, (&x0, &x1), 1, 16, 16, &mut passes).unwrap();
    let (x0, x1) = (cast(&x0), cast(&x1));
    let (_, g32) = along_line(&mut n32, (&x0, &x1), 1, 16, 16, &mut passes).unwrap();
    let scale = g64.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (a, b) in g32.iter().zip(&g64) {
        assert!((a - b).abs() <= 1e-3 * scale, "f32 {a} vs f64 {b}");
    }
}

#[test]
fn autocorrelation_matches_a_naive_one_and_its_limits() {
    let g = noise(300, 77);
    let got = autocorrelation(&g, 10);
    let n = g.len();
    let mean = g.iter().sum::<f64>() / n as f64;
    let mut c0 = 0.0;
    for v in &g {
        c0 += (v - mean) * (v - mean);
    }
    for lag in 1..=10 {
        let mut c = 0.0;
        for t in 0..n - lag {
            c += (g[t] - mean) * (g[t + lag] - mean);
        }
        assert!((got[lag - 1] - c / c0).abs() < 1e-12);
    }
    let white = autocorrelation(&noise(4096, 5), 3);
    assert!(
        white.iter().all(|r| r.abs() < 0.05),
        "white noise: {white:?}"
    );
    let sine: Vec<f64> = line(256)
        .iter()
        .map(|t| (4.0 * std::f64::consts::PI * t).sin())
        .collect();
    let r = autocorrelation(&sine, 1)[0];
    assert!(r > 0.99, "a smooth sine: {r}");
}

#[test]
fn shatter_on_a_dataset_validates_reports_and_cancels() {
    let ds = data::load("mnist", 0).unwrap();
    let spec: ModelSpec = "plain-8".parse().unwrap();
    let o = NetOptions {
        in_channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        base_width: 4,
    };
    let net = Network::<f32>::new(spec, o, 1);
    let never = AtomicBool::new(false);
    let mut quiet = |_: usize, _: usize| {};
    let params = ShatterParams {
        points: 24,
        lags: 3,
        bn: PreciseBn {
            batches: 2,
            batch: 16,
            seed: 1,
        },
        ..ShatterParams::default()
    };
    let r = shatter::shatter(&net, &ds, &params, &mut quiet, &never).unwrap();
    assert_eq!(r.class, ds.test.label(1));
    assert_eq!((r.grad.len(), r.autocorr.len()), (24, 3));
    assert!(r.grad.iter().all(|g| g.is_finite()) && r.lag1.abs() <= 1.0);
    let again = shatter::shatter(&net, &ds, &params, &mut quiet, &never).unwrap();
    assert_eq!(r, again, "deterministic");
    let text = ron::to_string(&r).unwrap();
    assert_eq!(
        ron::from_str::<resviz::records::ShatterResult>(&text).unwrap(),
        r,
        "round trip"
    );
    let bad = |p: ShatterParams| shatter::shatter(&net, &ds, &p, &mut |_, _| {}, &never);
    for p in [
        ShatterParams {
            points: 1,
            ..params.clone()
        },
        ShatterParams {
            lags: 24,
            ..params.clone()
        },
        ShatterParams {
            to_image: 999_999,
            ..params.clone()
        },
        ShatterParams {
            class: Some(10),
            ..params.clone()
        },
    ] {
        assert!(matches!(bad(p), Err(ExperimentError::Invalid(_))));
    }
    let cancel = AtomicBool::new(true);
    let r = shatter::shatter(&net, &ds, &params, &mut quiet, &cancel);
    assert_eq!(r, Err(ExperimentError::Cancelled));
}

/// `:bn=off` nets have no batch statistics: training-mode and evaluation-mode logits agree, and
/// precise BN changes nothing; with batch norm they differ.
#[test]
fn bn_off_nets_do_not_normalise_by_batch() {
    let len = 3 * 64;
    let x = noise(6 * len, 77);
    for (model, off) in [
        ("plain-8:bn=off", true),
        ("v2-8:bn=off", true),
        ("v2-8", false),
    ] {
        let spec: ModelSpec = model.parse().unwrap();
        let mut net = Network::<f64>::new(spec, opts(3, 8), 2);
        let eval = net.eval_logits(x.clone(), 6);
        let train = {
            let mut t = net.clone();
            use dfdx::prelude::*;
            let dev = Cpu::default();
            let xt = dev.tensor_from_vec(x.clone(), (6, 3, 8, 8));
            let out = t.forward(xt, resviz::model::Mode::Train);
            out.as_vec()
        };
        let differ = eval.iter().zip(&train).any(|(a, b)| (a - b).abs() > 1e-9);
        assert_eq!(differ, !off, "{model}: train and eval logits");
        let never = AtomicBool::new(false);
        let mut quiet = |_: usize, _: usize| {};
        let mut passes = Passes::new(1, &mut quiet, &never);
        precise_bn(&mut net, &[x.clone()], &mut passes).unwrap();
        let after = net.eval_logits(x.clone(), 6);
        assert_eq!(after == eval, off, "{model}: precise BN");
    }
}
