//! Activations of the focused run at the current step: per block mean, std, sparsity (the
//! fraction of exact zeros: about half for a healthy ReLU output, so no alarm) and dead units
//! (channels zero for every example of the batch), alarming values flagged. Deep nets have more
//! blocks than the panel has rows, so consecutive blocks then share a row: means averaged, the
//! sparsity and dead fractions the worst of the group, and the row flagged if any block in it is
//! alarming, so grouping never hides a problem.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row, Table};

use crate::records::record::BlockStat;
use crate::tui::app::App;
use crate::tui::theme;

/// Why a block's activations look unhealthy, if they do.
fn alarm(s: &BlockStat) -> Option<&'static str> {
    if ![s.act_mean, s.act_std, s.act_zero_frac, s.dead_frac]
        .iter()
        .all(|v| v.is_finite())
    {
        Some("NaN/inf")
    } else if s.dead_frac > 0.1 {
        Some("dead>10%")
    } else if s.act_std < 1e-3 {
        Some("std≈0")
    } else if s.act_std > 1e3 {
        Some("std>1e3")
    } else {
        None
    }
}

/// `stages.2.3` → `2.3`: the prefix repeats on every row.
fn short(name: &str) -> &str {
    name.strip_prefix("stages.").unwrap_or(name)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focus = app.focus();
    let spec = app
        .histories()
        .get(focus)
        .map_or("", |h| h.info.spec.as_str());
    let names = app
        .histories()
        .get(focus)
        .map(|h| h.info.block_names.as_slice())
        .unwrap_or_default();
    let stats = app
        .current(focus)
        .map(|r| r.blocks.as_slice())
        .unwrap_or_default();
    let capacity = (area.height.saturating_sub(3) as usize).max(1);
    let group = stats.len().div_ceil(capacity).max(1);
    let grouped = if group > 1 {
        format!(" · {group} blocks a row")
    } else {
        String::new()
    };
    let title = format!(" activations · {spec}{grouped} ");
    let name = |i: usize| {
        names
            .get(i)
            .map_or_else(|| format!("#{i}"), |n| short(n).to_string())
    };
    let rows = stats.chunks(group).enumerate().map(|(g, chunk)| {
        let first = g * group;
        let label = if chunk.len() > 1 {
            format!("{}–{}", name(first), name(first + chunk.len() - 1))
        } else {
            name(first)
        };
        let n = chunk.len() as f64;
        let mean = chunk.iter().map(|s| s.act_mean as f64).sum::<f64>() / n;
        let std = chunk.iter().map(|s| s.act_std as f64).sum::<f64>() / n;
        let worst = |f: fn(&BlockStat) -> f32| {
            chunk
                .iter()
                .map(|s| f(s) as f64)
                .fold(
                    f64::NEG_INFINITY,
                    |a, b| if b.is_nan() { b } else { a.max(b) },
                )
        };
        let (sparse, dead) = (worst(|s| s.act_zero_frac), worst(|s| s.dead_frac));
        let why = chunk.iter().find_map(alarm);
        let style = if why.is_some() {
            theme::alarm()
        } else {
            ratatui::style::Style::new()
        };
        Row::new([
            Cell::from(label),
            Cell::from(theme::num(mean)),
            Cell::from(theme::num(std)),
            Cell::from(format!("{}%", theme::num(sparse * 100.0))),
            Cell::from(format!("{}%", theme::num(dead * 100.0))),
            Cell::from(why.map(|w| format!("! {w}")).unwrap_or_default()),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let header = Row::new(["block", "mean", "std", "zeros", "dead", ""]).style(theme::muted());
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(Span::styled(title, theme::title())));
    frame.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms() {
        let ok = BlockStat {
            grad_norm: 1.0,
            act_mean: 0.3,
            act_std: 0.8,
            act_zero_frac: 0.4,
            ..BlockStat::default()
        };
        assert_eq!(alarm(&ok), None);
        // Half zeros is what a healthy ReLU output has: sparsity alone is no alarm.
        let sparse = BlockStat {
            act_zero_frac: 0.6,
            ..ok
        };
        assert_eq!(alarm(&sparse), None);
        assert_eq!(
            alarm(&BlockStat {
                dead_frac: 0.25,
                ..ok
            }),
            Some("dead>10%")
        );
        assert_eq!(
            alarm(&BlockStat {
                act_std: 1e-4,
                ..ok
            }),
            Some("std≈0")
        );
        assert_eq!(alarm(&BlockStat { act_std: 2e3, ..ok }), Some("std>1e3"));
        assert_eq!(
            alarm(&BlockStat {
                act_mean: f32::NAN,
                ..ok
            }),
            Some("NaN/inf")
        );
    }
}
