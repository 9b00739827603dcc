//! The model contract: parameter counts (He et al. 2015), names, and gradient-flow spreads.

use resviz::model::{ModelSpec, NetOptions, Network};

fn params(spec: &str) -> usize {
    Network::<f32>::new(spec.parse().unwrap(), NetOptions::default(), 0).num_params()
}

/// He et al. 2015 Table 6 gives 0.27 / 0.46 / 0.66 / 0.85 / 1.7 M parameters for the option-A
/// ResNets of depth 20 / 32 / 44 / 56 / 110 and says the plain nets have exactly as many.
#[test]
fn option_a_parameter_counts_are_he_2015s() {
    let table = [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)];
    // The exact counts, by hand: stem conv 3·16·9 + BN 32; per stage of n blocks of width c
    // (input c_in): conv 9·c_in·c + (2n − 1)·9·c² and 2n BNs of 2c; fc 64·10 + 10.
    let exact = |n: usize| {
        let stage = |cin: usize, c: usize| 9 * cin * c + (2 * n - 1) * 9 * c * c + 2 * n * 2 * c;
        432 + 32 + stage(16, 16) + stage(16, 32) + stage(32, 64) + 650
    };
    for (depth, millions) in table {
        let v1a = params(&format!("v1a-{depth}"));
        assert_eq!(v1a, exact((depth - 2) / 6), "v1a-{depth}");
        assert_eq!(
            params(&format!("plain-{depth}")),
            v1a,
            "plain-{depth} vs v1a"
        );
        // Rounded as the paper rounds: two significant digits.
        let digits = if millions < 1.0 { 100.0 } else { 10.0 };
        let rounded = (v1a as f64 / 1e6 * digits).round() / digits;
        assert_eq!(rounded, millions, "v1a-{depth}: {v1a}");
    }
    assert_eq!(params("v1a-20"), 269_722);
    // Option B adds the two projections' 1×1 convs and BNs: v1-32 has 0.467 M.
    assert_eq!(
        params("v1-32") - params("v1a-32"),
        16 * 32 + 64 + 32 * 64 + 128
    );
}

#[test]
fn pytorch_style_names() {
    let net = Network::<f32>::new("v1-20".parse().unwrap(), NetOptions::default(), 0);
    let names = net.store.names();
    for n in [
        "stem.conv.weight",
        "stem.bn.weight",
        "stages.0.0.conv1.weight",
        "stages.1.0.shortcut.conv.weight",
        "stages.1.0.shortcut.bn.bias",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n}");
    }
    assert_eq!(net.block_names().len(), 10);
    let dict = net.state_dict();
    assert!(dict.contains_key("stem.bn.running_var"));
    assert!(dict.contains_key("stem.bn.num_batches_tracked"));
    let v2 = Network::<f32>::new("v2-20".parse().unwrap(), NetOptions::default(), 0);
    let names = v2.store.names();
    let has = |n: &str| names.iter().any(|x| x == n);
    assert!(has("head.bn.weight"));
    // He 2016 §4: the first unit's BN + ReLU sits right after conv1, before the split, so it is
    // the stem's BN; the first block has no pre-activation BN of its own.
    assert!(has("stem.bn.weight"));
    assert!(!has("stages.0.0.bn1.weight"));
    assert!(has("stages.0.1.bn1.weight"));
    // reluonly's first activation is a bare ReLU: no stem BN, and its bn1 follows conv1 as ever.
    let r = Network::<f32>::new("reluonly-20".parse().unwrap(), NetOptions::default(), 0);
    let names = r.store.names();
    assert!(!names.iter().any(|x| x.starts_with("stem.bn")));
    assert!(names.iter().any(|x| x == "stages.0.0.bn1.weight"));
    // v1a has no shortcut parameters; convsc has a bare 1×1 conv on every shortcut.
    let a = Network::<f32>::new("v1a-20".parse().unwrap(), NetOptions::default(), 0);
    assert!(!a.store.names().iter().any(|x| x.contains("shortcut")));
    let c = Network::<f32>::new("convsc-20".parse().unwrap(), NetOptions::default(), 0);
    let names = c.store.names();
    assert!(names.iter().any(|x| x == "stages.0.0.shortcut.conv.weight"));
    assert!(!names.iter().any(|x| x.contains("shortcut.bn")));
    let cb = Network::<f32>::new("convbnsc-20".parse().unwrap(), NetOptions::default(), 0);
    assert!(
        cb.store
            .names()
            .iter()
            .any(|x| x == "stages.0.0.shortcut.bn.weight")
    );
}

