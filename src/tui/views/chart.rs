//! Pieces the line-chart panels share: one line per run in drawing order, and a chart whose x
//! axis runs over [0, 1] (relative depth, or the path between two images).

use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};

use crate::tui::app::App;
use crate::tui::theme;

/// A Braille line per run `i < runs` in the app's drawing order (the focused run last), in the
/// run's style, through `data(i)`.
pub fn run_lines<'a>(
    app: &App,
    runs: usize,
    data: impl Fn(usize) -> &'a [(f64, f64)],
) -> Vec<Dataset<'a>> {
    app.draw_order()
        .into_iter()
        .filter(|&i| i < runs)
        .map(|i| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(app.run_style(i))
                .data(data(i))
        })
        .collect()
}

/// `datasets` over x ∈ [0, 1] and y ∈ `y`, on muted axes labelled `x_labels` and `y_labels`,
/// without a legend (the panels draw their own).
pub fn unit_x_chart<'a, X: Into<Line<'a>>, Y: Into<Line<'a>>>(
    datasets: Vec<Dataset<'a>>,
    x_labels: impl IntoIterator<Item = X>,
    y: [f64; 2],
    y_labels: impl IntoIterator<Item = Y>,
) -> Chart<'a> {
    let axis = |bounds, labels: Vec<Line<'a>>| {
        Axis::default()
            .bounds(bounds)
            .labels(labels)
            .style(theme::muted())
    };
    Chart::new(datasets)
        .x_axis(axis(
            [0.0, 1.0],
            x_labels.into_iter().map(Into::into).collect(),
        ))
        .y_axis(axis(y, y_labels.into_iter().map(Into::into).collect()))
        .legend_position(None)
}

/// [`unit_x_chart`] of a fraction (0–100 %) against relative depth, input to output.
pub fn fraction_by_depth(datasets: Vec<Dataset<'_>>) -> Chart<'_> {
    unit_x_chart(
        datasets,
        ["input", "output"],
        [0.0, 1.0],
        ["0", "50%", "100%"],
    )
}

/// A vertical line at `x` from the bottom of `y` to its top: the cursor readout's place.
pub fn vertical(x: f64, y: [f64; 2]) -> Vec<(f64, f64)> {
    let n = 24;
    (0..=n)
        .map(|k| (x, y[0] + (y[1] - y[0]) * k as f64 / n as f64))
        .collect()
}

/// The readout's marker as a dataset (bold, in the text colour: no run's).
pub fn marker(data: &[(f64, f64)]) -> Dataset<'_> {
    Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme::title())
        .data(data)
}
