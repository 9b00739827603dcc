//! Model spec strings as the dashboard edits them: `VARIANT-DEPTH` with `v` cycling the variant
//! and `+`/`-` stepping the depth through the 6n+2 family. Presets (`seed-v1`) are left alone:
//! their architecture is fixed by the seed article, so there is nothing to step.

use crate::model::Variant;
use crate::model::spec::{DEPTH_STEP, MAX_DEPTH, MIN_DEPTH};

/// A `VARIANT-DEPTH` spec split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Index into [`Variant::ALL`], the order `v` cycles through.
    variant: usize,
    pub depth: usize,
}

impl Spec {
    /// `None` for presets and anything not of the form `VARIANT-DEPTH`.
    pub fn parse(s: &str) -> Option<Spec> {
        let (name, depth) = s.rsplit_once('-')?;
        let variant = Variant::ALL.iter().position(|v| v.name() == name)?;
        let depth = depth.parse().ok()?;
        Some(Spec { variant, depth })
    }

    pub fn variant(&self) -> &'static str {
        Variant::ALL[self.variant].name()
    }

    pub fn next_variant(self) -> Spec {
        Spec {
            variant: (self.variant + 1) % Variant::ALL.len(),
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
        assert_eq!(s(&format!("v1-{MAX_DEPTH}")).deeper(), None);
        assert_eq!(s("v1-8").shallower(), None);
        assert_eq!(s("v1-104").deeper().unwrap().depth, 110);
        let below_max = format!("v1-{}", MAX_DEPTH - DEPTH_STEP);
        assert_eq!(s(&below_max).deeper().unwrap().depth, MAX_DEPTH);
        // Off-family depths snap to the neighbouring 6n+2.
        assert_eq!(s("v1-21").deeper().unwrap().depth, 26);
        assert_eq!(s("v1-21").shallower().unwrap().depth, 20);
        assert_eq!(s("v1-3").deeper().unwrap().depth, 8);
    }
}
