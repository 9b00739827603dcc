//! The lesion study (Veit et al. 2016, §4) against independent forward passes of edited nets,
//! and its qualitative result on briefly trained plain-20 and v1-20.

use resviz::config::ExperimentConfig;
use resviz::data::{self, Dataset};
use resviz::experiments::each;
use resviz::experiments::lesion;
use resviz::model::{ModelSpec, NetOptions, Network};
use resviz::records::LesionParams;
use resviz::train::Trainer;
use std::sync::Arc;

fn mnist() -> Dataset {
    data::load("mnist", 0).expect("bundled mnist")
}

fn small_net(model: &str, ds: &Dataset) -> Network<f32> {
    let spec: ModelSpec = model.parse().unwrap();
    let opts = NetOptions {
        in_channels: ds.channels,
        height: ds.height,
        width: ds.width,
        classes: ds.classes,
        base_width: 4,
    };
    let mut net = Network::new(spec, opts, 7);
    // Running statistics away from (0, 1), so that eval-mode batch norm does something.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 // [0, 1)
    };
    for b in &mut net.store.buffers {
        b.running_mean.iter_mut().for_each(|m| *m = next() - 0.5);
        b.running_var.iter_mut().for_each(|v| *v = 0.5 + next());
    }
    net
}

fn set(net: &mut Network<f32>, name: &str, f: impl Fn(usize) -> f32) {
    let p = net.store.params.iter_mut().find(|p| p.name == name);
    let p = p.unwrap_or_else(|| panic!("no parameter {name}"));
    p.data_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = f(i));
}

/// The net with block `name`'s residual branch contributing exactly zero: for v1 its last
/// batch norm's scale and shift, for v2 its last conv. What is left is s(x), and for v1
/// ReLU(s(x)) = s(x) on an identity shortcut, whose input is already a ReLU output.
fn branch_zeroed(net: &Network<f32>, name: &str, v2: bool) -> Network<f32> {
    let mut e = net.clone();
    if v2 {
        set(&mut e, &format!("{name}.conv2.weight"), |_| 0.0);
    } else {
        set(&mut e, &format!("{name}.bn2.weight"), |_| 0.0);
        set(&mut e, &format!("{name}.bn2.bias"), |_| 0.0);
    }
    e
}

/// The plain net with block `name` turned into the identity on its (non-negative) input: conv1
/// passes channel c to channel c, both batch norms undo their running statistics, conv2 is the
/// identity too, and the final ReLU leaves a non-negative x alone.
fn plain_identity(net: &Network<f32>, name: &str, c: usize) -> Network<f32> {
    let mut e = net.clone();
    for conv in ["conv1", "conv2"] {
        // [c, c, 3, 3]: 1 at the centre tap of the diagonal.
        set(&mut e, &format!("{name}.{conv}.weight"), |i| {
            let (o, rest) = (i / (c * 9), i % (c * 9));
            f32::from(rest / 9 == o && rest % 9 == 4)
        });
    }
    for bn in ["bn1", "bn2"] {
        let prefix = format!("{name}.{bn}");
        let buf = e.store.buffers.iter().find(|b| b.prefix == prefix).unwrap();
        let (mean, var) = (buf.running_mean.clone(), buf.running_var.clone());
        let sd: Vec<f32> = var.iter().map(|v| (v + 1e-5).sqrt()).collect();
        set(&mut e, &format!("{prefix}.weight"), |i| sd[i]);
        set(&mut e, &format!("{prefix}.bias"), |i| mean[i]);
    }
    e
}

fn batch(ds: &Dataset, n: usize) -> (Vec<f32>, Vec<usize>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    ds.gather_range(&ds.test, 0..n, &mut x, &mut y);
    (x, y)
}

#[test]
fn residual_lesions_equal_the_forward_pass_of_the_net_without_the_branch() {
    let ds = mnist();
    let (x, y) = batch(&ds, 96);
    for (model, v2) in [("v1-14", false), ("v2-14", true)] {
        let net = small_net(model, &ds);
        let intact = net.eval_pass(x.clone(), &y);
        let names = net.block_names()[1..].to_vec();
        for (i, name) in names.iter().enumerate() {
            let lesioned = net.eval_pass_without(x.clone(), &y, i);
            let lesioned = lesioned.unwrap_or_else(|| panic!("{model} {name} not deletable"));
            assert_ne!(lesioned, intact, "{model} {name}: deleting changed nothing");
            // v1's projection blocks end in ReLU(f + s): zeroing f leaves ReLU(s), not s.
            if !v2 && name.ends_with(".0") && name != "stages.0.0" {
                continue;
            }
            let edited = branch_zeroed(&net, name, v2).eval_pass(x.clone(), &y);
            // Bit for bit: the same ops on the same numbers.
            assert_eq!(lesioned, edited, "{model} {name}");
        }
        assert_eq!(
            net.eval_pass(x.clone(), &y),
            intact,
            "lesions left the net as it was"
        );
    }
}

