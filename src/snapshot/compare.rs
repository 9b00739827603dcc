//! Side-by-side summaries of saved runs: a plain-text table and an SVG plot.

use super::{RunSnapshot, SnapshotError};
use crate::numfmt::{duration, pct};
use crate::plotting::svg::{BACKGROUND, dark_mesh, decade_range, font, padded_range, run_colours};
use crate::records::flow::relative_depth;
use crate::records::record::{RunHistory, RunStatus};
use crate::records::{flow, learning};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::fs;
use std::ops::Range;
use std::path::Path;

/// The numbers `resviz compare` shows for one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub model: String,
    /// The last step trained (0 if none).
    pub steps: u64,
    /// Mean training loss over the recorded steps in the last 10 % of the run
    /// ([`RunHistory::final_mean`], as `train` prints it).
    pub final_loss: Option<f32>,
    /// Mean training accuracy over the same steps.
    pub final_acc: Option<f32>,
    /// Accuracy of the last evaluation, if any.
    pub test_acc: Option<f32>,
    /// Growth of the gradient per block toward the input at the last step (least-squares fit of
    /// ln RMS; of the raw norm for records older than the RMS): > 1 grows, < 1 shrinks.
    pub grad_growth: Option<f32>,
    /// Median over blocks of the shortcut's share of the block-input gradient (He 2016 eq. 5)
    /// at the last step; `None` for records without it.
    pub shortcut_share: Option<f32>,
    /// Mean over blocks of the fraction of zero activations at the last step (sparsity).
    pub sparsity: Option<f32>,
    /// Input-third ÷ output-third update ratio ‖ΔW‖/‖W‖ of the blocks' conv weights, over the
    /// last 10 % of steps (`records::learning`); `None` for records without it.
    pub update_in_out: Option<f32>,
    /// ‖W_final‖/‖W_0‖ of the input third's conv weights (median over its blocks).
    pub growth_in: Option<f32>,
    pub wall_secs: f64,
    pub status: RunStatus,
}

impl RunSummary {
    pub fn of(run: &RunHistory) -> Self {
        let steps = run.last().map_or(0, |s| s.step);
        let mean =
            |f: fn(&crate::records::record::StepRecord) -> f32| run.final_mean(f).map(|m| m as f32);
        let last_blocks = run
            .last()
            .map(|s| s.blocks.as_slice())
            .filter(|b| !b.is_empty());
        let grad_growth = last_blocks.and_then(|b| {
            let rms = b.iter().any(|s| s.grad_rms > 0.0);
            let v = b
                .iter()
                .map(|s| if rms { s.grad_rms } else { s.grad_norm } as f64);
            flow::log_slope(v).map(|s| s.factor() as f32)
        });
        let shortcut_share = last_blocks.and_then(flow::median_share);
        let sparsity =
            last_blocks.map(|b| b.iter().map(|s| s.act_zero_frac).sum::<f32>() / b.len() as f32);
        Self {
            model: run.info.spec.clone(),
            steps,
            final_loss: mean(|s| s.loss),
            final_acc: mean(|s| s.acc),
            test_acc: run.evals.last().map(|e| e.acc),
            grad_growth,
            shortcut_share,
            sparsity,
            update_in_out: learning::update_ratio_by_third(run).map(|[a, _, c]| (a / c) as f32),
            growth_in: learning::weight_growth_by_third(run).map(|g| g[0] as f32),
            wall_secs: run.wall_secs,
            status: run.status.clone(),
        }
    }
}

fn opt(v: Option<f32>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), |x| f(f64::from(x)))
}

fn status(s: &RunStatus) -> String {
    match s {
        RunStatus::Running => "running".into(),
        RunStatus::Finished => "finished".into(),
        RunStatus::Interrupted => "interrupted".into(),
        RunStatus::Diverged { step, reason } => format!("diverged at step {step}: {reason}"),
    }
}

