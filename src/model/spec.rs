//! `ModelSpec`: which network to build, parsed from `VARIANT-DEPTH[:KEY=VALUE]...` (depth 6n+2)
//! or a seed preset. The optional keys set He et al. 2016 Table 1's knobs: `bg=B` the gate bias
//! of `gated`/`sgated` (an integer, default −6), `f=X` and `sc=X` the factors of `scaled` on the
//! residual branch and on the shortcut (0…1 in steps of 0.001, default 0.5 each); `bn=off` on
//! `plain`, `v1` and `v2` the net without batch normalisation (Balduzzi et al. 2017's comparison):
//! every batch norm becomes the identity at initialisation (`model::layers::Bn::identity`).

use std::fmt;
use std::str::FromStr;

mod edit;
pub use edit::EditError;

/// Block designs of He et al. 2015/2016 (the README's model table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Plain,
    V1,
    /// `v1` with option-A shortcuts (identity, zero-padded where the shape changes).
    V1A,
    V2,
    Scaled,
    Gated,
    SGated,
    /// He 2016 Fig. 2(e): a bare 1×1 conv on every shortcut.
    ConvSc,
    /// The earlier `convsc`: 1×1 conv followed by BN on every shortcut.
    ConvBnSc,
    /// He 2016 Fig. 2(f) as the paper reads it: shortcut × Bernoulli(0.5) mask, × 0.5 at evaluation.
    DropSc,
    /// Inverted dropout on the shortcut (kept values × 2, identity at evaluation): expectation 1.
    InvDropSc,
    BnAfter,
    ReluBefore,
    ReluOnly,
}

impl Variant {
    /// Every variant, in the README's Models table order (the order the dashboard's `v` cycles).
    pub const ALL: [Variant; 14] = [
        Variant::Plain,
        Variant::V1,
        Variant::V1A,
        Variant::V2,
        Variant::Scaled,
        Variant::Gated,
        Variant::SGated,
        Variant::ConvSc,
        Variant::ConvBnSc,
        Variant::DropSc,
        Variant::InvDropSc,
        Variant::BnAfter,
        Variant::ReluBefore,
        Variant::ReluOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::V1 => "v1",
            Variant::V1A => "v1a",
            Variant::V2 => "v2",
            Variant::Scaled => "scaled",
            Variant::Gated => "gated",
            Variant::SGated => "sgated",
            Variant::ConvSc => "convsc",
            Variant::ConvBnSc => "convbnsc",
            Variant::DropSc => "dropsc",
            Variant::InvDropSc => "invdropsc",
            Variant::BnAfter => "bnafter",
            Variant::ReluBefore => "relubefore",
            Variant::ReluOnly => "reluonly",
        }
    }

    /// Pre-activation designs: the stem carries the first unit's activation and the head adds
    /// BN + ReLU.
    pub fn pre_activation(self) -> bool {
        matches!(self, Variant::V2 | Variant::ReluOnly)
    }

    fn gated(self) -> bool {
        matches!(self, Variant::Gated | Variant::SGated)
    }

    /// The designs that take `:bn=off`.
    fn bn_optional(self) -> bool {
        matches!(self, Variant::Plain | Variant::V1 | Variant::V2)
    }
}

/// He 2016 Table 1's settable numbers. Kept as integers so a spec stays `Eq + Hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Knobs {
    /// Initial bias b_g of the gates' 1×1 convs (`gated`, `sgated`).
    pub gate_bias: i8,
    /// `scaled`: the residual branch's factor, in thousandths.
    pub f_milli: u16,
    /// `scaled`: the shortcut's factor, in thousandths.
    pub sc_milli: u16,
    /// `plain`, `v1`, `v2`: no batch normalisation (`:bn=off`).
    pub bn_off: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            gate_bias: -6,
            f_milli: 500,
            sc_milli: 500,
            bn_off: false,
        }
    }
}

