//! `App::update` for the view keys: the cursor readout's values are the records', hidden runs
//! leave the charts, the smoothing window and the time axis change, the header's ETA.

use ratatui::crossterm::event::KeyCode;

use super::super::tests::{ch, key};
use super::super::*;
use crate::config::Schedule;
use crate::records::record::{RunHistory, StepRecord};
use crate::tui::{fixtures, series};

/// plain-56 and v1-20 (28 and 10 block boundaries), 400 steps each, fed to a live app.
fn live(config: ExperimentConfig) -> (App, Vec<RunHistory>) {
    let histories = vec![fixtures::plain(56, 400), fixtures::v1(20, 400)];
    let mut app = App::new(config.clone());
    app.update(Msg::Trainer(TrainerEvent::Started {
        config,
        dataset: "mnist".into(),
        runs: histories.iter().map(|h| h.info.clone()).collect(),
    }));
    for (run, h) in histories.iter().enumerate() {
        let records = h.steps.iter().map(|r| (run, r.clone())).collect();
        app.update(Msg::Trainer(TrainerEvent::StepsFinished { records }));
        for &eval in &h.evals {
            app.update(Msg::Trainer(TrainerEvent::Evaluated { run, eval }));
        }
    }
    (app, histories)
}

/// Each row's record is the run's record at `step`, its test result the last evaluation by then.
fn assert_rows_at(app: &App, histories: &[RunHistory], step: u64) {
    let rows = app.readout_rows();
    assert_eq!(rows.len(), histories.len());
    for (row, h) in rows.iter().zip(histories) {
        let rec: &StepRecord = h.steps.iter().find(|r| r.step == step).unwrap();
        assert_eq!(row.record, rec, "run {} at {step}", row.run);
        let test = h.evals.iter().rfind(|e| e.step <= step);
        assert_eq!(row.test, test);
    }
}

#[test]
fn the_readout_shows_every_runs_record_at_the_cursor() {
    let (mut app, h) = live(fixtures::config());
    assert_eq!(app.readout(), None);
    app.update(ch('c'));
    assert_eq!(
        app.readout(),
        Some(Readout {
            step: 400,
            block: 0
        })
    );
    assert_rows_at(&app, &h, 400);
    let rows = app.readout_rows();
    assert_eq!(rows[0].block, Some(("stem", &h[0].steps[399].blocks[0])));
    // The smoothed loss is the chart's: the EMA over a twentieth of the run, at that record.
    let pts: Vec<_> = h[0]
        .steps
        .iter()
        .map(|r| (r.step as f64, r.loss as f64))
        .collect();
    assert_eq!(rows[0].smoothed, Some(series::ema(&pts, 0.05)[399].1));
    for (code, step) in [
        (KeyCode::Left, 399),
        (KeyCode::Left, 398),
        (KeyCode::Right, 399),
        (KeyCode::PageUp, 360),
        (KeyCode::Home, 1),
        (KeyCode::Left, 1),
        (KeyCode::PageDown, 40),
        (KeyCode::End, 400),
    ] {
        app.update(key(code));
        assert_eq!(app.readout().unwrap().step, step, "{code:?}");
        assert_rows_at(&app, &h, step);
    }
    // ↑ moves along the deepest run's boundaries; v1-20 shows the one at the same depth.
    for _ in 0..9 {
        app.update(key(KeyCode::Up));
    }
    app.update(key(KeyCode::Down));
    assert_eq!(app.readout().unwrap().block, 8);
    let rows = app.readout_rows();
    let (name, stat) = rows[0].block.unwrap();
    assert_eq!(
        (name, stat),
        (
            h[0].info.block_names[8].as_str(),
            &h[0].steps[399].blocks[8]
        )
    );
    // 8 of 27 intervals is 2.67 of v1-20's 9: boundary 3.
    let (name, stat) = rows[1].block.unwrap();
    assert_eq!(
        (name, stat),
        (
            h[1].info.block_names[3].as_str(),
            &h[1].steps[399].blocks[3]
        )
    );
    for _ in 0..40 {
        app.update(key(KeyCode::Up));
    }
    assert_eq!(app.readout().unwrap().block, 27);
    assert_eq!(app.readout_rows()[1].block.unwrap().0, "stages.2.2");
}

