//! What the gradient-flow panels claim on the default experiment, checked on real training:
//! the plain run's shortcut share is 0, the residual runs' median share is above one half at
//! initialisation and rises with training, and at initialisation the plain run's gradient grows
//! toward the input much faster than the residual runs' (near the mean-field prediction).

use resviz::config::ExperimentConfig;
use resviz::records::StepRecord;
use resviz::records::flow::{MEAN_FIELD_GROWTH, median_share, step_slope};
use resviz::train::Trainer;
use std::sync::Arc;

/// Per run, the records of `steps` steps of `cfg`.
fn train(cfg: ExperimentConfig, steps: usize) -> Vec<Vec<StepRecord>> {
    let ds = Arc::new(resviz::data::load(&cfg.dataset, cfg.seed).expect("dataset"));
    let runs = cfg.models.len();
    let mut t = Trainer::new(cfg, ds).expect("trainer");
    let mut recs = vec![Vec::new(); runs];
    for _ in 0..steps {
        t.step_each(|i, rec, _| recs[i].push(rec));
    }
    recs
}

fn mean_loss(r: &[StepRecord]) -> f32 {
    r.iter().map(|s| s.loss).sum::<f32>() / r.len() as f32
}

#[test]
fn default_experiment_shows_the_shortcut_carrying_the_gradient() {
    let cfg = ExperimentConfig::dashboard_default();
    let names = cfg.models.clone();
    assert!(names[0].starts_with("plain"), "{names:?}");
    let steps = 40;
    let recs = train(cfg, steps);
    let (plain, residual) = recs.split_first().unwrap();
    for s in plain {
        assert!(
            s.blocks[1..]
                .iter()
                .all(|b| b.split.unwrap().shortcut == 0.0),
            "plain share is 0"
        );
    }
    let p0 = step_slope(&plain[0].blocks).unwrap();
    assert!(
        p0.factor() > 1.25 && p0.factor() < 1.1 * MEAN_FIELD_GROWTH,
        "plain growth per block at init {}",
        p0.factor()
    );
    for (name, r) in names[1..].iter().zip(residual) {
        let s0 = step_slope(&r[0].blocks).unwrap();
        assert!(
            s0.factor() < 1.2,
            "{name}: growth per block at init {}",
            s0.factor()
        );
        let m0 = median_share(&r[0].blocks).unwrap();
        // Median over the last ten steps: single steps scatter.
        let mut late: Vec<f32> = r[steps - 10..]
            .iter()
            .map(|s| median_share(&s.blocks).unwrap())
            .collect();
        late.sort_by(f32::total_cmp);
        let m1 = late[5];
        eprintln!(
            "{name}: median share {m0:.3} at step 1, {m1:.3} at steps {}..{steps}",
            steps - 9
        );
        assert!(m0 > 0.5, "{name}: median share at init {m0}");
        assert!(m1 > m0, "{name}: share {m0} -> {m1}");
    }
    // The loss gap a newcomer sees next to the gradient picture.
    let last = |r: &Vec<StepRecord>| mean_loss(&r[steps - 10..]);
    for (name, r) in names[1..].iter().zip(residual) {
        assert!(
            last(r) < last(&recs[0]),
            "{name} {} vs plain {}",
            last(r),
            last(&recs[0])
        );
    }
}

/// `cargo test --release --test suite -- --ignored --nocapture flow_story::candidates`: the figures the
/// README quotes for the default and the other candidate experiments (`STEPS=N`, `CANDIDATES=N`).
#[test]
#[ignore]
fn candidates() {
    let steps: usize = std::env::var("STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let base = ExperimentConfig::dashboard_default();
    let mut cands = vec![base.clone()];
    for (ds, lr) in [
        ("mnist", 0.1),
        ("mnist", 0.02),
        ("synthetic", 0.05),
        ("synthetic", 0.02),
    ] {
        cands.push(ExperimentConfig {
            dataset: ds.into(),
            lr,
            ..base.clone()
        });
    }
    // CANDIDATES=1 measures the default alone.
    let n = std::env::var("CANDIDATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cands.len());
    for cfg in cands.into_iter().take(n) {
        println!("== {} lr {} batch {}", cfg.dataset, cfg.lr, cfg.batch);
        let names = cfg.models.clone();
        let recs = train(cfg, steps);
        for (name, r) in names.iter().zip(&recs) {
            let at = |k: usize| {
                let s = &r[k.min(r.len()) - 1];
                format!(
                    "{k}: loss {:.3} x{:.2} share {}",
                    mean_loss(&r[k.saturating_sub(10).min(k - 1)..k.min(r.len())]),
                    step_slope(&s.blocks).map_or(f64::NAN, |s| s.factor()),
                    median_share(&s.blocks).map_or("-".into(), |m| format!("{m:.2}"))
                )
            };
            let cols: Vec<String> = [1, 3, 10, 30, 100, steps].iter().map(|&k| at(k)).collect();
            println!("{name:>8} | {}", cols.join(" | "));
        }
    }
}
