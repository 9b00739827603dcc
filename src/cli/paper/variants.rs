//! He et al. 2016, "Identity Mappings in Deep Residual Networks", Tables 1 and 2: of the
//! shortcut designs (Table 1) the identity shortcut trains best, and of the activation
//! placements (Table 2) full pre-activation does. The paper reports ResNet-110 test error on
//! CIFAR-10 after 64k iterations; here each design trains on the bundled presets'
//! data for a few hundred steps and the training loss at the end is compared, so what is tested
//! is the order, not the numbers.

use super::{Figure, PaperReport, Row, note};
use crate::cli::PaperArgs;
use crate::config::ExperimentConfig;
use crate::model::ModelSpec;
use color_eyre::eyre::{Result, WrapErr, bail};

/// One of the two tables.
pub struct Table {
    pub id: &'static str,
    pub claim: &'static str,
    /// The preset whose models are the table's rows (in the order of `paper`).
    preset: &'static str,
    /// Per model of the preset: the paper's test error (%), `None` where it reports "fail".
    pub paper: &'static [Option<f64>],
    /// The design the paper finds best (an index into the models).
    pub best: usize,
    /// Depth of every net: `--quick`, and the full run (the paper's 110).
    depth: (usize, usize),
    /// Steps: `--quick`, and the full run.
    steps: (u64, u64),
}

pub const TABLE1: Table = Table {
    id: "he2016-table1",
    claim: "He et al. 2016, Table 1: of the shortcut designs, the identity shortcut (the \
            original unit) trains best",
    preset: include_str!("../../../assets/identity-mappings.ron"),
    // original, constant scaling 0.5/0.5, exclusive gating b_g = −6, shortcut-only gating
    // b_g = −6, 1×1 conv shortcut, dropout shortcut (fails).
    paper: &[
        Some(6.61),
        Some(12.35),
        Some(8.70),
        Some(6.91),
        Some(12.22),
        None,
    ],
    best: 0,
    depth: (20, 110),
    steps: (300, 2000),
};

pub const TABLE2: Table = Table {
    id: "he2016-table2",
    claim: "He et al. 2016, Table 2: of the activation placements, full pre-activation trains \
            best",
    preset: include_str!("../../../assets/activations.ron"),
    // original, BN after addition, ReLU before addition, ReLU-only pre-activation, full
    // pre-activation.
    paper: &[Some(6.61), Some(8.17), Some(7.84), Some(6.71), Some(6.37)],
    best: 4,
    depth: (20, 110),
    steps: (300, 2000),
};

/// `spec` at `depth`, its knobs kept.
fn at_depth(spec: &str, depth: usize) -> Result<String> {
    let parsed: ModelSpec = spec.parse()?;
    match parsed {
        ModelSpec::Resnet { variant, knobs, .. } => Ok(ModelSpec::Resnet {
            variant,
            depth,
            knobs,
        }
        .to_string()),
        ModelSpec::Seed(_) => bail!("{spec} is a seed preset: it has no depth"),
    }
}

