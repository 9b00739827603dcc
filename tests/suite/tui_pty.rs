//! The dashboard's terminal loop in a real pseudo-terminal, against a fake trainer: first frame,
//! key-to-screen latency, redraws only while data changes, saving, quitting, and a restored
//! terminal. The test binary re-runs itself as the child (`RESVIZ_TUI_CHILD` set), so the loop
//! is tested before the real binary wires it up. A second child panics in its trainer: the
//! terminal must be restored, the message shown, progress autosaved and the exit non-zero.

use crate::pty;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portable_pty::CommandBuilder;
use pty::{Session, saved_files};
use resviz::config::ExperimentConfig;
use resviz::records::events::{TrainerCommand, TrainerEvent};
use resviz::records::record::{BlockStat, RunInfo, StepRecord};
use resviz::tui::{App, run_dashboard};
use tokio::sync::mpsc;

/// Set in the child: the directory to save into.
const CHILD_ENV: &str = "RESVIZ_TUI_CHILD";
/// Set in the child: the fake trainer panics (and catches it, as the real worker does).
const PANIC_ENV: &str = "RESVIZ_TUI_CHILD_PANIC";
/// The child's exit code after a panic was reported as an error.
const PANIC_EXIT: i32 = 3;

fn info(spec: &str) -> RunInfo {
    let block_names = std::iter::once("stem".to_string())
        .chain((0..3).flat_map(|s| (0..3).map(move |b| format!("stages.{s}.{b}"))))
        .collect();
    RunInfo {
        spec: spec.into(),
        block_names,
        ..Default::default()
    }
}

fn record(run: usize, step: u64) -> (usize, StepRecord) {
    let blocks = (0..10)
        .map(|l| BlockStat {
            // Run 0 grows toward the input like a plain stack; run 1 stays flat.
            grad_norm: if run == 0 {
                0.1 * 1.46f32.powi(9 - l)
            } else {
                1.0
            },
            act_mean: 0.4,
            act_std: 0.9,
            act_zero_frac: 0.45,
            grad_rms: if run == 0 {
                1e-3 * 1.46f32.powi(9 - l)
            } else {
                1e-3
            },
            ..BlockStat::default()
        })
        .collect();
    let loss = 2.3 / (1.0 + step as f32 / 100.0);
    let rec = StepRecord {
        step,
        loss,
        acc: 1.0 - loss / 2.5,
        lr: 0.1,
        img_per_s: 500.0,
        blocks,
        ..Default::default()
    };
    (run, rec)
}

/// 50 steps a second until paused; answers commands the way the real worker does.
async fn fake_trainer(
    config: ExperimentConfig,
    mut commands: mpsc::UnboundedReceiver<TrainerCommand>,
    events: mpsc::UnboundedSender<TrainerEvent>,
    panic_at: Option<u64>,
) {
    let runs = config.models.iter().map(|m| info(m)).collect();
    let send = |e| drop(events.send(e));
    send(TrainerEvent::Started {
        config,
        dataset: "fake".into(),
        runs,
    });
    let (mut step, mut paused) = (0, false);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if panic_at == Some(step) {
            // Like the worker: a blocking task that catches its own panic and reports it.
            let caught = tokio::task::spawn_blocking(|| {
                std::panic::catch_unwind(|| panic!("fake trainer exploded"))
            });
            let _ = caught.await;
            return send(TrainerEvent::Failed {
                message: "fake trainer exploded".into(),
            });
        }
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = tick.tick(), if !paused => Some(TrainerCommand::Step),
        };
        match command {
            None | Some(TrainerCommand::Stop) => return send(TrainerEvent::Finished { step }),
            Some(TrainerCommand::Pause) => {
                paused = true;
                send(TrainerEvent::Paused { step });
            }
            Some(TrainerCommand::Resume) => {
                paused = false;
                send(TrainerEvent::Resumed { step });
            }
            Some(TrainerCommand::Step) => {
                step += 1;
                send(TrainerEvent::StepsFinished {
                    records: vec![record(0, step), record(1, step)],
                });
            }
            Some(TrainerCommand::SetLr(lr)) => send(TrainerEvent::LrChanged { lr }),
            Some(TrainerCommand::ReplaceRun { run, spec }) => send(TrainerEvent::RunRestarted {
                run,
                info: info(&spec),
            }),
            Some(TrainerCommand::Reset) => {}
            Some(TrainerCommand::RunExperiment(_) | TrainerCommand::CancelExperiment) => {}
        }
    }
}

