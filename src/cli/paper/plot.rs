//! A paper's [`Figure`] as SVG (`resviz paper NAME --plot FILE.svg`): its panels side by side,
//! each series in the colour the dashboard gives its model, in the shared dark style
//! ([`crate::plotting::svg`]).

use super::{Figure, Panel, Style};
use crate::plotting::svg::{dark_legend, dark_mesh, font, padded_range, render, run_colours};
use plotters::prelude::*;

/// Width of one panel, and the figure's height.
const PANEL_WIDTH: u32 = 640;
const HEIGHT: u32 = 560;
/// A fitted curve widens a log panel's range to at most this many decades below its highest
/// point: a fitted 2^−L curve reaches 10⁻³⁰ at L = 110 and would flatten everything measured.
const DECADES: f64 = 4.0;

/// The SVG of `fig`, captioned with the paper's id.
pub fn svg(paper: &str, fig: &Figure) -> Result<String, String> {
    let mut keys: Vec<&str> = Vec::new();
    for s in fig.panels.iter().flat_map(|p| &p.series) {
        if !keys.contains(&s.colour.as_str()) {
            keys.push(&s.colour);
        }
    }
    let colours = run_colours(&keys);
    let colour = |key: &str| colours[keys.iter().position(|k| *k == key).unwrap_or(0)];
    let n = fig.panels.len().max(1);
    render((PANEL_WIDTH * n as u32, HEIGHT), |root| {
        let root = root.titled(paper, font(20))?;
        for (area, p) in root.split_evenly((1, n)).iter().zip(&fig.panels) {
            panel(area, p, &colour)?;
        }
        Ok(())
    })
}

/// A series' points as drawn: log10 y on a log panel, where y > 0; `None` where not drawn.
fn drawn(p: &Panel, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    let y = match p.log_y {
        true if y > 0.0 => y.log10(),
        true => return None,
        false => y,
    };
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

fn panel(
    area: &crate::plotting::svg::Area,
    p: &Panel,
    colour: &dyn Fn(&str) -> RGBColor,
) -> crate::plotting::svg::Drawn {
    let all = || p.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = padded_range(all().map(|q| q.0));
    // The measured points (markers, or every line when there are none) set the y range.
    let measured: Vec<f64> = p
        .series
        .iter()
        .filter(|s| {
            s.style == Style::Markers || !p.series.iter().any(|t| t.style == Style::Markers)
        })
        .flat_map(|s| s.points.iter().filter_map(|&q| drawn(p, q)).map(|q| q.1))
        .collect();
    let (mut y0, y1) = padded_range(measured.iter().copied());
    // Fitted curves widen the range downwards, on a log panel by at most DECADES.
    let fitted = p
        .series
        .iter()
        .filter(|s| matches!(s.style, Style::Dashed | Style::Thin))
        .flat_map(|s| s.points.iter().filter_map(|&q| drawn(p, q)).map(|q| q.1))
        .fold(f64::INFINITY, f64::min);
    if fitted.is_finite() {
        let floor = if p.log_y {
            y1 - DECADES
        } else {
            f64::NEG_INFINITY
        };
        y0 = y0.min(fitted.max(floor));
    }
    let hidden = p
        .series
        .iter()
        .filter(|s| s.style == Style::Markers || s.style == Style::Line)
        .flat_map(|s| &s.points)
        .filter(|&&q| drawn(p, q).is_none())
        .count();
    let title = match hidden {
        0 => p.title.clone(),
        k => format!("{} ({k} points ≤ 0 not drawn)", p.title),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let y_label = match p.log_y {
        true => format!("log10 {}", p.y_label),
        false => p.y_label.clone(),
    };
    // Seeds, steps and table rows are whole numbers: "1.5" between them would mean nothing.
    let whole = all().all(|q| q.0.fract() == 0.0);
    let x_label = |x: &f64| match whole {
        true if x.fract() != 0.0 => String::new(),
        true => format!("{x:.0}"),
        false => format!("{x}"),
    };
    dark_mesh(&mut chart)
        .x_desc(p.x_label.as_str())
        .y_desc(y_label)
        .x_label_formatter(&x_label)
        .draw()?;
    let inside = |q: &(f64, f64)| q.1 >= y0 && q.1 <= y1;
    for s in &p.series {
        let c = colour(&s.colour);
        let pts: Vec<(f64, f64)> = s.points.iter().filter_map(|&q| drawn(p, q)).collect();
        let legend_style = c.stroke_width(2);
        let anno = match s.style {
            Style::Line => chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?,
            Style::Thin => chart.draw_series(LineSeries::new(
                pts.into_iter().filter(inside),
                c.mix(0.8).stroke_width(1),
            ))?,
            Style::Dashed => chart.draw_series(DashedLineSeries::new(
                pts.into_iter().filter(inside),
                6,
                4,
                c.mix(0.8).stroke_width(1),
            ))?,
            Style::Markers => {
                let whiskers = s.points.iter().zip(&s.spread).filter_map(|(&(x, y), &d)| {
                    let lo = drawn(p, (x, y - d)).map_or(y0, |q| q.1.max(y0));
                    let hi = drawn(p, (x, y + d))?.1.min(y1);
                    Some(PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(1)))
                });
                chart.draw_series(whiskers)?;
                chart.draw_series(pts.into_iter().map(|q| Circle::new(q, 4, c.filled())))?
            }
        };
        anno.label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], legend_style));
    }
    let points: Vec<(f64, f64)> = all().filter_map(|&q| drawn(p, q)).collect();
    dark_legend(&mut chart)
        .position(emptiest_corner(&points, (x0, x1), (y0, y1)))
        .draw()?;
    Ok(())
}

