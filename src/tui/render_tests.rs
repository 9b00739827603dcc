//! Rendering into ratatui's `TestBackend`: insta snapshots of the dashboard at the sizes it
//! promises to serve, and no panics on any size or on empty, NaN or infinite data.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Msg};
use super::fixtures;
use super::views::draw;
use crate::records::events::TrainerEvent;
use crate::records::record::{BlockStat, RunInfo, StepRecord};

pub(super) fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, app)).unwrap();
    terminal
}

/// plain-56 exploding, v1-56 flat, 400 steps of each, as a live app that has paused.
pub(super) fn live() -> App {
    let histories = [fixtures::plain(56, 400), fixtures::v1(56, 400)];
    let mut app = App::new(fixtures::config());
    let runs = histories.iter().map(|h| h.info.clone()).collect();
    app.update(Msg::Trainer(TrainerEvent::Started {
        config: fixtures::config(),
        dataset: "mnist".into(),
        runs,
    }));
    for (run, h) in histories.into_iter().enumerate() {
        for rec in h.steps {
            app.update(Msg::Trainer(TrainerEvent::StepsFinished {
                records: vec![(run, rec)],
            }));
        }
        for eval in h.evals {
            app.update(Msg::Trainer(TrainerEvent::Evaluated { run, eval }));
        }
    }
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(' '),
        KeyModifiers::NONE,
    )));
    app
}

/// The side panel after `n` presses of `p`, and the heatmap after `m` if `share`.
fn with_panels(mut app: App, presses: usize, share: bool) -> App {
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    for _ in 0..presses {
        app.update(key('p'));
    }
    if share {
        app.update(key('m'));
    }
    app
}

#[test]
fn side_panels_and_share_heatmap() {
    insta::assert_snapshot!(
        "activations_panel_120x40",
        render(&with_panels(live(), 1, false), 120, 40).backend()
    );
    insta::assert_snapshot!(
        "params_panel_and_share_heatmap_120x40",
        render(&with_panels(live(), 2, true), 120, 40).backend()
    );
    insta::assert_snapshot!(
        "activations_panel_80x24",
        render(&with_panels(live(), 1, false), 80, 24).backend()
    );
}

#[test]
fn dashboard_120x40() {
    insta::assert_snapshot!(render(&live(), 120, 40).backend());
}

#[test]
fn dashboard_80x24() {
    insta::assert_snapshot!(render(&live(), 80, 24).backend());
}

#[test]
fn too_small_40x10() {
    insta::assert_snapshot!(render(&live(), 40, 10).backend());
}

#[test]
fn help_overlay_120x40() {
    let mut app = live();
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('?'),
        KeyModifiers::NONE,
    )));
    insta::assert_snapshot!(render(&app, 120, 40).backend());
}

#[test]
fn replay_focused_on_v1_scrubbed_back() {
    let histories = vec![fixtures::plain(56, 400), fixtures::v1(56, 400)];
    let mut app = App::replay(histories, fixtures::config(), "mnist".into());
    app.update(Msg::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    for _ in 0..3 {
        app.update(Msg::Key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE)));
    }
    insta::assert_snapshot!(render(&app, 120, 40).backend());
}

#[test]
fn before_the_first_step_120x40() {
    insta::assert_snapshot!(render(&App::new(fixtures::config()), 120, 40).backend());
}

/// Every size from 0×0 up, on the full data and on broken data.
#[test]
fn no_size_or_data_panics() {
    let mut broken = App::new(fixtures::config());
    let info = RunInfo {
        spec: "plain-8".into(),
        block_names: vec!["stem".into()],
        ..Default::default()
    };
    broken.update(Msg::Trainer(TrainerEvent::Started {
        config: fixtures::config(),
        dataset: String::new(),
        runs: vec![info],
    }));
    let values = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -1.0,
        f32::MAX,
        f32::MIN_POSITIVE,
    ];
    for (i, &v) in values.iter().enumerate() {
        let stat = BlockStat {
            grad_norm: v,
            act_mean: v,
            act_std: v,
            act_zero_frac: v,
            grad_rms: v,
            dead_frac: v,
            update_ratio: v,
            weight_norm: v,
            split: Some(crate::records::Eq5 {
                shortcut: v,
                branch: v,
                cos: v,
            }),
        };
        let blocks = vec![stat; i % 4]; // also more blocks than names, and none
        let rec = StepRecord {
            step: i as u64 + 1,
            loss: v,
            acc: v,
            lr: v,
            img_per_s: v,
            blocks,
            ..Default::default()
        };
        broken.update(Msg::Trainer(TrainerEvent::StepsFinished {
            records: vec![(0, rec)],
        }));
    }
    let empty = App::replay(vec![], fixtures::config(), String::new());
    let apps = [live(), broken, empty, App::new(fixtures::config())];
    for app in &apps {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (0, 30),
            (30, 0),
            (59, 15),
            (60, 16),
            (61, 17),
            (109, 33),
            (110, 34),
            (300, 90),
        ] {
            render(app, w, h);
        }
        for w in (0..130).step_by(7) {
            for h in (0..45).step_by(5) {
                render(app, w, h);
            }
        }
    }
    insta::assert_snapshot!("broken_data_120x40", render(&apps[1], 120, 40).backend());
}

