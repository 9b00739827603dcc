//! Balduzzi et al. 2017, "The Shattered Gradients Problem": at initialisation the gradient of a
//! net's output with respect to its input, taken along a line of inputs, decorrelates with depth:
//! for feedforward (plain) nets the correlation of neighbouring points falls like 2^−L, for
//! ResNets with batch norm like 1/√L, and without batch norm a ResNet shatters faster. Measured
//! as `resviz shatter` does (g(t) = d logit/dt along the line between two test images, its lag-1
//! autocorrelation), over image pairs and seeds, with and without batch norm (`:bn=off`), and the
//! decay with depth fitted to both laws ([`crate::experiments::depth_fit`]).

use super::{Figure, Panel, PaperReport, Row, Series, Style, note};
use crate::cli::PaperArgs;
use crate::config::ExperimentConfig;
use crate::experiments::depth_fit::{family, fits_of};
use crate::experiments::shatter::{Shatter, spread};
use crate::records::experiments::DepthFit;
use crate::records::{PreciseBn, ShatterParams};
use color_eyre::eyre::Result;

/// Seeds 1..=N unless `--seeds` says otherwise: each draws every net's weights afresh.
const SEEDS: u64 = 3;
/// Image pairs (lines) per net and seed unless `--pairs` says otherwise.
const PAIRS: usize = 16;
/// Points on each line: the paper's 256.
const POINTS: usize = 256;
/// Training batches batch norm's statistics are re-estimated on (at initialisation the stored
/// ones are the defaults and describe nothing).
const BN_BATCHES: usize = 8;

/// The variants and depths: `--quick`, then the full run. Each is measured with batch norm and
/// with `:bn=off`.
fn plan(quick: bool) -> (&'static [&'static str], &'static [usize]) {
    match quick {
        true => (&["plain", "v2"], &[8, 20, 56]),
        false => (&["plain", "v1", "v2"], &[8, 20, 56, 110]),
    }
}

/// Every spec of the plan: with batch norm first, then without.
fn models(variants: &[&str], depths: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for knobs in ["", ":bn=off"] {
        for v in variants {
            out.extend(depths.iter().map(|d| format!("{v}-{d}{knobs}")));
        }
    }
    out
}

/// One net's lag-1 autocorrelations, one per image pair and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub model: String,
    pub lag1: Vec<f64>,
}

/// What the rows were measured on, for the report's `setting`.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub dataset: String,
    pub seeds: u64,
    pub pairs: usize,
    pub points: usize,
    pub bn: PreciseBn,
}

pub fn run(args: &PaperArgs) -> Result<(PaperReport, Figure)> {
    let (variants, depths) = plan(args.quick);
    let base = ExperimentConfig {
        models: models(variants, depths),
        ..ExperimentConfig::dashboard_default()
    };
    let setting = Setting {
        dataset: base.dataset.clone(),
        seeds: args.seeds.unwrap_or(SEEDS),
        pairs: args.pairs.unwrap_or(PAIRS),
        points: POINTS,
        bn: PreciseBn {
            batches: BN_BATCHES,
            batch: base.batch,
            seed: 0,
        },
    };
    let params = ShatterParams {
        pairs: setting.pairs,
        points: setting.points,
        bn: setting.bn,
        ..ShatterParams::default()
    };
    params.validate(None)?;
    note(&format!(
        "balduzzi2017: {} nets at initialisation, {} pairs × {} points each, seeds 1-{}{}",
        base.models.len(),
        setting.pairs,
        setting.points,
        setting.seeds,
        if args.quick {
            " (--quick)"
        } else {
            ": about an hour on 2 cores (--quick: about 8 minutes)"
        }
    ));
    let mut measured: Vec<Measured> = base
        .models
        .iter()
        .map(|m| Measured {
            model: m.clone(),
            lag1: Vec::new(),
        })
        .collect();
    for seed in 1..=setting.seeds {
        note(&format!("seed {seed} of {}", setting.seeds));
        let cfg = ExperimentConfig {
            seed,
            ..base.clone()
        };
        let (trainer, _) = crate::cli::runs::train_config(cfg, 0, None)?;
        let x = Shatter::new(&trainer.ds, &params)?;
        let results = crate::cli::common::measure_all(&trainer, "shatter", &x)?;
        for (m, r) in measured.iter_mut().zip(results) {
            m.lag1.extend(r.lag1_pairs);
        }
    }
    Ok(report(&setting, &measured))
}

