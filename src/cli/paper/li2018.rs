//! Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", Fig. 5 and Fig. 7: near
//! convergence, ResNet-56 without its shortcuts sits in a chaotic, non-convex landscape, the
//! ResNet in a convex basin, and the Hessian's |λ_min/λ_max| (how strongly non-convex the
//! surface is at a point) is large across the plain net's landscape and small across the
//! ResNet's. Measured with `resviz landscape` (filter-normalised directions, batch norm
//! re-estimated at θ) on nets trained to a plateau as `veit2016` trains them.

use super::{Figure, Panel, PaperReport, Row, Series, Style, note};
use crate::cli::PaperArgs;
use crate::config::ExperimentConfig;
use crate::experiments::depth_fit::family;
use crate::experiments::landscape::Landscape;
use crate::records::plateau::PlateauRule;
use crate::records::{LandscapeParams, LandscapeResult, PreciseBn};
use color_eyre::eyre::Result;

/// Training batches batch norm's statistics are re-estimated on at θ.
const BN_BATCHES: usize = 8;

/// The nets, the plateau rule and the landscape: `--quick`, then the full run.
fn plan(quick: bool) -> (Vec<&'static str>, PlateauRule, LandscapeParams) {
    let bn = PreciseBn {
        batches: BN_BATCHES,
        batch: 0, // the experiment's batch, once known
        seed: 0,
    };
    match quick {
        true => (
            vec!["plain-56", "v1-56"],
            PlateauRule {
                window: 100,
                tol: 0.05,
                max_steps: 600,
            },
            LandscapeParams {
                grid: 9,
                slice_points: 21,
                images: 128,
                eval_batch: 128,
                bn,
                hessian_grid: 3,
                hessian_steps: 6,
                ..LandscapeParams::default()
            },
        ),
        false => (
            vec!["plain-56", "v1-56", "plain-110", "v1-110"],
            PlateauRule::default(),
            LandscapeParams {
                grid: 21,
                slice_points: 41,
                images: 512,
                eval_batch: 128,
                bn,
                hessian_grid: 5,
                hessian_steps: 15,
                ..LandscapeParams::default()
            },
        ),
    }
}

pub fn run(args: &PaperArgs) -> Result<(PaperReport, Figure)> {
    let (models, mut rule, mut params) = plan(args.quick);
    if let Some(n) = args.steps {
        rule.max_steps = n;
    }
    params.grid = args.grid.unwrap_or(params.grid);
    params.hessian_grid = args.hessian_grid.unwrap_or(params.hessian_grid);
    params.images = args.images.unwrap_or(params.images);
    let cfg = ExperimentConfig {
        models: models.iter().map(|m| m.to_string()).collect(),
        seed: args.seeds.map_or(0, |n| n - 1),
        ..ExperimentConfig::dashboard_default()
    };
    params.bn.batch = cfg.batch;
    params.validate(None)?;
    note(&format!(
        "li2018: {} on {}, trained until the loss levels off ({}-step windows, at most {} \
         steps), then a {g}×{g} landscape on {} images with the Hessian on a {h}×{h} subgrid{}",
        models.join(", "),
        cfg.dataset,
        rule.window,
        rule.max_steps,
        params.images,
        if args.quick {
            " (--quick)"
        } else {
            ": this can take hours on 2 cores (--quick: about 9 minutes)"
        },
        g = params.grid,
        h = params.hessian_grid,
    ));
    let (trainer, histories) = crate::cli::runs::train_config(cfg.clone(), 0, Some(rule))?;
    let x = Landscape::new(&trainer.ds, &params)?;
    let results = crate::cli::common::measure_all(&trainer, "landscape", &x)?;
    let finals: Vec<Option<f64>> = histories.iter().map(|h| h.final_mean(|s| s.loss)).collect();
    let steps = trainer.runs.first().map_or(0, |r| r.step);
    Ok(report(&cfg, steps, &results, &finals))
}

