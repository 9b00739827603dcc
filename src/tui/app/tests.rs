//! `App::update` sequences: keys and trainer events in, state and actions out, no terminal.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::records::record::{RunStatus, StepRecord};
use crate::tui::fixtures;

pub(super) fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(super) fn ch(c: char) -> Msg {
    key(KeyCode::Char(c))
}

pub(super) fn send(command: TrainerCommand) -> Vec<Action> {
    vec![Action::Send(command)]
}

pub(super) fn info(spec: &str) -> RunInfo {
    RunInfo {
        spec: spec.into(),
        ..Default::default()
    }
}

/// A live app whose trainer has started three runs.
pub(super) fn started() -> App {
    let config = ExperimentConfig {
        models: vec!["plain-56".into(), "v1-56".into(), "v2-56".into()],
        lr: 0.1,
        ..Default::default()
    };
    let mut app = App::new(config.clone());
    let runs = config.models.iter().map(|s| info(s)).collect();
    app.update(Msg::Trainer(TrainerEvent::Started {
        config,
        dataset: "mnist (10000)".into(),
        runs,
    }));
    app
}

pub(super) fn step(step: u64, runs: usize) -> Msg {
    let records = (0..runs)
        .map(|run| {
            (
                run,
                StepRecord {
                    step,
                    loss: 2.0,
                    ..Default::default()
                },
            )
        })
        .collect();
    Msg::Trainer(TrainerEvent::StepsFinished { records })
}

#[test]
fn started_replaces_the_placeholder_runs() {
    let app = started();
    assert_eq!(app.state(), &TrainerPhase::Running);
    assert_eq!(app.dataset(), "mnist (10000)");
    assert_eq!(app.histories().len(), 3);
}

#[test]
fn space_toggles_pause_and_resume() {
    let mut app = started();
    assert_eq!(app.update(ch(' ')), send(TrainerCommand::Pause));
    assert_eq!(app.state(), &TrainerPhase::Paused);
    assert_eq!(app.update(ch(' ')), send(TrainerCommand::Resume));
    assert_eq!(app.state(), &TrainerPhase::Running);
}

#[test]
fn n_steps_only_while_paused() {
    let mut app = started();
    assert_eq!(app.update(ch('n')), vec![]);
    assert!(app.status().unwrap().text.contains("only while paused"));
    app.update(ch(' '));
    assert_eq!(app.update(ch('n')), send(TrainerCommand::Step));
    assert_eq!(app.state(), &TrainerPhase::Paused);
}

#[test]
fn focus_wraps_both_ways_and_digits_pick_runs() {
    let mut app = started();
    for expected in [1, 2, 0] {
        app.update(key(KeyCode::Tab));
        assert_eq!(app.focus(), expected);
    }
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus(), 2);
    app.update(ch('2'));
    assert_eq!(app.focus(), 1);
    app.update(ch('9'));
    assert_eq!(app.focus(), 1);
}

#[test]
fn save_reports_its_path_and_clears_unsaved_progress() {
    let mut app = started();
    app.update(step(1, 3));
    assert_eq!(app.update(ch('s')), vec![Action::Save(SaveKind::Manual)]);
    app.saved(std::path::Path::new("saves/run-1.ron"), SaveKind::Manual);
    assert_eq!(app.status().unwrap().text, "saved saves/run-1.ron");
    assert_eq!(app.unsaved_steps(), 0);
    app.save_failed("disk full");
    assert!(app.status().unwrap().error);
}

#[test]
fn quitting_autosaves_unsaved_progress() {
    let quit = vec![Action::Send(TrainerCommand::Stop), Action::Quit];
    let mut app = started();
    assert_eq!(app.update(ch('q')), quit);
    app.update(step(1, 3));
    let mut with_save = vec![Action::Save(SaveKind::Autosave)];
    with_save.extend(quit.clone());
    assert_eq!(app.update(key(KeyCode::Esc)), with_save);
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.update(ctrl_c), with_save);
    app.saved(std::path::Path::new("x.ron"), SaveKind::Autosave);
    assert_eq!(app.update(ch('q')), quit);
}

