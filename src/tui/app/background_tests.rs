//! `App::update` with work running beside training: experiments started with `x`, and test
//! evaluations reported step by step.

use super::tests::{ch, send, started, step};
use super::*;

#[test]
fn x_runs_the_shown_experiment_and_x_again_stops_it() {
    use crate::records::ExperimentKind as K;
    let mut app = started();
    assert_eq!(app.update(ch('e')), vec![]);
    assert_eq!(app.side_panel(), SidePanel::Experiment);
    assert_eq!(
        app.update(ch('x')),
        send(TrainerCommand::RunExperiment(K::Lesion))
    );
    assert_eq!(app.experiments().running.map(|r| r.kind), Some(K::Lesion));
    app.update(Msg::Trainer(TrainerEvent::ExperimentProgress {
        kind: K::Lesion,
        done: 2,
        total: 8,
    }));
    assert_eq!(app.experiments().running.unwrap().fraction(), 0.25);
    assert_eq!(app.update(ch('x')), send(TrainerCommand::CancelExperiment));
    app.update(Msg::Trainer(TrainerEvent::ExperimentStopped {
        kind: K::Lesion,
    }));
    assert!(app.experiments().running.is_none());
    assert!(app.status().unwrap().text.contains("stopped"));
    // `e` again cycles the kind shown.
    app.update(ch('e'));
    assert_eq!(app.experiments().shown, K::Shatter);
    // Quitting mid-experiment stops the trainer (which stops the experiment): nothing waits.
    app.update(ch('x'));
    let actions = app.update(ch('q'));
    assert!(actions.contains(&Action::Send(TrainerCommand::Stop)));
    assert_eq!(actions.last(), Some(&Action::Quit));
}

#[test]
fn a_replay_has_no_weights_to_experiment_on() {
    let mut app = App::replay(Vec::new(), ExperimentConfig::default(), "mnist".into());
    assert_eq!(app.update(ch('x')), vec![]);
    assert!(app.status().unwrap().text.contains("live weights"));
}

fn evaluating(run: usize, done: usize, total: usize) -> Msg {
    Msg::Trainer(TrainerEvent::Evaluating { run, done, total })
}

fn header_text(app: &App) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|frame| crate::tui::views::draw(frame, app))
        .unwrap();
    let buf = terminal.backend().buffer();
    (0..buf.area.width)
        .map(|x| buf[(x, 0)].symbol().to_string())
        .collect()
}

#[test]
fn evaluation_progress_shows_in_the_header_until_the_run_is_evaluated() {
    let mut app = started();
    app.update(step(1, 3));
    assert!(header_text(&app).contains("running"));
    app.take_dirty();
    app.update(evaluating(1, 3, 16));
    assert!(app.take_dirty(), "progress redraws");
    assert_eq!(app.evaluating(), Some((1, 3, 16)));
    let header = header_text(&app);
    assert!(header.contains("evaluating v1-56 3/16"), "{header}");
    assert!(!header.contains("running"), "{header}");
    // Another run's result does not end this run's evaluation.
    let eval = crate::records::record::EvalRecord {
        step: 1,
        loss: 0.5,
        acc: 0.9,
    };
    app.update(Msg::Trainer(TrainerEvent::Evaluated { run: 0, eval }));
    assert_eq!(app.evaluating(), Some((1, 3, 16)));
    app.update(Msg::Trainer(TrainerEvent::Evaluated { run: 1, eval }));
    assert_eq!(app.evaluating(), None);
    assert_eq!(app.evals(1).len(), 1);
    assert!(header_text(&app).contains("running"));
}

#[test]
fn steps_or_the_end_of_training_clear_an_abandoned_evaluation() {
    for end in [
        step(2, 3),
        Msg::Trainer(TrainerEvent::Finished { step: 2 }),
        Msg::Trainer(TrainerEvent::Failed {
            message: "boom".into(),
        }),
        Msg::TrainerClosed,
    ] {
        let mut app = started();
        app.update(evaluating(2, 0, 16));
        app.update(end.clone());
        assert_eq!(app.evaluating(), None, "{end:?}");
        assert!(!header_text(&app).contains("evaluating"), "{end:?}");
    }
}

#[test]
fn keys_stay_live_and_quit_stops_during_an_evaluation() {
    let mut app = started();
    app.update(step(1, 3));
    app.update(evaluating(0, 1, 16));
    // Pausing is optimistic; the header still says the evaluation is under way.
    assert_eq!(app.update(ch(' ')), send(TrainerCommand::Pause));
    assert!(header_text(&app).contains("evaluating plain-56 1/16"));
    assert_eq!(
        app.update(ch('q')),
        vec![
            Action::Save(SaveKind::Autosave),
            Action::Send(TrainerCommand::Stop),
            Action::Quit
        ]
    );
}
