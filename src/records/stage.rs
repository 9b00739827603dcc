//! He 2016 eq. 5 across a stage. Between two boundaries x_l and x_L joined only by identity
//! shortcuts and additions (x_L = x_l + Σ_{i=l}^{L−1} F(x_i), eq. 4), the gradient is
//! ∂E/∂x_l = ∂E/∂x_L · (1 + ∂/∂x_l Σ F(x_i)) (eq. 5): its first term, ∂E/∂x_L, arrives at x_l
//! unchanged. The figure here is that direct term's size against the whole gradient at x_l,
//! ‖∂E/∂x_L‖ / ‖∂E/∂x_l‖, from the measured boundary norms, over the longest identity stretch
//! of each stage: x_l is the stage's input where its first block has an identity shortcut
//! (stage 0: the stem's output) and otherwise the first block's output (after the
//! downsampling projection), x_L the stage's last block's output. It is not a share in [0, 1]:
//! where the branch terms cancel part of the direct one it exceeds 1.
//!
//! Eq. 5 holds exactly only where nothing follows the addition (`v2`, `relubefore`,
//! `reluonly`). In `v1` and `v1a` a ReLU follows every addition, in `bnafter` a BN and a ReLU,
//! so ∂E/∂x_L reaches x_l only through those ops' Jacobians: the same ratio is measured and
//! reported with `exact: false`. Designs whose shortcut is not the identity inside a stage
//! (plain, scaled, gated, 1×1-conv and dropout shortcuts) have no direct term.

use super::record::BlockStat;
use crate::model::spec::blocks_per_stage;
use crate::model::{ModelSpec, Variant};
use serde::{Deserialize, Serialize};

/// One stage's direct-term ratio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageDirect {
    pub stage: usize,
    /// Boundary names of x_l and x_L.
    pub from: String,
    pub to: String,
    /// Residual units between them (L − l).
    pub units: usize,
    /// ‖∂E/∂x_L‖ / ‖∂E/∂x_l‖.
    pub ratio: f64,
    /// Whether eq. 5 holds exactly for this design (nothing after the addition).
    pub exact: bool,
}

/// Whether blocks inside a stage (not changing shape) have the identity as shortcut.
pub fn identity_inside_stage(v: Variant) -> bool {
    matches!(
        v,
        Variant::V1
            | Variant::V1A
            | Variant::V2
            | Variant::BnAfter
            | Variant::ReluBefore
            | Variant::ReluOnly
    )
}

/// Whether eq. 5 holds exactly: an identity shortcut and nothing after the addition.
pub fn eq5_exact(v: Variant) -> bool {
    matches!(v, Variant::V2 | Variant::ReluBefore | Variant::ReluOnly)
}

/// Per stage with at least one identity unit: the direct term's ratio. `names` and `grad_norms`
/// are the boundaries (the stem, then every block in order), `per_stage` blocks in each of
/// three stages. Stage 0's first block keeps the shape (identity shortcut); the other stages'
/// first blocks downsample, so their stretch starts after them.
pub fn stage_direct(
    variant: Variant,
    per_stage: usize,
    names: &[String],
    grad_norms: &[f64],
) -> Vec<StageDirect> {
    if !identity_inside_stage(variant) || names.len() != 1 + 3 * per_stage {
        return Vec::new();
    }
    (0..3)
        .filter_map(|stage| {
            // Boundary index of block b of this stage is 1 + stage·n + b; the stem is 0.
            let first_block = 1 + stage * per_stage;
            let l = if stage == 0 { 0 } else { first_block };
            let big_l = first_block + per_stage - 1;
            (big_l > l).then(|| StageDirect {
                stage,
                from: names[l].clone(),
                to: names[big_l].clone(),
                units: big_l - l,
                ratio: grad_norms[big_l] / grad_norms[l],
                exact: eq5_exact(variant),
            })
        })
        .collect()
}

/// [`stage_direct`] of a recorded step: `spec` names the design (a spec that does not parse, a
/// stream's model, has none), `blocks` the boundaries' gradient norms in `names`' order.
pub fn stage_direct_of(spec: &str, names: &[String], blocks: &[BlockStat]) -> Vec<StageDirect> {
    match spec.parse::<ModelSpec>() {
        Ok(ModelSpec::Resnet { variant, depth, .. }) if blocks.len() == names.len() => {
            let norms: Vec<f64> = blocks.iter().map(|b| b.grad_norm as f64).collect();
            stage_direct(variant, blocks_per_stage(depth), names, &norms)
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::block_names;

    #[test]
    fn the_ratio_spans_each_stages_identity_stretch() {
        let names = block_names(20); // stem + 3 × 3 blocks
        let g: Vec<f64> = (0..names.len()).map(|i| 10.0 - i as f64).collect();
        let s = stage_direct(Variant::V2, 3, &names, &g);
        assert_eq!(s.len(), 3);
        // Naively: stage 0 from the stem (10) to stages.0.2 (7), stage 1 from stages.1.0 (6)
        // to stages.1.2 (4), stage 2 from stages.2.0 (3) to stages.2.2 (1).
        let want = [
            ("stem", "stages.0.2", 3, 7.0 / 10.0),
            ("stages.1.0", "stages.1.2", 2, 4.0 / 6.0),
            ("stages.2.0", "stages.2.2", 2, 1.0 / 3.0),
        ];
        for (got, (from, to, units, ratio)) in s.iter().zip(want) {
            assert_eq!(
                (got.from.as_str(), got.to.as_str(), got.units),
                (from, to, units)
            );
            assert!((got.ratio - ratio).abs() < 1e-15, "{got:?}");
            assert!(got.exact);
        }
    }

    #[test]
    fn a_recorded_step_gives_the_same_ratios() {
        let names = block_names(20);
        let blocks: Vec<BlockStat> = (0..names.len())
            .map(|i| BlockStat {
                grad_norm: 10.0 - i as f32,
                ..Default::default()
            })
            .collect();
        let s = stage_direct_of("v2-20", &names, &blocks);
        assert_eq!(s.len(), 3);
        assert!((s[0].ratio - 0.7).abs() < 1e-6 && s[0].exact, "{s:?}");
        assert!(stage_direct_of("resnet18", &names, &blocks).is_empty());
        assert!(stage_direct_of("plain-20", &names, &blocks).is_empty());
        assert!(
            stage_direct_of("v2-56", &names, &blocks).is_empty(),
            "names of another depth"
        );
    }

    #[test]
    fn v1_is_measured_but_not_exact_and_plain_has_none() {
        let names = block_names(8);
        let g = vec![4.0, 2.0, 1.0, 0.5];
        let v1 = stage_direct(Variant::V1, 1, &names, &g);
        // One block per stage: only stage 0 has an identity unit (stem → stages.0.0).
        assert_eq!(v1.len(), 1);
        assert_eq!((v1[0].units, v1[0].ratio, v1[0].exact), (1, 0.5, false));
        assert!(stage_direct(Variant::Plain, 1, &names, &g).is_empty());
        assert!(stage_direct(Variant::Gated, 1, &names, &g).is_empty());
        assert!(
            stage_direct(Variant::V2, 2, &names, &g).is_empty(),
            "wrong block count"
        );
    }
}
