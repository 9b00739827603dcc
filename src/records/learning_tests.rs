use super::*;
use crate::records::record::{RunInfo, StepRecord};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn conv_weights_are_the_branch_convs_of_each_block() {
    let blocks = names(&["stem", "stages.0.0", "stages.1.0"]);
    let params = names(&[
        "stem.conv.weight",
        "stem.bn.weight",
        "stages.0.0.conv1.weight",
        "stages.0.0.bn1.weight",
        "stages.0.0.conv2.weight",
        "stages.1.0.conv1.weight",
        "stages.1.0.shortcut.conv.weight",
        "stages.1.0.conv2.bias",
        "stages.1.0.conv2.weight",
        "fc.weight",
    ]);
    assert_eq!(
        conv_weights(&blocks, &params),
        vec![vec![0], vec![2, 4], vec![5, 8]]
    );
    // `stages.0.1` is not a prefix match for `stages.0.10`.
    let blocks = names(&["stages.0.1"]);
    let params = names(&["stages.0.10.conv1.weight", "stages.0.1.conv1.weight"]);
    assert_eq!(conv_weights(&blocks, &params), vec![vec![1]]);
}

#[test]
fn a_groups_ratio_is_the_ratio_of_the_concatenated_tensors() {
    // Two tensors: w = (3, 4) with Δw = (0.3, 0), and w = (0, 12) with Δw = (0, 1.2).
    let norms = [5.0f32, 12.0];
    let ratios = [0.3f32 / 5.0, 1.2 / 12.0];
    let want_norm = (9.0f64 + 16.0 + 144.0).sqrt();
    let want_ratio = (0.09f64 + 1.44).sqrt() / want_norm;
    let g = [0, 1];
    assert!((group_norm(&g, &norms).unwrap() - want_norm).abs() < 1e-9);
    assert!((group_ratio(&g, &ratios, &norms).unwrap() - want_ratio).abs() < 1e-7);
    assert_eq!(group_ratio(&[], &ratios, &norms), None);
    assert_eq!(group_ratio(&[2], &ratios, &norms), None, "missing entries");
}

#[test]
fn thirds_split_the_blocks_and_leave_out_the_stem() {
    assert_eq!(
        (0..9).map(|j| third(j, 9)).collect::<Vec<_>>(),
        [0, 0, 0, 1, 1, 1, 2, 2, 2]
    );
    assert_eq!(
        (0..4).map(|j| third(j, 4)).collect::<Vec<_>>(),
        [0, 0, 1, 2]
    );
    // stem (ignored), then 6 blocks.
    let v = [
        Some(1e9),
        Some(1.0),
        Some(3.0),
        Some(5.0),
        Some(7.0),
        Some(9.0),
        Some(11.0),
    ];
    assert_eq!(by_third(&v), Some([2.0, 6.0, 10.0]));
    assert_eq!(by_third(&v[..3]), None, "two blocks");
    let missing = [None, Some(1.0), None, Some(2.0), Some(3.0)];
    assert_eq!(by_third(&missing[..4]), None, "a third without a value");
}

