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
use crate::tui::{series, theme};

/// What one chart plots.
struct Metric {
    title: &'static str,
    train: fn(&crate::records::record::StepRecord) -> f32,
    test: fn(&crate::records::record::EvalRecord) -> f32,
    /// Fixed y bounds (accuracy), or `None` to fit the data (loss).
    fixed: Option<[f64; 2]>,
    /// Draw the training series faint with its EMA over it.
    smooth: bool,
    /// y is log10 of the value.
    log: bool,
}

pub fn render_loss(frame: &mut Frame, area: Rect, app: &App) {
    let metric = Metric {
        // Short enough for the 30-column panel at 120×40 (`l` is in the footer and the help).
        title: if app.loss_log() {
            " log loss · train ─ test • "
        } else {
            " loss · train ─ test • "
        },
        train: |r| r.loss,
        test: |e| e.loss,
        fixed: None,
        smooth: true,
        log: app.loss_log(),
    };
    render(frame, area, app, &metric);
}

pub fn render_accuracy(frame: &mut Frame, area: Rect, app: &App) {
    let metric = Metric {
        title: " accuracy · train ─ test • ",
        train: |r| r.acc,
        test: |e| e.acc,
        fixed: Some([0.0, 1.0]),
        smooth: false,
        log: false,
    };
    render(frame, area, app, &metric);
}

fn render(frame: &mut Frame, area: Rect, app: &App, metric: &Metric) {
    let block = Block::bordered().title(Span::styled(metric.title, theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Braille gives two points per column.
    let buckets = inner.width as usize * 2;
    let runs = app.histories().len();
    // Log axes plot log10 of the value; a zero or negative loss sits at the floor.
    let y_of = |v: f64| if metric.log { v.max(1e-6).log10() } else { v };
    let raw: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            app.steps(i)
                .iter()
                .map(|r| (r.step as f64, (metric.train)(r) as f64))
                .collect()
        })
        .collect();
    let scaled = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let b = series::mean_buckets(pts, buckets);
        b.into_iter().map(|(x, y)| (x, y_of(y))).collect()
    };
    let train: Vec<Vec<(f64, f64)>> = raw.iter().map(|p| scaled(p)).collect();
    let smooth: Vec<Vec<(f64, f64)>> = match metric.smooth {
        true => raw
            .iter()
            .map(|p| scaled(&crate::plotting::ema(p)))
            .collect(),
        false => vec![Vec::new(); runs],
    };
    let test: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            let pts: Vec<_> = app
                .evals(i)
                .iter()
                .map(|e| (e.step as f64, (metric.test)(e) as f64))
                .collect();
            scaled(&pts)
        })
        .collect();
    // The x range from the records themselves: bucket means would pull the ends inward.
    let first = (0..runs).filter_map(|i| app.steps(i).first());
    let last = (0..runs).filter_map(|i| app.steps(i).last());
    let x = series::bounds(first.chain(last).map(|r| r.step as f64));
    let fit = series::bounds(train.iter().chain(&test).flatten().map(|p| p.1));
    let (Some(x), Some(fit)) = (x, fit) else {
        frame.render_widget(
            Paragraph::new(Span::styled("no steps yet", theme::muted())),
            inner,
        );
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
    let order = app.draw_order();
    let mut datasets = Vec::new();
    for &i in &order {
        let style = app.run_style(i);
        // Smoothed: the raw series faint under its line, which is bold for the focused run and
        // plain (not dim) for the others, so every run's two lines stay apart.
        let (raw_style, style) = match metric.smooth {
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
        if metric.smooth {
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
    let x_labels = [format!("{}", x[0].round()), format!("{}", x[1].round())];
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
