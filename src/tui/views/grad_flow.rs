//! Gradient flow, the centrepiece: the size-free RMS of ∂L/∂x_l at every block boundary, from
//! the input (0) to the output (1) in relative depth so nets of different depth overlay, on a
//! log scale. Each run's first recorded step stays beneath as a faint line. Below the chart, per
//! run, the fitted growth of the gradient per block toward the input, with its sign; for plain
//! stacks the mean-field prediction beside it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Chart, Dataset, GraphType, Paragraph};

use crate::records::flow::{MEAN_FIELD_GROWTH, Slope, relative_depth, step_slope};
use crate::records::record::BlockStat;
use crate::tui::app::App;
use crate::tui::series;
use crate::tui::theme;
use crate::tui::views::chart::{run_lines, unit_x_chart};

/// `(relative depth, log10 RMS)` of one step's boundaries; zeros and non-finite values left out.
fn points(blocks: &[BlockStat]) -> Vec<(f64, f64)> {
    blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            series::log10(b.grad_rms).map(|y| (relative_depth(i, blocks.len()), y))
        })
        .collect()
}

struct Profile {
    now: Vec<(f64, f64)>,
    first: Vec<(f64, f64)>,
    slope: Option<Slope>,
    non_finite: bool,
}

impl Profile {
    fn of(app: &App, run: usize) -> Profile {
        let steps = app.steps(run);
        let blocks = steps
            .last()
            .map(|r| r.blocks.as_slice())
            .unwrap_or_default();
        Profile {
            now: points(blocks),
            first: steps.first().map(|r| points(&r.blocks)).unwrap_or_default(),
            slope: step_slope(blocks),
            non_finite: blocks.iter().any(|b| !b.grad_norm.is_finite()),
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(
        " gradient flow · RMS of ∂ℓ/∂xₗ per element · input → output ",
        theme::title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let profiles: Vec<Profile> = (0..app.histories().len())
        .map(|i| Profile::of(app, i))
        .collect();
    let legend_rows = (profiles.len() as u16 + 1).min(inner.height / 3);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(legend_rows)]).areas(inner);
    if profiles.iter().all(|p| p.now.is_empty()) {
        let text = if app.latest().is_some() {
            "no finite gradients at this step"
        } else {
            "waiting for the first step…"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme::muted())),
            chart_area,
        );
    } else {
        frame.render_widget(chart(app, &profiles, chart_area), chart_area);
    }
    frame.render_widget(Paragraph::new(legend(app, &profiles)), legend_area);
}

fn chart<'a>(app: &App, profiles: &'a [Profile], area: Rect) -> Chart<'a> {
    let height = area.height;
    // Ghosts first, then the others, the focused run last so it is painted over them.
    let order: Vec<usize> = app
        .draw_order()
        .into_iter()
        .filter(|&i| i < profiles.len())
        .collect();
    let ghosts = order.iter().map(|&i| {
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(theme::ghost_style(app.run_color(i)))
            .data(&profiles[i].first)
    });
    let lines = run_lines(app, profiles.len(), |i| &profiles[i].now);
    let datasets = ghosts.chain(lines).collect();
    let ys = profiles
        .iter()
        .flat_map(|p| p.now.iter().chain(&p.first).map(|q| q.1));
    let [lo, hi] = series::range(ys).unwrap_or([-1.0, 1.0]);
    let max_labels = (height.saturating_sub(2) as usize / 2).clamp(2, 6);
    let (y_bounds, decades) = series::decades(lo, hi, max_labels);
    let x_labels = if area.width >= 70 {
        vec!["input", "relative depth", "output"]
    } else {
        vec!["input", "output"]
    };
    let y_labels = decades.into_iter().map(theme::pow10);
    unit_x_chart(datasets, x_labels, y_bounds, y_labels)
}

/// `grows ×1.36/block→in (+0.31)`: the fitted factor per block toward the input, with the
/// signed log-slope.
pub fn slope_text(s: Slope) -> String {
    let f = s.factor();
    let word = if f >= 1.05 {
        "grows"
    } else if f <= 1.0 / 1.05 {
        "shrinks"
    } else {
        "flat"
    };
    format!("{word} ×{:.2}/block→in ({:+.2})", f, s.per_block)
}

fn legend(app: &App, profiles: &[Profile]) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let style = app.run_style(i);
            let mark = if i == app.focus() {
                "━━ "
            } else {
                "── "
            };
            let spec = &app.histories()[i].info.spec;
            let mut spans = vec![Span::styled(format!("{mark}{} {spec:<9} ", i + 1), style)];
            spans.push(match p.slope {
                Some(s) => Span::styled(slope_text(s), style),
                None => Span::styled("no data", theme::muted()),
            });
            if spec.starts_with("plain") {
                spans.push(Span::styled(
                    format!("  theory at init ×{MEAN_FIELD_GROWTH:.2}"),
                    theme::muted(),
                ));
            }
            if p.non_finite {
                spans.push(Span::styled(" ! non-finite gradient ", theme::alarm()));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::styled(
        "··· step 1   RMS = ‖∂L/∂xₗ‖·√B/√(C·H·W)   →in: toward the input",
        theme::muted(),
    ));
    lines
}