/// `plain-L` for `v2-L`, `plain-L:bn=off` for `v2-L:bn=off`.
fn plain_of(fam: &str) -> String {
    let (_, rest) = fam.split_once("-L").unwrap_or((fam, ""));
    format!("plain-L{rest}")
}

fn is_plain(fam: &str) -> bool {
    fam.starts_with("plain-")
}

fn bn_off(fam: &str) -> bool {
    fam.ends_with(":bn=off")
}

/// The family's spec at depth `d`.
fn at(fam: &str, d: usize) -> String {
    fam.replacen("-L", &format!("-{d}"), 1)
}

/// Per model `(spec, mean, standard deviation)` of its lag-1 autocorrelations.
type Stats<'a> = Vec<(&'a str, f64, f64)>;

/// The rows and the figure of [`run`] from each net's lag-1 autocorrelations.
pub fn report(s: &Setting, measured: &[Measured]) -> (PaperReport, Figure) {
    let stats: Stats = measured
        .iter()
        .map(|m| {
            let (mean, std, _) = spread(&m.lag1);
            (m.model.as_str(), mean, std)
        })
        .collect();
    let mut rows = Vec::new();
    for &(model, mean, std) in &stats {
        rows.push(
            Row::new(
                "lag-1 autocorrelation of d logit/dt along the line at init, mean over pairs × seeds",
                model,
            )
            .measured(Some(mean)),
        );
        rows.push(
            Row::new("… its standard deviation over pairs × seeds", model).measured(Some(std)),
        );
    }
    let (fams, depths) = families(measured);
    for fam in fams.iter().filter(|f| !is_plain(f)) {
        rows.extend(higher(
            &stats,
            &depths,
            (&plain_of(fam), fam),
            "plain decorrelates faster than the ResNet at the same depth (ResNet's lag-1 minus plain's)",
        ));
    }
    let means: Vec<(&str, f64)> = stats.iter().map(|x| (x.0, x.1)).collect();
    let fits = fits_of(&means);
    rows.extend(fits.iter().flat_map(fit_rows));
    for fam in fams.iter().filter(|f| !is_plain(f) && !bn_off(f)) {
        rows.extend(higher(
            &stats,
            &depths,
            (&format!("{fam}:bn=off"), fam),
            "without batch norm the ResNet decorrelates faster (lag-1 with BN minus without)",
        ));
    }
    let report = PaperReport {
        paper: "balduzzi2017",
        claim: "Balduzzi et al. 2017, §3-4: at initialisation the input gradient of a \
                feedforward net along a line of inputs decorrelates like 2^−L with depth, a \
                ResNet's with batch norm like 1/√L; without batch norm a ResNet decorrelates \
                exponentially too, though more slowly than a feedforward net"
            .into(),
        setting: setting_text(s),
        rows,
    };
    (report, figure(&stats, &fits))
}

/// The families measured (specs with the depth written `L`, in first-seen order) and the depths.
fn families(measured: &[Measured]) -> (Vec<String>, Vec<usize>) {
    let mut fams: Vec<String> = Vec::new();
    let mut depths: Vec<usize> = Vec::new();
    for (f, d) in measured.iter().filter_map(|m| family(&m.model)) {
        if !fams.contains(&f) {
            fams.push(f);
        }
        if !depths.contains(&d) {
            depths.push(d);
        }
    }
    depths.sort_unstable();
    (fams, depths)
}

/// At each depth where both were measured, the claim that family `b`'s mean is above family
/// `a`'s: `a vs b`, measured b − a.
fn higher(stats: &Stats, depths: &[usize], (a, b): (&str, &str), quantity: &str) -> Vec<Row> {
    let mean_of = |model: &str| {
        let x = stats.iter().find(|x| x.0 == model)?;
        x.1.is_finite().then_some(x.1)
    };
    depths
        .iter()
        .filter_map(|&d| {
            let (a, b) = (at(a, d), at(b, d));
            let (ma, mb) = (mean_of(&a)?, mean_of(&b)?);
            let row = Row::new(quantity, format!("{a} vs {b}"));
            Some(row.measured(Some(mb - ma)).holds(ma < mb))
        })
        .collect()
}