pub fn run(t: &Table, args: &PaperArgs) -> Result<(PaperReport, Figure)> {
    let base: ExperimentConfig = ron::from_str(t.preset)
        .wrap_err_with(|| format!("the bundled preset of {} does not parse", t.id))?;
    let (depth, steps) = match args.quick {
        true => (t.depth.0, t.steps.0),
        false => (t.depth.1, t.steps.1),
    };
    let steps = args.steps.unwrap_or(steps);
    let models = base
        .models
        .iter()
        .map(|m| at_depth(m, depth))
        .collect::<Result<Vec<_>>>()?;
    let seeds: Vec<u64> = match args.seeds {
        Some(n) => (1..=n).collect(),
        None => vec![base.seed],
    };
    note(&format!(
        "{}: {} on {}, {steps} steps, seed(s) {:?}{}",
        t.id,
        models.join(", "),
        base.dataset,
        seeds,
        if args.quick {
            " (--quick)"
        } else {
            ": ResNet-110s, this can take hours on 2 cores (--quick: depth 20, minutes)"
        }
    ));
    let mut losses = vec![Vec::new(); models.len()];
    let mut first = None;
    for &seed in &seeds {
        let cfg = ExperimentConfig {
            models: models.clone(),
            seed,
            ..base.clone()
        };
        let (_, h) = crate::cli::runs::train_config(cfg, steps, None)?;
        for (k, h) in h.iter().enumerate() {
            losses[k].push(h.final_mean(|s| s.loss).unwrap_or(f64::NAN));
        }
        first.get_or_insert(h);
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let finals: Vec<f64> = losses.iter().map(mean).collect();
    let figure = super::figures::designs(&models, &first.unwrap_or_default(), &finals);
    Ok((
        report(t, &models, &finals, (&base, steps, seeds.len())),
        figure,
    ))
}

/// The rows from each model's final training loss (mean over seeds).
pub fn report(
    t: &Table,
    models: &[String],
    finals: &[f64],
    (cfg, steps, seeds): (&ExperimentConfig, u64, usize),
) -> PaperReport {
    let best = finals[t.best];
    let mut rows = Vec::new();
    for (k, model) in models.iter().enumerate() {
        let paper = t.paper.get(k).copied().flatten();
        let q = match paper {
            Some(_) => "final training loss here; the paper: ResNet-110 test error, %",
            None => "final training loss here; the paper: fails to train",
        };
        let mut row = Row::new(q, model.clone()).measured(Some(finals[k]));
        if let Some(p) = paper {
            row = row.paper(p);
        }
        // Every design but the best must train to a higher loss than the best.
        if k != t.best {
            row = row.holds(finals[k].is_nan() || finals[k] > best);
        }
        rows.push(row);
    }
    let lowest = (0..finals.len())
        .filter(|k| finals[*k].is_finite())
        .min_by(|a, b| finals[*a].total_cmp(&finals[*b]));
    rows.push(
        Row::new(
            format!(
                "{} trains to the lowest loss (index of the lowest)",
                models[t.best]
            ),
            "all",
        )
        .paper(t.best as f64)
        .measured(lowest.map(|k| k as f64))
        .holds(lowest == Some(t.best)),
    );
    PaperReport {
        paper: t.id,
        claim: t.claim.into(),
        setting: format!(
            "{} on {}, batch {}, lr {}, {steps} steps, {seeds} seed(s); the loss is the mean over \
             the last 10 % of steps. The paper: ResNet-110 on CIFAR-10, test error after 64k \
             iterations, so only the order is compared.",
            models.join(", "),
            cfg.dataset,
            cfg.batch,
            cfg.lr
        ),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_match_their_tables() {
        for t in [&TABLE1, &TABLE2] {
            let cfg: ExperimentConfig = ron::from_str(t.preset).unwrap();
            assert_eq!(cfg.models.len(), t.paper.len(), "{}", t.id);
            for m in &cfg.models {
                let d = at_depth(m, 110).unwrap();
                assert!(d.ends_with("-110") || d.contains("-110:"), "{d}");
            }
        }
        assert_eq!(at_depth("gated-20:bg=-3", 56).unwrap(), "gated-56:bg=-3");
    }

    #[test]
    fn the_order_decides_and_a_better_rival_reads_no() {
        let models: Vec<String> = ["v1", "bnafter", "relubefore", "reluonly", "v2"]
            .iter()
            .map(|v| format!("{v}-20"))
            .collect();
        let cfg = ExperimentConfig::default();
        // Full pre-activation lowest: every row holds.
        let r = report(
            &TABLE2,
            &models,
            &[0.5, 0.7, 0.6, 0.55, 0.4],
            (&cfg, 300, 1),
        );
        assert!(
            r.rows.iter().all(|x| x.holds != Some(false)),
            "{:?}",
            r.rows
        );
        // The original beats full pre-activation: its row and the summary read no.
        let r = report(
            &TABLE2,
            &models,
            &[0.3, 0.7, 0.6, 0.55, 0.4],
            (&cfg, 300, 1),
        );
        assert_eq!(r.rows[0].holds, Some(false));
        assert_eq!(r.rows[4].holds, None);
        let last = r.rows.last().unwrap();
        assert_eq!((last.measured, last.holds), (Some(0.0), Some(false)));
    }
}