/// What each promised size shows (README, *The dashboard*): 80×24 and 100×30 the flow, side
/// panel and curves with the heatmap one `p` cycle away; 120×40 and 200×60 every panel.
#[test]
fn dashboard_100x30_and_200x60() {
    let app = live();
    let small = render(&app, 100, 30);
    insta::assert_snapshot!("dashboard_100x30", small.backend());
    let big = render(&app, 200, 60);
    insta::assert_snapshot!("dashboard_200x60", big.backend());
    let text = |t: &Terminal<TestBackend>| format!("{}", t.backend());
    assert!(text(&small).contains("learning: w, heatmap: p"));
    assert!(!text(&big).contains("heatmap: p"));
    for t in [&render(&app, 80, 24), &small] {
        assert!(text(t).contains("learning: w, heatmap: p"));
    }
}

/// Issue 30, reading the screen: `? help` keeps its place beside a long status message at 80
/// and 100 columns; while paused the footer offers `space resume` and the header no img/s; the
/// share heatmap leaves the stem (no shortcut, nothing measured) blank, not in the NaN red.
#[test]
fn footer_header_and_share_stem() {
    let mut app = live();
    app.saved(
        std::path::Path::new("saves/plain-56_v1-56_2026-12-07T12-00-00.ron"),
        crate::tui::SaveKind::Autosave,
    );
    for width in [80, 100] {
        let t = render(&app, width, 30);
        let buf = t.backend().buffer();
        let row = |y: u16| (0..width).map(|x| buf[(x, y)].symbol()).collect::<String>();
        let footer = row(29);
        assert!(footer.starts_with("  ?  help "), "{width}: {footer}");
        assert!(footer.contains("saved saves/"), "{width}: {footer}");
        assert!(!row(0).contains("img/s"), "paused: {}", row(0));
    }
    let t = render(&app, 200, 60);
    let text = format!("{}", t.backend());
    assert!(text.contains("space  resume"), "{text}");
    let app = with_panels(app, 0, true);
    let t = render(&app, 200, 60);
    let buf = t.backend().buffer();
    // The heatmap's first row ("in", the stem) paints no cell red.
    let y = (0..60)
        .find(|&y| {
            (0..200)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .contains("│in  ")
        })
        .expect("the heatmap's first row");
    let red = (0..200).filter(|&x| {
        let c = &buf[(x, y)];
        c.fg == ratatui::style::Color::Red || c.bg == ratatui::style::Color::Red
    });
    assert_eq!(red.count(), 0, "red cells in the stem row");
}

#[test]
fn the_hidden_heatmap_through_p_80x24() {
    let mut app = live();
    // The loop reports the terminal's size (at start and on resize): here 80×24.
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    let app = with_panels(app, 5, false);
    let t = render(&app, 80, 24);
    insta::assert_snapshot!("heatmap_in_the_side_panel_80x24", t.backend());
    assert!(!format!("{}", t.backend()).contains("heatmap: p"));
}