/// A family's two RMS residuals, and the claim its law makes: 2^−L for plain nets, 1/√L for
/// ResNets with batch norm (none for ResNets without: the paper's 1/√L is for batch norm).
fn fit_rows(f: &DepthFit) -> Vec<Row> {
    let mut rows = vec![
        Row::new("RMS residual of the fit c·2^−L", &f.family).measured(Some(f.exp2_rms)),
        Row::new("RMS residual of the fit c/√L", &f.family).measured(Some(f.inv_sqrt_rms)),
    ];
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    if is_plain(&f.family) {
        rows.push(
            Row::new(
                "a plain net's decay fits 2^−L better than 1/√L (RMS ratio 2^−L ÷ 1/√L)",
                &f.family,
            )
            .measured(ratio(f.exp2_rms, f.inv_sqrt_rms))
            .holds(f.exp2_rms < f.inv_sqrt_rms),
        );
    } else if !bn_off(&f.family) {
        rows.push(
            Row::new(
                "a ResNet's decay (with batch norm) fits 1/√L better than 2^−L (RMS ratio 1/√L ÷ 2^−L)",
                &f.family,
            )
            .measured(ratio(f.inv_sqrt_rms, f.exp2_rms))
            .holds(f.inv_sqrt_rms < f.exp2_rms),
        );
    }
    rows
}

fn setting_text(s: &Setting) -> String {
    format!(
        "{} test images, nets at initialisation, seeds 1-{} (new weights each), {} pairs of test \
         images per net and seed (images 2k → 2k+1), {} points per line, g(t) = ⟨∇ₓ logit_y, \
         x1 − x0⟩ for x1's label y; batch norm in evaluation mode with statistics re-estimated \
         from {} × {} training images; `:bn=off` nets have no normalisation (each BN becomes \
         γ·x + β with γ = 1, β = 0 at init) and the same He (Kaiming-normal, fan-out) conv \
         initialisation, nothing rescaled. L is the spec's depth in layers. The paper: \
         fully-connected rectifier nets of 200 units on a 1-D input (and CIFAR-10 convnets), He \
         initialisation; it prints no value of the lag-1 autocorrelation at a given depth, so \
         the paper column is empty.",
        s.dataset, s.seeds, s.pairs, s.points, s.bn.batches, s.bn.batch
    )
}