/// The rows and the figure of [`run`]: per model its landscape's figures, then per depth the
/// two claims, plain against the ResNet of that depth.
pub fn report(
    cfg: &ExperimentConfig,
    steps: u64,
    results: &[LandscapeResult],
    final_loss: &[Option<f64>],
) -> (PaperReport, Figure) {
    let mut rows = Vec::new();
    for (r, fl) in results.iter().zip(final_loss) {
        let m = &r.model;
        rows.push(
            Row::new("final training loss (mean of the last 10 % of steps)", m).measured(*fl),
        );
        rows.push(Row::new("loss at θ on the landscape's images", m).measured(Some(r.centre_loss)));
        rows.push(
            Row::new("non-convex fraction of the whole grid", m).measured(Some(r.nonconvex_frac)),
        );
        rows.push(
            Row::new("grid points in the basin (loss ≤ loss at θ + ½ ln C)", m)
                .measured(Some(r.basin_points as f64)),
        );
        rows.push(
            Row::new("non-convex fraction of the basin around θ (Fig. 5)", m)
                .measured(Some(r.basin_nonconvex_frac)),
        );
        rows.push(
            Row::new("Hessian |λmin/λmax|, median over the subgrid (Fig. 7)", m)
                .measured(Some(r.hessian_ratio_median)),
        );
    }
    let plain = results.iter().filter(|r| r.model.starts_with("plain-"));
    for p in plain {
        let Some((_, depth)) = family(&p.model) else {
            continue;
        };
        let resnets = results.iter().filter(|r| {
            !r.model.starts_with("plain-") && family(&r.model).map(|f| f.1) == Some(depth)
        });
        for r in resnets {
            let pair = format!("{} vs {}", p.model, r.model);
            let (a, b) = (p.basin_nonconvex_frac, r.basin_nonconvex_frac);
            rows.push(
                Row::new(
                    "the plain net's basin is more non-convex than the ResNet's (plain minus ResNet)",
                    &pair,
                )
                .measured(Some(a - b))
                .holds(a > b),
            );
            let (a, b) = (p.hessian_ratio_median, r.hessian_ratio_median);
            rows.push(
                Row::new(
                    "the plain net's Hessian |λmin/λmax| is larger than the ResNet's (plain ÷ ResNet)",
                    &pair,
                )
                .measured((b > 0.0).then(|| a / b))
                .holds(a > b),
            );
        }
    }
    let p = results
        .first()
        .map(|r| r.params.clone())
        .unwrap_or_default();
    let report = PaperReport {
        paper: "li2018",
        claim: "Li et al. 2018, Fig. 5 and 7: at depth 56 and 110, near convergence, the net \
                without shortcuts has a chaotic, non-convex landscape and the ResNet a convex \
                basin; the Hessian's |λmin/λmax| is large across the plain net's landscape and \
                small across the ResNet's"
            .into(),
        setting: format!(
            "{} on {}, batch {}, lr {}, trained {steps} steps (to a plateau or the cap); loss \
             on the first {} training images at θ + α·d₁ + β·d₂, {g}×{g} grid over [−1, 1]², \
             Gaussian directions normalised filter by filter (seed {}), biases and BN \
             parameters unperturbed; batch norm in evaluation mode with statistics re-estimated \
             at θ from {} × {} training images (Li et al. keep θ's own); basin: grid points \
             with loss ≤ loss at θ + ½ ln C; Hessian extremes by Lanczos ({} steps at most) on \
             Hessian-vector products by central differences of gradients, on a {h}×{h} \
             subgrid. The paper: ResNet-56/110 and their -noshort versions on CIFAR-10, 51×51 \
             grids; it prints no number for these quantities, so the paper column is empty.",
            cfg.models.join(", "),
            cfg.dataset,
            cfg.batch,
            cfg.lr,
            p.images,
            p.seed,
            p.bn.batches,
            p.bn.batch,
            p.hessian_steps,
            g = p.grid,
            h = p.hessian_grid,
        ),
        rows,
    };
    (report, figure(results))
}

