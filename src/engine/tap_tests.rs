//! Probes fused into their producing ops ([`Tap`]) record what the separate [`probe`] records.

use crate::engine::gradcheck::rand_vec;
use crate::engine::{
    ActStats, BnCfg, ProbeRecorder, T4, Tap, add_relu_tapped, add_tapped, batch_norm2d_tapped,
    probe, relu,
};
use dfdx::prelude::*;

type Tp = OwnedTape<f32, Cpu>;
type S4 = (usize, usize, usize, usize);

fn tensor(n: usize, seed: u64, s: S4, shift: f32) -> Tensor<S4, f32, Cpu> {
    let v = rand_vec(n, seed)
        .iter()
        .map(|&x| x as f32 + shift)
        .collect();
    Cpu::default().tensor_from_vec(v, s)
}

/// The three fusing producers, `op(a, b, tap)`; `b` is unused by batch norm + ReLU.
fn produce(which: usize, a: T4<f32, Tp>, b: T4<f32, Tp>, tap: Option<&Tap>) -> T4<f32, Tp> {
    let c = a.shape().1;
    match which {
        0 => add_tapped(a, b, tap),
        1 => add_relu_tapped(a, b, tap),
        _ => {
            let dev = Cpu::default();
            let gamma = dev.tensor_from_vec(vec![1.3f32; c], (c,)).retaped::<Tp>();
            let beta = dev.tensor_from_vec(vec![0.2f32; c], (c,)).retaped::<Tp>();
            let (mut rm, mut rv) = (vec![0.0; c], vec![1.0; c]);
            let cfg = BnCfg {
                relu: true,
                ..BnCfg::default()
            };
            drop(b);
            batch_norm2d_tapped(a, gamma, beta, &mut rm, &mut rv, cfg, tap)
        }
    }
}

/// Runs `op` on fixed inputs, with its output consumed twice (so its gradient accumulates
/// before the producer reads it), and returns what slot 0 recorded: fused when `fused`, else
/// through the separate probe.
fn recorded(which: usize, s: S4, fused: bool) -> (ActStats, Option<f64>) {
    let n = s.0 * s.1 * s.2 * s.3;
    let (a, b) = (tensor(n, 1, s, 0.3), tensor(n, 2, s, -0.1));
    let (r1, r2) = (tensor(n, 3, s, 0.0), tensor(n, 4, s, 0.5));
    let rec = ProbeRecorder::new(1);
    let a = a.traced(Gradients::leaky());
    let b = b.retaped::<Tp>();
    let y = if fused {
        produce(which, a, b, rec.tap(0).as_ref())
    } else {
        probe(produce(which, a, b, None), &rec, 0)
    };
    let loss = (y.with_empty_tape() * r1).sum() + (relu(y) * r2).sum();
    let _ = loss.backward();
    rec.read()[0]
}

#[test]
fn fused_statistics_match_the_separate_probe() {
    // Small (serial) and large (parallel, several chunks) tensors; mean far from zero in one.
    // 11 planes of 20×20 are summed in L1-sized pieces that end mid-plane and mid-batch.
    for s in [(2, 3, 4, 5), (11, 3, 20, 20), (8, 16, 16, 16)] {
        for which in 0..3 {
            let (fa, fg) = recorded(which, s, true);
            let (pa, pg) = recorded(which, s, false);
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * y.abs().max(1e-2);
            assert!(
                close(fa.mean, pa.mean) && close(fa.std, pa.std) && fa.zero_frac == pa.zero_frac,
                "op {which} {s:?}: {fa:?} vs {pa:?}"
            );
            let (fg, pg) = (fg.expect("fused norm"), pg.expect("probe norm"));
            assert!(
                pg > 0.0 && (fg - pg).abs() <= 1e-6 * pg,
                "op {which}: {fg} vs {pg}"
            );
        }
    }
}

#[test]
fn taps_of_a_disabled_recorder_are_none() {
    let rec = ProbeRecorder::new(2);
    assert!(rec.tap(1).is_some());
    rec.set_enabled(false);
    assert!(rec.tap(1).is_none());
}
