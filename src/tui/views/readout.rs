//! The cursor readout (`c`): a box below the panels with every visible run's exact
//! values at the cursor's step and block, as a TensorBoard hover shows them. Two lines a run:
//! the step's loss (and the smoothed value the chart draws), accuracy and last test result; then
//! the block's gradient RMS, shortcut share, update ratio and activations.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::numfmt::{duration, num, pct};
use crate::tui::app::{App, ReadoutRow};
use crate::tui::theme;

/// The body split into the panels' part and the readout's below it (none when it is off): rows
/// enough for every line as wrapped at the body's width, at most half the body.
pub fn split(body: Rect, app: &App) -> (Rect, Rect) {
    if app.readout().is_none() {
        return (body, Rect::default());
    }
    let inside = body.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines(app, inside)
        .iter()
        .map(|l| l.width().div_ceil(inside).max(1))
        .sum();
    let height = (rows as u16 + 2).min(body.height / 2).max(3);
    let [panels, readout] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(height)]).areas(body);
    (panels, readout)
}

/// Each run's two lines, worded to fit `width` columns (at 80 columns, one row each).
fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let wide = width >= 100;
    let mut lines: Vec<Line> = app
        .readout_rows()
        .iter()
        .flat_map(|r| run_lines(app, r, wide))
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "no visible run has a record by this step",
            theme::muted(),
        ));
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(at) = app.readout() else {
        return;
    };
    let lines = lines(app, area.width.saturating_sub(2) as usize);
    // The block is named on each run's line: runs of different depth have different names.
    let title = format!(" cursor · step {} · ←/→ step ↑/↓ block esc ", at.step);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(title, theme::title()))),
        area,
    );
}

fn run_lines(app: &App, r: &ReadoutRow, wide: bool) -> [Line<'static>; 2] {
    let style = app.run_style(r.run);
    let spec = &app.histories()[r.run].info.spec;
    let rec = r.record;
    let (loss, acc) = (num(rec.loss as f64), pct(rec.acc as f64));
    let time = duration(r.elapsed);
    let mut first = match wide {
        true => format!("step {} ({time}) loss {loss}", rec.step),
        false => format!("@{} {time} loss {loss}", rec.step),
    };
    if let Some(s) = r.smoothed {
        first += &format!(" (smoothed {})", num(s));
    }
    first += &format!(" · acc {acc}");
    if let Some(e) = r.test {
        first += &format!(" · test {} @{}", pct(e.acc as f64), e.step);
    }
    let second = match r.block {
        Some((name, b)) => {
            let share = b
                .split
                .and_then(|e| e.share())
                .map_or("-".into(), |s| pct(s as f64));
            let (rms, ratio) = (num(b.grad_rms as f64), num(b.update_ratio as f64));
            let zeros = match wide {
                true => format!(" · zeros {}", pct(b.act_zero_frac as f64)),
                false => String::new(),
            };
            format!(
                "{name}: grad RMS {rms} · share {share} · ‖ΔW‖/‖W‖ {ratio}{zeros} · dead {}",
                pct(b.dead_frac as f64)
            )
        }
        None => "no block statistics".into(),
    };
    [
        Line::from(vec![
            Span::styled(format!("{} {spec} ", r.run + 1), style),
            Span::raw(first),
        ]),
        Line::raw(format!("   {second}")),
    ]
}
