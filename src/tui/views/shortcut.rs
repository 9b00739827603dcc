//! He et al. 2016, eq. 5, at every block: ∂L/∂x_l is what arrives through the shortcut plus what
//! comes back through the branch. The chart shows, per run and per block input, the shortcut's
//! share ‖shortcut part‖ / (‖shortcut part‖ + ‖branch part‖): 0 everywhere for a plain stack,
//! whose gradient must pass through every layer; about a half or more for a residual net, whose
//! shortcuts hand the gradient of the output straight to every block.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::records::flow::{median_share, relative_depth};
use crate::records::record::BlockStat;
use crate::records::stage::stage_direct_of;
use crate::tui::app::App;
use crate::tui::theme;
use crate::tui::views::chart::{fraction_by_depth, run_lines};

/// `(relative depth of the block's input, share)` per measured block.
fn points(blocks: &[BlockStat]) -> Vec<(f64, f64)> {
    blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let s = b.split?.share()?;
            (i > 0 && s.is_finite()).then(|| (relative_depth(i - 1, blocks.len()), s as f64))
        })
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(
        " shortcut's share of ∂L/∂xₗ · He 2016 eq. 5 ",
        theme::title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let runs = app.histories().len();
    let series: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            app.current(i)
                .map(|r| points(&r.blocks))
                .unwrap_or_default()
        })
        .collect();
    let legend = legend(app);
    let legend_rows = (legend.len() as u16).min(inner.height / 2);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(legend_rows)]).areas(inner);
    if series.iter().all(Vec::is_empty) {
        let text = if app.latest().is_some() {
            "not measured in this record (saved before eq. 5 was)"
        } else {
            "waiting for the first step…"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme::muted())),
            chart_area,
        );
    } else {
        let datasets = run_lines(app, series.len(), |i| &series[i]);
        let chart = fraction_by_depth(datasets);
        frame.render_widget(chart, chart_area);
    }
    frame.render_widget(Paragraph::new(legend), legend_area);
}

fn legend(app: &App) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = (0..app.histories().len())
        .flat_map(|i| {
            let style = app.run_style(i);
            let spec = &app.histories()[i].info.spec;
            let blocks = app
                .current(i)
                .map(|r| r.blocks.as_slice())
                .unwrap_or_default();
            let text = match (median_share(blocks), lowest(app, i, blocks)) {
                _ if app.hidden(i) => "hidden".into(),
                (Some(0.0), _) => "0: no shortcut".into(),
                (Some(m), Some((name, lo))) => {
                    // `name` is a block (stage.block), not a depth: say so.
                    let at = if name == "stem" { "" } else { "block " };
                    let (m, lo) = (m * 100.0, lo * 100.0);
                    format!("median {m:.0}%, min {lo:.0}% @{at}{name}")
                }
                (Some(m), None) => format!("median {:.0}%", m * 100.0),
                (None, _) => "—".into(),
            };
            let mut run = vec![Line::from(vec![
                Span::styled(format!("{} {spec:<9} ", i + 1), style),
                Span::styled(text, style),
            ])];
            // He 2016 eq. 5 across each stage, beside the one-unit share (records::stage).
            let names = &app.histories()[i].info.block_names;
            let direct = stage_direct_of(spec, names, blocks);
            if !direct.is_empty() && !app.hidden(i) {
                let mark = if direct.iter().all(|x| x.exact) {
                    ""
                } else {
                    "≈"
                };
                let r: Vec<String> = direct.iter().map(|x| format!("{:.2}", x.ratio)).collect();
                run.push(Line::styled(
                    format!("  direct{mark} {} (stages)", r.join(" / ")),
                    style,
                ));
            }
            run
        })
        .collect();
    lines.push(Line::styled(
        "share = ‖shortcut part‖ / (‖shortcut‖ + ‖branch‖)",
        theme::muted(),
    ));
    // He 2016 eq. 5 across each stage, beside the one-unit share (records::stage).
    lines.push(Line::styled(
        "direct = ‖∂L/∂x_L‖/‖∂L/∂x_l‖ per stage, ≈ inexact",
        theme::muted(),
    ));
    lines
}

/// The block with the lowest shortcut share, by name.
fn lowest(app: &App, run: usize, blocks: &[BlockStat]) -> Option<(String, f32)> {
    let names = &app.histories()[run].info.block_names;
    blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((i, b.split?.share()?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, s)| {
            let name = names
                .get(i)
                .map_or("?", |n| n.strip_prefix("stages.").unwrap_or(n));
            (name.to_string(), s)
        })
}