/// Gates start at b_g: −6 by default, as the spec says otherwise.
#[test]
fn gate_bias_is_settable() {
    for (spec, want) in [
        ("gated-8", -6.0),
        ("gated-8:bg=-2", -2.0),
        ("sgated-8:bg=0", 0.0),
    ] {
        let net = Network::<f32>::new(spec.parse().unwrap(), NetOptions::default(), 0);
        let b = net
            .store
            .params
            .iter()
            .find(|p| p.name == "stages.0.0.gate.bias")
            .unwrap();
        assert!(
            b.data().iter().all(|&v| v == want),
            "{spec}: {:?}",
            b.data()
        );
    }
}

/// The seed nets start as Keras would: zero conv and dense biases, glorot-uniform kernels
/// (bounded by √(6 / (fan_in + fan_out))), and a he-normal dense kernel (std √(2 / fan_in)).
#[test]
fn seed_nets_use_keras_initialisation() {
    let net = Network::<f32>::new("seed-v2".parse().unwrap(), NetOptions::default(), 0);
    let p = |n: &str| {
        net.store
            .params
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .data()
            .to_vec()
    };
    for b in [
        "stem.conv.bias",
        "stages.0.0.conv1.bias",
        "stages.1.0.shortcut.conv.bias",
        "fc.bias",
    ] {
        assert!(p(b).iter().all(|&v| v == 0.0), "{b}");
    }
    let w = p("stages.1.0.conv2.weight"); // 32 → 32, 3×3
    let bound = (6.0f32 / (2.0 * 32.0 * 9.0)).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max > 0.95 * bound, "not uniform over ±{bound}: max {max}");
    let fc = p("fc.weight");
    let fan_in = 32 * 32 * 32;
    let std = (fc.iter().map(|v| (v * v) as f64).sum::<f64>() / fc.len() as f64).sqrt();
    let want = (2.0 / fan_in as f64).sqrt();
    assert!(
        (std / want - 1.0).abs() < 0.02,
        "fc std {std} vs he_normal {want}"
    );
}

#[test]
fn every_variant_builds_and_trains_one_step() {
    let opts = NetOptions {
        height: 8,
        width: 8,
        base_width: 4,
        ..Default::default()
    };
    let x: Vec<f32> = (0..4 * 3 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let y = [0, 1, 2, 3];
    for v in resviz::model::Variant::ALL {
        let spec: ModelSpec = format!("{}-8", v.name()).parse().unwrap();
        let mut net = Network::<f32>::new(spec, opts, 1);
        let (stats, _) = net.train_pass(x.clone(), &y);
        assert!(stats.loss.is_finite(), "{spec}: loss {}", stats.loss);
        assert_eq!(stats.blocks.len(), net.block_names().len());
        assert!(
            stats.blocks.iter().all(|(_, g)| g.is_finite() && *g > 0.0),
            "{spec}: {:?}",
            stats.blocks
        );
        assert!(
            stats.param_grad_norms.iter().all(|g| g.is_finite()),
            "{spec}"
        );
    }
}

#[test]
fn checkpoint_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let a = Network::<f32>::new("v2-8".parse().unwrap(), NetOptions::default(), 3);
    a.save_safetensors(&path).unwrap();
    let mut b = Network::<f32>::new("v2-8".parse().unwrap(), NetOptions::default(), 4);
    assert_ne!(a.state_dict(), b.state_dict());
    b.load_safetensors(&path).unwrap();
    assert_eq!(a.state_dict(), b.state_dict());
    let mut c = Network::<f32>::new("v1-8".parse().unwrap(), NetOptions::default(), 4);
    assert!(
        c.load_safetensors(&path).is_err(),
        "a v2 checkpoint must not load into v1"
    );
}

/// A cloned network (what an experiment evaluates on another thread) records its own passes:
/// switching its statistics off or running it leaves the original's readings alone.
#[test]
fn a_clone_records_its_own_statistics() {
    let opts = NetOptions {
        height: 8,
        width: 8,
        ..NetOptions::default()
    };
    let mut net = Network::<f32>::new("v2-8".parse().unwrap(), opts, 0);
    let x: Vec<f32> = (0..2 * 3 * 64)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0)
        .collect();
    let _ = net.train_pass(x.clone(), &[1, 2]);
    let before = net.probe_stats();
    assert!(before.iter().all(|(_, g)| g.is_some()));
    let copy = net.clone();
    copy.set_probes_enabled(false);
    let _ = copy.eval_pass(x.iter().map(|v| v * 3.0).collect(), &[0, 0]);
    assert_eq!(net.probe_stats(), before);
    let _ = net.train_pass(x, &[1, 2]);
    assert!(
        net.probe_stats()
            .iter()
            .all(|(a, g)| g.is_some() && a.std > 0.0),
        "the original's statistics are still on"
    );
}