#[test]
fn help_closes_on_any_key_which_then_does_what_it_says() {
    let mut app = started();
    // A key without a binding, `?` and Esc only close it.
    for only_close in [ch('z'), ch('?'), key(KeyCode::Esc)] {
        app.update(ch('?'));
        assert!(app.help_open());
        assert_eq!(app.update(only_close), vec![]);
        assert!(!app.help_open());
    }
    assert_eq!(app.state(), &TrainerPhase::Running);
    // Any other key closes it and acts.
    app.update(ch('?'));
    assert_eq!(app.update(ch(' ')), send(TrainerCommand::Pause));
    assert!(!app.help_open());
    assert_eq!(app.state(), &TrainerPhase::Paused);
    app.update(ch('?'));
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.update(ctrl_c).last(), Some(&Action::Quit));
}

#[test]
fn status_messages_expire() {
    let mut app = started();
    app.update(ch('['));
    assert!(app.status().is_some());
    for _ in 0..4 * TICKS_PER_SEC {
        app.update(Msg::Tick);
    }
    assert!(app.status().is_some(), "gone before 4 s");
    for _ in 0..2 * TICKS_PER_SEC {
        app.update(Msg::Tick);
    }
    assert_eq!(app.status(), None, "still there after 6 s");
    assert!(app.take_dirty(), "its going is drawn");
    // Errors stay longer.
    app.save_failed("disk full");
    for _ in 0..6 * TICKS_PER_SEC {
        app.update(Msg::Tick);
    }
    assert!(app.status().is_some_and(|s| s.error));
}

#[test]
fn a_run_restarted_counts_its_own_epochs() {
    let mut app = started();
    let at = |step, epoch| {
        let records = (0..3)
            .map(|run| {
                let r = StepRecord {
                    step,
                    epoch,
                    ..Default::default()
                };
                (run, r)
            })
            .collect();
        Msg::Trainer(TrainerEvent::StepsFinished { records })
    };
    app.update(at(1, 0));
    app.update(at(300, 3));
    let (run, r) = app.latest_run().unwrap();
    assert_eq!((r.step, app.run_epoch(run, r)), (300, 3));
    app.update(ch('r'));
    for (run, spec) in ["plain-56", "v1-56", "v2-56"].into_iter().enumerate() {
        let info = info(spec);
        app.update(Msg::Trainer(TrainerEvent::RunRestarted { run, info }));
    }
    // The sampler is in its fourth epoch; the restarted runs in their first.
    app.update(at(1, 3));
    let (run, r) = app.latest_run().unwrap();
    assert_eq!((r.step, app.run_epoch(run, r)), (1, 0));
    app.update(at(2, 4));
    let (run, r) = app.latest_run().unwrap();
    assert_eq!(app.run_epoch(run, r), 1);
}

#[test]
fn coalesced_steps_count_once_per_step() {
    let mut app = started();
    let records = [1, 2].iter().flat_map(|&s| {
        (0..3).map(move |run| {
            (
                run,
                StepRecord {
                    step: s,
                    ..Default::default()
                },
            )
        })
    });
    app.update(Msg::Trainer(TrainerEvent::StepsFinished {
        records: records.collect(),
    }));
    assert_eq!(app.unsaved_steps(), 2);
    assert_eq!(app.histories()[2].steps.len(), 2);
    assert_eq!(app.latest().unwrap().step, 2);
    // Records for runs that do not exist are dropped, not a panic.
    app.update(step(3, 5));
}

#[test]
fn divergence_failure_and_end_of_training() {
    let mut app = started();
    app.update(Msg::Trainer(TrainerEvent::Diverged {
        run: 0,
        step: 7,
        reason: "loss is NaN".into(),
    }));
    assert!(matches!(
        app.histories()[0].status,
        RunStatus::Diverged { step: 7, .. }
    ));
    assert!(app.status().unwrap().error);
    app.update(Msg::Trainer(TrainerEvent::Finished { step: 9 }));
    assert_eq!(app.state(), &TrainerPhase::Finished);
    assert_eq!(app.histories()[1].status, RunStatus::Finished);
    assert!(matches!(
        app.histories()[0].status,
        RunStatus::Diverged { .. }
    ));
    assert_eq!(app.update(ch(' ')), vec![]);
    assert_eq!(app.update(ch('q')), vec![Action::Quit]);
}

