//! Loss landscape (Li et al. 2018) against independent computations: a grid point's loss equals a
//! forward pass of a net whose parameters were set to θ + α·d₁ + β·d₂ by hand, the directions are
//! filter-normalised, and the non-convexity figure on surfaces whose answer is known.

use resviz::data;
use resviz::experiments::ExperimentError;
use resviz::experiments::landscape::{self, axis, directions, landscape_images, nonconvexity};
use resviz::model::params::ParamTensor;
use resviz::model::{ModelSpec, NetOptions, Network};
use resviz::records::LandscapeParams;
use resviz::records::PreciseBn;
use std::sync::atomic::AtomicBool;

fn small(model: &str, seed: u64) -> Network<f64> {
    let o = NetOptions {
        in_channels: 3,
        height: 8,
        width: 8,
        classes: 10,
        base_width: 4,
    };
    Network::new(model.parse::<ModelSpec>().unwrap(), o, seed)
}

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

fn batches() -> Vec<(Vec<f64>, Vec<usize>)> {
    (0..2)
        .map(|b| {
            (
                noise(6 * 192, 30 + b),
                (0..6).map(|i| (i * 7 + b as usize) % 10).collect(),
            )
        })
        .collect()
}

#[test]
fn a_grid_point_is_a_forward_pass_at_explicitly_set_weights() {
    let never = AtomicBool::new(false);
    for model in ["plain-8", "v1-8"] {
        let mut net = small(model, 3);
        // Non-default running statistics, which the landscape must use unchanged (eval mode).
        for (k, b) in net.store.buffers.iter_mut().enumerate() {
            b.running_mean.iter_mut().for_each(|m| *m = 0.1 * k as f64);
            b.running_var
                .iter_mut()
                .for_each(|v| *v = 0.5 + 0.01 * k as f64);
        }
        let params = LandscapeParams {
            grid: 5,
            slice_points: 3,
            seed: 9,
            hessian_grid: 0,
            ..LandscapeParams::default()
        };
        let data = batches();
        let r = landscape_images(&net, &data, &[], &params, &mut |_, _| {}, &never).unwrap();
        let [d1, d2] = directions(&net, 9);
        let explicit = |a: f64, b: f64| {
            let mut e = net.clone();
            for (k, p) in e.store.params.iter_mut().enumerate() {
                let theta = net.store.params[k].data().to_vec();
                for (i, w) in p.data_mut().iter_mut().enumerate() {
                    *w = theta[i] + a * d1[k][i] + b * d2[k][i];
                }
            }
            let (mut sum, mut n) = (0.0, 0);
            for (x, y) in &data {
                sum += e.eval_pass(x.clone(), y).0 * y.len() as f64;
                n += y.len();
            }
            sum / n as f64
        };
        let c = axis(5);
        assert_eq!(c, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        for (i, j) in [(0, 0), (4, 1), (2, 2), (3, 4)] {
            assert_eq!(
                r.losses[j][i],
                explicit(c[i], c[j]),
                "{model} at ({i}, {j})"
            );
        }
        assert_eq!(r.centre_loss, explicit(0.0, 0.0));
        assert_eq!(r.losses[2][2], r.centre_loss);
        assert_eq!(r.slice[0], explicit(-1.0, 0.0));
        assert_eq!(
            r.slice,
            vec![r.losses[2][0], r.losses[2][2], r.losses[2][4]]
        );
        assert!(r.losses.iter().flatten().all(|&l| l >= r.min_loss));
        assert_ne!(
            r.losses[0][0], r.centre_loss,
            "{model}: the perturbation changes the loss"
        );
    }
}

#[test]
fn directions_are_filter_normalised_and_skip_biases_and_batch_norm() {
    let net = small("v2-8", 4);
    let [d1, d2] = directions(&net, 5);
    assert_eq!(directions(&net, 5), [d1.clone(), d2.clone()], "seeded");
    assert_ne!(d1, d2);
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut filters = 0;
    for (k, p) in net.store.params.iter().enumerate() {
        let w = p.data();
        match &p.tensor {
            ParamTensor::R1(_) => {
                assert!(d1[k].iter().chain(&d2[k]).all(|&x| x == 0.0), "{}", p.name);
            }
            _ => {
                let per = w.len() / p.shape()[0];
                for d in [&d1[k], &d2[k]] {
                    for (df, wf) in d.chunks(per).zip(w.chunks(per)) {
                        let (dn, wn) = (norm(df), norm(wf));
                        assert!((dn - wn).abs() <= 1e-9 * wn, "{}: {dn} vs {wn}", p.name);
                        filters += 1;
                    }
                }
            }
        }
    }
    assert!(filters > 100);
}

fn surface(g: usize, f: impl Fn(f64, f64) -> f64) -> Vec<Vec<f64>> {
    let c = axis(g);
    c.iter()
        .map(|&b| c.iter().map(|&a| f(a, b)).collect())
        .collect()
}

#[test]
fn nonconvexity_of_known_surfaces() {
    assert_eq!(nonconvexity(&surface(11, |a, b| a * a + b * b + 3.0)), 0.0);
    assert_eq!(nonconvexity(&surface(11, |a, b| a * a - b * b)), 1.0);
    assert_eq!(
        nonconvexity(&surface(11, |a, b| 2.0 + a + 0.5 * b)),
        0.0,
        "a plane"
    );
    // Monkey saddle a³ − 3ab²: concave along α where α < 0, along β where α > 0, flat at α = 0:
    // 8 of the 9 interior columns.
    let monkey = nonconvexity(&surface(11, |a, b| a.powi(3) - 3.0 * a * b * b));
    assert!((monkey - 8.0 / 9.0).abs() < 1e-12, "{monkey}");
    assert!(nonconvexity(&surface(2, |a, _| a)).is_nan());
}

#[test]
fn landscape_on_a_dataset_validates_reports_and_cancels() {
    let ds = data::load("mnist", 0).unwrap();
    let o = NetOptions {
        in_channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        base_width: 4,
    };
    let net = Network::<f32>::new("v1-8".parse().unwrap(), o, 1);
    let never = AtomicBool::new(false);
    let params = LandscapeParams {
        grid: 3,
        slice_points: 4,
        images: 40,
        eval_batch: 16,
        bn: PreciseBn {
            batches: 1,
            batch: 32,
            seed: 2,
        },
        hessian_grid: 1,
        hessian_steps: 2,
        ..LandscapeParams::default()
    };
    let mut seen = Vec::new();
    let r = landscape::landscape(&net, &ds, &params, &mut |d, t| seen.push((d, t)), &never);
    let r = r.unwrap();
    // 1 precise-BN pass + (θ + 9 grid + 4 slice) × 3 image batches + the Hessian at θ: the
    // gradient at θ and 2 Lanczos steps of one gradient each, over 3 batches.
    assert_eq!(seen.last(), Some(&(52, 52)));
    assert_eq!(r.hessian.len(), 1);
    assert_eq!(r.hessian[0].at, [0.0, 0.0]);
    assert_eq!(r.hessian_ratio_median, r.hessian[0].ratio);
    assert_eq!(r.basin_points, 1);
    assert_eq!(r.losses.len(), 3);
    assert!(r.losses.iter().flatten().all(|l| l.is_finite() && *l > 0.0));
    assert!((0.0..=1.0).contains(&r.nonconvex_frac));
    let text = ron::to_string(&r).unwrap();
    assert_eq!(
        ron::from_str::<resviz::records::LandscapeResult>(&text).unwrap(),
        r,
        "round trip"
    );
    let bad = |p: LandscapeParams| landscape::landscape(&net, &ds, &p, &mut |_, _| {}, &never);
    for p in [
        LandscapeParams {
            grid: 2,
            ..params.clone()
        },
        LandscapeParams {
            slice_points: 1,
            ..params.clone()
        },
        LandscapeParams {
            images: 0,
            ..params.clone()
        },
    ] {
        assert!(matches!(bad(p), Err(ExperimentError::Invalid(_))));
    }
    let cancel = AtomicBool::new(true);
    let r = landscape::landscape(&net, &ds, &params, &mut |_, _| {}, &cancel);
    assert_eq!(r, Err(ExperimentError::Cancelled));
}
