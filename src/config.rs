//! The experiment: which models, on what data, with which optimiser and schedule.
//!
//! One `ExperimentConfig` comes from command-line options or a `--config FILE.ron`, drives the
//! trainer, and is stored whole in every snapshot.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Problems with an experiment's options or config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read {
        path: String,
        // Not `source`: the message already says it, and `{e:#}` would repeat the chain.
        error: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid option: {0}")]
    Invalid(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
}

impl std::str::FromStr for OptimizerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sgd" => Ok(Self::Sgd),
            "adam" => Ok(Self::Adam),
            other => Err(ConfigError::Invalid(format!(
                "unknown optimizer '{other}' (expected sgd or adam)"
            ))),
        }
    }
}

/// Learning-rate schedule; step counts are optimizer steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    /// Multiply by `gamma` at each milestone (He et al.: ÷10 at 32k and 48k).
    Step { milestones: Vec<u64>, gamma: f64 },
    /// Cosine decay from the base rate to 0 over `total` steps.
    Cosine { total: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// Model specs, e.g. `plain-56`, `v1-56`, `v2-56`, `seed-v1`.
    pub models: Vec<String>,
    /// `synthetic`, `mnist`, `mnist:DIR` or `cifar10:DIR`.
    pub dataset: String,
    pub batch: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Steps at `warmup_lr` before the base rate (He et al. warm ResNet-110 at 0.01).
    pub warmup_steps: u64,
    pub warmup_lr: f64,
    pub seed: u64,
    pub width: usize,
    /// Evaluate on the test split every this many steps (0 = only at the end).
    pub eval_every: u64,
    /// CIFAR augmentation (pad-4 random crop, horizontal flip).
    pub augment: bool,
}

impl ExperimentConfig {
    /// The one default experiment of every subcommand (`resviz`, `tui`, `train`, `probe`,
    /// `bench`, `lesion`) and of a config file's missing fields: plain, v1 and v2 at depth 56 on
    /// the bundled MNIST subset, batch 32, lr 0.05. Depth 56 is the deepest at which all three
    /// runs still step about twice a second on two cores. The README says what it shows and why
    /// it was chosen. An evaluation of all three on the 2,000 test digits takes seconds, hence
    /// every 500 steps.
    pub fn dashboard_default() -> Self {
        Self::default()
    }
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            models: vec!["plain-56".into(), "v1-56".into(), "v2-56".into()],
            dataset: "mnist".into(),
            batch: 32,
            lr: 0.05,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            warmup_lr: 0.01,
            seed: 0,
            width: 16,
            eval_every: 500,
            augment: true,
        }
    }
}

impl ExperimentConfig {
    /// Read a RON config; unknown fields are errors, missing ones take defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: p.clone(),
            error,
        })?;
        let cfg: Self = ron::from_str(&text).map_err(|e| ConfigError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reject values no run could use (specs are checked where they are parsed, in `model`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.models.is_empty() {
            return bad("at least one model is needed (--models)");
        }
        if self.batch == 0 {
            return bad("--batch must be at least 1");
        }
        if self.width == 0 {
            return bad("--width must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum must be in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight decay must be non-negative");
        }
        if !(self.warmup_lr.is_finite() && self.warmup_lr > 0.0) {
            return bad("warm-up learning rate must be positive");
        }
        if let Schedule::Step { gamma, .. } = &self.schedule
            && !(gamma.is_finite() && *gamma > 0.0)
        {
            return bad("step schedule gamma must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ron_round_trip_and_defaults() {
        let cfg: ExperimentConfig = ron::from_str("(models: [\"v1-20\"], batch: 32)").unwrap();
        assert_eq!(cfg.models, vec!["v1-20"]);
        assert_eq!(cfg.batch, 32);
        assert_eq!(cfg.lr, 0.05);
        let text = ron::to_string(&cfg).unwrap();
        assert_eq!(ron::from_str::<ExperimentConfig>(&text).unwrap(), cfg);
    }

    #[test]
    fn unknown_field_is_an_error() {
        assert!(ron::from_str::<ExperimentConfig>("(modles: [])").is_err());
    }

    #[test]
    fn validation_rejects_bad_values() {
        let mut cfg = ExperimentConfig {
            batch: 0,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        cfg.batch = 8;
        cfg.lr = -1.0;
        assert!(cfg.validate().is_err());
        cfg.lr = 0.1;
        assert!(cfg.validate().is_ok());
    }
}

#[cfg(test)]
mod preset_tests {
    use super::*;

    #[test]
    fn shipped_presets_load() {
        for name in [
            "bn-explosion",
            "plain-depth",
            "he2015-cifar10",
            "he2015-cifar10-110",
            "identity-mappings",
            "activations",
            "seed",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("assets/{name}.ron"));
            let cfg = ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!cfg.models.is_empty());
        }
    }
}