#[test]
fn closed_channel_means_the_trainer_ended() {
    let mut app = started();
    app.update(Msg::TrainerClosed);
    assert_eq!(app.state(), &TrainerPhase::Ended);
    assert_eq!(app.update(ch('r')), vec![]);
    assert!(app.status().unwrap().text.contains("ended"));
    let mut app = started();
    app.update(Msg::Trainer(TrainerEvent::Failed {
        message: "out of memory".into(),
    }));
    app.update(Msg::TrainerClosed);
    assert_eq!(app.state(), &TrainerPhase::Failed("out of memory".into()));
}

#[test]
fn only_changes_make_the_app_dirty() {
    let mut app = started();
    assert!(app.take_dirty());
    assert!(!app.take_dirty());
    app.update(Msg::Tick);
    assert!(!app.take_dirty());
    app.update(ch('z'));
    assert!(!app.take_dirty());
    app.update(step(1, 3));
    assert!(app.take_dirty());
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    assert!(app.take_dirty());
}

#[test]
fn replay_cursor_moves_through_time() {
    let histories = vec![fixtures::plain(20, 300), fixtures::v1(20, 300)];
    let mut app = App::replay(histories, fixtures::config(), "mnist".into());
    assert_eq!(app.cursor().unwrap().at, 300);
    assert_eq!(app.steps(0).len(), 300);
    app.update(key(KeyCode::Left));
    assert_eq!(app.cursor().unwrap().at, 299);
    assert_eq!(app.current(1).unwrap().step, 299);
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.cursor().unwrap().at, 270);
    assert_eq!(app.evals(0).last().unwrap().step, 250);
    app.update(key(KeyCode::Home));
    assert_eq!(app.steps(0).len(), 1);
    app.update(key(KeyCode::Left));
    assert_eq!(app.cursor().unwrap().at, 1);
    app.update(key(KeyCode::PageDown));
    app.update(key(KeyCode::Right));
    assert_eq!(app.cursor().unwrap().at, 31);
    app.update(key(KeyCode::End));
    assert_eq!(app.cursor().unwrap().at, 300);
    // The full history is still what a snapshot would save.
    assert_eq!(app.histories()[0].steps.len(), 300);
}

#[test]
fn replay_has_no_trainer_and_nothing_to_save() {
    let mut app = App::replay(
        vec![fixtures::v1(8, 10)],
        fixtures::config(),
        "mnist".into(),
    );
    for c in [' ', 'n', 'v', '+', '[', 'r', 's'] {
        assert_eq!(app.update(ch(c)), vec![], "key {c}");
    }
    assert_eq!(app.update(ch('q')), vec![Action::Quit]);
    // Messages from nowhere do not change a replay's state.
    app.update(Msg::TrainerClosed);
    assert_eq!(app.state(), &TrainerPhase::Finished);
    let empty = App::replay(vec![], fixtures::config(), "mnist".into());
    assert_eq!(empty.cursor().unwrap().at, 0);
}

#[test]
fn wall_time_adds_up_from_step_throughput() {
    let mut app = started();
    let batch = ExperimentConfig::default().batch as f32;
    let rec = |step| StepRecord {
        step,
        img_per_s: batch * 4.0, // a quarter of a second per step
        ..Default::default()
    };
    for s in 1..=3 {
        let records = vec![(0, rec(s)), (1, rec(s))];
        app.update(Msg::Trainer(TrainerEvent::StepsFinished { records }));
    }
    let secs: Vec<f64> = app.histories().iter().map(|h| h.wall_secs).collect();
    assert!(
        (secs[0] - 0.75).abs() < 1e-9 && (secs[1] - 0.75).abs() < 1e-9,
        "{secs:?}"
    );
    assert_eq!(secs[2], 0.0, "run 3 took no steps");
}

