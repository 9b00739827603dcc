//! Gradient flow, the centrepiece: the size-free RMS of ∂L/∂x_l at every block boundary, from
//! the input (0) to the output (1) in relative depth so nets of different depth overlay, on a
//! log scale. Each run's first recorded step stays beneath as faint dots. Below the chart, per
//! run, the fitted growth of the gradient per block toward the input now, and at the first
//! recorded step (with the input ÷ output ratio there), so the explosion at initialisation stays
//! on screen after training has flattened the profile; the mean-field prediction for plain
//! batch-normalised stacks, which is about initialisation, is set beside the first step.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Chart, Dataset, GraphType, Paragraph};

use crate::numfmt;
use crate::records::flow::{MEAN_FIELD_GROWTH, Slope, relative_depth, spread, step_slope};
use crate::records::record::BlockStat;
use crate::tui::app::App;
use crate::tui::series;
use crate::tui::theme;
use crate::tui::views::chart::{run_lines, unit_x_chart, vertical};

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
    /// The first recorded step: its number, fitted growth and input ÷ output ratio.
    start: Option<(u64, Option<Slope>, Option<f64>)>,
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
            start: steps
                .first()
                .map(|r| (r.step, step_slope(&r.blocks), spread(&r.blocks))),
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
        let mut marker = Vec::new();
        frame.render_widget(chart(app, &profiles, &mut marker, chart_area), chart_area);
    }
    frame.render_widget(
        Paragraph::new(legend(app, &profiles, legend_area.width as usize)),
        legend_area,
    );
}

/// `marker` receives the cursor readout's block, drawn over the runs.
fn chart<'a>(
    app: &App,
    profiles: &'a [Profile],
    marker: &'a mut Vec<(f64, f64)>,
    area: Rect,
) -> Chart<'a> {
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
    let mut datasets: Vec<Dataset> = ghosts.chain(lines).collect();
    let ys = order.iter().flat_map(|&i| {
        profiles[i]
            .now
            .iter()
            .chain(&profiles[i].first)
            .map(|q| q.1)
    });
    let [lo, hi] = series::range(ys).unwrap_or([-1.0, 1.0]);
    let max_labels = (height.saturating_sub(2) as usize / 2).clamp(2, 6);
    let (y_bounds, decades) = series::decades(lo, hi, max_labels);
    if let Some(r) = app.readout() {
        let blocks = app.readout_blocks();
        if blocks > 0 {
            *marker = vertical(relative_depth(r.block.min(blocks - 1), blocks), y_bounds);
        }
    }
    datasets.push(crate::tui::views::chart::marker(marker));
    let x_labels = if area.width >= 70 {
        vec!["input", "relative depth", "output"]
    } else {
        vec!["input", "output"]
    };
    let y_labels = decades.into_iter().map(theme::pow10);
    unit_x_chart(datasets, x_labels, y_bounds, y_labels)
}

fn legend(app: &App, profiles: &[Profile], width: usize) -> Vec<Line<'static>> {
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
            let head = format!("{mark}{} {spec:<9} ", i + 1);
            if app.hidden(i) {
                return Line::from(vec![
                    Span::styled(head, style),
                    Span::styled("hidden · h shows it", theme::muted()),
                ]);
            }
            let alarm = if p.non_finite {
                " ! non-finite gradient "
            } else {
                ""
            };
            let Some(now) = p.slope else {
                return Line::from(vec![
                    Span::styled(head, style),
                    Span::styled("no data", theme::muted()),
                    Span::styled(alarm, theme::alarm()),
                ]);
            };
            // The richest text that fits: the step-1 profile is what must stay on screen.
            let plain = spec.starts_with("plain");
            let rich = start_text(p.start, plain, Detail::Full);
            let (now_text, start) = [
                (format!("now ×{:.2}/blk→in", now.factor()), rich),
                (
                    format!("now ×{:.2}/blk→in", now.factor()),
                    start_text(p.start, plain, Detail::NoTheory),
                ),
                (
                    format!("now ×{:.2}", now.factor()),
                    start_text(p.start, plain, Detail::Compact),
                ),
                (
                    format!("×{:.2}", now.factor()),
                    start_text(p.start, plain, Detail::Spread),
                ),
            ]
            .into_iter()
            .find(|(n, s)| head.chars().count() + n.chars().count() + s.chars().count() <= width)
            .unwrap_or_else(|| {
                (
                    format!("×{:.2}", now.factor()),
                    start_text(p.start, plain, Detail::Spread),
                )
            });
            Line::from(vec![
                Span::styled(head, style),
                Span::styled(now_text, style),
                Span::styled(start, theme::muted()),
                Span::styled(alarm, theme::alarm()),
            ])
        })
        .collect();
    lines.push(Line::styled(
        format!(
            "··· first step  ×/blk: fitted growth per block toward the input  plain BN nets at \
             init, theory (Yang 2019): ×{MEAN_FIELD_GROWTH:.2}  RMS = ‖∂L/∂xₗ‖·√B/√(C·H·W)"
        ),
        theme::muted(),
    ));
    lines
}

/// How much of the first step's profile a legend line has room for.
#[derive(Clone, Copy, PartialEq)]
enum Detail {
    /// Fitted growth, the theory beside it (plain nets), input ÷ output.
    Full,
    NoTheory,
    /// Fitted growth without units, input ÷ output.
    Compact,
    /// Input ÷ output only.
    Spread,
}

/// ` · step 1 ×1.36/blk (theory ×1.47), in÷out ×4.8e3`: the profile of the first recorded
/// step, the mean-field prediction (plain nets only, and about initialisation) beside its fit.
fn start_text(start: Option<(u64, Option<Slope>, Option<f64>)>, plain: bool, d: Detail) -> String {
    let Some((step, slope, spread)) = start else {
        return String::new();
    };
    let mut t = match d {
        Detail::Spread => format!(" │ step {step}"),
        _ => format!(" · step {step}"),
    };
    if let (Some(s), true) = (slope, d != Detail::Spread) {
        let unit = if d == Detail::Compact { "" } else { "/blk" };
        t += &format!(" ×{:.2}{unit}", s.factor());
        if plain && d == Detail::Full {
            t += &format!(" (theory ×{MEAN_FIELD_GROWTH:.2})");
        }
    }
    if let Some(r) = spread {
        t += &match d {
            Detail::Spread => format!(" in÷out {}", numfmt::ratio(r)),
            _ => format!(", in÷out {}", numfmt::ratio(r)),
        };
    }
    t
}