/// Two panels of log10 loss per model: along d₁ (the 1-D slice β = 0) and along d₂ (the grid's
/// column α = 0).
fn figure(results: &[LandscapeResult]) -> Figure {
    let line = |r: &LandscapeResult, points: Vec<(f64, f64)>| Series {
        name: r.model.clone(),
        colour: r.model.clone(),
        style: Style::Line,
        points,
        spread: Vec::new(),
    };
    let along_d1: Vec<Series> = results
        .iter()
        .map(|r| {
            let pts = r.slice_coords.iter().copied().zip(r.slice.iter().copied());
            line(r, pts.collect())
        })
        .collect();
    let along_d2: Vec<Series> = results
        .iter()
        .map(|r| {
            let mid = r.coords.len() / 2;
            let col = r
                .losses
                .iter()
                .map(|row| row.get(mid).copied().unwrap_or(f64::NAN));
            line(r, r.coords.iter().copied().zip(col).collect())
        })
        .collect();
    let panel = |title: &str, x: &str, series: Vec<Series>| Panel {
        title: title.into(),
        x_label: x.into(),
        y_label: "training loss".into(),
        log_y: true,
        series,
    };
    Figure {
        panels: vec![
            panel("1-D slice along d₁ (β = 0)", "α", along_d1),
            panel("along d₂ (α = 0, the grid's column)", "β", along_d2),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(model: &str, basin: f64, hessian: f64) -> LandscapeResult {
        LandscapeResult {
            model: model.into(),
            params: LandscapeParams::default(),
            coords: vec![-1.0, 0.0, 1.0],
            losses: vec![
                vec![3.0, 2.0, 3.0],
                vec![1.0, 0.1, 1.0],
                vec![3.0, 2.0, 3.0],
            ],
            slice_coords: vec![-1.0, 0.0, 1.0],
            slice: vec![1.0, 0.1, 1.0],
            centre_loss: 0.1,
            min_loss: 0.1,
            min_at: [0.0, 0.0],
            nonconvex_frac: 0.0,
            basin_threshold: 1.25,
            basin_points: 1,
            basin_nonconvex_frac: basin,
            hessian: Vec::new(),
            hessian_ratio_median: hessian,
        }
    }

    fn claims(r: &PaperReport) -> Vec<&Row> {
        r.rows.iter().filter(|x| x.holds.is_some()).collect()
    }

    #[test]
    fn li_holds_when_the_plain_net_is_the_rougher() {
        let results = [
            result("plain-56", 0.4, 0.5),
            result("v1-56", 0.05, 0.01),
            result("plain-110", 0.6, 0.8),
            result("v1-110", 0.0, 0.02),
        ];
        let (r, fig) = report(&ExperimentConfig::default(), 400, &results, &[Some(0.1); 4]);
        let c = claims(&r);
        assert_eq!(c.len(), 4, "{:#?}", r.rows);
        assert!(c.iter().all(|x| x.holds == Some(true)), "{c:#?}");
        assert_eq!(c[0].model, "plain-56 vs v1-56");
        assert_eq!(c[2].model, "plain-110 vs v1-110");
        assert!((c[1].measured.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(r.rows.len(), 4 * 6 + 4);
        assert_eq!(fig.panels.len(), 2);
        assert_eq!(fig.panels[0].series.len(), 4);
        assert_eq!(fig.panels[1].series[0].points[1], (0.0, 0.1));
    }

    #[test]
    fn li_fails_when_the_resnet_is_the_rougher_or_nothing_was_measured() {
        let results = [result("plain-56", 0.1, 0.01), result("v1-56", 0.3, 0.2)];
        let (r, _) = report(&ExperimentConfig::default(), 400, &results, &[None, None]);
        let c = claims(&r);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|x| x.holds == Some(false)), "{c:#?}");
        // A basin without interior points (NaN fraction) cannot support the claim.
        let results = [result("plain-56", f64::NAN, 0.5), result("v1-56", 0.0, 0.1)];
        let (r, _) = report(&ExperimentConfig::default(), 400, &results, &[None, None]);
        let c = claims(&r);
        assert_eq!((c[0].holds, c[0].measured), (Some(false), None));
        assert_eq!(c[1].holds, Some(true));
    }
}
