//! The figures of the papers that train nets and compare them (he2015-fig1, he2016-table1/2,
//! veit2016), built from what each measured: training-loss curves smoothed as the dashboard's
//! loss panel smooths them, final losses per seed or per design, and lesion accuracies per
//! deleted block. Pure: data in, [`Figure`] out (drawn by `plot::svg`).

use super::{Figure, Panel, Series, Style};
use crate::records::experiments::LesionStudy;
use crate::records::record::RunHistory;

/// One smoothed training-loss line per run (named by its spec, coloured as the dashboard does).
fn loss_lines(runs: &[RunHistory]) -> Vec<Series> {
    runs.iter()
        .map(|h| {
            let raw: Vec<(f64, f64)> = h
                .steps
                .iter()
                .map(|s| (s.step as f64, s.loss as f64))
                .collect();
            Series {
                name: h.info.spec.clone(),
                colour: h.info.spec.clone(),
                style: Style::Line,
                points: crate::plotting::ema(&raw),
                spread: Vec::new(),
            }
        })
        .collect()
}

fn loss_panel(title: String, runs: &[RunHistory]) -> Panel {
    Panel {
        title,
        x_label: "step".into(),
        y_label: "training loss (smoothed)".into(),
        log_y: true,
        series: loss_lines(runs),
    }
}

/// He 2015 Fig. 1: the first seed's loss curves, and every seed's final losses side by side
/// (`seeds`: each seed with its three runs' final losses, in `models` order).
pub fn degradation(models: &[String], first: &[RunHistory], seeds: &[(u64, [f64; 3])]) -> Figure {
    let finals = models
        .iter()
        .enumerate()
        .map(|(k, m)| Series {
            name: m.clone(),
            colour: m.clone(),
            style: Style::Markers,
            points: seeds
                .iter()
                .map(|(seed, finals)| (*seed as f64, finals[k]))
                .collect(),
            spread: Vec::new(),
        })
        .collect();
    let seed = seeds.first().map_or(1, |s| s.0);
    Figure {
        panels: vec![
            loss_panel(format!("training loss, seed {seed}"), first),
            Panel {
                title: "final training loss per seed (last 10 % of steps)".into(),
                x_label: "seed".into(),
                y_label: "training loss".into(),
                log_y: true,
                series: finals,
            },
        ],
    }
}

/// He 2016 Tables 1 and 2: the first seed's loss curves, and each design's final loss (mean
/// over seeds) at its index in the table.
pub fn designs(models: &[String], first: &[RunHistory], finals: &[f64]) -> Figure {
    let finals = models
        .iter()
        .zip(finals)
        .enumerate()
        .map(|(k, (m, &f))| Series {
            name: m.clone(),
            colour: m.clone(),
            style: Style::Markers,
            points: vec![(k as f64, f)],
            spread: Vec::new(),
        })
        .collect();
    Figure {
        panels: vec![
            loss_panel("training loss, first seed".into(), first),
            Panel {
                title: "final training loss per design (mean over seeds)".into(),
                x_label: "design (row of the paper's table)".into(),
                y_label: "training loss".into(),
                log_y: true,
                series: finals,
            },
        ],
    }
}

/// Veit 2016 Fig. 3: test accuracy with each block deleted, per model, beside its intact
/// accuracy (dashed).
pub fn lesion(study: &LesionStudy, runs: &[RunHistory]) -> Figure {
    let mut series = Vec::new();
    for m in &study.report.models {
        let points: Vec<(f64, f64)> = m
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(k, b)| b.accuracy.map(|a| (k as f64, 100.0 * a)))
            .collect();
        let last = m.blocks.len().saturating_sub(1) as f64;
        series.push(Series {
            name: format!("{}: intact", m.model),
            colour: m.model.clone(),
            style: Style::Dashed,
            points: vec![(0.0, 100.0 * m.accuracy), (last, 100.0 * m.accuracy)],
            spread: Vec::new(),
        });
        series.push(Series {
            name: format!("{}: one block deleted", m.model),
            colour: m.model.clone(),
            style: Style::Markers,
            points,
            spread: Vec::new(),
        });
    }
    Figure {
        panels: vec![
            loss_panel("training loss (until it levelled off)".into(), runs),
            Panel {
                title: "test accuracy with one block deleted".into(),
                x_label: "deleted block (input → output)".into(),
                y_label: "test accuracy, %".into(),
                log_y: false,
                series,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degradation_puts_each_models_final_loss_at_its_seed() {
        let models = ["plain-14", "plain-32", "v1a-32"].map(String::from);
        let seeds = [(1, [0.2, 0.5, 0.1]), (2, [0.3, 0.6, 0.05])];
        let f = degradation(&models, &[], &seeds);
        assert_eq!(f.panels.len(), 2);
        let finals = &f.panels[1].series;
        assert_eq!(finals.len(), 3);
        assert_eq!(finals[1].name, "plain-32");
        assert_eq!(finals[1].points, vec![(1.0, 0.5), (2.0, 0.6)]);
        assert!(f.panels[0].title.contains("seed 1"));
    }

    #[test]
    fn designs_sit_at_their_table_rows() {
        let models = ["v1-20", "v2-20"].map(String::from);
        let f = designs(&models, &[], &[0.4, 0.3]);
        let pts: Vec<_> = f.panels[1].series.iter().map(|s| s.points[0]).collect();
        assert_eq!(pts, vec![(0.0, 0.4), (1.0, 0.3)]);
    }
}
