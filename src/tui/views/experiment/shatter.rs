//! Gradient shattering (Balduzzi et al. 2017): per run, g(t) = d logit/dt along the line from
//! one test image to another, scaled to its largest magnitude so the shapes compare, and its
//! autocorrelation at lags 1 and 8. At initialisation a plain deep net's g(t) looks like white
//! noise (r₁ ≈ 0) and a residual net's stays correlated; training smooths both.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::records::ShatterResult;
use crate::tui::app::App;
use crate::tui::theme;
use crate::tui::views::chart::{run_lines, unit_x_chart};

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
    let datasets = run_lines(app, runs, |i| &series[i]);
    let chart = unit_x_chart(datasets, ["x₀", "x₁"], [-1.0, 1.0], ["−max", "0", "max"]);
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
