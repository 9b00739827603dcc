//! `App::update` on the keys that throw progress away (`v`, `+`, `-`, `r`): what the save they
//! ask for holds, and how the swapped run starts a history of its own.

use super::tests::{ch, info, key, send, started, step};
use super::*;
use crate::model::spec::{MAX_DEPTH, MIN_DEPTH};
use ratatui::crossterm::event::KeyCode;

#[test]
fn variant_and_depth_keys_replace_the_focused_run() {
    let mut app = started();
    let replace = |run, spec: &str| {
        send(TrainerCommand::ReplaceRun {
            run,
            spec: spec.into(),
        })
    };
    assert_eq!(app.update(ch('v')), replace(0, "v1-56"));
    // `v1a` (option-A shortcuts) sits between v1 and v2 in the cycle.
    assert_eq!(app.update(ch('v')), replace(0, "v1a-56"));
    assert_eq!(app.update(ch('v')), replace(0, "v2-56"));
    assert_eq!(app.update(ch('+')), replace(0, "v2-62"));
    assert_eq!(app.update(ch('-')), replace(0, "v2-56"));
    assert_eq!(app.histories()[0].info.spec, "v2-56");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.update(ch('-')), replace(1, "v1-50"));
    // Until the trainer confirms with the new run's full info, steps of the swapped runs are
    // the old models' and are dropped; the untouched run keeps its own.
    app.update(step(1, 3));
    app.update(Msg::Trainer(TrainerEvent::RunRestarted {
        run: 1,
        info: info("v1-50"),
    }));
    assert!(app.histories()[1].steps.is_empty());
    assert!(app.histories()[0].steps.is_empty());
    assert_eq!(app.histories()[2].steps.len(), 1);
    app.update(step(2, 3));
    assert_eq!(app.histories()[1].steps.len(), 1);
    assert!(
        app.histories()[0].steps.is_empty(),
        "run 1 is not confirmed"
    );
    assert_eq!(app.config().models, ["v2-56", "v1-50", "v2-56"]);
}

#[test]
fn a_swapped_run_is_saved_as_what_it_trained() {
    let mut app = started();
    for s in 1..=5 {
        app.update(step(s, 3));
    }
    app.update(key(KeyCode::Tab));
    let actions = app.update(ch('v'));
    assert_eq!(actions[0], Action::Save(SaveKind::BeforeDiscard));
    // The save the key asked for: run 2 as it trained, v1-56 and its 5 steps.
    let kept = app.histories_to_save(SaveKind::BeforeDiscard);
    assert_eq!(
        (kept[1].info.spec.as_str(), kept[1].steps.len()),
        ("v1-56", 5)
    );
    assert_eq!(kept[0].steps.len(), 5);
    let config = app.config_to_save(SaveKind::BeforeDiscard);
    assert_eq!(config.models, ["plain-56", "v1-56", "v2-56"]);
    // On screen, and in any later save: a fresh v1a-56 run, and the config says so.
    assert_eq!(app.histories()[1].info.spec, "v1a-56");
    assert!(app.histories()[1].steps.is_empty());
    assert_eq!(app.config().models[1], "v1a-56");
    // A step of the old model, or its evaluation, reported before the swap is confirmed.
    app.update(step(6, 3));
    app.update(Msg::Trainer(TrainerEvent::Evaluated {
        run: 1,
        eval: Default::default(),
    }));
    assert!(app.histories()[1].steps.is_empty());
    assert!(app.histories()[1].evals.is_empty());
    assert_eq!(app.histories()[0].steps.len(), 6);
    app.update(Msg::Trainer(TrainerEvent::RunRestarted {
        run: 1,
        info: info("v1a-56"),
    }));
    app.update(step(7, 3));
    let saved = app.histories_to_save(SaveKind::Autosave);
    assert_eq!(
        (saved[1].info.spec.as_str(), saved[1].steps.len()),
        ("v1a-56", 1)
    );
}

#[test]
fn depth_limits_and_presets_send_nothing() {
    let config = ExperimentConfig {
        models: vec![format!("v1-{MAX_DEPTH}"), "seed-v1".into()],
        ..Default::default()
    };
    let mut app = App::new(config);
    assert_eq!(app.update(ch('+')), vec![]);
    let limits = format!("{MIN_DEPTH}..{MAX_DEPTH}");
    assert!(app.status().unwrap().text.contains(&limits));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.update(ch('v')), vec![]);
    assert!(app.status().unwrap().text.contains("preset"));
}

#[test]
fn brackets_halve_and_double_the_learning_rate() {
    let mut app = started();
    assert_eq!(app.update(ch('[')), send(TrainerCommand::SetLr(0.05)));
    assert_eq!(app.update(ch('[')), send(TrainerCommand::SetLr(0.025)));
    assert_eq!(app.update(ch(']')), send(TrainerCommand::SetLr(0.05)));
    app.update(Msg::Trainer(TrainerEvent::LrChanged { lr: 0.3 }));
    assert_eq!(app.update(ch(']')), send(TrainerCommand::SetLr(0.6)));
}

#[test]
fn r_resets_all() {
    let mut app = started();
    assert_eq!(app.update(ch('r')), send(TrainerCommand::Reset));
}

#[test]
fn keys_that_discard_progress_save_it_first() {
    let reset = send(TrainerCommand::Reset);
    let mut app = started();
    // Nothing trained yet: nothing to keep.
    assert_eq!(app.update(ch('r')), reset);
    for (run, spec) in ["plain-56", "v1-56", "v2-56"].into_iter().enumerate() {
        let info = info(spec);
        app.update(Msg::Trainer(TrainerEvent::RunRestarted { run, info }));
    }
    app.update(step(1, 3));
    let mut kept = vec![Action::Save(SaveKind::BeforeDiscard)];
    kept.extend(reset.clone());
    assert_eq!(app.update(ch('r')), kept);
    // Until that save is reported, more discarding keys ask for no second save, and the save
    // writes the runs as they were at the first key, not the new spec shown on screen.
    let replace = Action::Send(TrainerCommand::ReplaceRun {
        run: 0,
        spec: "v1-56".into(),
    });
    assert_eq!(app.update(ch('v')), vec![replace]);
    assert_eq!(app.histories()[0].info.spec, "v1-56");
    assert_eq!(
        app.histories_to_save(SaveKind::Manual)[0].info.spec,
        "v1-56"
    );
    let kept = app.histories_to_save(SaveKind::BeforeDiscard);
    assert_eq!(kept[0].info.spec, "plain-56");
    assert_eq!(kept[0].steps.len(), 1);
    app.saved(std::path::Path::new("saves/a.ron"), SaveKind::BeforeDiscard);
    let status = &app.status().unwrap().text;
    assert!(
        status.starts_with("autosaved saves/a.ron; run 1: plain-56 → v1-56"),
        "{status}"
    );
    assert_eq!(
        app.histories_to_save(SaveKind::BeforeDiscard)[0].info.spec,
        "v1-56"
    );
    // Saved: `+` and `-` now discard nothing.
    for (run, spec) in ["v1-56", "v1-56", "v2-56"].into_iter().enumerate() {
        let info = info(spec);
        app.update(Msg::Trainer(TrainerEvent::RunRestarted { run, info }));
    }
    assert_eq!(app.update(ch('+')).len(), 1);
    app.update(step(2, 3));
    assert_eq!(
        app.update(ch('-'))[0],
        Action::Save(SaveKind::BeforeDiscard)
    );
    // Keys that keep the runs never save.
    app.update(step(3, 3));
    assert_eq!(app.update(ch('[')).len(), 1);
    assert_eq!(app.update(ch(' ')).len(), 1);
}