impl Knobs {
    pub fn f_scale(&self) -> f64 {
        f64::from(self.f_milli) / 1000.0
    }
    pub fn sc_scale(&self) -> f64 {
        f64::from(self.sc_milli) / 1000.0
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
        knobs: Knobs,
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
    #[error("unknown model '{0}': expected VARIANT-DEPTH[:KEY=VALUE] (variants: {variants}) or seed-v1, seed-v2", variants = variant_list())]
    Unknown(String),
    #[error(
        "model '{spec}': depth {depth} is not 6n+2 with n ≥ 1 (e.g. 8, 14, 20, 32, 44, 56, 110)"
    )]
    BadDepth { spec: String, depth: usize },
    #[error("model '{spec}': depth {depth} is too deep (at most {MAX_DEPTH})")]
    TooDeep { spec: String, depth: usize },
    #[error(
        "model '{spec}': bad option '{opt}' (gated/sgated take bg=INTEGER in -20..=20; scaled takes f=X and sc=X with X in 0..=1; plain, v1 and v2 take bn=off)"
    )]
    BadOption { spec: String, opt: String },
}

fn variant_list() -> String {
    Variant::ALL.map(Variant::name).join(", ")
}

impl ModelSpec {
    /// A ResNet spec with the default knobs.
    pub fn resnet(variant: Variant, depth: usize) -> Self {
        ModelSpec::Resnet {
            variant,
            depth,
            knobs: Knobs::default(),
        }
    }

    /// Blocks per stage, for ResNets.
    pub fn blocks_per_stage(&self) -> Option<usize> {
        match self {
            ModelSpec::Resnet { depth, .. } => Some(blocks_per_stage(*depth)),
            ModelSpec::Seed(_) => None,
        }
    }