#[test]
fn plain_lesions_equal_the_net_with_an_identity_block_and_refuse_shape_changes() {
    let ds = mnist();
    let (x, y) = batch(&ds, 96);
    let net = small_net("plain-14", &ds);
    let widths = [4, 8, 16];
    let names = net.block_names()[1..].to_vec();
    for (i, name) in names.iter().enumerate() {
        let lesioned = net.eval_pass_without(x.clone(), &y, i);
        let stage: usize = name[7..8].parse().unwrap();
        if stage > 0 && name.ends_with(".0") {
            assert_eq!(lesioned, None, "{name} changes shape");
            continue;
        }
        let (loss, correct) = lesioned.unwrap_or_else(|| panic!("{name} not deletable"));
        let (l, c) = plain_identity(&net, name, widths[stage]).eval_pass(x.clone(), &y);
        // The identity block rounds (x − μ)/σ·σ + μ, so the loss agrees to rounding only.
        assert_eq!(correct, c, "{name}: accuracy");
        assert!((loss - l).abs() <= 1e-5 * l.abs(), "{name}: {loss} vs {l}");
    }
}

#[test]
fn plain_20_loses_more_than_v1_20_when_a_block_is_deleted() {
    let ds = Arc::new(mnist());
    let cfg = ExperimentConfig {
        models: vec!["plain-20".into(), "v1-20".into()],
        dataset: "mnist".into(),
        batch: 32,
        lr: 0.05,
        width: 8,
        eval_every: 0,
        ..ExperimentConfig::default()
    };
    let mut trainer = Trainer::new(cfg.clone(), ds).unwrap();
    for _ in 0..200 {
        trainer.step_each(|_, _, _| {});
    }
    let params = LesionParams {
        experiment: cfg,
        steps: trainer.runs.iter().map(|r| r.step).collect(),
        from: None,
        test_images: 600,
        eval_batch: 100,
    };
    let bn = resviz::records::default_bn(32);
    let x = lesion::Lesion::new(&trainer.ds, params.test_images, params.eval_batch, &bn).unwrap();
    let names: Vec<String> = trainer.runs.iter().map(|r| r.spec.to_string()).collect();
    let nets: Vec<(&str, &Network<f32>)> = names
        .iter()
        .zip(&trainer.runs)
        .map(|(s, r)| (s.as_str(), &r.net))
        .collect();
    let never = std::sync::atomic::AtomicBool::new(false);
    let models = each(&x, &nets, &mut |_, _, _| {}, &never).unwrap();
    let report = resviz::records::LesionReport { models, params };
    let (plain, v1) = (&report.models[0], &report.models[1]);
    let figures = format!("{report:#?}");
    for m in [plain, v1] {
        assert!(m.accuracy > 0.6, "{} did not learn: {figures}", m.model);
        assert_eq!(m.blocks.len(), 9);
    }
    assert_eq!(plain.drops().len(), 7, "two plain blocks change shape");
    assert_eq!(v1.drops().len(), 9);
    let (p, v) = (plain.median_drop().unwrap(), v1.median_drop().unwrap());
    assert!(p > v, "median drop plain {p} ≤ v1 {v}: {figures}");
}

/// The study re-estimates batch norm on a copy before measuring: its intact accuracy is exactly
/// that of a copy re-estimated by hand with the same batches, and the run's own net is unchanged.
#[test]
fn lesion_measures_after_precise_bn_on_a_copy() {
    let ds = mnist();
    let net = small_net("v1-8", &ds);
    let before: Vec<Vec<f32>> = net
        .store
        .buffers
        .iter()
        .map(|b| b.running_var.clone())
        .collect();
    let bn = resviz::records::default_bn(16);
    let batches = bn.gather(&ds);
    let ranges = lesion::ranges(&ds, 200, 50);
    let never = std::sync::atomic::AtomicBool::new(false);
    let m = lesion::lesion_net(
        &net,
        "v1-8",
        &ds,
        (&ranges, &batches),
        &mut |_, _| {},
        &never,
    )
    .unwrap();
    let mut by_hand = net.clone();
    let mut quiet = |_, _| {};
    let mut passes = resviz::experiments::Passes::new(batches.len(), &mut quiet, &never);
    resviz::experiments::precise_bn(&mut by_hand, &batches, &mut passes).unwrap();
    let expected = lesion::accuracy(&by_hand, &ds, &ranges, None).unwrap();
    assert_eq!(m.accuracy, expected);
    let own = lesion::accuracy(&net, &ds, &ranges, None).unwrap();
    let after: Vec<Vec<f32>> = net
        .store
        .buffers
        .iter()
        .map(|b| b.running_var.clone())
        .collect();
    assert_eq!(before, after, "the run's net is not touched");
    let unchanged =
        lesion::lesion_net(&net, "v1-8", &ds, (&ranges, &[]), &mut |_, _| {}, &never).unwrap();
    assert_eq!(
        unchanged.accuracy, own,
        "no batches: the run's own statistics"
    );
}
