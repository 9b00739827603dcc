//! SVG figures of the experiments on weights: shattering (g(t) per run, normalised, and its
//! autocorrelation as bars), loss landscape (a heatmap per run side by side on one colour scale
//! with its legend, and the 1-D slices), and lesion (accuracy drop per block, one group per run,
//! the drop to chance marked). Dark, in the dashboard's run colours, as `compare --plot` draws.

use crate::experiments::shatter::line;
use crate::plotting::svg::{dark_legend, dark_mesh, font, padded_range, render, run_colours};
use crate::plotting::svg::{tick, whole_tick};
use crate::records::LandscapeResult;
use crate::records::LesionReport;
use crate::records::ShatterResult;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Each model's colour, as the dashboard and `compare --plot` give it.
fn colours<'a>(models: impl Iterator<Item = &'a str>) -> Vec<RGBColor> {
    run_colours(&models.collect::<Vec<_>>())
}

/// Left: g(t)/max|g| per run; right: autocorrelation at lags 1..k, one bar per run and lag.
pub fn shatter_svg(results: &[ShatterResult]) -> Result<String, String> {
    let colour = colours(results.iter().map(|r| r.model.as_str()));
    let colour = |k: usize| colour[k];
    render((1200, 480), |root| {
        let (left, right) = root.split_horizontally(600);
        let mut chart = ChartBuilder::on(&left)
            .caption("g(t) = d logit/dt along the line (÷ max |g|)", font(18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, -1.05f64..1.05f64)?;
        dark_mesh(&mut chart)
            .x_desc("t")
            .y_desc("g / max|g|")
            .draw()?;
        for (k, r) in results.iter().enumerate() {
            let max = r
                .grad
                .iter()
                .fold(0f64, |m, g| m.max(g.abs()))
                .max(f64::MIN_POSITIVE);
            let pts: Vec<(f64, f64)> = line(r.grad.len())
                .into_iter()
                .zip(&r.grad)
                .map(|(t, g)| (t, g / max))
                .collect();
            let style = colour(k).stroke_width(1);
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(format!("{} (lag-1 {:.3})", r.model, r.lag1))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        dark_legend(&mut chart).draw()?;

        let lags = results
            .iter()
            .map(|r| r.autocorr.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let (lo, hi) = padded_range(results.iter().flat_map(|r| r.autocorr.iter().copied()));
        let mut chart = ChartBuilder::on(&right)
            .caption("autocorrelation of g", font(18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5f64..lags as f64 + 0.5, lo.min(0.0)..hi.max(1.0))?;
        dark_mesh(&mut chart)
            .x_desc("lag")
            .x_labels(lags.min(16))
            .x_label_formatter(&whole_tick)
            .y_desc("r(lag)")
            .draw()?;
        let w = 0.8 / results.len().max(1) as f64;
        for (k, r) in results.iter().enumerate() {
            let c = colour(k).filled();
            chart.draw_series(
                r.autocorr
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.is_finite())
                    .map(|(l, &a)| {
                        let x0 = l as f64 + 1.0 - 0.4 + k as f64 * w;
                        Rectangle::new([(x0, 0.0), (x0 + w, a)], c)
                    }),
            )?;
        }
        Ok(())
    })
}

/// Top: one heatmap of log10(loss) per run, on one shared colour scale, and the scale's legend;
/// bottom: the 1-D slices β = 0.
pub fn landscape_svg(results: &[LandscapeResult]) -> Result<String, String> {
    let colour = colours(results.iter().map(|r| r.model.as_str()));
    let colour = |k: usize| colour[k];
    let n = results.len().max(1) as u32;
    let width = (380 * n + 120).max(800);
    render((width, 820), |root| {
        let (top, bottom) = root.split_vertically(440);
        let (maps, legend) = top.split_horizontally(width - 110);
        let log = |l: f64| if l > 0.0 { l.log10() } else { f64::NAN };
        let (lo, hi) = padded_range(
            results
                .iter()
                .flat_map(|r| r.losses.iter().flatten().map(|&l| log(l))),
        );
        let colour_of = |v: f64| -> RGBColor {
            if v.is_finite() {
                ViridisRGB::get_color_normalized(v, lo, hi)
            } else {
                RGBColor(255, 0, 255) // NaN or infinite loss
            }
        };
        for (area, r) in maps
            .split_evenly((1, results.len().max(1)))
            .iter()
            .zip(results)
        {
            let g = r.coords.len();
            let half = if g > 1 {
                (r.coords[1] - r.coords[0]) / 2.0
            } else {
                1.0
            };
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{}: non-convex {:.0} %", r.model, 100.0 * r.nonconvex_frac),
                    font(16),
                )
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(40)
                .build_cartesian_2d(-1.0 - half..1.0 + half, -1.0 - half..1.0 + half)?;
            dark_mesh(&mut chart)
                .x_desc("α")
                .y_desc("β")
                .disable_mesh()
                .draw()?;
            chart.draw_series(
                r.losses
                    .iter()
                    .enumerate()
                    .flat_map(|(j, row)| row.iter().enumerate().map(move |(i, &l)| (i, j, l)))
                    .map(|(i, j, l)| {
                        let (a, b) = (r.coords[i], r.coords[j]);
                        Rectangle::new(
                            [(a - half, b - half), (a + half, b + half)],
                            colour_of(log(l)).filled(),
                        )
                    }),
            )?;
            chart.draw_series(std::iter::once(Cross::new(
                (0.0, 0.0),
                5,
                WHITE.stroke_width(2),
            )))?;
        }
        let mut scale = ChartBuilder::on(&legend)
            .caption("log10 loss", font(14))
            .margin(10)
            .margin_top(40)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..1f64, lo..hi)?;
        dark_mesh(&mut scale)
            .disable_x_axis()
            .disable_mesh()
            .y_label_style(font(12))
            .draw()?;
        let steps = 64;
        scale.draw_series((0..steps).map(|s| {
            let (a, b) = (
                lo + (hi - lo) * s as f64 / steps as f64,
                lo + (hi - lo) * (s + 1) as f64 / steps as f64,
            );
            Rectangle::new([(0.0, a), (1.0, b)], colour_of((a + b) / 2.0).filled())
        }))?;

        let (slo, shi) = padded_range(results.iter().flat_map(|r| r.slice.iter().map(|&l| log(l))));
        let mut chart = ChartBuilder::on(&bottom)
            .caption("1-D slice β = 0", font(18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-1f64..1f64, slo..shi)?;
        dark_mesh(&mut chart)
            .x_desc("α")
            .y_desc("log10 loss")
            .draw()?;
        for (k, r) in results.iter().enumerate() {
            let style = colour(k).stroke_width(2);
            let pts = r
                .slice_coords
                .iter()
                .zip(&r.slice)
                .map(|(&a, &l)| (a, log(l)));
            chart
                .draw_series(LineSeries::new(pts.filter(|p| p.1.is_finite()), style))?
                .label(r.model.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        dark_legend(&mut chart).draw()?;
        Ok(())
    })
}

/// Accuracy drop (points) per deleted block, one group of bars per run; a dashed line per group
/// at the drop that would leave the net at chance. Blocks that cannot be deleted have no bar. A
/// run whose intact net is at chance ([`crate::experiments::lesion::ModelLesion::at_chance`]) has faded bars and says so in
/// the legend: it has learned nothing a deletion could remove.
pub fn lesion_svg(report: &LesionReport, classes: usize) -> Result<String, String> {
    let chance = 100.0 / classes.max(1) as f64;
    let groups: Vec<(String, f64, Vec<Option<f64>>, bool)> = report
        .models
        .iter()
        .map(|m| {
            let drops = m
                .blocks
                .iter()
                .map(|b| b.accuracy.map(|a| 100.0 * (m.accuracy - a)));
            let at_chance = m.at_chance(classes);
            let label = match at_chance {
                true => format!("{} (at chance: its drops say nothing)", m.model),
                false => m.model.clone(),
            };
            (
                label,
                100.0 * m.accuracy - chance,
                drops.collect(),
                at_chance,
            )
        })
        .collect();
    let width = groups.iter().map(|g| g.2.len() + 1).sum::<usize>().max(1) as f64;
    let values = groups
        .iter()
        .flat_map(|g| g.2.iter().flatten().copied().chain([g.1]));
    let (lo, hi) = padded_range(values.chain([0.0]));
    let colour = colours(report.models.iter().map(|m| m.model.as_str()));
    let colour = |k: usize| colour[k];
    render((1200, 480), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("lesion: accuracy drop per deleted block (dashed: drop to chance, {chance:.0} %)"),
                font(18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..width, lo..hi)?;
        dark_mesh(&mut chart)
            .disable_x_mesh()
            .x_labels(0)
            .x_desc("blocks, input → output, one group per run")
            .y_desc("drop (points)")
            .y_label_formatter(&tick)
            .draw()?;
        let mut x = 0.5;
        for (k, (model, to_chance, drops, at_chance)) in groups.iter().enumerate() {
            let c = colour(k);
            let bar = if *at_chance { c.mix(0.3) } else { c.mix(1.0) };
            let start = x;
            // Block labels along the bottom: every block of a short net, else where each
            // stage starts (the downsampling blocks, the ones that hurt).
            let names = &report.models[k].blocks;
            let every = names.len() <= 12;
            let label_y = lo + (hi - lo) * 0.01;
            chart.draw_series(names.iter().enumerate().filter_map(|(i, b)| {
                let short = b.name.strip_prefix("stages.").unwrap_or(&b.name);
                (every || short.ends_with(".0")).then(|| {
                    let style = font(11).pos(Pos::new(HPos::Center, VPos::Bottom));
                    Text::new(short.to_string(), (start + i as f64 + 0.5, label_y), style)
                })
            }))?;
            chart
                .draw_series(drops.iter().enumerate().filter_map(|(i, d)| {
                    d.map(|d| {
                        let x0 = start + i as f64 + 0.1;
                        Rectangle::new([(x0, 0.0), (x0 + 0.8, d)], bar.filled())
                    })
                }))?
                .label(model.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], bar.filled()));
            x += drops.len() as f64;
            chart.draw_series(DashedLineSeries::new(
                [(start, *to_chance), (x, *to_chance)],
                6,
                4,
                c.stroke_width(2),
            ))?;
            x += 1.0;
        }
        dark_legend(&mut chart).draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plotting::svg::BACKGROUND;
    use crate::records::{BlockLesion, LesionParams, ModelLesion};

    #[test]
    fn the_lesion_plot_marks_a_run_at_chance() {
        let model = |name: &str, accuracy| ModelLesion {
            model: name.into(),
            accuracy,
            blocks: vec![BlockLesion {
                name: "stages.0.1".into(),
                accuracy: Some(0.1),
            }],
        };
        let report = LesionReport {
            models: vec![model("plain-8", 0.11), model("v1-8", 0.9)],
            params: LesionParams {
                experiment: Default::default(),
                steps: vec![1, 1],
                from: None,
                test_images: 32,
                eval_batch: 32,
            },
        };
        let svg = lesion_svg(&report, 10).unwrap();
        assert!(
            svg.contains("plain-8 (at chance: its drops say nothing)"),
            "{svg}"
        );
        assert!(svg.contains("v1-8") && !svg.contains("v1-8 (at chance"));
    }

    /// Issue 30: dark like `compare --plot`, block labels under the bars, whole-number ticks.
    #[test]
    fn the_lesion_plot_is_dark_and_labels_its_blocks() {
        let block = |name: &str| BlockLesion {
            name: name.into(),
            accuracy: Some(0.5),
        };
        let report = LesionReport {
            models: vec![ModelLesion {
                model: "v1-8".into(),
                accuracy: 0.9,
                blocks: vec![
                    block("stages.0.0"),
                    block("stages.1.0"),
                    block("stages.2.0"),
                ],
            }],
            params: LesionParams {
                experiment: Default::default(),
                steps: vec![1],
                from: None,
                test_images: 32,
                eval_batch: 32,
            },
        };
        let svg = lesion_svg(&report, 10).unwrap();
        let bg = format!(
            "fill=\"#{:02X}{:02X}{:02X}\"",
            BACKGROUND.0, BACKGROUND.1, BACKGROUND.2
        );
        assert!(svg.contains(&bg), "not dark");
        let texts: Vec<&str> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .map(str::trim)
            .collect();
        for name in ["0.0", "1.0", "2.0"] {
            assert!(texts.contains(&name), "no label {name}: {texts:?}");
        }
        // Drops of 40 points: the axis ticks are whole numbers, not "40.0".
        assert!(texts.iter().any(|t| *t == "40"), "{texts:?}");
        assert!(
            !texts.iter().any(|t| t.ends_with(".0") && t.len() > 3),
            "{texts:?}"
        );
    }
}
