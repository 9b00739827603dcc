use super::*;
use crate::records::{RunInfo, StepRecord};

/// A run whose loss is `loss(step)` for steps 1..=n.
fn history(n: u64, loss: impl Fn(u64) -> f32) -> RunHistory {
    let mut h = RunHistory::new(RunInfo::default());
    for step in 1..=n {
        h.push(StepRecord {
            step,
            loss: loss(step),
            ..Default::default()
        });
    }
    h
}

#[test]
fn a_run_starts_when_its_running_mean_leaves_ln_10() {
    // At ln 10 until step 50, then at 1.0: the 20-step mean falls below 0.9 ln 10 (2.07) once
    // enough of the window is at 1.0: mean = (k·1 + (20−k)·2.303)/20 < 2.072 ⇒ k ≥ 4 (step 54).
    let h = history(300, |s| if s <= 50 { 2.303 } else { 1.0 });
    assert_eq!(start_step(&h), Some(54));
    // A run that never leaves ln 10 never starts; one good batch does not start it.
    let stuck = history(300, |s| if s == 100 { 0.1 } else { 2.30 });
    assert_eq!(start_step(&stuck), None);
    // Started from the first window.
    assert_eq!(start_step(&history(100, |_| 1.0)), Some(20));
}

fn seed(final_loss: [f64; 3], start: [Option<u64>; 3]) -> SeedRuns {
    SeedRuns {
        seed: 1,
        steps: 400,
        final_loss,
        start,
    }
}

#[test]
fn each_claim_of_fig_1_is_judged_on_its_own() {
    let fig1 = seed([0.3, 0.6, 0.1], [Some(20), Some(30), Some(20)]);
    assert!(fig1.shows_fig1());
    // The deeper plain net starts at step 41 of 400: later than a tenth of the run.
    let late = seed([0.3, 0.6, 0.1], [Some(20), Some(41), Some(20)]);
    assert!(!late.plain_nets_train() && late.deeper_is_worse() && !late.shows_fig1());
    let never = seed([0.3, 2.3, 0.1], [Some(20), None, Some(20)]);
    assert!(!never.plain_nets_train());
    let no_degradation = seed([0.6, 0.3, 0.1], [Some(20); 3]);
    assert!(!no_degradation.deeper_is_worse() && no_degradation.residual_lowest());
    let residual_not_lowest = seed([0.3, 0.6, 0.4], [Some(20); 3]);
    assert!(!residual_not_lowest.residual_lowest());
}

#[test]
fn the_report_counts_seeds_and_shows_claims_that_fail() {
    let cfg: ExperimentConfig = ron::from_str(PRESET).unwrap();
    let seeds = vec![
        seed([0.3, 0.6, 0.1], [Some(20), Some(30), Some(20)]),
        seed([0.3, 0.6, 0.1], [Some(20), Some(30), Some(20)]),
        seed([0.3, 2.3, 0.1], [Some(20), None, Some(20)]),
    ];
    let r = report(&cfg, 400, &seeds);
    let row = |q: &str| r.rows.iter().find(|x| x.quantity.starts_with(q)).unwrap();
    let all = row("seeds showing all of Fig. 1");
    assert_eq!((all.measured, all.holds), (Some(2.0), Some(false)));
    let worse = row("seeds where the deeper plain net");
    assert_eq!((worse.measured, worse.holds), (Some(3.0), Some(true)));
    // The deep plain net's start: the median over the two seeds that started, and the label
    // says one never did.
    let starts: Vec<&Row> = r
        .rows
        .iter()
        .filter(|x| x.quantity.starts_with("start step"))
        .collect();
    assert_eq!(starts[1].measured, Some(30.0));
    assert!(
        starts[1].quantity.contains("(1 never did)"),
        "{}",
        starts[1].quantity
    );
    assert_eq!(row("final training loss").measured, Some(0.3));
    assert_eq!(r.paper, "he2015-fig1");
}

#[test]
fn a_seed_is_described_run_by_run() {
    let models: Vec<String> = ["plain-8", "plain-20", "v1a-20"].map(String::from).into();
    let line = seed([0.3, 2.3, 0.1], [Some(20), None, Some(25)]).describe(&models);
    assert_eq!(
        line,
        "seed 1: plain-8 starts step 20, ends 0.300, plain-20 starts never, ends 2.30, \
         v1a-20 starts step 25, ends 0.100; both plain train NO, deeper worse yes, residual \
         lowest yes"
    );
}
