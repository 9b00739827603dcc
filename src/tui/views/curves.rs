//! Loss and accuracy of every run over steps: the training series averaged into buckets of the
//! panel's resolution (so a 64k-step run draws as fast as a short one), test evaluations as dots.

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
    train: fn(&crate::train::record::StepRecord) -> f32,
    test: fn(&crate::train::record::EvalRecord) -> f32,
    /// Fixed y bounds (accuracy), or `None` to fit the data (loss).
    fixed: Option<[f64; 2]>,
}

pub fn render_loss(frame: &mut Frame, area: Rect, app: &App) {
    let metric = Metric {
        title: " loss · train ─ test • ",
        train: |r| r.loss,
        test: |e| e.loss,
        fixed: None,
    };
    render(frame, area, app, &metric);
}

pub fn render_accuracy(frame: &mut Frame, area: Rect, app: &App) {
    let metric = Metric {
        title: " accuracy · train ─ test • ",
        train: |r| r.acc,
        test: |e| e.acc,
        fixed: Some([0.0, 1.0]),
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
    let train: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            let pts: Vec<_> = app
                .steps(i)
                .iter()
                .map(|r| (r.step as f64, (metric.train)(r) as f64))
                .collect();
            series::mean_buckets(&pts, buckets)
        })
        .collect();
    let test: Vec<Vec<(f64, f64)>> = (0..runs)
        .map(|i| {
            let pts: Vec<_> = app
                .evals(i)
                .iter()
                .map(|e| (e.step as f64, (metric.test)(e) as f64))
                .collect();
            series::mean_buckets(&pts, buckets)
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
    // Loss starts at 0 so its fall reads as a proportion.
    let y = metric.fixed.unwrap_or([fit[0].min(0.0), fit[1]]);
    let y_labels = match metric.fixed {
        Some(_) => vec!["0%".to_string(), "50%".into(), "100%".into()],
        None => vec![
            theme::num(y[0]),
            theme::num((y[0] + y[1]) / 2.0),
            theme::num(y[1]),
        ],
    };
    let order = app.draw_order();
    let mut datasets = Vec::new();
    for &i in &order {
        let style = app.run_style(i);
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(style)
                .data(&train[i]),
        );
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
