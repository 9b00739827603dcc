//! Loss landscape (Li et al. 2018): per run, the training loss at θ + α·d₁ + β·d₂ over the grid
//! α, β ∈ [−1, 1] (filter-normalised random directions), side by side on one log colour scale,
//! with the fraction of grid points where the surface is locally non-convex.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::records::LandscapeResult;
use crate::tui::app::App;
use crate::tui::theme;
use crate::tui::widgets::Heatmap;

/// Decades of loss the colour scale spans above the lowest loss: the plain nets' walls reach
/// 10⁹ and would flatten everything else to one colour.
const DECADES: f64 = 3.0;

/// `columns[α][row]` of log₁₀ loss, β = +1 in the top row.
fn columns(r: &LandscapeResult) -> Vec<Vec<f64>> {
    let g = r.coords.len();
    (0..g)
        .map(|a| {
            (0..g)
                .rev()
                .map(|b| {
                    let l = r.losses.get(b).and_then(|row| row.get(a)).copied();
                    l.filter(|l| *l > 0.0).map_or(f64::NAN, f64::log10)
                })
                .collect()
        })
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, results: &[LandscapeResult]) {
    let runs = results.len().min(app.histories().len());
    if runs == 0 {
        return;
    }
    let maps: Vec<Vec<Vec<f64>>> = results[..runs].iter().map(columns).collect();
    let lo = maps
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let range = if lo.is_finite() {
        [lo, lo + DECADES]
    } else {
        [0.0, 1.0]
    };
    let [maps_area, legend_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(runs as u16 + 2)]).areas(area);
    let cells = Layout::horizontal(vec![Constraint::Fill(1); runs]).split(maps_area);
    for (i, cell) in cells.iter().enumerate() {
        let block = Block::bordered()
            .border_style(app.run_style(i))
            .title(Span::styled(
                format!(" {} ", results[i].model),
                app.run_style(i),
            ));
        let inner = block.inner(*cell);
        frame.render_widget(block, *cell);
        // The widget draws one column per cell: repeat each grid column to fill the width.
        let g = maps[i].len().max(1);
        let wide: Vec<Vec<f64>> = (0..inner.width as usize)
            .map(|x| maps[i][(x * g / inner.width.max(1) as usize).min(g - 1)].clone())
            .collect();
        frame.render_widget(Heatmap::new(&wide, range), inner);
    }
    let mut lines: Vec<Line> = results[..runs]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let text = format!(
                "{} {:<9} loss at θ {:.3}, non-convex {:.0}%",
                i + 1,
                r.model,
                r.centre_loss,
                r.nonconvex_frac * 100.0
            );
            Line::styled(text, app.run_style(i))
        })
        .collect();
    lines.push(Line::styled(
        format!(
            "colour: log₁₀ loss {:.1} … {:.1}+ · α →, β ↑",
            range[0], range[1]
        ),
        theme::muted(),
    ));
    let p = &results[0].params;
    lines.push(Line::styled(
        format!("{} training images · grid {g}×{g}", p.images, g = p.grid),
        theme::muted(),
    ));
    frame.render_widget(Paragraph::new(lines), legend_area);
}
