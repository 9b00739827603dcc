//! `ModelSpec`: which network to build, parsed from `VARIANT-DEPTH` (depth 6n+2) or a seed preset.

use std::fmt;
use std::str::FromStr;

/// Block designs of He et al. 2015/2016 (ARCHITECTURE.md lists what each changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Plain,
    V1,
    V2,
    Scaled,
    Gated,
    SGated,
    ConvSc,
    DropSc,
    BnAfter,
    ReluBefore,
    ReluOnly,
}

impl Variant {
    /// Every variant, in ARCHITECTURE.md's table order (the order the dashboard's `v` cycles).
    pub const ALL: [Variant; 11] = [
        Variant::Plain,
        Variant::V1,
        Variant::V2,
        Variant::Scaled,
        Variant::Gated,
        Variant::SGated,
        Variant::ConvSc,
        Variant::DropSc,
        Variant::BnAfter,
        Variant::ReluBefore,
        Variant::ReluOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::V1 => "v1",
            Variant::V2 => "v2",
            Variant::Scaled => "scaled",
            Variant::Gated => "gated",
            Variant::SGated => "sgated",
            Variant::ConvSc => "convsc",
            Variant::DropSc => "dropsc",
            Variant::BnAfter => "bnafter",
            Variant::ReluBefore => "relubefore",
            Variant::ReluOnly => "reluonly",
        }
    }

    /// Pre-activation designs: the stem is a bare conv and the head adds BN + ReLU.
    pub fn pre_activation(self) -> bool {
        matches!(self, Variant::V2 | Variant::ReluOnly)
    }
}

/// The seed article's toy Keras networks, reproduced exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeedPreset {
    V1,
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// A CIFAR-style ResNet: 3 stages of `(depth − 2) / 6` blocks.
    Resnet {
        variant: Variant,
        depth: usize,
    },
    Seed(SeedPreset),
}

/// The shallowest CIFAR-style ResNet: one block per stage.
pub const MIN_DEPTH: usize = 8;
/// The deepest one `VARIANT-DEPTH` accepts (He et al.'s deepest CIFAR net).
pub const MAX_DEPTH: usize = 1202;
/// Depths are `6n + 2`: one more block per stage adds two convs in each of three stages.
pub const DEPTH_STEP: usize = 6;

/// Blocks per stage of a `6n + 2` ResNet: `n`.
pub fn blocks_per_stage(depth: usize) -> usize {
    depth.saturating_sub(2) / DEPTH_STEP
}

/// The name of block `block` of stage `stage`: its boundary's name and its parameters' prefix.
pub fn block_name(stage: usize, block: usize) -> String {
    format!("stages.{stage}.{block}")
}

/// Block-boundary names, input to output: `stem`, then `stages.S.B` for stages of the given
/// numbers of blocks.
pub fn boundary_names(stage_blocks: &[usize]) -> Vec<String> {
    let stages = stage_blocks
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (0..n).map(move |b| block_name(s, b)));
    std::iter::once("stem".to_string()).chain(stages).collect()
}

/// [`boundary_names`] of a `6n + 2` ResNet: three stages of [`blocks_per_stage`] blocks.
pub fn block_names(depth: usize) -> Vec<String> {
    boundary_names(&[blocks_per_stage(depth); 3])
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown model '{0}': expected VARIANT-DEPTH (variants: {variants}) or seed-v1, seed-v2", variants = variant_list())]
    Unknown(String),
    #[error(
        "model '{spec}': depth {depth} is not 6n+2 with n ≥ 1 (e.g. 8, 14, 20, 32, 44, 56, 110)"
    )]
    BadDepth { spec: String, depth: usize },
    #[error("model '{spec}': depth {depth} is too deep (at most {MAX_DEPTH})")]
    TooDeep { spec: String, depth: usize },
}

fn variant_list() -> String {
    Variant::ALL.map(Variant::name).join(", ")
}