impl Session {
    /// This test binary again, as the child test `dashboard_child`.
    fn start_child(dir: &std::path::Path, panic: bool) -> Session {
        let mut cmd = CommandBuilder::new(std::env::current_exe().unwrap());
        cmd.args([
            "tui_pty::dashboard_child",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ]);
        cmd.env(CHILD_ENV, dir);
        if panic {
            cmd.env(PANIC_ENV, "1");
        }
        Session::start(cmd)
    }
}

/// The child: the real loop on the pty, saving into the directory named by `CHILD_ENV`.
#[test]
fn dashboard_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let panic_at = std::env::var(PANIC_ENV).is_ok().then_some(40);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let exit = runtime.block_on(async {
        let config = ExperimentConfig {
            models: vec!["plain-20".into(), "v1-20".into()],
            ..Default::default()
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(fake_trainer(config.clone(), cmd_rx, ev_tx, panic_at));
        let mut saves = 0;
        let save = |app: &App, kind| {
            saves += 1;
            let path = PathBuf::from(&dir).join(format!("{kind:?}-{saves}.txt"));
            let text = format!(
                "{} runs, step {:?}",
                app.histories().len(),
                app.latest().map(|r| r.step)
            );
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            Ok(path)
        };
        run_dashboard(App::new(config), cmd_tx, ev_rx, save).await
    });
    match exit {
        Ok(exit) => assert!(
            exit.autosave.is_none(),
            "nothing was unsaved after s while paused"
        ),
        Err(e) => {
            eprintln!("dashboard error: {e}");
            std::process::exit(PANIC_EXIT);
        }
    }
}

#[test]
fn dashboard_in_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start_child(dir.path(), false);
    let first = session.wait_for("gradient flow", Duration::from_secs(30));
    session.wait_for("● running", Duration::from_secs(5));
    session.wait_for("/blk→in", Duration::from_secs(5));
    let frames = session.count_frames(Duration::from_secs(1));
    session.press(b" ");
    let pause = session.wait_for("‖ paused", Duration::from_secs(2));
    // Nothing changes while paused: nothing may be drawn.
    std::thread::sleep(Duration::from_millis(300));
    let before = session.bytes.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    let idle_bytes = session.bytes.load(Ordering::SeqCst) - before;
    session.press(b"p");
    session.wait_for("activations · plain-20", Duration::from_secs(2));
    session.press(b"\t");
    let tab = session.wait_for("activations · v1-20", Duration::from_secs(2));
    session.press(b"s");
    session.wait_for("saved ", Duration::from_secs(5));
    session.press(b"q");
    let (code, screen) = session.finish();
    eprintln!(
        "first frame {first:?}; {frames} screens in 1 s of training; \
         key→screen: space {pause:?}, tab {tab:?}; {idle_bytes} bytes while paused"
    );

    assert_eq!(code, 0, "child failed:\n{}", screen.contents());
    pty::assert_restored(&screen, "q");
    assert_eq!(saved_files(dir.path()), ["Manual-1.txt"]);
    assert!(
        frames >= 10,
        "only {frames} redraws in a second of training"
    );
    assert_eq!(
        idle_bytes, 0,
        "the screen was redrawn while nothing changed"
    );
    let slow = Duration::from_millis(100);
    assert!(pause < slow && tab < slow, "slow keys: {pause:?} {tab:?}");
}

/// Issue 19: a 3 s burst of keys (a held or mashed keyboard, a few thousand keys) on the real
/// dashboard with 56-layer nets is worked through within a frame or two of its end, not one
/// draw per key: a key pressed after the burst shows in well under a second.
#[test]
fn a_burst_of_keys_is_worked_through_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = pty::dashboard(dir.path(), "plain-56,v1-56", &["--width", "4"]);
    session.wait_for_runs(2);
    // Focus and learning-rate keys, 100 every 100 ms for 3 s (in chunks, as a keyboard sends
    // them: the pty's input queue is not made to hold thousands at once).
    let cycle: &[u8] = b"\t]1[2\t[]12";
    let chunk: Vec<u8> = cycle.iter().copied().cycle().take(100).collect();
    for _ in 0..30 {
        session.press(&chunk);
        std::thread::sleep(Duration::from_millis(100));
    }
    session.press(b"?");
    let help = session.wait_for("any key closes", Duration::from_secs(60));
    session.press(b"?");
    session.quit();
    eprintln!("help shown {help:?} after a 3 s burst of 3000 keys");
    assert!(
        help < Duration::from_millis(500),
        "the burst took {help:?} to work through"
    );
}