/// A run of `blocks` blocks over `steps` steps whose block `j` (0 = stem) has update ratio
/// `ratio(j)` and weight norm `norm(j)` (initially 1 for every block).
fn history(
    blocks: usize,
    steps: u64,
    ratio: impl Fn(usize) -> f32,
    norm: impl Fn(usize) -> f32,
) -> RunHistory {
    let block_names: Vec<String> = std::iter::once("stem".to_string())
        .chain((0..blocks).map(|j| format!("stages.0.{j}")))
        .collect();
    let param_names: Vec<String> = block_names
        .iter()
        .map(|b| {
            if b == "stem" {
                "stem.conv.weight".to_string()
            } else {
                format!("{b}.conv1.weight")
            }
        })
        .collect();
    let n = param_names.len();
    let mut h = RunHistory::new(RunInfo {
        spec: "test".into(),
        init_weight_norms: vec![1.0; n],
        block_names,
        param_names,
        ..Default::default()
    });
    for step in 1..=steps {
        h.push(StepRecord {
            step,
            blocks: (0..=blocks)
                .map(|j| BlockStat {
                    update_ratio: ratio(j),
                    weight_norm: norm(j),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    h
}

#[test]
fn the_why_line_names_frozen_input_blocks_and_their_growth() {
    // Input blocks (1–3) learn 0.001, output blocks (7–9) 0.01; input weights ×50.
    let mut h = history(
        9,
        40,
        |j| if j <= 3 { 1e-3 } else { 1e-2 },
        |j| if j <= 3 { 50.0 } else { 1.1 },
    );
    // A spec that does not parse (a stream's model name): growth, but no claim about batch norm.
    let line = why(&h).unwrap();
    assert_eq!(
        line,
        "input weights grew ×50.0; they learn ×0.100 as fast as the output blocks (frozen)"
    );
    // A plain net: every conv feeds a batch norm, so the growth's square is the slow-down.
    h.info.spec = "plain-20".into();
    let line = why(&h).unwrap();
    assert!(
        line.starts_with("input weights grew ×50.0 (BN: effective lr ÷2500);"),
        "{line}"
    );
    // v2's conv2 feeds the addition, not a batch norm: no such claim.
    h.info.spec = "v2-20".into();
    assert!(!why(&h).unwrap().contains("BN"));
    assert_eq!(
        update_ratio_by_third(&h),
        Some([1e-3f32 as f64, 1e-2f32 as f64, 1e-2f32 as f64])
    );
    assert_eq!(
        weight_growth_by_third(&h),
        Some([50.0, 1.1f32 as f64, 1.1f32 as f64])
    );
}

#[test]
fn the_why_line_says_even_only_when_it_is() {
    let even = why(&history(9, 20, |_| 4e-3, |_| 1.2)).unwrap();
    assert_eq!(
        even,
        "update ratio even across depth (in÷out ×1.00); input weights near their initial norm \
         (×1.20)"
    );
    // Between frozen and even: the pace only, no verdict.
    let between = why_text(0.25, Some(2.0), true);
    assert_eq!(
        between,
        "input blocks learn ×0.250 as fast as the output blocks"
    );
    // Input faster than output.
    let faster = why_text(8.0, Some(20.0), true);
    assert!(
        faster.contains("still learn ×8.00 as fast") && faster.contains("grew ×20.0"),
        "{faster}"
    );
    // Frozen without growth: no claim about the weights.
    let frozen = why_text(0.05, Some(1.5), true);
    assert_eq!(
        frozen,
        "input blocks learn ×0.0500 as fast as the output blocks (frozen)"
    );
    // Grown but not (yet) slowed: plain-56 in its first ~40 steps. The growth and its cost
    // lead; "even" is never said of grown weights.
    let grown = why_text(2.18, Some(13.0), true);
    assert_eq!(
        grown,
        "input weights grew ×13.0 (BN: effective lr ÷169); they still learn ×2.18 as fast as \
         the output blocks"
    );
    // Grown and between frozen and even: "now", without a verdict.
    let slowing = why_text(0.25, Some(9.0), false);
    assert_eq!(
        slowing,
        "input weights grew ×9.00; they now learn ×0.250 as fast as the output blocks"
    );
}

#[test]
fn no_why_line_without_update_ratios() {
    assert_eq!(why(&history(9, 5, |_| 0.0, |_| 1.0)), None);
    assert_eq!(
        why(&history(2, 5, |_| 1e-3, |_| 1.0)),
        None,
        "too few blocks"
    );
    // Without initial norms (an older record) the line leaves the growth out.
    let mut h = history(9, 5, |j| if j <= 3 { 1e-4 } else { 1e-2 }, |_| 5.0);
    h.info.init_weight_norms.clear();
    let line = why(&h).unwrap();
    assert!(
        line.ends_with("(frozen)") && !line.contains("weights"),
        "{line}"
    );
}

#[test]
fn recent_ratios_average_the_last_records_only() {
    // Ratios 1..=30 at block 1: the last ten average 25.5.
    let mut h = history(3, 30, |_| 0.0, |_| 1.0);
    for (k, s) in h.steps.iter_mut().enumerate() {
        s.blocks[1].update_ratio = (k + 1) as f32;
    }
    let r = recent_update_ratios(&h.steps);
    assert_eq!(r[1], Some(25.5));
    assert_eq!(r[0], None);
}
