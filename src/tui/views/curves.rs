//! Loss and accuracy of every run over steps: the training series averaged into buckets of the
//! panel's resolution (so a 64k-step run draws as fast as a short one), test evaluations as dots.
//! The loss is drawn faint with its smoothed line (EMA, [`crate::plotting::ema`]) bold over it,
//! on a linear axis from 0 or, after `l`, a log axis (one spike no longer flattens the rest).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use crate::tui::app::App;
use crate::tui::views::chart;
use crate::tui::{series, theme};

/// What one chart plots.
struct Metric {
    title: String,
    train: fn(&crate::records::record::StepRecord) -> f32,
    test: fn(&crate::records::record::EvalRecord) -> f32,
    /// Fixed y bounds (accuracy), or `None` to fit the data (loss).
    fixed: Option<[f64; 2]>,
    /// Draw the training series faint with its EMA over this share of the run over it.
    smooth: Option<f64>,
    /// y is log10 of the value.
    log: bool,
}

pub fn render_loss(frame: &mut Frame, area: Rect, app: &App) {
    // Short enough for the 36-column panel at 120×40 (`l`, `(`, `)` are in the help).
    let smooth = match app.smoothing() {
        Some(w) => format!("smooth {:.0}%", w * 100.0),
        None => "smooth off".into(),
    };
    let log = if app.loss_log() { "log " } else { "" };
    let metric = Metric {
        title: format!(" {log}loss · {smooth} · test • "),
        train: |r| r.loss,
        test: |e| e.loss,
        fixed: None,
        smooth: app.smoothing(),
        log: app.loss_log(),
    };
    render(frame, area, app, &metric);
}

pub fn render_accuracy(frame: &mut Frame, area: Rect, app: &App) {
    let metric = Metric {
        title: " accuracy · train ─ test • ".into(),
        train: |r| r.acc,
        test: |e| e.acc,
        fixed: Some([0.0, 1.0]),
        smooth: None,
        log: false,
    };
    render(frame, area, app, &metric);
}

/// Run `run`'s x values: its records' steps, or their training seconds on the time axis; and
/// the x of a step (the record at or before it), for evaluations and the readout.
struct Xs {
    records: Vec<f64>,
    steps: Vec<u64>,
}

impl Xs {
    fn of(app: &App, run: usize) -> Self {
        let steps: Vec<u64> = app.steps(run).iter().map(|r| r.step).collect();
        let records = match app.time_axis() {
            true => app.elapsed(run),
            false => steps.iter().map(|&s| s as f64).collect(),
        };
        Self { records, steps }
    }

    fn at(&self, step: u64, time: bool) -> Option<f64> {
        if !time {
            return Some(step as f64);
        }
        let k = self.steps.partition_point(|&s| s <= step).checked_sub(1)?;
        self.records.get(k).copied()
    }
}

