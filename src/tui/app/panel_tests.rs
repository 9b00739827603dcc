//! `App::update` for the keys that choose what the panels show: the side panel's cycle, the
//! log axis and screenshots, and the learning panel's `w`.

use super::tests::{ch, started};
use super::*;

#[test]
fn log_axis_screenshot_and_the_hidden_heatmap_in_the_panel_cycle() {
    let mut app = started();
    assert!(!app.loss_log());
    app.update(ch('l'));
    assert!(app.loss_log());
    assert_eq!(app.update(ch('S')), vec![Action::Screenshot]);
    app.screenshot_written(Ok(std::path::Path::new("saves/screen-1.html")));
    assert_eq!(app.status().unwrap().text, "screenshot saves/screen-1.html");
    // Every panel shown: p cycles the five side panels.
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    let mut seen = Vec::new();
    for _ in 0..5 {
        app.update(ch('p'));
        seen.push(app.side_panel());
    }
    assert_eq!(
        seen,
        [
            SidePanel::Activations,
            SidePanel::Params,
            SidePanel::Hist,
            SidePanel::Experiment,
            SidePanel::Shortcut
        ]
    );
    // At 80×24 the heatmap is hidden and joins the cycle.
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    let mut seen = Vec::new();
    for _ in 0..7 {
        app.update(ch('p'));
        seen.push(app.side_panel());
    }
    assert_eq!(
        seen,
        [
            SidePanel::Learning,
            SidePanel::Activations,
            SidePanel::Params,
            SidePanel::Hist,
            SidePanel::Heatmap,
            SidePanel::Experiment,
            SidePanel::Shortcut
        ]
    );
}

/// `w` brings the learning panel where the layout hides it, then toggles what it draws; where
/// it has its own place `w` only toggles.
#[test]
fn w_shows_the_learning_panel_then_toggles_it() {
    let mut app = App::new(ExperimentConfig::default());
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    assert_eq!(app.learn_mode(), LearnMode::Ratio);
    app.update(ch('w'));
    assert_eq!(app.side_panel(), SidePanel::Learning);
    assert_eq!(app.learn_mode(), LearnMode::Ratio);
    app.update(ch('w'));
    assert_eq!(app.learn_mode(), LearnMode::Growth);
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    app.update(ch('p'));
    let side = app.side_panel();
    app.update(ch('w'));
    assert_eq!(
        (app.side_panel(), app.learn_mode()),
        (side, LearnMode::Ratio)
    );
    // `m` reaches the update-ratio heatmap third.
    for want in [HeatMode::Share, HeatMode::Learn, HeatMode::Rms] {
        app.update(ch('m'));
        assert_eq!(app.heat_mode(), want);
    }
}
