//! Learning rate at a step: warm-up, then constant, step decay or cosine.

use crate::config::{ExperimentConfig, Schedule};

/// The rate for 1-based `step`, with `base` the (possibly user-changed) base rate.
pub fn lr_at(cfg: &ExperimentConfig, base: f64, step: u64) -> f64 {
    if step <= cfg.warmup_steps {
        return cfg.warmup_lr;
    }
    match &cfg.schedule {
        Schedule::Constant => base,
        Schedule::Step { milestones, gamma } => {
            let passed = milestones.iter().filter(|&&m| step > m).count() as i32;
            base * gamma.powi(passed)
        }
        Schedule::Cosine { total } => {
            let t = (step.min(*total) as f64) / (*total).max(1) as f64;
            base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_and_warmup() {
        let cfg = ExperimentConfig {
            schedule: Schedule::Step {
                milestones: vec![10, 20],
                gamma: 0.1,
            },
            warmup_steps: 2,
            warmup_lr: 0.01,
            ..Default::default()
        };
        assert_eq!(lr_at(&cfg, 0.1, 1), 0.01);
        assert_eq!(lr_at(&cfg, 0.1, 3), 0.1);
        assert!((lr_at(&cfg, 0.1, 11) - 0.01).abs() < 1e-12);
        assert!((lr_at(&cfg, 0.1, 21) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn cosine_ends_at_zero() {
        let cfg = ExperimentConfig {
            schedule: Schedule::Cosine { total: 100 },
            ..Default::default()
        };
        assert!((lr_at(&cfg, 0.1, 50) - 0.05).abs() < 1e-9);
        assert!(lr_at(&cfg, 0.1, 100).abs() < 1e-12);
    }
}