fn replay_app(last: u64) -> App {
    let steps: Vec<StepRecord> = (1..=last)
        .map(|step| StepRecord {
            step,
            loss: 1.0,
            ..Default::default()
        })
        .collect();
    let mut h = RunHistory::new(info("v1-8"));
    for s in steps {
        h.push(s);
    }
    App::replay(vec![h], ExperimentConfig::default(), "mnist".into())
}

#[test]
fn space_plays_a_replay_at_the_chosen_speed_and_stops_at_the_end() {
    let mut app = replay_app(100);
    // Opens at the end: play starts over from the first step.
    assert_eq!(app.update(ch(' ')), vec![]);
    assert!(app.playing());
    assert_eq!(app.cursor().unwrap().at, 1);
    // The default speed, 300 steps a second: 10 a tick.
    app.update(Msg::Tick);
    let per_tick = u64::from(PLAY_SPEEDS[6] / TICKS_PER_SEC);
    assert_eq!(app.cursor().unwrap().at, 1 + per_tick);
    app.update(ch('>'));
    app.update(Msg::Tick);
    let faster = u64::from(PLAY_SPEEDS[7] / TICKS_PER_SEC);
    assert_eq!(app.cursor().unwrap().at, 1 + per_tick + faster);
    assert!(app.status().unwrap().text.contains("600 steps/s"));
    // Space pauses: ticks no longer move it.
    app.update(ch(' '));
    let at = app.cursor().unwrap().at;
    app.update(Msg::Tick);
    assert_eq!(app.cursor().unwrap().at, at);
    for _ in 0..10 {
        app.update(ch('<'));
    }
    // The slowest speed, 2 steps a second: one step every 15 ticks.
    assert!(app.status().unwrap().text.contains("2 steps/s"));
    app.update(ch(' '));
    for _ in 0..14 {
        app.update(Msg::Tick);
    }
    assert_eq!(app.cursor().unwrap().at, at);
    app.update(Msg::Tick);
    assert_eq!(app.cursor().unwrap().at, at + 1);
    // ← and → step by one and stop the playback.
    app.update(key(KeyCode::Right));
    assert!(!app.playing());
    assert_eq!(app.cursor().unwrap().at, at + 2);
    app.update(key(KeyCode::Left));
    assert_eq!(app.cursor().unwrap().at, at + 1);
    app.update(ch(' '));
    for _ in 0..100 * TICKS_PER_SEC {
        app.update(Msg::Tick);
    }
    assert_eq!(app.cursor().unwrap().at, 100);
    assert!(!app.playing());
    // Live: no playback, the keys say what they are for.
    let mut live = started();
    live.update(ch('>'));
    assert!(live.status().unwrap().text.contains("replay"));
}

#[test]
fn runs_past_nine_are_reachable_by_zero_and_the_go_to_prompt() {
    let models: Vec<String> = (0..12).map(|i| format!("v1-{}", 8 + 6 * i)).collect();
    let mut app = App::new(ExperimentConfig {
        models,
        ..Default::default()
    });
    app.update(ch('0'));
    assert_eq!(app.focus(), 9);
    app.update(ch('g'));
    app.update(ch('1'));
    assert!(app.status().unwrap().text.starts_with("go to run: 1_"));
    // While the prompt is open, digits are typed, not focus or quit keys.
    app.update(ch('2'));
    assert_eq!(app.focus(), 9);
    app.update(key(KeyCode::Enter));
    assert_eq!(app.focus(), 11);
    app.update(ch('g'));
    app.update(ch('4'));
    app.update(ch('0'));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.focus(), 11);
    assert!(app.status().unwrap().text.contains("no run 40"));
    // Esc closes the prompt without quitting.
    app.update(ch('g'));
    assert_eq!(app.update(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.update(ch('3')), vec![]);
    assert_eq!(app.focus(), 2);
    app.update(ch('g'));
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.update(ctrl_c).last(), Some(&Action::Quit));
}