impl ModelSpec {
    /// Blocks per stage, for ResNets.
    pub fn blocks_per_stage(&self) -> Option<usize> {
        match self {
            ModelSpec::Resnet { depth, .. } => Some(blocks_per_stage(*depth)),
            ModelSpec::Seed(_) => None,
        }
    }

    /// Parse a comma-separated list such as `plain-56,v1-56,v2-56`.
    pub fn parse_list(s: &str) -> Result<Vec<ModelSpec>, SpecError> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromStr for ModelSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "seed-v1" => return Ok(ModelSpec::Seed(SeedPreset::V1)),
            "seed-v2" => return Ok(ModelSpec::Seed(SeedPreset::V2)),
            _ => {}
        }
        let unknown = || SpecError::Unknown(s.to_string());
        let (v, d) = s.rsplit_once('-').ok_or_else(unknown)?;
        let variant = Variant::ALL
            .into_iter()
            .find(|x| x.name() == v)
            .ok_or_else(unknown)?;
        let depth: usize = d.parse().map_err(|_| unknown())?;
        if depth < MIN_DEPTH || !(depth - 2).is_multiple_of(DEPTH_STEP) {
            return Err(SpecError::BadDepth {
                spec: s.to_string(),
                depth,
            });
        }
        if depth > MAX_DEPTH {
            return Err(SpecError::TooDeep {
                spec: s.to_string(),
                depth,
            });
        }
        Ok(ModelSpec::Resnet { variant, depth })
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Resnet { variant, depth } => write!(f, "{}-{depth}", variant.name()),
            ModelSpec::Seed(SeedPreset::V1) => f.write_str("seed-v1"),
            ModelSpec::Seed(SeedPreset::V2) => f.write_str("seed-v2"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_variant() {
        for v in Variant::ALL {
            let s = format!("{}-20", v.name());
            let spec: ModelSpec = s.parse().unwrap();
            assert_eq!(
                spec,
                ModelSpec::Resnet {
                    variant: v,
                    depth: 20
                }
            );
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "seed-v2".parse::<ModelSpec>().unwrap().to_string(),
            "seed-v2"
        );
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            "v3-20".parse::<ModelSpec>(),
            Err(SpecError::Unknown(_))
        ));
        assert!(matches!(
            "v1-21".parse::<ModelSpec>(),
            Err(SpecError::BadDepth { .. })
        ));
        assert!(matches!(
            "v1-2".parse::<ModelSpec>(),
            Err(SpecError::BadDepth { .. })
        ));
        assert!(matches!(
            "v1".parse::<ModelSpec>(),
            Err(SpecError::Unknown(_))
        ));
        assert!(matches!(
            "v1-x".parse::<ModelSpec>(),
            Err(SpecError::Unknown(_))
        ));
        assert_eq!(ModelSpec::parse_list("plain-56, v1-56").unwrap().len(), 2);
        assert!(format!("v1-{MIN_DEPTH}").parse::<ModelSpec>().is_ok());
        assert!(format!("v1-{MAX_DEPTH}").parse::<ModelSpec>().is_ok());
        assert!(matches!(
            format!("v1-{}", MAX_DEPTH + DEPTH_STEP).parse::<ModelSpec>(),
            Err(SpecError::TooDeep { .. })
        ));
        assert!(matches!(
            format!("v1-{}", MIN_DEPTH - DEPTH_STEP).parse::<ModelSpec>(),
            Err(SpecError::BadDepth { .. })
        ));
    }

    #[test]
    fn block_names_follow_the_stages() {
        assert_eq!(
            block_names(8),
            ["stem", "stages.0.0", "stages.1.0", "stages.2.0"]
        );
        let b = block_names(56);
        assert_eq!(
            (b.len(), b[1].as_str(), b[10].as_str(), b[27].as_str()),
            (28, "stages.0.0", "stages.1.0", "stages.2.8")
        );
        assert_eq!(
            boundary_names(&[1, 1]),
            ["stem", "stages.0.0", "stages.1.0"]
        );
    }
}
