//! Editing a spec the way the dashboard's `v`, `+` and `-` do: the next variant in
//! [`Variant::ALL`]'s order, one stage-block deeper or shallower within the 6n+2 family. Knobs
//! (`:bg=`, `:f=`, `:sc=`) are kept through every edit where the new variant has them, so
//! `+` on `gated-20:bg=-3` trains `gated-26:bg=-3`, not the default gate.

use super::{DEPTH_STEP, Knobs, MAX_DEPTH, MIN_DEPTH, ModelSpec, Variant};

/// Why an edit leaves the spec as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0} is a preset: its architecture is fixed")]
    Preset(ModelSpec),
    #[error("depth stays within {MIN_DEPTH}..{MAX_DEPTH}")]
    DepthLimit,
}

impl Knobs {
    /// These knobs as `variant` takes them: the ones it has kept, the others back to their
    /// defaults, so the spec prints and parses back the same (`gated` refuses `:f=`).
    pub fn for_variant(self, variant: Variant) -> Knobs {
        let d = Knobs::default();
        Knobs {
            gate_bias: if variant.gated() {
                self.gate_bias
            } else {
                d.gate_bias
            },
            f_milli: if variant == Variant::Scaled {
                self.f_milli
            } else {
                d.f_milli
            },
            sc_milli: if variant == Variant::Scaled {
                self.sc_milli
            } else {
                d.sc_milli
            },
            bn_off: self.bn_off && variant.bn_optional(),
        }
    }
}

impl ModelSpec {
    /// The next variant in [`Variant::ALL`]'s order (wrapping), same depth, knobs it shares kept.
    pub fn next_variant(self) -> Result<ModelSpec, EditError> {
        let ModelSpec::Resnet {
            variant,
            depth,
            knobs,
        } = self
        else {
            return Err(EditError::Preset(self));
        };
        let at = Variant::ALL.iter().position(|v| *v == variant).unwrap_or(0);
        let variant = Variant::ALL[(at + 1) % Variant::ALL.len()];
        Ok(ModelSpec::Resnet {
            variant,
            depth,
            knobs: knobs.for_variant(variant),
        })
    }

    /// One stage-block deeper. An off-family depth (only a hand-built spec has one) snaps onto
    /// 6n+2.
    pub fn deeper(self) -> Result<ModelSpec, EditError> {
        self.with_depth(|depth| {
            let n = depth.saturating_sub(2) / DEPTH_STEP + 1;
            (n * DEPTH_STEP + 2).max(MIN_DEPTH)
        })
    }

    /// One stage-block shallower.
    pub fn shallower(self) -> Result<ModelSpec, EditError> {
        self.with_depth(|depth| {
            let n = depth
                .saturating_sub(2)
                .div_ceil(DEPTH_STEP)
                .saturating_sub(1);
            (n * DEPTH_STEP + 2).min(MAX_DEPTH)
        })
    }

    fn with_depth(self, step: impl Fn(usize) -> usize) -> Result<ModelSpec, EditError> {
        let ModelSpec::Resnet {
            variant,
            depth,
            knobs,
        } = self
        else {
            return Err(EditError::Preset(self));
        };
        let new = step(depth);
        match (MIN_DEPTH..=MAX_DEPTH).contains(&new) && new != depth {
            true => Ok(ModelSpec::Resnet {
                variant,
                depth: new,
                knobs,
            }),
            false => Err(EditError::DepthLimit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> ModelSpec {
        text.parse().unwrap()
    }

    fn depth(spec: Result<ModelSpec, EditError>) -> usize {
        match spec {
            Ok(ModelSpec::Resnet { depth, .. }) => depth,
            other => panic!("not a resnet: {other:?}"),
        }
    }

    #[test]
    fn variant_cycle_wraps() {
        assert_eq!(s("plain-56").next_variant().unwrap().to_string(), "v1-56");
        assert_eq!(
            s("reluonly-20").next_variant().unwrap().to_string(),
            "plain-20"
        );
        // Every variant once, back to the start.
        let mut spec = s("v1a-32");
        for _ in 0..Variant::ALL.len() {
            spec = spec.next_variant().unwrap();
        }
        assert_eq!(spec, s("v1a-32"));
    }

    #[test]
    fn depth_steps_and_limits() {
        assert_eq!(s("v1-56").deeper().unwrap().to_string(), "v1-62");
        assert_eq!(s("v1-56").shallower().unwrap().to_string(), "v1-50");
        assert_eq!(
            s(&format!("v1-{MAX_DEPTH}")).deeper(),
            Err(EditError::DepthLimit)
        );
        assert_eq!(s("v1-8").shallower(), Err(EditError::DepthLimit));
        assert_eq!(depth(s("v1-104").deeper()), 110);
        let below_max = s(&format!("v1-{}", MAX_DEPTH - DEPTH_STEP));
        assert_eq!(depth(below_max.deeper()), MAX_DEPTH);
        // Off-family depths (not parseable, so built by hand) snap to the neighbouring 6n+2.
        let odd = |depth| ModelSpec::resnet(Variant::V1, depth);
        assert_eq!(depth(odd(21).deeper()), 26);
        assert_eq!(depth(odd(21).shallower()), 20);
        assert_eq!(depth(odd(3).deeper()), 8);
    }

    #[test]
    fn knobs_survive_every_edit() {
        for (spec, deeper, shallower) in [
            ("scaled-20:f=1", "scaled-26:f=1", "scaled-14:f=1"),
            (
                "scaled-20:sc=0:f=0.25",
                "scaled-26:f=0.25:sc=0",
                "scaled-14:f=0.25:sc=0",
            ),
            ("gated-20:bg=-3", "gated-26:bg=-3", "gated-14:bg=-3"),
            ("sgated-20:bg=2", "sgated-26:bg=2", "sgated-14:bg=2"),
        ] {
            assert_eq!(s(spec).deeper().unwrap().to_string(), deeper);
            assert_eq!(s(spec).shallower().unwrap().to_string(), shallower);
            // Every edit prints a spec that parses back to itself.
            for edited in [
                s(spec).deeper(),
                s(spec).shallower(),
                s(spec).next_variant(),
            ] {
                let edited = edited.unwrap();
                assert_eq!(s(&edited.to_string()), edited, "{spec}");
            }
        }
        // gated → sgated keeps the gate bias; scaled → gated has no f, so it goes.
        assert_eq!(
            s("gated-20:bg=-3").next_variant().unwrap().to_string(),
            "sgated-20:bg=-3"
        );
        assert_eq!(
            s("scaled-20:f=1").next_variant().unwrap().to_string(),
            "gated-20"
        );
    }

    #[test]
    fn presets_are_not_edited() {
        let seed = s("seed-v1");
        for edit in [seed.next_variant(), seed.deeper(), seed.shallower()] {
            assert_eq!(edit, Err(EditError::Preset(seed)));
        }
        assert_eq!(
            seed.deeper().unwrap_err().to_string(),
            "seed-v1 is a preset: its architecture is fixed"
        );
    }
}