fn render(frame: &mut Frame, area: Rect, app: &App, metric: &Metric) {
    let block = Block::bordered().title(Span::styled(metric.title.as_str(), theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Braille gives two points per column.
    let buckets = inner.width as usize * 2;
    let runs = app.histories().len();
    // Log axes plot log10 of the value; a zero or negative loss sits at the floor.
    let y_of = |v: f64| if metric.log { v.max(1e-6).log10() } else { v };
    let time = app.time_axis();
    let xs: Vec<Xs> = (0..runs).map(|i| Xs::of(app, i)).collect();
    let raw: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            let values = app.steps(i).iter().map(|r| (metric.train)(r) as f64);
            xs[i].records.iter().copied().zip(values).collect()
        })
        .collect();
    let scaled = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let b = series::mean_buckets(pts, buckets);
        b.into_iter().map(|(x, y)| (x, y_of(y))).collect()
    };
    let train: Vec<Vec<(f64, f64)>> = raw.iter().map(|p| scaled(p)).collect();
    let smooth: Vec<Vec<(f64, f64)>> = match metric.smooth {
        Some(w) => raw.iter().map(|p| scaled(&series::ema(p, w))).collect(),
        None => vec![Vec::new(); runs],
    };
    let test: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            let pts: Vec<_> = app
                .evals(i)
                .iter()
                .filter_map(|e| Some((xs[i].at(e.step, time)?, (metric.test)(e) as f64)))
                .collect();
            scaled(&pts)
        })
        .collect();
    // The x range from the records themselves (bucket means would pull the ends inward), of the
    // runs drawn; y fitted to them too.
    let order = app.draw_order();
    let ends = order
        .iter()
        .flat_map(|&i| [xs[i].records.first(), xs[i].records.last()]);
    let x = series::bounds(ends.flatten().copied());
    let fit = series::bounds(
        order
            .iter()
            .flat_map(|&i| train[i].iter().chain(&test[i]).chain(&smooth[i]))
            .map(|p| p.1),
    );
    let (Some(x), Some(fit)) = (x, fit) else {
        let text = match order.is_empty() && runs > 0 {
            true => "every run is hidden (h shows the focused one)",
            false => "no steps yet",
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme::muted())), inner);
        return;
    };
    // Loss starts at 0 so its fall reads as a proportion (on the linear axis).
    let y = match (metric.fixed, metric.log) {
        (Some(f), _) => f,
        (None, true) => [fit[0], fit[1].max(fit[0] + 1e-3)],
        (None, false) => [fit[0].min(0.0), fit[1]],
    };
    let y_labels = match (metric.fixed, metric.log) {
        (Some(_), _) => vec!["0%".to_string(), "50%".into(), "100%".into()],
        (None, true) => [y[0], (y[0] + y[1]) / 2.0, y[1]]
            .iter()
            .map(|v| theme::num(10f64.powf(*v)))
            .collect(),
        (None, false) => vec![
            theme::num(y[0]),
            theme::num((y[0] + y[1]) / 2.0),
            theme::num(y[1]),
        ],
    };
    let mut datasets = Vec::new();
    for &i in &order {
        let style = app.run_style(i);
        // Smoothed: the raw series faint under its line, which is bold for the focused run and
        // plain (not dim) for the others, so every run's two lines stay apart.
        let (raw_style, style) = match metric.smooth.is_some() {
            true if i != app.focus() => (
                theme::ghost_style(app.run_color(i)),
                ratatui::style::Style::new().fg(app.run_color(i)),
            ),
            true => (theme::ghost_style(app.run_color(i)), style),
            false => (style, style),
        };
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(raw_style)
                .data(&train[i]),
        );
        if metric.smooth.is_some() {
            datasets.push(
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(style)
                    .data(&smooth[i]),
            );
        }
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(style)
                .data(&test[i]),
        );
    }
    // The readout's step, as a vertical line over the whole height.
    let marker: Vec<(f64, f64)> = match app.readout() {
        Some(r) => order
            .iter()
            .rev()
            .find_map(|&i| xs[i].at(r.step, time))
            .map_or(Vec::new(), |mx| chart::vertical(mx, y)),
        None => Vec::new(),
    };
    datasets.push(chart::marker(&marker));
    let x_labels = x_ticks(x, inner.width, time);
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds(x)
                .labels(x_labels)
                .style(theme::muted()),
        )
        .y_axis(
            Axis::default()
                .bounds(y)
                .labels(y_labels)
                .style(theme::muted()),
        )
        .legend_position(None);
    frame.render_widget(chart, inner);
}

/// Evenly spaced x labels (ratatui spreads labels evenly): the ends, and between them as many
/// as `width` leaves room for (up to 5 in all). Steps as integers, time as durations.
fn x_ticks(x: [f64; 2], width: u16, time: bool) -> Vec<String> {
    let n: usize = match width {
        0..24 => 2,
        24..60 => 3,
        _ => 5,
    };
    (0..n)
        .map(|k| {
            let v = x[0] + (x[1] - x[0]) * k as f64 / (n - 1) as f64;
            match time {
                true => crate::numfmt::duration(v.max(0.0)),
                false => format!("{}", v.round()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_fill_the_width() {
        assert_eq!(super::x_ticks([1.0, 401.0], 20, false), ["1", "401"]);
        assert_eq!(super::x_ticks([1.0, 401.0], 36, false), ["1", "201", "401"]);
        assert_eq!(super::x_ticks([0.0, 120.0], 90, true).len(), 5);
        assert_eq!(super::x_ticks([0.0, 120.0], 90, true)[4], "2m00s");
    }
}
