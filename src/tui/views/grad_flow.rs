//! Gradient flow, the centrepiece: ‖∂L/∂x_l‖ at every block boundary from input to output on a
//! log scale, at the current step. The focused run is drawn last and bold, the others dimmed
//! beneath it; each run's spread (largest over smallest norm across blocks) is written below the
//! chart, because the spread is the number that separates a plain stack from a residual one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use crate::tui::app::App;
use crate::tui::series;
use crate::tui::theme;

/// One run's profile at the current step.
struct Profile {
    /// `(block index, log10 norm)`, non-finite and zero norms left out.
    points: Vec<(f64, f64)>,
    blocks: usize,
    /// Some block's norm is NaN or infinite.
    non_finite: bool,
}

impl Profile {
    fn of(app: &App, run: usize) -> Profile {
        let blocks = app
            .current(run)
            .map(|r| r.blocks.as_slice())
            .unwrap_or_default();
        let points = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| series::log10(b.grad_norm).map(|y| (i as f64, y)))
            .collect();
        let non_finite = blocks.iter().any(|b| !b.grad_norm.is_finite());
        Profile {
            points,
            blocks: blocks.len(),
            non_finite,
        }
    }

    /// max/min over blocks, in linear units.
    fn spread(&self) -> Option<f64> {
        let logs = self.points.iter().map(|p| p.1);
        let lo = logs.clone().reduce(f64::min)?;
        let hi = logs.reduce(f64::max)?;
        Some(10f64.powf(hi - lo))
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(
        " gradient flow ‖∂L/∂xₗ‖ · input → output ",
        theme::title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let profiles: Vec<Profile> = (0..app.histories().len())
        .map(|i| Profile::of(app, i))
        .collect();
    let legend_rows = (profiles.len() as u16).min(inner.height / 3);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(legend_rows)]).areas(inner);
    if profiles.iter().all(|p| p.points.is_empty()) {
        let text = if app.latest().is_some() {
            "no finite gradient norms at this step"
        } else {
            "waiting for the first step…"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme::muted())),
            chart_area,
        );
    } else {
        frame.render_widget(chart(app, &profiles, chart_area.height), chart_area);
    }
    frame.render_widget(Paragraph::new(legend(app, &profiles)), legend_area);
}

fn chart<'a>(app: &App, profiles: &'a [Profile], height: u16) -> Chart<'a> {
    let focus = app.focus();
    // Others first so the focused run is painted over them.
    let order = (0..profiles.len())
        .filter(|&i| i != focus)
        .chain((focus < profiles.len()).then_some(focus));
    let datasets = order
        .map(|i| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme::run_style(i, focus))
                .data(&profiles[i].points)
        })
        .collect();
    let [lo, hi] = series::range(profiles.iter().flat_map(|p| p.points.iter().map(|q| q.1)))
        .unwrap_or([-1.0, 1.0]);
    let max_labels = (height.saturating_sub(2) as usize / 2).clamp(2, 6);
    let (y_bounds, decades) = series::decades(lo, hi, max_labels);
    let last = profiles
        .iter()
        .map(|p| p.blocks)
        .max()
        .unwrap_or(0)
        .saturating_sub(1)
        .max(1);
    let x_labels = match last {
        0..4 => vec!["0 in".to_string(), format!("{last} out")],
        _ => vec![
            "0 in".to_string(),
            format!("{}", last / 2),
            format!("{last} out"),
        ],
    };
    Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([0.0, last as f64])
                .labels(x_labels)
                .style(theme::muted()),
        )
        .y_axis(
            Axis::default()
                .bounds(y_bounds)
                .labels(decades.into_iter().map(theme::pow10))
                .style(theme::muted()),
        )
        .legend_position(None)
}

fn legend(app: &App, profiles: &[Profile]) -> Vec<Line<'static>> {
    profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let style = theme::run_style(i, app.focus());
            let mark = if i == app.focus() {
                "━━ "
            } else {
                "── "
            };
            let spec = &app.histories()[i].info.spec;
            let mut spans = vec![Span::styled(format!("{mark}{} {spec:<12}", i + 1), style)];
            spans.push(match p.spread() {
                Some(s) => Span::styled(
                    format!(
                        " spread {} (max/min over {} blocks)",
                        theme::ratio(s),
                        p.blocks
                    ),
                    style,
                ),
                None => Span::styled(" no data", theme::muted()),
            });
            if p.non_finite {
                spans.push(Span::styled("  ! non-finite gradient", theme::alarm()));
            }
            Line::from(spans)
        })
        .collect()
}
