//! Snapshots of the view keys at the four sizes the dashboard serves: the cursor readout with its
//! markers, a hidden run, smoothing off and the time axis; watch mode's help.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Msg};
use super::render_tests::{live, render};

fn press(app: &mut App, codes: &[KeyCode]) {
    for &code in codes {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

/// `c`, a tenth of the run and a step back, and five blocks toward the output.
fn reading() -> App {
    let mut app = live();
    press(
        &mut app,
        &[KeyCode::Char('c'), KeyCode::PageUp, KeyCode::Left],
    );
    press(&mut app, &[KeyCode::Up; 5]);
    app
}

#[test]
fn cursor_readout_at_every_size() {
    let app = reading();
    let r = app.readout().unwrap();
    assert_eq!((r.step, r.block), (360, 5));
    for (w, h) in [(80, 24), (100, 30), (120, 40), (200, 60)] {
        let t = render(&app, w, h);
        let text = format!("{}", t.backend());
        // Both runs' values at the step, and the keys that move the cursor.
        assert!(text.contains("cursor · step 360 · ←/→"), "{w}×{h}:\n{text}");
        assert_eq!(text.matches("360 ").count(), 3, "{w}×{h}:\n{text}");
        insta::assert_snapshot!(format!("cursor_readout_{w}x{h}"), t.backend());
    }
}

#[test]
fn hidden_run_unsmoothed_on_the_time_axis_120x40() {
    let mut app = live();
    let keys = [KeyCode::Char('2'), KeyCode::Char('h'), KeyCode::Char('1')];
    press(&mut app, &keys);
    press(&mut app, &[KeyCode::Char('('); 3]);
    press(&mut app, &[KeyCode::Char('t')]);
    let t = render(&app, 120, 40);
    let text = format!("{}", t.backend());
    assert!(text.contains(" 2 v1-56 (hidden) loss"), "{text}");
    assert!(text.contains("v1-56     hidden · h shows it"), "{text}");
    assert!(text.contains("loss · smooth off"), "{text}");
    insta::assert_snapshot!("hidden_run_time_axis_120x40", t.backend());
}

#[test]
fn watch_help_lists_only_what_works_80x24() {
    let mut app = App::watch(super::fixtures::config(), &["a.jsonl".into()]);
    press(&mut app, &[KeyCode::Char('?')]);
    let t = render(&app, 80, 24);
    let text = format!("{}", t.backend());
    for b in super::keys::WATCH
        .iter()
        .chain(super::keys::COMMON)
        .chain(super::keys::VIEW)
    {
        assert!(text.contains(b.long), "{} missing:\n{text}", b.keys);
    }
    for gone in [
        "pause / resume training",
        "halve / double",
        "reset all runs",
    ] {
        assert!(!text.contains(gone), "{gone}:\n{text}");
    }
    insta::assert_snapshot!("watch_help_80x24", t.backend());
}

/// With a cosine schedule's last step the header says how far and, while running, how long.
#[test]
fn header_step_target_and_eta() {
    use crate::config::Schedule;
    use crate::records::events::TrainerEvent;
    let config = crate::config::ExperimentConfig {
        schedule: Schedule::Cosine { total: 1000 },
        ..super::fixtures::config()
    };
    let h = super::fixtures::plain(56, 400);
    let mut app = App::new(config.clone());
    app.update(Msg::Trainer(TrainerEvent::Started {
        config,
        dataset: "mnist".into(),
        runs: vec![h.info.clone(), h.info.clone()],
    }));
    let records = h.steps.iter().map(|r| (0, r.clone())).collect();
    app.update(Msg::Trainer(TrainerEvent::StepsFinished { records }));
    let head = |app: &App| format!("{}", render(app, 120, 40).backend());
    // 600 steps left at 64 / ~400 img/s: about 96 s.
    let eta = crate::numfmt::duration(app.eta_secs().unwrap());
    assert!(eta.starts_with("1m3"), "{eta}");
    let text = head(&app);
    assert!(
        text.contains(&format!("step 400 of 1000 · epoch 4 · ETA {eta}")),
        "{text}"
    );
    press(&mut app, &[KeyCode::Char(' ')]);
    let text = head(&app);
    assert!(text.contains("step 400 of 1000 · epoch 4 │"), "{text}");
}

/// The histogram panel (`p` three times from the shortcut panel) on block 3 of plain-56.
#[test]
fn gradient_histogram_panel() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = live();
        app.update(Msg::Resize {
            width: w,
            height: h,
        });
        while app.side_panel() != super::app::SidePanel::Hist {
            press(&mut app, &[KeyCode::Char('p')]);
        }
        press(&mut app, &[KeyCode::Up; 3]);
        let t = render(&app, w, h);
        let text = format!("{}", t.backend());
        assert!(text.contains("|∂L/∂w|"), "{w}×{h}:\n{text}");
        assert!(text.contains("1e-9"), "{w}×{h}:\n{text}");
        insta::assert_snapshot!(format!("grad_histogram_{w}x{h}"), t.backend());
    }
}
