//! Header: what is training on what, where it stands, how fast, at which learning rate; and the
//! run list that says which run the other panels focus on.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::records::record::RunStatus;
use crate::tui::app::{App, TrainerPhase};
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let lines = vec![summary(app), runs(app)];
    frame.render_widget(Paragraph::new(lines), area);
}

fn summary(app: &App) -> Line<'static> {
    let sep = || Span::styled(" │ ", theme::muted());
    let mut spans = vec![
        Span::styled(" resviz", theme::title()),
        sep(),
        Span::raw(app.dataset().to_string()),
    ];
    spans.push(sep());
    spans.extend(state(app));
    let latest = app.latest_run();
    spans.push(sep());
    let target = app
        .step_target()
        .map_or(String::new(), |t| format!(" of {t}"));
    spans.push(Span::raw(match (latest, app.cursor()) {
        (_, Some(c)) => format!("step {} of {}", c.at, c.last),
        (Some((_, r)), None) => format!("step {}{target}", r.step),
        (None, None) => format!("step 0{target}"),
    }));
    // That run's own epoch: the data's runs on across a reset or a swap.
    if let Some((run, r)) = latest {
        spans.push(Span::raw(format!(" · epoch {}", app.run_epoch(run, r))));
    }
    // Only while the estimate's rate is being measured, like img/s.
    if let Some(eta) = app
        .eta_secs()
        .filter(|_| *app.state() == TrainerPhase::Running)
    {
        spans.push(Span::raw(format!(
            " · ETA {}",
            crate::numfmt::duration(eta)
        )));
    }
    // A rate only while it is being measured: paused, the last one would read as current.
    let measuring = app.is_replay() || *app.state() == TrainerPhase::Running;
    if let Some(r) = app.current(app.focus()).filter(|_| measuring) {
        spans.push(sep());
        spans.push(Span::raw(format!(
            "{} img/s",
            theme::num(r.img_per_s as f64)
        )));
    }
    spans.push(sep());
    spans.push(Span::raw(format!("lr {}", theme::num(app.lr()))));
    // A schedule or warm-up makes the step's rate differ from the base rate the keys scale.
    if let Some(r) = app
        .current(app.focus())
        .filter(|r| (r.lr as f64 - app.lr()).abs() > 0.01 * app.lr())
    {
        spans.push(Span::styled(
            format!(" (now {})", theme::num(r.lr as f64)),
            theme::muted(),
        ));
    }
    Line::from(spans)
}

fn state(app: &App) -> Vec<Span<'static>> {
    let evaluating = app
        .evaluating()
        .filter(|_| matches!(app.state(), TrainerPhase::Running | TrainerPhase::Paused));
    let (text, color) = match app.state() {
        _ if app.is_replay() => ("◆ replay".to_string(), Color::LightBlue),
        // Steps stop while the test split is evaluated: say so, and how far it is.
        _ if let Some((run, done, total)) = evaluating => {
            let spec = app
                .histories()
                .get(run)
                .map_or("", |h| h.info.spec.as_str());
            (
                format!("◐ evaluating {spec} {done}/{total}"),
                Color::LightCyan,
            )
        }
        // A stream's trainer runs elsewhere; what the dashboard lost by falling behind shows.
        _ if let Some(w) = app.watching() => match w.dropped {
            0 => ("◉ watching".into(), Color::LightGreen),
            n => (format!("◉ watching · {n} dropped"), Color::LightYellow),
        },
        TrainerPhase::Starting => ("… starting".into(), Color::Gray),
        TrainerPhase::Running => ("● running".into(), Color::LightGreen),
        TrainerPhase::Paused => ("‖ paused".into(), Color::LightYellow),
        TrainerPhase::Finished => ("■ finished".into(), Color::Gray),
        TrainerPhase::Ended => ("■ trainer ended".into(), Color::Gray),
        TrainerPhase::Failed(_) => ("✗ failed".into(), Color::Red),
    };
    let mut spans = vec![Span::styled(
        text,
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )];
    let runs = app.histories();
    let diverged = runs
        .iter()
        .filter(|h| matches!(h.status, RunStatus::Diverged { .. }))
        .count();
    if diverged > 0 {
        let text = if diverged == runs.len() {
            " · diverged".into()
        } else {
            format!(" · {diverged} diverged")
        };
        spans.push(Span::styled(text, theme::alarm()));
    }
    spans
}

/// Each run with its latest numbers: training loss (mean of its last ten steps: one batch is
/// noisy), training accuracy of the same steps, and the last test accuracy.
fn runs(app: &App) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (i, h) in app.histories().iter().enumerate() {
        let mut style = app.run_style(i);
        if i == app.focus() {
            style = style.add_modifier(Modifier::REVERSED);
        }
        spans.push(Span::styled(format!(" {} {} ", i + 1, h.info.spec), style));
        if app.hidden(i) {
            spans.push(Span::styled("(hidden)", theme::muted()));
        }
        let steps = app.steps(i);
        let recent = &steps[steps.len().saturating_sub(10)..];
        if !recent.is_empty() {
            let n = recent.len() as f64;
            let loss = recent.iter().map(|r| r.loss as f64).sum::<f64>() / n;
            let acc = recent.iter().map(|r| r.acc as f64).sum::<f64>() / n;
            let mut text = format!(" loss {} · {:.0}%", theme::num(loss), acc * 100.0);
            if let Some(e) = app.evals(i).last() {
                text += &format!(" · test {:.0}%", e.acc * 100.0);
            }
            spans.push(Span::styled(text, app.run_style(i)));
        }
        if let RunStatus::Diverged { step, .. } = h.status {
            spans.push(Span::styled(
                format!("✗ diverged at {step}"),
                theme::alarm(),
            ));
        }
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}
