//! The model contract: parameter counts (He et al. 2015), names, and gradient-flow spreads.

use resviz::model::{ModelSpec, NetOptions, Network};

fn params(spec: &str) -> usize {
    Network::<f32>::new(spec.parse().unwrap(), NetOptions::default(), 0).num_params()
}

#[test]
fn parameter_counts_match_he_2015() {
    // He et al. 2015 Table 6: 0.27 M, 0.85 M, 1.7 M (projection shortcuts add ~3 k).
    let close = |n: usize, m: f64| ((n as f64 / 1e6) - m).abs() / m < 0.03;
    assert!(close(params("v1-20"), 0.27), "v1-20: {}", params("v1-20"));
    assert!(close(params("v1-56"), 0.85), "v1-56: {}", params("v1-56"));
    assert!(close(params("v1-110"), 1.7), "v1-110: {}", params("v1-110"));
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
    assert!(v2.store.names().iter().any(|x| x == "head.bn.weight"));
    assert!(!v2.store.names().iter().any(|x| x.starts_with("stem.bn")));
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
