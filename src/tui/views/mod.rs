//! Rendering: `draw` lays the panels out for the terminal's size and each panel module renders
//! one of them from `&App`. Views never mutate state.
//!
//! Sizes: from 110×34 (120×40, 200×60) every panel: gradient flow and the shortcut's share
//! above, each run's why line, then the learning panel, the heatmap and the curves; from 80×24
//! (80×24, 100×30) the header, gradient flow with the side panel, loss and accuracy, and the
//! footer, the learning panel (`w`, with the why lines) and the heatmap joining the side
//! panel's `p` cycle (the footer says so); below 80×24 a message saying what size is needed.

mod activations;
mod chart;
mod curves;
mod experiment;
mod footer;
mod grad_flow;
mod header;
mod heatmap;
mod help;
mod hist;
mod learning;
mod params;
mod readout;
mod shortcut;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, SidePanel};
use super::theme;

pub use super::layout::{MIN_HEIGHT, MIN_WIDTH, shows_every_panel};

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, head, app);
    let (body, readout_area) = readout::split(body, app);
    readout::render(frame, readout_area, app);
    let every = shows_every_panel(area.width, area.height);
    if every {
        full(frame, body, app);
    } else {
        compact(frame, body, app);
    }
    footer::render(frame, foot, app, !every);
    if app.help_open() {
        help::render(frame, area, app);
    }
}

fn full(frame: &mut Frame, body: Rect, app: &App) {
    let why = learning::why_lines(app);
    let [top, strip, bottom] = Layout::vertical([
        Constraint::Percentage(52),
        Constraint::Length(why.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(body);
    let [flow, acts] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Fill(1)]).areas(top);
    let [learn, heat, curves] = Layout::horizontal([
        Constraint::Percentage(38),
        Constraint::Percentage(30),
        Constraint::Fill(1),
    ])
    .areas(bottom);
    let [loss, acc] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(curves);
    grad_flow::render(frame, flow, app);
    match app.side_panel() {
        // The heatmap and the learning panel have their own places here.
        SidePanel::Heatmap | SidePanel::Learning => shortcut::render(frame, acts, app),
        _ => side(frame, acts, app),
    }
    frame.render_widget(Paragraph::new(why), strip);
    learning::render(frame, learn, app);
    heatmap::render(frame, heat, app);
    curves::render_loss(frame, loss, app);
    curves::render_accuracy(frame, acc, app);
}

/// The panel beside the gradient flow, as `p` chose.
fn side(frame: &mut Frame, area: Rect, app: &App) {
    match app.side_panel() {
        SidePanel::Shortcut => shortcut::render(frame, area, app),
        SidePanel::Activations => activations::render(frame, area, app),
        SidePanel::Params => params::render(frame, area, app),
        SidePanel::Hist => hist::render(frame, area, app),
        SidePanel::Experiment => experiment::render(frame, area, app),
        SidePanel::Heatmap => heatmap::render(frame, area, app),
        SidePanel::Learning => learning::render(frame, area, app),
    }
}

/// The gradient flow always; the curves only when the flow chart keeps at least 10 rows, and in
/// their place each run's why line (wrapped) while the learning panel is beside the flow.
fn compact(frame: &mut Frame, body: Rect, app: &App) {
    let why = if app.side_panel() == SidePanel::Learning {
        learning::why_lines(app)
    } else {
        Vec::new()
    };
    let (top, strip, curves) = if body.height < 18 {
        (body, Rect::default(), None)
    } else if !why.is_empty() {
        // The why lines take the curves' place: on a small screen they are the point.
        let rows = (2 * why.len() as u16).min(8);
        let [top, strip] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(rows)]).areas(body);
        (top, strip, None)
    } else {
        let [top, curves] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(8)]).areas(body);
        (top, Rect::default(), Some(curves))
    };
    if top.width >= 80 {
        let [flow, side_area] =
            Layout::horizontal([Constraint::Percentage(56), Constraint::Fill(1)]).areas(top);
        grad_flow::render(frame, flow, app);
        side(frame, side_area, app);
    } else {
        grad_flow::render(frame, top, app);
    }
    frame.render_widget(Paragraph::new(why).wrap(Wrap { trim: true }), strip);
    let Some(curves) = curves else {
        return;
    };
    let [loss, acc] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(curves);
    curves::render_loss(frame, loss, app);
    curves::render_accuracy(frame, acc, app);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let lines = vec![
        Line::styled(
            format!("terminal too small (need {MIN_WIDTH}×{MIN_HEIGHT})"),
            theme::alarm(),
        ),
        Line::styled(
            format!("now {}×{}; q quits", area.width, area.height),
            theme::muted(),
        ),
    ];
    let height = (lines.len() as u16).min(area.height);
    let centred = area.centered_vertically(Constraint::Length(height));
    frame.render_widget(
        Paragraph::new(lines).centered().wrap(Wrap { trim: true }),
        centred,
    );
}