#[test]
fn a_panic_restores_the_terminal_and_keeps_progress() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::start_child(dir.path(), true);
    session.wait_for("gradient flow", Duration::from_secs(30));
    let (code, screen) = session.finish();
    let text = screen.contents();
    assert_eq!(code, PANIC_EXIT as u32, "screen:\n{text}");
    pty::assert_restored(&screen, "a panic");
    assert!(
        text.contains("fake trainer exploded"),
        "panic message not shown:\n{text}"
    );
    assert!(text.contains("progress autosaved to"), "{text}");
    assert_eq!(saved_files(dir.path()), ["Autosave-1.txt"]);
}

/// The issue's end-to-end check on the real binary: first frame, space, Tab, `s`, `q`; the
/// screen, the saved snapshot, a zero exit and a restored terminal.
#[test]
fn real_binary_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = pty::dashboard(dir.path(), "plain-8,v1-8", &[]);
    session.wait_for("gradient flow", Duration::from_secs(60));
    // Each run's record arrives as soon as it has stepped: wait until both runs have one, so the
    // snapshot below has steps for each.
    session.wait_for_runs(2);
    session.press(b" ");
    let pause = session.wait_for("‖ paused", Duration::from_secs(2));
    session.press(b"p");
    session.wait_for("activations · plain-8", Duration::from_secs(2));
    session.press(b"\t");
    let tab = session.wait_for("activations · v1-8", Duration::from_secs(2));
    session.press(b"s");
    session.wait_for("saved saves/", Duration::from_secs(10));
    let screen = session.quit();
    eprintln!("real binary key→screen: space {pause:?}, tab {tab:?}");
    pty::assert_restored(&screen, "q");
    let saves = dir.path().join("saves");
    let files = saved_files(&saves);
    // A step already under way when space was pressed may add an autosave on quitting.
    assert!(!files.is_empty() && files.len() <= 2, "saves: {files:?}");
    for f in files {
        let snap = resviz::snapshot::load(&saves.join(&f)).unwrap();
        assert_eq!(snap.runs.len(), 2, "{f}");
        assert!(
            snap.runs.iter().all(|r| !r.steps.is_empty()),
            "{f} has no steps"
        );
    }
}

/// Distinct screens a second of the real dashboard on `args`, over `secs` seconds of training.
fn real_redraw_rate(args: &[&str], secs: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let session = pty::real(dir.path(), args);
    session.wait_for("/blk→in", Duration::from_secs(120));
    let frames = session.count_frames(Duration::from_secs(secs));
    session.quit();
    frames as f64 / secs as f64
}

/// How the default depth was chosen (issue 5): the greatest depth at which the default experiment
/// (plain, v1 and v2 on the MNIST subset) still redraws at least twice a second. A measurement,
/// not a check: `cargo test --release --test suite -- --ignored --nocapture tui_pty::depth_sweep`.
#[test]
#[ignore = "a measurement of about a minute; run it by hand"]
fn depth_sweep() {
    for depth in [20, 32, 44, 56, 74, 92, 110] {
        let models = format!("plain-{depth},v1-{depth},v2-{depth}");
        let rate = real_redraw_rate(&["tui", "--models", &models], 8);
        eprintln!("depth {depth:>3}: {rate:.1} screens/s");
    }
}

/// With a real trainer keeping both cores busy, the screen keeps up with the data. Shallow nets,
/// so the data change faster than the screen even on a loaded machine; the default experiment's
/// deeper nets change them less often (see `depth_sweep`). The target is 10 redraws a second
/// (one run measured 9.3 while three other builds shared the 2 cores): the suite prints the
/// rate and fails only below half of it, so a busy machine does not fail it;
/// `real_trainer_redraws_ten_times_a_second_quiet` (ignored) holds the target itself.
#[test]
fn real_trainer_keeps_redrawing() {
    let models = ["tui", "--models", "plain-8,v1-8,v2-8", "--dataset", "mnist"];
    let rate = real_redraw_rate(&models, 3);
    eprintln!("plain-8,v1-8,v2-8 on mnist: {rate:.1} screens/s");
    assert!(rate >= 5.0, "only {rate:.1} redraws a second");
}