/// Two panels, with batch norm and without: per family the mean lag-1 autocorrelation against
/// depth (± its standard deviation), and its two fitted laws.
fn figure(stats: &Stats, fits: &[DepthFit]) -> Figure {
    let panel = |off: bool| {
        let mut series = Vec::new();
        for f in fits.iter().filter(|f| bn_off(&f.family) == off) {
            let pts: Vec<(f64, f64, f64)> = f
                .depths
                .iter()
                .filter_map(|&d| {
                    let spec = at(&f.family, d);
                    let x = stats.iter().find(|x| x.0 == spec)?;
                    Some((d as f64, x.1, x.2))
                })
                .collect();
            series.push(Series {
                name: format!("{} (measured)", f.family),
                colour: f.family.clone(),
                style: Style::Markers,
                points: pts.iter().map(|p| (p.0, p.1)).collect(),
                spread: pts.iter().map(|p| p.2).collect(),
            });
            let (lo, hi) = (f.depths[0], *f.depths.last().unwrap_or(&f.depths[0]));
            let curve = |law: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
                (lo..=hi).map(|l| (l as f64, law(l as f64))).collect()
            };
            series.push(Series {
                name: format!("{}: c·2^−L, c = {:.2e}", f.family, f.exp2_scale),
                colour: f.family.clone(),
                style: Style::Dashed,
                points: curve(&|l: f64| f.exp2_scale * (-l).exp2()),
                spread: Vec::new(),
            });
            series.push(Series {
                name: format!("{}: c/√L, c = {:.3}", f.family, f.inv_sqrt_scale),
                colour: f.family.clone(),
                style: Style::Thin,
                points: curve(&|l: f64| f.inv_sqrt_scale / l.sqrt()),
                spread: Vec::new(),
            });
        }
        Panel {
            title: match off {
                false => "with batch norm".into(),
                true => "without batch norm (:bn=off)".into(),
            },
            x_label: "depth L (layers)".into(),
            y_label: "lag-1 autocorrelation".into(),
            log_y: true,
            series,
        }
    };
    Figure {
        panels: vec![panel(false), panel(true)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting() -> Setting {
        Setting {
            dataset: "mnist".into(),
            seeds: 2,
            pairs: 2,
            points: 256,
            bn: PreciseBn {
                batches: 8,
                batch: 32,
                seed: 0,
            },
        }
    }

    /// Each net's samples: the law's value at its depth, ± a little so the spread is defined.
    fn measured(law: impl Fn(&str, f64) -> f64) -> Vec<Measured> {
        models(&["plain", "v2"], &[8, 20, 56])
            .into_iter()
            .map(|m| {
                let (fam, d) = family(&m).unwrap();
                let v = law(&fam, d as f64);
                Measured {
                    model: m,
                    lag1: vec![v - 0.001, v + 0.001],
                }
            })
            .collect()
    }

    fn claims<'a>(r: &'a PaperReport, starts: &str) -> Vec<&'a Row> {
        r.rows
            .iter()
            .filter(|x| x.quantity.starts_with(starts) && x.holds.is_some())
            .collect()
    }

    /// The paper's world: plain 2^−L, v2 1/√L with batch norm and 0.9^L without.
    #[test]
    fn every_claim_holds_on_the_papers_laws() {
        let (r, fig) = report(
            &setting(),
            &measured(|fam, l| match fam {
                "plain-L" | "plain-L:bn=off" => 100.0 * (-l).exp2(),
                "v2-L" => 2.0 / l.sqrt(),
                _ => 0.9f64.powf(l),
            }),
        );
        let all: Vec<&Row> = r.rows.iter().filter(|x| x.holds.is_some()).collect();
        // 3 depths × 2 BN settings, 2 plain fits + 1 ResNet fit, 3 BN / no-BN depths.
        assert_eq!(all.len(), 6 + 3 + 3, "{:#?}", r.rows);
        assert!(all.iter().all(|x| x.holds == Some(true)), "{all:#?}");
        let mean = r
            .rows
            .iter()
            .find(|x| x.model == "v2-20" && x.quantity.starts_with("lag-1"))
            .unwrap();
        assert!((mean.measured.unwrap() - 2.0 / 20f64.sqrt()).abs() < 1e-12);
        assert!(r.rows.iter().all(|x| x.paper.is_none()));
        assert_eq!(fig.panels.len(), 2);
        let names: Vec<&str> = fig.panels[0]
            .series
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert!(names.contains(&"plain-L (measured)"), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("v2-L: c/√L")),
            "{names:?}"
        );
        let v2 = &fig.panels[0].series[3];
        assert_eq!(v2.points.len(), 3);
        assert_eq!(v2.spread.len(), 3);
    }

    /// The world turned round: the ResNet shatters like 2^−L and the plain net keeps its
    /// correlation; batch norm hurts. Every claim must read NO, and none may go missing.
    #[test]
    fn every_claim_fails_when_the_nets_swap_roles() {
        let (r, _) = report(
            &setting(),
            &measured(|fam, l| match fam {
                "v2-L" => 20.0 * (-l).exp2(),
                "v2-L:bn=off" => 0.2,
                _ => 2.0 / l.sqrt(),
            }),
        );
        let all: Vec<&Row> = r.rows.iter().filter(|x| x.holds.is_some()).collect();
        assert_eq!(all.len(), 12, "{:#?}", r.rows);
        assert!(all.iter().all(|x| x.holds == Some(false)), "{all:#?}");
        let cmp = claims(&r, "plain decorrelates faster");
        assert_eq!(cmp[0].model, "plain-8 vs v2-8");
        assert!(cmp[0].measured.unwrap() < 0.0);
        let bn = claims(&r, "without batch norm");
        assert_eq!(bn.len(), 3);
        assert_eq!(bn[2].model, "v2-56:bn=off vs v2-56");
    }

    #[test]
    fn families_pair_with_their_plain_net_and_depths() {
        assert_eq!(plain_of("v2-L:bn=off"), "plain-L:bn=off");
        assert_eq!(plain_of("v1-L"), "plain-L");
        assert_eq!(at("v2-L:bn=off", 56), "v2-56:bn=off");
        assert_eq!(models(&["plain"], &[8, 20]).len(), 4);
        assert_eq!(models(&["plain"], &[8])[1], "plain-8:bn=off");
    }
}