/// The learning panel at 80×24 (`w` brings it, with each run's why line), its weight-growth
/// view and the update-ratio heatmap at 120×40.
#[test]
fn learning_panel_80x24_and_growth_120x40() {
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let mut small = live();
    small.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    small.update(key('w'));
    let t = render(&small, 80, 24);
    insta::assert_snapshot!("learning_panel_80x24", t.backend());
    let text = format!("{}", t.backend());
    assert!(text.contains("in÷out ×0.103"), "{text}");
    assert!(
        text.contains("1 plain-56: input weights grew ×27.1 (BN"),
        "{text}"
    );
    let mut big = live();
    big.update(key('w'));
    big.update(key('m'));
    big.update(key('m'));
    let t = render(&big, 120, 40);
    insta::assert_snapshot!("growth_and_update_heatmap_120x40", t.backend());
    let text = format!("{}", t.backend());
    assert!(text.contains("weight growth"), "{text}");
    assert!(text.contains("‖ΔW‖/‖W‖ (log)"), "{text}");
}

/// At the smallest size every key of either mode is listed in the help overlay.
#[test]
fn help_overlay_80x24_lists_every_key() {
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let mut live = live();
    live.update(key('?'));
    let t = render(&live, 80, 24);
    insta::assert_snapshot!("help_overlay_80x24", t.backend());
    let replay = {
        let h = vec![fixtures::plain(56, 400), fixtures::v1(56, 400)];
        let mut app = App::replay(h, fixtures::config(), "mnist".into());
        app.update(key('?'));
        app
    };
    for (app, mode) in [(&live, super::keys::LIVE), (&replay, super::keys::REPLAY)] {
        let text = format!("{}", render(app, 80, 24).backend());
        for b in mode
            .iter()
            .chain(super::keys::COMMON)
            .chain(super::keys::VIEW)
        {
            assert!(text.contains(b.long), "{} missing:\n{text}", b.keys);
        }
    }
}

#[test]
fn loss_on_a_log_axis_120x40() {
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let mut app = live();
    app.update(key('l'));
    let t = render(&app, 120, 40);
    insta::assert_snapshot!("loss_log_axis_120x40", t.backend());
    assert!(format!("{}", t.backend()).contains("log loss · smooth 5% · test •"));
}

/// A lesion result shaped like Veit et al.'s: deleting any plain block drops to chance; deleting
/// a residual block costs little except at the two downsampling blocks.
fn lesion_result(app: &App) -> crate::records::ExperimentResult {
    use crate::records::{BlockLesion, LesionParams, LesionReport, ModelLesion};
    let models = app
        .histories()
        .iter()
        .map(|h| {
            let plain = h.info.spec.starts_with("plain");
            let blocks = h.info.block_names[1..]
                .iter()
                .enumerate()
                .map(|(i, name)| BlockLesion {
                    name: name.clone(),
                    accuracy: Some(match (plain, name.ends_with(".0") && i > 0) {
                        (true, _) => 0.1 + 0.01 * (i % 3) as f64,
                        (false, true) => 0.55,
                        (false, false) => 0.93 - 0.002 * i as f64,
                    }),
                })
                .collect();
            ModelLesion {
                model: h.info.spec.clone(),
                accuracy: if plain { 0.62 } else { 0.95 },
                blocks,
            }
        })
        .collect();
    crate::records::ExperimentResult::Lesion {
        report: Box::new(LesionReport {
            models,
            params: LesionParams {
                experiment: fixtures::config(),
                steps: vec![400, 400],
                from: None,
                test_images: 500,
                eval_batch: 100,
            },
        }),
        classes: 10,
    }
}

#[test]
fn experiment_panel_running_then_lesion_result() {
    use crate::records::ExperimentKind;
    let mut app = live();
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('x'),
        KeyModifiers::NONE,
    )));
    app.update(Msg::Trainer(TrainerEvent::ExperimentProgress {
        kind: ExperimentKind::Lesion,
        done: 19,
        total: 57,
    }));
    insta::assert_snapshot!("experiment_running_120x40", render(&app, 120, 40).backend());
    let result = lesion_result(&app);
    app.update(Msg::Trainer(TrainerEvent::ExperimentFinished {
        result: Box::new(result),
    }));
    insta::assert_snapshot!("experiment_lesion_120x40", render(&app, 120, 40).backend());
    insta::assert_snapshot!("experiment_lesion_80x24", render(&app, 80, 24).backend());
}

