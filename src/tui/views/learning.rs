//! Learning panel: how fast each block learns, ‖ΔW‖/‖W‖ of its convolution weights averaged
//! over the last steps (the effective learning rate: batch norm makes a conv's output blind to
//! its weights' scale, so this ratio, not the learning rate, is how fast the block changes), or
//! how far its weights have grown, ‖W‖/‖W at init‖ (`w` toggles). Every run on one log axis
//! against relative depth; the legend gives each run's input-third ÷ output-third figure.
//! Beside the panels (a strip of their own), one "why" line per run (`records::learning::why_at`): what its measured
//! numbers say, and nothing they do not.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::numfmt;
use crate::records::flow::relative_depth;
use crate::records::learning::{self, RECENT};
use crate::tui::app::{App, LearnMode};
use crate::tui::series;
use crate::tui::theme;
use crate::tui::views::chart::{run_lines, unit_x_chart};

/// Per block boundary, the figure `mode` draws for run `run` (as of the cursor).
fn values(app: &App, run: usize, mode: LearnMode) -> Vec<Option<f64>> {
    let steps = app.steps(run);
    match mode {
        LearnMode::Ratio => learning::recent_update_ratios(steps),
        LearnMode::Growth => {
            let init = learning::init_norms(&app.histories()[run].info);
            steps
                .last()
                .map(|l| learning::growth(&l.blocks, &init))
                .unwrap_or_default()
        }
    }
}

/// `(relative depth, log10 value)` of the boundaries with a value.
fn points(values: &[Option<f64>]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = v.filter(|v| v.is_finite() && *v > 0.0)?;
            Some((relative_depth(i, values.len()), v.log10()))
        })
        .collect()
}

/// The panel: chart above, legend below.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mode = app.learn_mode();
    let title = match mode {
        LearnMode::Ratio => " eff. learning rate · ‖ΔW‖/‖W‖ per block ",
        LearnMode::Growth => " weight growth · ‖W‖/‖W at init‖ per block ",
    };
    let block = Block::bordered().title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let runs = app.histories().len();
    let per_run: Vec<Vec<Option<f64>>> = (0..runs).map(|i| values(app, i, mode)).collect();
    let profiles: Vec<Vec<(f64, f64)>> = per_run.iter().map(|v| points(v)).collect();
    let mut legend = legend(app, &per_run, mode);
    legend.push(Line::styled(
        match mode {
            LearnMode::Ratio => format!("mean of the last {RECENT} steps · w: growth"),
            LearnMode::Growth => "its convs' ‖W‖ now ÷ at init · w: update".into(),
        },
        theme::muted(),
    ));
    let rows = (legend.len() as u16).min(inner.height / 2);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(rows)]).areas(inner);
    if profiles.iter().all(Vec::is_empty) {
        let text = "no update measured yet: the first step's figures arrive with it";
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme::muted())).wrap(Wrap { trim: true }),
            chart_area,
        );
    } else {
        let lines = run_lines(app, runs, |i| &profiles[i]);
        let ys = profiles.iter().flatten().map(|p| p.1);
        let [lo, hi] = series::range(ys).unwrap_or([-1.0, 1.0]);
        let labels = (chart_area.height.saturating_sub(2) as usize / 2).clamp(2, 5);
        let (y_bounds, decades) = series::decades(lo, hi, labels);
        let chart = unit_x_chart(
            lines,
            ["input", "output"],
            y_bounds,
            decades.into_iter().map(theme::pow10),
        );
        frame.render_widget(chart, chart_area);
    }
    frame.render_widget(Paragraph::new(legend), legend_area);
}

/// Per run: `━━ 1 plain-56  in÷out ×0.070` (update ratio) or `in ×13.3 · out ×1.00` (growth).
fn legend(app: &App, per_run: &[Vec<Option<f64>>], mode: LearnMode) -> Vec<Line<'static>> {
    per_run
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let style = app.run_style(i);
            let mark = if i == app.focus() {
                "━━ "
            } else {
                "── "
            };
            let spec = &app.histories()[i].info.spec;
            let head = Span::styled(format!("{mark}{} {spec:<9} ", i + 1), style);
            let figure = match (mode, learning::by_third(v)) {
                _ if app.hidden(i) => Span::styled("hidden", theme::muted()),
                (_, None) => Span::styled("not measured", theme::muted()),
                (LearnMode::Ratio, Some([a, _, c])) => {
                    Span::styled(format!("in÷out {}", numfmt::ratio(a / c)), style)
                }
                (LearnMode::Growth, Some([a, _, c])) => Span::styled(
                    format!("in {} · out {}", numfmt::ratio(a), numfmt::ratio(c)),
                    style,
                ),
            };
            Line::from(vec![head, figure])
        })
        .collect()
}

/// Per run: `1 plain-56: <why line>`; runs without one yet are left out.
pub fn why_lines(app: &App) -> Vec<Line<'static>> {
    (0..app.histories().len())
        .filter_map(|i| {
            let h = &app.histories()[i];
            let text = learning::why_at(&h.info, app.steps(i))?;
            Some(Line::from(vec![
                Span::styled(format!(" {} {}: ", i + 1, h.info.spec), app.run_style(i)),
                Span::raw(text),
            ]))
        })
        .collect()
}
