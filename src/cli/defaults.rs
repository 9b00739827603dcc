//! Help texts that show the default experiment, built from `ExperimentConfig::default()` so
//! `--help` cannot drift from what a run without options does.

use crate::config::ExperimentConfig;

fn d() -> ExperimentConfig {
    ExperimentConfig::default()
}

/// Without options or with `--config`, where the values come from.
pub fn experiment_note() -> String {
    let c = d();
    format!(
        "Every subcommand (the dashboard, tui, train, probe, bench, lesion) starts from one default \
         experiment: {} on {}, batch {}, lr {}, {}, seed {}, width {}, test evaluation every {} \
         steps. A --config FILE.ron replaces it (fields the file leaves out take these values); \
         options given on the command line override both.",
        c.models.join(", "),
        c.dataset,
        c.batch,
        c.lr,
        optimizer_name(&c),
        c.seed,
        c.width,
        c.eval_every
    )
}

fn optimizer_name(c: &ExperimentConfig) -> &'static str {
    match c.optimizer {
        crate::config::OptimizerKind::Sgd => "sgd",
        crate::config::OptimizerKind::Adam => "adam",
    }
}

pub fn models() -> String {
    format!(
        "Comma-separated model specs: VARIANT-DEPTH (depth 6n+2), or seed-v1, seed-v2 [default: {}]",
        d().models.join(",")
    )
}

pub fn dataset() -> String {
    format!(
        "synthetic | mnist | mnist:DIR | cifar10 (after `resviz data fetch cifar10`) | cifar10:DIR \
         [default: {}]",
        d().dataset
    )
}

pub fn batch() -> String {
    format!("Images per training step [default: {}]", d().batch)
}

pub fn lr() -> String {
    format!("Base learning rate [default: {}]", d().lr)
}

pub fn optimizer() -> String {
    format!("sgd | adam [default: {}]", optimizer_name(&d()))
}

pub fn seed() -> String {
    format!(
        "Seed of the weights and of the batch order [default: {}]",
        d().seed
    )
}

pub fn width() -> String {
    format!(
        "Channels of the first stage (stages have w, 2w, 4w) [default: {}]",
        d().width
    )
}

pub fn eval_every() -> String {
    format!(
        "Evaluate on the test split every N steps, 0: only at the end [default: {}, or the \
         --config file's]",
        d().eval_every
    )
}
