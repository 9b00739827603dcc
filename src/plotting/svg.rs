//! The one SVG style of every figure (`compare --plot`, the experiments' `--plot`s): the dark
//! background and ink, fonts, the run colours as plotters colours, axis ranges, tick labels, and
//! the mesh and legend styles. A figure module draws its data; how it looks is decided here.

use super::run_swatch;
use plotters::chart::{MeshStyle, SeriesLabelStyle};
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

/// A whole figure being drawn into an SVG string.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What drawing into an [`Area`] returns.
pub type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The dark background, like a terminal's.
pub const BACKGROUND: RGBColor = RGBColor(24, 24, 24);
/// Text and axes.
pub const INK: RGBColor = RGBColor(200, 200, 200);
/// The mesh's major and minor grid lines.
const GRID: RGBColor = RGBColor(60, 60, 60);
const GRID_LIGHT: RGBColor = RGBColor(36, 36, 36);

/// An SVG of `size` on the dark background, drawn by `draw`.
pub fn render(size: (u32, u32), draw: impl FnOnce(&Area) -> Drawn) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&BACKGROUND).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Text in the ink colour.
pub fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&INK)
}

/// Each run's colour given every run's spec, as the dashboard gives it ([`run_swatch`]).
pub fn run_colours(specs: &[&str]) -> Vec<RGBColor> {
    (0..specs.len())
        .map(|k| {
            let (r, g, b) = run_swatch(specs, k).rgb();
            RGBColor(r, g, b)
        })
        .collect()
}

/// `configure_mesh()` in the dark style: ink axes and labels, dim grid; to be continued and drawn.
pub fn dark_mesh<'a, 'b, X, Y, DB>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: DrawingBackend,
{
    let mut mesh = chart.configure_mesh();
    mesh.axis_style(INK)
        .bold_line_style(GRID)
        .light_line_style(GRID_LIGHT)
        .label_style(font(14))
        .axis_desc_style(font(14));
    mesh
}

/// The series legend in the dark style, to be drawn.
pub fn dark_legend<'a, 'b, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &'b mut ChartContext<'a, DB, CT>,
) -> SeriesLabelStyle<'a, 'b, DB, CT> {
    let mut legend = chart.configure_series_labels();
    legend
        .background_style(BACKGROUND.mix(0.85))
        .border_style(INK)
        .label_font(font(14));
    legend
}

/// The finite range of `values`, padded by 5 % (at least 10⁻³) so that a constant series still
/// has a height; (0, 1) when there is none.
pub fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// The range of the positive values widened to whole decades, so a log axis has labelled ticks
/// however narrow the data; (0.1, 10) when there is none.
pub fn decade_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0f64), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return (0.1, 10.0);
    }
    let decade = |v: f64, f: fn(f64) -> f64| 10f64.powf(f(v.log10()));
    let (lo, hi) = (decade(lo, f64::floor), decade(hi, f64::ceil));
    (lo, if hi > lo { hi } else { lo * 10.0 })
}

/// Tick labels for an axis of whole numbers: integers as integers, nothing between them.
pub fn whole_tick(v: &f64) -> String {
    match (v - v.round()).abs() < 1e-9 {
        true => format!("{v:.0}"),
        false => String::new(),
    }
}

/// Tick labels that drop a zero fraction: `5`, not `5.0`; others keep three significant
/// digits (`2.50`, [`crate::numfmt::plain`]).
pub fn tick(v: &f64) -> String {
    match (v - v.round()).abs() < 1e-9 {
        true => format!("{v:.0}"),
        false => crate::numfmt::plain(*v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pad_skip_non_finite_and_fall_back() {
        let (lo, hi) = padded_range([1.0, f64::NAN, 3.0].into_iter());
        assert!(
            (lo - 0.9).abs() < 1e-12 && (hi - 3.1).abs() < 1e-12,
            "{lo} {hi}"
        );
        let (lo, hi) = padded_range(std::iter::once(2.0));
        assert!(lo < 2.0 && hi > 2.0, "a constant series has no height");
        assert_eq!(padded_range(std::iter::empty()), (0.0, 1.0));
        assert_eq!(decade_range([0.03, 0.5, -1.0].into_iter()), (0.01, 1.0));
        assert_eq!(decade_range([1.0].into_iter()), (1.0, 10.0));
        assert_eq!(decade_range(std::iter::empty()), (0.1, 10.0));
    }

    #[test]
    fn ticks_drop_zero_fractions() {
        assert_eq!(
            (tick(&5.0), tick(&2.5)),
            ("5".to_string(), "2.50".to_string())
        );
        assert_eq!(
            (whole_tick(&3.0), whole_tick(&2.5)),
            ("3".into(), String::new())
        );
    }

    #[test]
    fn a_figure_is_dark_with_ink_axes() {
        let svg = render((200, 100), |root| {
            let mut chart = ChartBuilder::on(root)
                .x_label_area_size(20)
                .y_label_area_size(20)
                .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
            dark_mesh(&mut chart).x_desc("x").draw()?;
            Ok(())
        })
        .unwrap();
        let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        assert!(
            svg.contains(&format!("fill=\"{}\"", hex(BACKGROUND))),
            "not dark"
        );
        assert!(svg.contains(&hex(INK)), "no ink");
    }
}