/// The 10 redraws a second target, on a quiet machine: `cargo test --release --test suite --
/// --ignored real_trainer_redraws`.
#[test]
#[ignore = "a timing target: run on a quiet machine"]
fn real_trainer_redraws_ten_times_a_second_quiet() {
    let models = ["tui", "--models", "plain-8,v1-8,v2-8", "--dataset", "mnist"];
    let rate = real_redraw_rate(&models, 3);
    assert!(rate >= 10.0, "only {rate:.1} redraws a second");
}

/// The real dashboard on two small nets in `dir`, once both runs have stepped.
fn small_real_session(dir: &std::path::Path) -> Session {
    let session = pty::dashboard(dir, "plain-8,v1-8", &["--width", "4"]);
    session.wait_for_runs(2);
    session
}

/// Issue 19: SIGTERM, SIGHUP, SIGQUIT and an external SIGINT do what `q` does: autosave, leave
/// the alternate screen, show the cursor; the exit code is 128 + the signal number.
#[test]
fn signals_quit_the_real_dashboard_like_q() {
    for (signal, expected) in [("TERM", 143), ("HUP", 129), ("QUIT", 131), ("INT", 130)] {
        let dir = tempfile::tempdir().unwrap();
        let session = small_real_session(dir.path());
        let pid = session.child.process_id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let (code, screen) = session.finish();
        assert_eq!(code, expected, "SIG{signal}:\n{}", screen.contents());
        pty::assert_restored(&screen, &format!("SIG{signal}"));
        let saves = dir.path().join("saves");
        let files = saved_files(&saves);
        assert_eq!(files.len(), 1, "SIG{signal}: {files:?}");
        resviz::snapshot::load(&saves.join(&files[0])).unwrap();
    }
}

/// Issue 19: an autosave that fails (here `saves` is a file) says so and exits non-zero.
#[test]
fn a_failed_autosave_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saves"), b"not a directory").unwrap();
    let mut session = small_real_session(dir.path());
    session.press(b"q");
    let (code, screen) = session.finish();
    assert_eq!(code, 1, "{}", screen.contents());
    assert!(
        screen.contents().contains("autosave failed"),
        "{}",
        screen.contents()
    );
    pty::assert_restored(&screen, "q");
}

/// `x` on the real binary: the lesion study runs beside training with a gauge on screen, its
/// result replaces the gauge; on deeper nets, `q` in the middle of one quits at once.
#[test]
fn real_binary_runs_an_experiment_and_quits_during_one() {
    let dir = tempfile::tempdir().unwrap();
    let start = |models: &str| {
        let session = pty::dashboard(dir.path(), models, &[]);
        session.wait_for("/blk→in", Duration::from_secs(60));
        session
    };
    let mut small = start("plain-8,v1-8");
    small.press(b"x");
    small.wait_for("lesion study", Duration::from_secs(2));
    // The legend's last lines come with the result (runs at chance show no drops).
    small.wait_for("drop=intact−lesioned", Duration::from_secs(60));
    assert!(small.text().contains(" test images"), "{}", small.text());
    small.quit();

    let mut deep = start("plain-32,v1-32");
    deep.press(b"x");
    deep.wait_for("evaluations", Duration::from_secs(30));
    let pressed = Instant::now();
    deep.press(b"q");
    let (code, screen) = deep.finish();
    let quit = pressed.elapsed();
    assert_eq!(code, 0, "resviz failed:\n{}", screen.contents());
    pty::assert_restored(&screen, "q during an experiment");
    assert!(quit < Duration::from_secs(5), "quitting took {quit:?}");
    eprintln!("q during an experiment: exited after {quit:?}");
}

/// Issue 15: `q` during a test evaluation (shown in the header) quits at once, and autosaves.
#[test]
fn quitting_during_an_evaluation_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let ron = r#"(models: ["plain-56", "v1-56", "v2-56"], batch: 32, eval_every: 2)"#;
    std::fs::write(dir.path().join("e.ron"), ron).unwrap();
    let args = ["tui", "--config", "e.ron", "--dataset", "mnist"];
    let mut session = pty::real(dir.path(), &args);
    session.wait_for("◐ evaluating", Duration::from_secs(120));
    let t0 = Instant::now();
    session.press(b"q");
    let ((code, screen), took) = (session.finish(), t0.elapsed());
    assert!(code == 0 && took.as_secs_f64() < 2.0, "{took:?}, {code}");
    pty::assert_restored(&screen, "q");
    assert_eq!(saved_files(&dir.path().join("saves")).len(), 1);
}