/// A plain-text table, one row per run of every snapshot, with a legend below. `snaps` pairs
/// each snapshot with the file it came from (only the file name is shown).
pub fn compare_table<P: AsRef<Path>>(snaps: &[(P, RunSnapshot)]) -> String {
    let header = [
        "file",
        "model",
        "steps",
        "final loss",
        "final acc",
        "test acc",
        "growth→in",
        "shortcut",
        "zeros",
        "Δ in÷out",
        "W× in",
        "wall",
        "status",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for (path, snap) in snaps {
        let path = path.as_ref();
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        for run in &snap.runs {
            let s = RunSummary::of(run);
            // Loading made the file's strings printable; the file name comes from the user.
            rows.push(vec![
                super::printable(&file),
                super::printable(&s.model),
                s.steps.to_string(),
                opt(s.final_loss, |x| format!("{x:.4}")),
                opt(s.final_acc, pct),
                opt(s.test_acc, pct),
                opt(s.grad_growth, |g| format!("×{g:.2}")),
                opt(s.shortcut_share, pct),
                opt(s.sparsity, pct),
                opt(s.update_in_out, crate::numfmt::ratio),
                opt(s.growth_in, crate::numfmt::ratio),
                duration(s.wall_secs),
                super::printable(&status(&s.status)),
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            // Text columns left-aligned, numbers right-aligned; the last column is not padded.
            let numeric = (2..=10).contains(&c);
            if numeric {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out.push_str(
        "\nfinal loss/acc: mean over the last 10% of steps (training batches; as `resviz train` \
         prints them); test acc: last evaluation.\ngrowth→in: fitted growth of the gradient RMS per block toward the input at the \
         last step (>1 grows);\nshortcut: median share of a block's input gradient arriving \
         through its shortcut (He 2016 eq. 5);\nzeros: mean fraction of zero activations over \
         blocks at the last step;\nΔ in÷out: ‖ΔW‖/‖W‖ of the input third's blocks' conv weights \
         over the output third's (last 10% of steps; below ×0.2 the input blocks are frozen);\nW× \
         in: growth of the input third's conv weights since initialisation.\n",
    );
    out
}

/// Label of run `r` of snapshot `i` in plots: the model, plus the snapshot's number when
/// several snapshots are drawn.
fn label(snaps: &[RunSnapshot], i: usize, run: &RunHistory) -> String {
    if snaps.len() > 1 {
        format!("{} (#{})", run.info.spec, i + 1)
    } else {
        run.info.spec.clone()
    }
}

/// The comparison plot as SVG text: (a) gradient-flow profile, log10 ‖∂L/∂x_l‖ per block at the
/// last step, one line per run; (b) training loss of every run against the step, on a log axis
/// (one spike does not flatten the rest), raw faint and smoothed (EMA) bold. Run colours are
/// the dashboard's ([`crate::plotting`]) on a dark background like a terminal's; the legend
/// sits below both panels, off the curves.
pub fn render_svg(snaps: &[RunSnapshot]) -> Result<String, String> {
    let mut svg = String::new();
    draw(snaps, &mut svg).map_err(|e| e.to_string())?;
    Ok(svg)
}

const PLOT_HEIGHT: u32 = 960;
const LEGEND_ROW: u32 = 22;
const LEGEND_COLUMNS: usize = 4;

type Series = Vec<(String, RGBColor, Vec<(f64, f64)>)>;

fn draw(snaps: &[RunSnapshot], svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let runs: Vec<(usize, &RunHistory)> = snaps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.runs.iter().map(move |r| (i, r)))
        .collect();
    let legend_rows = runs.len().div_ceil(LEGEND_COLUMNS) as u32;
    let height = PLOT_HEIGHT + 16 + legend_rows * LEGEND_ROW;
    let root = SVGBackend::with_string(svg, (1200, height)).into_drawing_area();
    root.fill(&BACKGROUND)?;
    let (plots, legend) = root.split_vertically(PLOT_HEIGHT);
    let (top, bottom) = plots.split_vertically(PLOT_HEIGHT / 2);
    let (left, right) = top.split_horizontally(600);
    let (lower_left, lower_right) = bottom.split_horizontally(600);
    let specs: Vec<&str> = runs.iter().map(|(_, r)| r.info.spec.as_str()).collect();
    let colours = run_colours(&specs);
    let colour = |k: usize| colours[k];
    let series = |f: &dyn Fn(&RunHistory) -> Vec<(f64, f64)>| -> Series {
        runs.iter()
            .enumerate()
            .map(|(k, (i, r))| (label(snaps, *i, r), colour(k), f(r)))
            .collect()
    };

    // The dashboard's three depth views, each against relative depth so nets of different depth
    // compare: (a) the gradient's RMS per element (not the raw norm, which grows with a tensor's
    // size), (c) the update ratio ‖ΔW‖/‖W‖ of each block's conv weights (the mean of the last
    // steps: the effective learning rate), (d) their growth ‖W‖/‖W at init‖.
    let profile = |r: &RunHistory| {
        by_depth(
            r.last()
                .map(|s| s.blocks.iter().map(|b| Some(b.grad_rms as f64)).collect()),
        )
    };
    let rate = |r: &RunHistory| by_depth(Some(learning::recent_update_ratios(&r.steps)));
    let grown = |r: &RunHistory| {
        by_depth(
            r.last()
                .map(|s| learning::growth(&s.blocks, &learning::init_norms(&r.info))),
        )
    };
    depth_panel(
        &left,
        "(a) gradient flow at the last step",
        "log10 RMS of ∂L/∂x per element",
        &series(&profile),
    )?;
    depth_panel(
        &lower_left,
        "(c) effective learning rate: ‖ΔW‖/‖W‖ per block",
        "log10 ‖ΔW‖/‖W‖, mean of the last steps",
        &series(&rate),
    )?;
    depth_panel(
        &lower_right,
        "(d) weight growth since initialisation",
        "log10 ‖W‖ / ‖W at init‖",
        &series(&grown),
    )?;

    // (b) training loss, raw and smoothed, log axis.
    let loss = |r: &RunHistory| -> Vec<(f64, f64)> {
        r.steps
            .iter()
            .map(|s| (s.step as f64, s.loss as f64))
            .filter(|(_, y)| y.is_finite() && *y > 0.0)
            .collect()
    };
    let max_step = runs
        .iter()
        .filter_map(|(_, r)| r.last().map(|s| s.step))
        .max()
        .unwrap_or(1);
    let losses = series(&loss);
    let (lo, hi) = decade_range(losses.iter().flat_map(|(_, _, p)| p).map(|p| p.1));
    let mut chart = panel(
        &right,
        "(b) training loss (faint: raw, bold: smoothed)",
        0f64..max_step.max(1) as f64,
        (lo..hi).log_scale(),
    )?;
    // Steps are whole numbers: the default formatter would print "10.0".
    dark_mesh(&mut chart)
        .x_desc("step")
        .y_desc("loss (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (_, c, points) in &losses {
        let smooth = crate::plotting::ema(points);
        chart.draw_series(LineSeries::new(points.clone(), c.mix(0.35).stroke_width(1)))?;
        chart.draw_series(LineSeries::new(smooth, c.stroke_width(2)))?;
    }
    draw_legend(&legend, &losses)?;
    root.present()?;
    Ok(())
}

/// `(relative depth, log10 value)` of each boundary with a positive finite value.
fn by_depth(values: Option<Vec<Option<f64>>>) -> Vec<(f64, f64)> {
    let values = values.unwrap_or_default();
    let n = values.len();
    values
        .iter()
        .enumerate()
        .filter_map(|(l, v)| {
            let v = (*v)?;
            (v > 0.0 && v.is_finite()).then(|| (relative_depth(l, n), v.log10()))
        })
        .collect()
}

/// One view against relative depth (input 0 → output 1), one line per run; an empty panel says
/// the records do not carry the figure.
fn depth_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    y_desc: &str,
    series: &Series,
) -> Result<(), Box<dyn std::error::Error>> {
    let (lo, hi) = padded_range(series.iter().flat_map(|(_, _, p)| p).map(|p| p.1));
    let mut chart = panel(area, caption, 0f64..1f64, lo..hi)?;
    mesh(&mut chart, "relative depth (input → output)", y_desc)?;
    for (_, c, points) in series {
        if !points.is_empty() {
            chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?;
        }
    }
    if series.iter().all(|(_, _, p)| p.is_empty()) {
        area.draw(&Text::new(
            "not in these records (saved before it was measured)",
            (90, 120),
            font(15),
        ))?;
    }
    Ok(())
}

/// One panel's chart on the dark background.
type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

fn panel<'a, 'b, Y: AsRangedCoord>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    x: Range<f64>,
    y: Y,
) -> Result<Chart<'a, 'b, Y::CoordDescType>, String> {
    ChartBuilder::on(area)
        .caption(caption, font(20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())
}

fn mesh<Y>(chart: &mut Chart<'_, '_, Y>, x_desc: &str, y_desc: &str) -> Result<(), String>
where
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    dark_mesh(chart)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())
}

/// The legend in its own strip below the panels: a line in the run's colour and its label.
fn draw_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    series: &Series,
) -> Result<(), Box<dyn std::error::Error>> {
    let font = font(15);
    for (k, (label, c, _)) in series.iter().enumerate() {
        let x = 60 + (k % LEGEND_COLUMNS) as i32 * 280;
        let y = 8 + (k / LEGEND_COLUMNS) as i32 * LEGEND_ROW as i32;
        area.draw(&PathElement::new(
            vec![(x, y + 8), (x + 24, y + 8)],
            c.stroke_width(3),
        ))?;
        area.draw(&Text::new(label.clone(), (x + 32, y), font.clone()))?;
    }
    Ok(())
}

/// Write [`render_svg`]'s plot to `path`, atomically.
pub fn plot_svg(snaps: &[RunSnapshot], path: &Path) -> Result<(), SnapshotError> {
    let svg = render_svg(snaps).map_err(|message| SnapshotError::Other {
        path: path.to_path_buf(),
        message: format!("cannot draw the plot: {message}"),
    })?;
    let dir = super::atomic::dir_of(path);
    fs::create_dir_all(&dir).map_err(|e| SnapshotError::io("create directory", &dir, e))?;
    super::atomic::write(path, svg.as_bytes()).map_err(|e| SnapshotError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::synthetic;

    #[test]
    fn summary_numbers() {
        let snap = synthetic::snapshot(&["plain-20", "v2-20"], 200, 3);
        let plain = RunSummary::of(&snap.runs[0]);
        let v2 = RunSummary::of(&snap.runs[1]);
        assert_eq!(plain.steps, 200);
        // Synthetic plain nets grow ×1.46 per block (± noise); v2 stays flat.
        let g = plain.grad_growth.unwrap();
        assert!((1.2..1.7).contains(&g), "{g}");
        assert!(v2.grad_growth.unwrap() < 1.15);
        let d = plain.sparsity.unwrap();
        assert!((0.4..0.6).contains(&d), "{d}");
        assert!(plain.test_acc.is_some());
        // Mean over steps 181..=200: the last 10 % of the run.
        let recent: Vec<f32> = snap.runs[0]
            .steps
            .iter()
            .filter(|s| s.step > 180)
            .map(|s| s.loss)
            .collect();
        let m = recent.iter().sum::<f32>() / recent.len() as f32;
        assert!((plain.final_loss.unwrap() - m).abs() < 1e-5);
    }

    #[test]
    fn table_has_a_row_per_run() {
        let a = synthetic::snapshot(&["plain-20", "v1-20"], 100, 1);
        let mut b = synthetic::snapshot(&["v2-20"], 50, 2);
        b.runs[0].status = RunStatus::Diverged {
            step: 40,
            reason: "loss is NaN".into(),
        };
        b.runs[0].evals.clear();
        let t = compare_table(&[("saves/a.ron", a), ("b.ron", b)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("file   model"), "{t}");
        assert!(lines[2].starts_with("a.ron  plain-20"), "{t}");
        assert!(lines[3].starts_with("a.ron  v1-20"), "{t}");
        assert!(lines[4].starts_with("b.ron  v2-20"), "{t}");
        assert!(lines[4].contains("diverged at step 40: loss is NaN"), "{t}");
        assert!(lines[4].contains(" - "), "no test acc: {t}");
        assert!(t.contains("40.0s") && t.contains("20.0s"), "{t}");
    }

    #[test]
    fn empty_runs_do_not_panic() {
        let mut s = synthetic::snapshot(&["v1-20"], 0, 1);
        s.runs[0].steps.clear();
        let t = compare_table(&[("x.ron", s.clone())]);
        assert!(t.contains("x.ron  v1-20"), "{t}");
        assert!(render_svg(&[s]).unwrap().contains("<svg"));
        assert!(render_svg(&[]).unwrap().contains("<svg"));
    }

    #[test]
    fn svg_has_both_panels_and_a_line_per_run() {
        let mut a = synthetic::snapshot(&["plain-20", "v1-20"], 300, 1);
        let mut b = synthetic::snapshot(&["v2-20"], 300, 2);
        // What the trainer records for the depth views: RMS, update ratio, weight norm, and
        // the norms at initialisation.
        for run in a.runs.iter_mut().chain(b.runs.iter_mut()) {
            run.info.init_weight_norms = vec![1.0; run.info.param_names.len()];
            for s in &mut run.steps {
                for (l, blk) in s.blocks.iter_mut().enumerate() {
                    blk.grad_rms = 1e-2 * (l + 1) as f32;
                    blk.update_ratio = 1e-3;
                    blk.weight_norm = 2.0;
                }
            }
        }
        let svg = render_svg(&[a, b]).unwrap();
        for caption in [
            "gradient flow",
            "training loss",
            "effective learning rate",
            "weight growth",
        ] {
            assert!(svg.contains(caption), "{caption}");
        }
        assert!(svg.contains("plain-20 (#1)") && svg.contains("v2-20 (#2)"));
        // 3 runs: RMS profile, update ratio, growth and smoothed loss each, 2 px; a legend mark
        // each, 3 px.
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 12);
        assert_eq!(svg.matches(r#"stroke-width="3""#).count(), 3);
        // The dashboard's colours: plain red, v1 cyan, v2 green (ANSI 9, 14, 10).
        let upper = svg.to_uppercase();
        for (r, g, b) in [(241, 76, 76), (41, 184, 219), (35, 209, 139)] {
            assert!(
                upper.contains(&format!("#{r:02X}{g:02X}{b:02X}")),
                "{r} {g} {b}"
            );
        }
        // Every legend label below the plotting area, not over a curve.
        for label in ["plain-20 (#1)", "v1-20 (#1)", "v2-20 (#2)"] {
            let at = svg.find(label).unwrap_or_else(|| panic!("{label}"));
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let y: f64 = tag
                .split(" y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(y > PLOT_HEIGHT as f64, "{label} at y {y}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cmp.svg");
        plot_svg(&[synthetic::snapshot(&["v1-20"], 20, 1)], &p).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("<svg"));
    }
}