#[test]
fn esc_leaves_the_readout_and_then_quits() {
    let (mut app, _) = live(fixtures::config());
    app.update(ch('c'));
    assert_eq!(app.update(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.readout(), None);
    // Outside the readout the arrows up and down do nothing, and `c` toggles.
    assert_eq!(app.update(key(KeyCode::Up)), vec![]);
    app.update(ch('c'));
    app.update(ch('c'));
    assert_eq!(app.readout(), None);
    assert!(app.update(key(KeyCode::Esc)).contains(&Action::Quit));
}

#[test]
fn the_readout_in_a_replay_stops_at_its_time_cursor() {
    let h = vec![fixtures::plain(56, 400), fixtures::v1(20, 400)];
    let mut app = App::replay(h.clone(), fixtures::config(), "mnist".into());
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.cursor().unwrap().at, 361);
    app.update(ch('c'));
    assert_rows_at(&app, &h, 361);
    // The arrows move the readout now, not the replay.
    app.update(key(KeyCode::Left));
    assert_eq!(app.cursor().unwrap().at, 361);
    assert_rows_at(&app, &h, 360);
}

#[test]
fn a_hidden_run_leaves_the_charts_and_the_readout() {
    let (mut app, h) = live(fixtures::config());
    app.update(ch('2'));
    app.update(ch('h'));
    assert!(app.hidden(1) && !app.hidden(0));
    assert_eq!(app.draw_order(), vec![0]);
    assert!(app.status().unwrap().text.contains("v1-20 hidden"));
    app.update(ch('c'));
    let rows = app.readout_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record, &h[0].steps[399]);
    // It keeps training: its records still arrive.
    let mut rec = h[1].steps[399].clone();
    rec.step = 401;
    app.update(Msg::Trainer(TrainerEvent::StepsFinished {
        records: vec![(1, rec)],
    }));
    assert_eq!(app.histories()[1].steps.last().unwrap().step, 401);
    app.update(ch('h'));
    assert_eq!(app.draw_order(), vec![0, 1]);
}

#[test]
fn smoothing_steps_through_its_windows_and_off() {
    let (mut app, _) = live(fixtures::config());
    assert_eq!(app.smoothing(), Some(0.05));
    for _ in 0..5 {
        app.update(ch('('));
    }
    assert_eq!(app.smoothing(), None);
    assert_eq!(app.status().unwrap().text, "loss smoothing off");
    app.update(ch(')'));
    assert_eq!(app.smoothing(), Some(0.01));
    for _ in 0..9 {
        app.update(ch(')'));
    }
    assert_eq!(app.smoothing(), Some(0.2));
}

#[test]
fn the_time_axis_counts_each_runs_training_seconds() {
    let (mut app, h) = live(fixtures::config());
    assert!(!app.time_axis());
    app.update(ch('t'));
    assert!(app.time_axis());
    let secs: f64 = h[0].steps.iter().map(|r| 64.0 / r.img_per_s as f64).sum();
    let elapsed = app.elapsed(0);
    assert_eq!(elapsed.len(), 400);
    assert!(
        (elapsed[399] - secs).abs() < 1e-9,
        "{} {secs}",
        elapsed[399]
    );
    assert!(elapsed.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn the_eta_counts_every_running_run() {
    let (app, _) = live(fixtures::config());
    assert_eq!(app.step_target(), None);
    assert_eq!(app.eta_secs(), None);
    let config = ExperimentConfig {
        schedule: Schedule::Cosine { total: 1000 },
        ..fixtures::config()
    };
    let (app, h) = live(config);
    assert_eq!(app.step_target(), Some(1000));
    let per_step: f64 = h
        .iter()
        .map(|h| {
            h.steps[390..]
                .iter()
                .map(|r| 64.0 / r.img_per_s as f64)
                .sum::<f64>()
                / 10.0
        })
        .sum();
    let eta = app.eta_secs().unwrap();
    assert!((eta - 600.0 * per_step).abs() < 1e-9, "{eta}");
}
