//! Model spec strings as the dashboard edits them: `VARIANT-DEPTH` with `v` cycling the variant
//! and `+`/`-` stepping the depth through the 6n+2 family. Presets (`seed-v1`) are left alone:
//! their architecture is fixed by the seed article, so there is nothing to step.

/// Every variant, in the order `v` cycles through them (DESIGN.md's table order).
pub const VARIANTS: [&str; 12] = [
    "plain",
    "v1",
    "v1a",
    "v2",
    "scaled",
    "gated",
    "sgated",
    "convsc",
    "dropsc",
    "bnafter",
    "relubefore",
    "reluonly",
];

pub const MIN_DEPTH: u32 = 8;
pub const MAX_DEPTH: u32 = 110;
/// One more block per stage adds two convs in each of three stages.
pub const DEPTH_STEP: u32 = 6;

/// A `VARIANT-DEPTH` spec split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    variant: usize,
    pub depth: u32,
}

impl Spec {
    /// `None` for presets and anything not of the form `VARIANT-DEPTH`.
    pub fn parse(s: &str) -> Option<Spec> {
        let (name, depth) = s.rsplit_once('-')?;
        let variant = VARIANTS.iter().position(|v| *v == name)?;
        let depth = depth.parse().ok()?;
        Some(Spec { variant, depth })
    }

    pub fn variant(&self) -> &'static str {
        VARIANTS[self.variant]
    }

    pub fn next_variant(self) -> Spec {
        Spec {
            variant: (self.variant + 1) % VARIANTS.len(),
            ..self
        }
    }

    /// One stage-block deeper, or `None` at the maximum. An off-family depth snaps onto 6n+2.
    pub fn deeper(self) -> Option<Spec> {
        let n = self.depth.saturating_sub(2) / DEPTH_STEP + 1;
        let depth = (n * DEPTH_STEP + 2).max(MIN_DEPTH);
        (depth <= MAX_DEPTH && depth != self.depth).then_some(Spec { depth, ..self })
    }

    /// One stage-block shallower, or `None` at the minimum.
    pub fn shallower(self) -> Option<Spec> {
        let n = self
            .depth
            .saturating_sub(2)
            .div_ceil(DEPTH_STEP)
            .saturating_sub(1);
        let depth = (n * DEPTH_STEP + 2).min(MAX_DEPTH);
        (depth >= MIN_DEPTH && depth != self.depth).then_some(Spec { depth, ..self })
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.variant(), self.depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Spec {
        Spec::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(s("relubefore-110").to_string(), "relubefore-110");
        assert_eq!(Spec::parse("seed-v1"), None);
        assert_eq!(Spec::parse("v1"), None);
        assert_eq!(Spec::parse("v3-20"), None);
    }

    #[test]
    fn variant_cycle_wraps() {
        assert_eq!(s("plain-56").next_variant().to_string(), "v1-56");
        assert_eq!(s("reluonly-20").next_variant().to_string(), "plain-20");
    }

    #[test]
    fn depth_steps_and_limits() {
        assert_eq!(s("v1-56").deeper().unwrap().to_string(), "v1-62");
        assert_eq!(s("v1-56").shallower().unwrap().to_string(), "v1-50");
        assert_eq!(s("v1-110").deeper(), None);
        assert_eq!(s("v1-8").shallower(), None);
        assert_eq!(s("v1-104").deeper().unwrap().depth, 110);
        // Off-family depths snap to the neighbouring 6n+2.
        assert_eq!(s("v1-21").deeper().unwrap().depth, 26);
        assert_eq!(s("v1-21").shallower().unwrap().depth, 20);
        assert_eq!(s("v1-3").deeper().unwrap().depth, 8);
    }
}
