//! The experiment panel: the experiments that explain why residual networks train, run on copies
//! of the live weights (`x`), one kind shown at a time (`e`). While one runs, a gauge shows its
//! progress; training and the other panels go on.
//!
//! Lesion study (Veit, Wilber, Belongie 2016, §4): per run, test accuracy with each single block
//! deleted, against the block's relative depth, with the chance level marked. A plain stack falls
//! to chance whichever block goes; a residual net barely notices, except at its downsampling
//! blocks.

mod landscape;
mod shatter;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Dataset, Gauge, GraphType, Paragraph, Wrap};

use crate::records::LesionReport;
use crate::records::flow::relative_depth;
use crate::records::{ExperimentKind, ExperimentResult};
use crate::tui::app::App;
use crate::tui::theme;
use crate::tui::views::chart::{fraction_by_depth, run_lines};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let ex = app.experiments();
    let title = format!(" {} · x run · e next ", ex.shown.name());
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let running = ex.running.filter(|r| r.kind == ex.shown);
    let gauge_rows = u16::from(running.is_some());
    let [gauge_area, body] =
        Layout::vertical([Constraint::Length(gauge_rows), Constraint::Fill(1)]).areas(inner);
    if let Some(r) = running {
        let label = if r.total == 0 {
            "starting…".to_string()
        } else {
            let unit = match r.kind {
                ExperimentKind::Lesion => "evaluations",
                ExperimentKind::Shatter | ExperimentKind::Landscape => "forward passes",
            };
            format!("{} / {} {unit} · x stops", r.done, r.total)
        };
        let gauge = Gauge::default()
            .ratio(r.fraction())
            .label(label)
            .gauge_style(theme::title());
        frame.render_widget(gauge, gauge_area);
    }
    // A result from before a restart stays readable but says it no longer describes the runs.
    let stale = ex.stale(ex.shown).filter(|_| running.is_none());
    let [stale_area, body] = Layout::vertical([
        Constraint::Length(u16::from(stale.is_some())),
        Constraint::Fill(1),
    ])
    .areas(body);
    if let Some(why) = stale {
        let line = Line::styled(format!("stale: {why} · x reruns"), theme::alarm());
        frame.render_widget(Paragraph::new(line), stale_area);
    }
    match ex.result(ex.shown) {
        Some(ExperimentResult::Lesion { report, classes }) => {
            lesion(frame, body, app, report, *classes)
        }
        Some(ExperimentResult::Shatter(results)) => shatter::render(frame, body, app, results),
        Some(ExperimentResult::Landscape(results)) => landscape::render(frame, body, app, results),
        None => {
            let text = if running.is_some() {
                String::new()
            } else {
                intro(ex.shown)
            };
            let p = Paragraph::new(Span::styled(text, theme::muted())).wrap(Wrap { trim: true });
            frame.render_widget(p, body);
        }
    }
}

fn intro(kind: ExperimentKind) -> String {
    match kind {
        ExperimentKind::Shatter => "Press x to compute, for every run, the gradient of one logit \
             along a line of 256 inputs between two test images (Balduzzi et al. 2017): \
             at initialisation a plain deep net's looks like white noise, a residual net's \
             stays correlated."
            .into(),
        ExperimentKind::Landscape => "Press x to compute, for every run, the training loss on \
             an 11×11 grid around its weights along two filter-normalised random directions \
             (Li et al. 2018), on 256 training images."
            .into(),
        ExperimentKind::Lesion => format!(
            "Press x to delete each block in turn from a copy of every run and measure test \
             accuracy on {} test images (Veit et al. 2016). Training goes on meanwhile.",
            crate::records::DASHBOARD_LESION_IMAGES
        ),
    }
}

/// `(relative depth of the deleted block's input, accuracy)` per deletable block.
fn lesion_points(report: &LesionReport, run: usize) -> Vec<(f64, f64)> {
    let Some(m) = report.models.get(run) else {
        return Vec::new();
    };
    let n = m.blocks.len() + 1;
    m.blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((relative_depth(i, n), b.accuracy?)))
        .collect()
}

fn lesion(frame: &mut Frame, area: Rect, app: &App, report: &LesionReport, classes: usize) {
    let runs = report.models.len().min(app.histories().len());
    let early = report.models[..runs].iter().any(|m| m.at_chance(classes));
    let legend_rows = (runs as u16 + 2 + u16::from(early)).min(area.height / 2);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(legend_rows)]).areas(area);
    let chance = 1.0 / classes.max(1) as f64;
    let chance_line = [(0.0, chance), (1.0, chance)];
    let series: Vec<Vec<(f64, f64)>> = (0..runs).map(|i| lesion_points(report, i)).collect();
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme::muted())
            .data(&chance_line),
    ];
    datasets.extend(run_lines(app, runs, |i| &series[i]));
    let chart = fraction_by_depth(datasets);
    frame.render_widget(chart, chart_area);
    let mut lines: Vec<Line> = (0..runs)
        .map(|i| lesion_legend(report, i, classes, app.run_style(i)))
        .collect();
    if early {
        // Pressed early, every run can sit at chance: then its flat line is no finding.
        lines.push(Line::styled("at chance: train on, then x", theme::alarm()));
    }
    // Short lines: the panel is 33 columns wide at 80×24.
    lines.push(Line::styled(
        // `resviz lesion`'s sign; the grey line is chance. 33 columns at 80×24.
        format!("drop=intact−lesioned · chance {:.0}%", chance * 100.0),
        theme::muted(),
    ));
    lines.push(Line::styled(
        format!(
            "step {} · {} test images",
            steps(&report.params.steps),
            report.params.test_images
        ),
        theme::muted(),
    ));
    frame.render_widget(Paragraph::new(lines), legend_area);
}

fn lesion_legend(report: &LesionReport, i: usize, classes: usize, style: Style) -> Line<'static> {
    let m = &report.models[i];
    let mut text = format!("{} {:<9}{:>4.0}%", i + 1, m.model, m.accuracy * 100.0);
    if m.at_chance(classes) {
        text.push_str("  at chance");
        return Line::styled(text, style);
    }
    // Drops in points, signed as `resviz lesion` prints them (intact − lesioned: positive
    // hurt; a deletion can also help a little).
    if let Some(d) = m.median_drop() {
        text.push_str(&format!("  median {:+.1}", d * 100.0));
    }
    if let Some((name, d)) = m.max_drop() {
        let name = name.strip_prefix("stages.").unwrap_or(name);
        text.push_str(&format!(", max {:+.0} @{name}", d * 100.0));
    }
    Line::styled(text, style)
}

/// The steps the runs were at, once if they agree.
fn steps(steps: &[u64]) -> String {
    match steps {
        [first, rest @ ..] if rest.iter().all(|s| s == first) => first.to_string(),
        _ => steps
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("/"),
    }
}