/// A study started a few steps in: every run at chance, which the panel must say rather than
/// show three flat lines as a finding.
#[test]
fn an_early_lesion_study_says_the_runs_are_at_chance() {
    let mut app = live();
    let mut result = lesion_result(&app);
    let crate::records::ExperimentResult::Lesion { report, .. } = &mut result else {
        unreachable!()
    };
    for m in &mut report.models {
        m.accuracy = 0.1;
        m.blocks.iter_mut().for_each(|b| b.accuracy = Some(0.1));
    }
    report.params.steps = vec![20, 20];
    app.update(Msg::Trainer(TrainerEvent::ExperimentFinished {
        result: Box::new(result),
    }));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('e'),
        KeyModifiers::NONE,
    )));
    for (w, h) in [(120, 40), (80, 24)] {
        let text = format!("{}", render(&app, w, h).backend());
        assert!(
            text.contains("at chance: train on, then x"),
            "{w}×{h}:\n{text}"
        );
        assert!(
            text.contains("step 20 · 500 test images"),
            "{w}×{h}:\n{text}"
        );
        assert!(
            !text.contains("median"),
            "no drops shown for runs at chance:\n{text}"
        );
    }
}

#[test]
fn experiment_panel_shattering_and_landscape_120x40() {
    use crate::experiments::landscape::axis;
    use crate::experiments::shatter::autocorrelation;
    use crate::records::ExperimentResult;
    use crate::records::{LandscapeParams, LandscapeResult};
    use crate::records::{ShatterParams, ShatterResult};
    let mut app = live();
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    app.update(key('e')); // opens the panel (lesion)
    app.update(key('e')); // shattering
    // A noisy gradient for plain, a smooth one for v1 (fixed, so the snapshot is stable).
    let grad = |smooth: bool| -> Vec<f64> {
        (0..256)
            .map(|i| {
                let t = i as f64 / 255.0;
                if smooth {
                    (6.0 * t).sin()
                } else {
                    ((i * 7919 % 101) as f64 / 50.0 - 1.0) * (1.0 + t)
                }
            })
            .collect()
    };
    let shatter = app
        .histories()
        .iter()
        .map(|h| {
            let g = grad(!h.info.spec.starts_with("plain"));
            let autocorr = autocorrelation(&g, 16);
            ShatterResult {
                model: h.info.spec.clone(),
                params: ShatterParams::default(),
                class: 3,
                logit: vec![0.0; g.len()],
                lag1: autocorr[0],
                lag1_pairs: vec![autocorr[0]],
                lag1_mean: autocorr[0],
                lag1_std: f64::NAN,
                lag1_iqr: 0.0,
                autocorr_mean: autocorr.clone(),
                autocorr,
                grad: g,
            }
        })
        .collect();
    app.update(Msg::Trainer(TrainerEvent::ExperimentFinished {
        result: Box::new(ExperimentResult::Shatter(shatter)),
    }));
    insta::assert_snapshot!("experiment_shatter_120x40", render(&app, 120, 40).backend());
    app.update(key('e'));
    let coords = axis(11);
    let landscape = app
        .histories()
        .iter()
        .enumerate()
        .map(|(k, h)| {
            // A bowl for v1; a bowl with a steep wall for plain.
            let f = |a: f64, b: f64| {
                0.3 + a * a + b * b + if k == 0 { 10f64.powf(4.0 * a) } else { 0.0 }
            };
            let losses = coords
                .iter()
                .map(|&b| coords.iter().map(|&a| f(a, b)).collect())
                .collect();
            LandscapeResult {
                model: h.info.spec.clone(),
                params: LandscapeParams::default(),
                coords: coords.clone(),
                losses,
                slice_coords: coords.clone(),
                slice: coords.iter().map(|&a| f(a, 0.0)).collect(),
                centre_loss: f(0.0, 0.0),
                min_loss: 0.3,
                min_at: [0.0, 0.0],
                nonconvex_frac: if k == 0 { 0.27 } else { 0.0 },
                basin_threshold: f(0.0, 0.0) + 0.5 * 10f64.ln(),
                basin_points: 0,
                basin_nonconvex_frac: f64::NAN,
                hessian: Vec::new(),
                hessian_ratio_median: f64::NAN,
            }
        })
        .collect();
    app.update(Msg::Trainer(TrainerEvent::ExperimentFinished {
        result: Box::new(ExperimentResult::Landscape(landscape)),
    }));
    let t = render(&app, 120, 40);
    insta::assert_snapshot!("experiment_landscape_120x40", t.backend());
    assert!(format!("{}", t.backend()).contains("non-convex 27%"));
}