/// The corner of the plot area with the fewest points in its third of each axis: where the
/// legend hides the least.
fn emptiest_corner(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let frac = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo).max(f64::MIN_POSITIVE);
    let count = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|&&(px, py)| {
                let (fx, fy) = (frac(px, x), frac(py, y));
                (if right {
                    fx > 2.0 / 3.0
                } else {
                    fx < 1.0 / 3.0
                }) && (if upper {
                    fy > 2.0 / 3.0
                } else {
                    fy < 1.0 / 3.0
                })
            })
            .count()
    };
    use SeriesLabelPosition::*;
    [
        (LowerLeft, false, false),
        (UpperRight, true, true),
        (LowerRight, true, false),
        (UpperLeft, false, true),
    ]
    .into_iter()
    .min_by_key(|&(_, right, upper)| count(right, upper))
    .map_or(LowerLeft, |c| c.0)
}

#[cfg(test)]
mod tests {
    use super::super::Series;
    use super::*;

    fn series(name: &str, style: Style, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            colour: "plain-L".into(),
            style,
            spread: vec![0.1; points.len()],
            points,
        }
    }

    #[test]
    fn a_figure_draws_every_series_and_counts_what_a_log_axis_drops() {
        let fig = Figure {
            panels: vec![Panel {
                title: "with batch norm".into(),
                x_label: "depth".into(),
                y_label: "lag-1".into(),
                log_y: true,
                series: vec![
                    series(
                        "plain-L (measured)",
                        Style::Markers,
                        vec![(8.0, 0.9), (56.0, -0.01)],
                    ),
                    series(
                        "plain-L: c·2^−L",
                        Style::Dashed,
                        vec![(8.0, 0.9), (56.0, 1e-15)],
                    ),
                    series("plain-L: c/√L", Style::Thin, vec![(8.0, 0.5), (56.0, 0.2)]),
                ],
            }],
        };
        let svg = svg("balduzzi2017", &fig).unwrap();
        for text in [
            "balduzzi2017",
            "plain-L (measured)",
            "plain-L: c/√L",
            "log10 lag-1",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(svg.contains("(1 points ≤ 0 not drawn)"), "{svg}");
    }

    #[test]
    fn the_legend_goes_where_no_point_is() {
        // A falling loss curve: the lower left is empty.
        let falling: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 10.0 - i as f64)).collect();
        let at = emptiest_corner(&falling, (0.0, 9.0), (1.0, 10.0));
        assert!(matches!(at, SeriesLabelPosition::LowerLeft), "{at:?}");
        // Points crowding the lower left push it elsewhere.
        let crowd = [(0.0, 0.0), (0.1, 0.1), (0.2, 0.0), (1.0, 1.0)];
        let at = emptiest_corner(&crowd, (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(at, SeriesLabelPosition::LowerRight), "{at:?}");
    }
}