    /// Whether every convolution on a block's residual branch (every block conv of a plain net)
    /// feeds a batch norm directly. Batch norm then makes the branch independent of those weights'
    /// scale, so their gradient shrinks as 1/‖W‖ and a step's relative size as 1/‖W‖²: the
    /// effective learning rate falls with the square of their growth. Not so for pre-activation
    /// designs (`conv2` feeds the addition), `bnafter` (the addition sits between) or the seed
    /// presets (Keras layers in their own order).
    pub fn branch_convs_feed_batch_norm(&self) -> bool {
        match self {
            ModelSpec::Resnet { variant, .. } => {
                !matches!(variant, Variant::V2 | Variant::BnAfter | Variant::ReluOnly)
            }
            ModelSpec::Seed(_) => false,
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

/// A factor `0 ≤ x ≤ 1` with at most three decimals, in thousandths.
fn parse_milli(v: &str) -> Option<u16> {
    let x: f64 = v.parse().ok()?;
    let m = (x * 1000.0).round();
    ((0.0..=1000.0).contains(&m) && (x * 1000.0 - m).abs() < 1e-6).then_some(m as u16)
}

fn parse_knobs(spec: &str, variant: Variant, opts: &[&str]) -> Result<Knobs, SpecError> {
    let mut k = Knobs::default();
    for opt in opts {
        let bad = || SpecError::BadOption {
            spec: spec.to_string(),
            opt: opt.to_string(),
        };
        let (key, value) = opt.split_once('=').ok_or_else(bad)?;
        match key {
            "bg" if variant.gated() => {
                k.gate_bias = value
                    .parse()
                    .ok()
                    .filter(|b: &i8| (-20..=20).contains(b))
                    .ok_or_else(bad)?
            }
            "f" if variant == Variant::Scaled => k.f_milli = parse_milli(value).ok_or_else(bad)?,
            "sc" if variant == Variant::Scaled => {
                k.sc_milli = parse_milli(value).ok_or_else(bad)?
            }
            "bn" if variant.bn_optional() => {
                k.bn_off = match value {
                    "off" => true,
                    "on" => false,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(k)
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
        let mut parts = s.split(':');
        let head = parts.next().unwrap_or_default();
        let opts: Vec<&str> = parts.collect();
        let (v, d) = head.rsplit_once('-').ok_or_else(unknown)?;
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
        let knobs = parse_knobs(s, variant, &opts)?;
        Ok(ModelSpec::Resnet {
            variant,
            depth,
            knobs,
        })
    }
}

/// `:KEY=VALUE` for each knob that differs from its default, so specs round-trip and the
/// default spelling stays `VARIANT-DEPTH`.
fn write_knobs(f: &mut fmt::Formatter<'_>, k: &Knobs) -> fmt::Result {
    let d = Knobs::default();
    if k.gate_bias != d.gate_bias {
        write!(f, ":bg={}", k.gate_bias)?;
    }
    if k.f_milli != d.f_milli {
        write!(f, ":f={}", k.f_scale())?;
    }
    if k.sc_milli != d.sc_milli {
        write!(f, ":sc={}", k.sc_scale())?;
    }
    if k.bn_off {
        f.write_str(":bn=off")?;
    }
    Ok(())
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Resnet {
                variant,
                depth,
                knobs,
            } => {
                write!(f, "{}-{depth}", variant.name())?;
                write_knobs(f, knobs)
            }
            ModelSpec::Seed(SeedPreset::V1) => f.write_str("seed-v1"),
            ModelSpec::Seed(SeedPreset::V2) => f.write_str("seed-v2"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bn_off_parses_on_plain_v1_v2_only_and_round_trips() {
        for v in ["plain", "v1", "v2"] {
            let s = format!("{v}-20:bn=off");
            let spec: ModelSpec = s.parse().unwrap();
            let ModelSpec::Resnet { knobs, .. } = spec else {
                panic!("{s}")
            };
            assert!(knobs.bn_off);
            assert_eq!(spec.to_string(), s);
            let on: ModelSpec = format!("{v}-20:bn=on").parse().unwrap();
            assert_eq!(on.to_string(), format!("{v}-20"));
        }
        for bad in ["v1a-20:bn=off", "gated-20:bn=off", "plain-20:bn=no"] {
            assert!(
                matches!(bad.parse::<ModelSpec>(), Err(SpecError::BadOption { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_and_prints_every_variant() {
        for v in Variant::ALL {
            let s = format!("{}-20", v.name());
            let spec: ModelSpec = s.parse().unwrap();
            assert_eq!(spec, ModelSpec::resnet(v, 20));
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "seed-v2".parse::<ModelSpec>().unwrap().to_string(),
            "seed-v2"
        );
    }

    #[test]
    fn knobs_parse_and_round_trip() {
        let g: ModelSpec = "gated-56:bg=-2".parse().unwrap();
        let ModelSpec::Resnet { knobs, .. } = g else {
            panic!("not a resnet")
        };
        assert_eq!(knobs.gate_bias, -2);
        assert_eq!(g.to_string(), "gated-56:bg=-2");
        assert_eq!(
            "sgated-56:bg=-6".parse::<ModelSpec>().unwrap().to_string(),
            "sgated-56"
        );
        let s: ModelSpec = "scaled-110:f=1".parse().unwrap();
        let ModelSpec::Resnet { knobs, .. } = s else {
            panic!("not a resnet")
        };
        assert_eq!((knobs.f_scale(), knobs.sc_scale()), (1.0, 0.5));
        assert_eq!(s.to_string(), "scaled-110:f=1");
        let z: ModelSpec = "scaled-20:sc=0:f=1".parse().unwrap();
        assert_eq!(z.to_string().parse::<ModelSpec>().unwrap(), z);
        assert_eq!(
            ModelSpec::parse_list("gated-20:bg=0,scaled-20:f=1")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn rejects_bad_knobs() {
        for bad in [
            "v1-20:bg=-2",
            "gated-20:bg=x",
            "gated-20:bg=-30",
            "gated-20:f=1",
            "scaled-20:f=2",
            "scaled-20:f=0.0001",
            "scaled-20:f",
            "scaled-20:",
        ] {
            assert!(
                matches!(bad.parse::<ModelSpec>(), Err(SpecError::BadOption { .. })),
                "{bad}"
            );
        }
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
