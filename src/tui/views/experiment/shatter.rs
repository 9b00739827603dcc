//! Gradient shattering (Balduzzi et al. 2017): per run, g(t) = d logit/dt along the line from
//! one test image to another, scaled to its largest magnitude so the shapes compare, and its
//! autocorrelation at lags 1 and 8. At initialisation a plain deep net's g(t) looks like white
//! noise (r₁ ≈ 0) and a residual net's stays correlated; training smooths both.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use crate::train::shatter::ShatterResult;
use crate::tui::app::App;
use crate::tui::theme;

/// `(t, g(t) / max |g|)` of one run.
fn points(r: &ShatterResult) -> Vec<(f64, f64)> {
    let n = r.grad.len();
    let peak = r.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let scale = if peak > 0.0 && peak.is_finite() {
        1.0 / peak
    } else {
        0.0
    };
    r.grad
        .iter()
        .enumerate()
        .map(|(i, g)| (i as f64 / (n.max(2) - 1) as f64, g * scale))
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, results: &[ShatterResult]) {
    let runs = results.len().min(app.histories().len());
    let legend_rows = (runs as u16 + 2).min(area.height / 2);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(legend_rows)]).areas(area);
    let series: Vec<Vec<(f64, f64)>> = results[..runs].iter().map(points).collect();
    let datasets = app
        .draw_order()
        .into_iter()
        .filter(|&i| i < runs)
        .map(|i| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(app.run_style(i))
                .data(&series[i])
        })
        .collect();
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([0.0, 1.0])
                .labels(["x₀", "x₁"])
                .style(theme::muted()),
        )
        .y_axis(
            Axis::default()
                .bounds([-1.0, 1.0])
                .labels(["−max", "0", "max"])
                .style(theme::muted()),
        )
        .legend_position(None);
    frame.render_widget(chart, chart_area);
    let mut lines: Vec<Line> = results[..runs]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lag = |k: usize| r.autocorr.get(k - 1).copied().unwrap_or(f64::NAN);
            let text = format!(
                "{} {:<9} r₁ {:+.2}  r₈ {:+.2}",
                i + 1,
                r.model,
                lag(1),
                lag(8)
            );
            Line::styled(text, app.run_style(i))
        })
        .collect();
    if let Some(r) = results.first() {
        lines.push(Line::styled(
            format!(
                "d logit[{}]/dt from test image {} to {}, scaled",
                r.class, r.params.from_image, r.params.to_image
            ),
            theme::muted(),
        ));
    }
    lines.push(Line::styled(
        "rₖ: autocorrelation at lag k; white noise ≈ 0",
        theme::muted(),
    ));
    frame.render_widget(Paragraph::new(lines), legend_area);
}
