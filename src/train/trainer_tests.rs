use super::*;

/// The step record's weight norms, and each block's update ratio and weight norm, equal what
/// the weights before and after the step give when summed in f64 here.
#[test]
fn a_steps_weight_figures_match_the_weights() {
    let cfg = ExperimentConfig {
        models: vec!["v1-8".into()],
        batch: 8,
        ..Default::default()
    };
    let ds = Arc::new(crate::data::load("synthetic", 0).unwrap());
    let mut t = Trainer::new(cfg, ds).unwrap();
    let norm = |w: &[f32]| w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let before: Vec<Vec<f32>> = (t.runs[0].net.store.params.iter())
        .map(|p| p.data().to_vec())
        .collect();
    let init: Vec<f64> = before.iter().map(|w| norm(w)).collect();
    for (a, b) in t.runs[0].init_weight_norms.iter().zip(&init) {
        assert!((*a as f64 - b).abs() <= 1e-5 * b, "{a} vs {b}");
    }
    let mut recs = Vec::new();
    t.step_each(|_, rec, _| recs.push(rec));
    let rec = &recs[0];
    let after: Vec<&[f32]> = t.runs[0]
        .net
        .store
        .params
        .iter()
        .map(|p| p.data())
        .collect();
    for (i, w) in after.iter().enumerate() {
        let want = norm(w);
        assert!((rec.weight_norms[i] as f64 - want).abs() <= 1e-5 * want.max(1e-30));
    }
    let names = t.runs[0].net.store.names();
    let groups = learning::conv_weights(t.runs[0].net.block_names(), &names);
    assert_eq!(groups.len(), rec.blocks.len());
    for (g, b) in groups.iter().zip(&rec.blocks) {
        assert!(!g.is_empty(), "every boundary of v1-8 has conv weights");
        let (mut dw, mut w) = (0.0, 0.0);
        for &i in g {
            for (x0, x1) in before[i].iter().zip(after[i]) {
                dw += ((x1 - x0) as f64).powi(2);
                w += (*x1 as f64).powi(2);
            }
        }
        let want = (dw / w).sqrt();
        assert!(want > 0.0);
        assert!(
            (b.update_ratio as f64 - want).abs() < 1e-4 * want,
            "{} vs {want}",
            b.update_ratio
        );
        assert!((b.weight_norm as f64 - w.sqrt()).abs() < 1e-5 * w.sqrt());
    }
}

/// Each block's gradient histogram counts every entry of its first conv weight's gradient once,
/// and no entry lands in a bin above the gradient's whole norm (|g_i| ≤ ‖g‖).
#[test]
fn a_steps_gradient_histograms_count_the_first_conv_weight() {
    use crate::records::histogram::{BIN_DECADES, LOG10_LO};
    let cfg = ExperimentConfig {
        models: vec!["v1-8".into()],
        batch: 8,
        ..Default::default()
    };
    let ds = Arc::new(crate::data::load("synthetic", 0).unwrap());
    let mut t = Trainer::new(cfg, ds).unwrap();
    let mut recs = Vec::new();
    t.step_each(|_, rec, _| recs.push(rec));
    let rec = &recs[0];
    let groups = t.runs[0].conv_groups.clone();
    assert_eq!(rec.grad_hists.len(), groups.len());
    for (g, h) in groups.iter().zip(&rec.grad_hists) {
        let p = g[0];
        let len = t.runs[0].net.store.params[p].data().len();
        assert_eq!(h.iter().sum::<u32>() as usize, len);
        assert!(h[0] < len as u32, "not every entry of a gradient is zero");
        let top = (1..h.len()).rev().find(|&k| h[k] > 0).unwrap() - 1;
        let lower_edge = 10f64.powf((LOG10_LO + BIN_DECADES * top as f32) as f64);
        let norm = rec.param_grad_norms[p] as f64;
        assert!(lower_edge <= norm * 1.0001, "bin {top} above ‖g‖ = {norm}");
    }
}

/// The histograms' share of a 56-layer training step: whole steps (histograms included) against
/// the histogram pass alone on one step's gradients. A timing, so not in the default run.
#[test]
#[ignore = "timing; cargo test --release --lib grad_hist_cost -- --ignored --nocapture"]
fn grad_hist_cost_of_a_56_layer_step() {
    let cfg = ExperimentConfig {
        models: vec!["v1-56".into()],
        ..Default::default()
    };
    let ds = Arc::new(crate::data::load("synthetic", 0).unwrap());
    let mut t = Trainer::new(cfg, ds).unwrap();
    t.step_each(|_, _, _| {});
    let n = 10;
    let t0 = Instant::now();
    for _ in 0..n {
        t.step_each(|_, _, _| {});
    }
    let step = t0.elapsed().as_secs_f64() / n as f64;
    let batch = t.cfg.batch;
    let (x, y) = (t.x.clone(), &t.y);
    let run = &mut t.runs[0];
    let (_, mut grads) = engine::on_pool(|| run.net.train_pass(x, y));
    let t0 = Instant::now();
    let mut total = 0u64;
    for _ in 0..n {
        let h = engine::on_pool(|| {
            super::super::grad_hist::per_block(&run.net.store, &mut grads, &run.conv_groups)
        });
        total += h.iter().flatten().map(|&c| c as u64).sum::<u64>();
    }
    let hist = t0.elapsed().as_secs_f64() / n as f64;
    assert!(total > 0);
    eprintln!(
        "v1-56, batch {}: step {:.1} ms, histograms {:.3} ms ({:.2} % of a step), {} entries binned a step",
        batch,
        step * 1e3,
        hist * 1e3,
        100.0 * hist / step,
        total / n as u64
    );
}
