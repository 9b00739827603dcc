//! Batch norm's speed alone (ignored: run by hand).

use super::*;
use crate::engine::gradcheck::rand_vec;

/// `cargo test --release --lib engine::batchnorm::bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bn_speed() {
    let dev = Cpu::default();
    println!("threads: {}", rayon::current_num_threads());
    for s in [(64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8)] {
        let len = s.0 * s.1 * s.2 * s.3;
        let xv: Vec<f32> = rand_vec(len, 1).iter().map(|&v| v as f32).collect();
        let x: T4<f32> = dev.tensor_from_vec(xv, s);
        let g: T1<f32> = dev.ones_like(&(s.1,));
        let b: T1<f32> = dev.zeros_like(&(s.1,));
        let (mut rm, mut rv) = (vec![0.0f32; s.1], vec![1.0f32; s.1]);
        let cfg = BnCfg {
            relu: true,
            ..BnCfg::default()
        };
        let reps = 30;
        // Minimum over repetitions: robust to other processes sharing the machine.
        let time = |f: &mut dyn FnMut()| crate::engine::best_ms(reps, f);
        let tf = time(&mut || {
            let y = batch_norm2d(x.clone(), g.clone(), b.clone(), &mut rm, &mut rv, cfg);
            std::hint::black_box(y);
        });
        let tsum = time(&mut || {
            std::hint::black_box(x.leaky_trace().sum().backward());
        });
        let tfb = time(&mut || {
            let y = batch_norm2d(
                x.leaky_trace(),
                g.retaped(),
                b.retaped(),
                &mut rm,
                &mut rv,
                cfg,
            );
            std::hint::black_box(y.sum().backward());
        });
        let tcopy = time(&mut || {
            std::hint::black_box(view(&x).to_vec());
        });
        println!(
            "{s:?}: fwd {tf:.3} ms, fwd+bwd {:.3} ms (sum+backward alone {tsum:.3}), memcpy {tcopy:.3} ms",
            tfb - tsum
        );
    }
}

/// The joining write pass (eq. 5's sums beside `gx +=`) against the plain one, on the planes of
/// the dashboard's nets (28×28, 14×14, 7×7 at batch 32) and of 3×32×32 at batch 64.
/// `cargo test --release --lib engine::batchnorm::bench::join_speed -- --ignored --nocapture`
#[test]
#[ignore]
fn join_speed() {
    for s in [
        (32, 16, 28, 28),
        (32, 32, 14, 14),
        (32, 64, 7, 7),
        (64, 16, 32, 32),
    ] {
        let (n, c, hw) = (s.0, s.1, s.2 * s.3);
        let len = n * c * hw;
        let vec = |seed, scale| -> Vec<f32> {
            rand_vec(len, seed)
                .iter()
                .map(|&v| (v * scale) as f32)
                .collect()
        };
        let (xv, gz, mut gx) = (vec(1, 1.0), vec(2, 1e-3), vec(3, 1e-3));
        let (gamma, beta) = (vec![1.0f64; c], vec![0.0f32; c]);
        let (mut rm, mut rv) = (vec![0.0f32; c], vec![1.0f32; c]);
        let cfg = BnCfg {
            relu: true,
            ..BnCfg::default()
        };
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let y = &mut out.spare_capacity_mut()[..len];
        let (norms, _) = forward(
            &xv,
            (n, c, hw),
            &gamma,
            &beta,
            &mut rm,
            &mut rv,
            cfg,
            y,
            false,
        );
        let mut pass = |join| {
            let grad_x = (&mut gx[..], false);
            let probes = (false, join);
            let r = backward_with(&xv, &gz, grad_x, (n, c, hw), &norms, &gamma, cfg, probes);
            std::hint::black_box(r);
        };
        let plain = crate::engine::best_ms(40, &mut || crate::engine::on_pool(|| pass(false)));
        let join = crate::engine::best_ms(40, &mut || crate::engine::on_pool(|| pass(true)));
        println!(
            "{s:?}: plain {plain:.3} ms, joining {join:.3} ms ({:+.1} %)",
            100.0 * (join / plain - 1.0)
        );
    }
}
