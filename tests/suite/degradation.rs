//! `assets/bn-explosion.ron` end to end: on `synthetic`, 150 steps at batch 32 and seed 3, the
//! 56-layer plain net — whose gradient explodes toward the input at initialisation under batch
//! norm — ends clearly above the 20-layer one (it does not start to train) and the 56-layer
//! residual net below it; and the same seed gives the same numbers. This is the failure a deep
//! plain net shows here, not He et al. 2015's degradation (both plain nets training, the deeper
//! to a higher training error). Takes about a minute in release on 2 cores.

use crate::common::{json_of, resviz};

/// `resviz train --json` with `args`; the final training loss per model, in order.
fn final_losses(args: &[&str]) -> Vec<(String, f64)> {
    let v = json_of(&resviz(&[&["train", "--json"][..], args].concat()));
    v["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            let name = m["model"].as_str().unwrap().to_string();
            (name, m["final_train_loss"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn plain_56_degrades_and_v1_56_does_not() {
    let run = final_losses(&[
        "--models",
        "plain-20,plain-56,v1-56",
        "--dataset",
        "synthetic",
        "--batch",
        "32",
        "--lr",
        "0.02",
        "--seed",
        "3",
        "--steps",
        "150",
    ]);
    let loss = |m: &str| run.iter().find(|(n, _)| n == m).unwrap().1;
    let (p20, p56, v56) = (loss("plain-20"), loss("plain-56"), loss("v1-56"));
    eprintln!("final training loss: plain-20 {p20:.4}, plain-56 {p56:.4}, v1-56 {v56:.4}");
    assert!(
        p56 > p20 + 0.5,
        "plain-56 {p56} not clearly above plain-20 {p20}"
    );
    assert!(v56 < p56 - 0.3, "v1-56 {v56} not below plain-56 {p56}");
}

#[test]
fn same_seed_same_numbers() {
    let args = [
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/bn-explosion.ron"),
        "--models",
        "plain-8,v1-8,v2-8",
        "--steps",
        "6",
    ];
    let (a, b) = (final_losses(&args), final_losses(&args));
    assert_eq!(a, b, "two runs with the same seed differ");
    let other = final_losses(&[&args[..], &["--seed", "4"]].concat());
    assert_ne!(a, other, "a different seed gave the same numbers");
}
