//! The dashboard's terminal loop in a real pseudo-terminal, against a fake trainer: first frame,
//! key-to-screen latency, redraws only while data changes, saving, quitting, and a restored
//! terminal. The test binary re-runs itself as the child (`RESVIZ_TUI_CHILD` set), so the loop
//! is tested before the real binary wires it up.

use std::io::{Read, Write};
use std::num::NonZero;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use resviz::config::ExperimentConfig;
use resviz::train::events::{TrainerCommand, TrainerEvent};
use resviz::train::record::{BlockStat, RunInfo, StepRecord};
use resviz::tui::{App, run_dashboard};
use tokio::sync::mpsc;

const CHILD_ENV: &str = "RESVIZ_TUI_CHILD";

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
        }
    }
}

/// The child: the real loop on the pty, saving into the directory named by `CHILD_ENV`.
#[test]
fn dashboard_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let exit = runtime.block_on(async {
        let config = ExperimentConfig {
            models: vec!["plain-20".into(), "v1-20".into()],
            ..Default::default()
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(fake_trainer(config.clone(), cmd_rx, ev_tx));
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
    let exit = exit.unwrap();
    assert!(
        exit.autosave.is_none(),
        "nothing was unsaved after s while paused"
    );
}

/// Screen and byte count as the reader thread sees them.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    bytes: Arc<AtomicUsize>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// How long until the screen shows `needle`; panics after `limit`.
    fn wait_for(&self, needle: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.text().contains(needle) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("screen never showed {needle:?}; it shows:\n{}", self.text());
    }
}

#[test]
fn dashboard_in_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(std::env::current_exe().unwrap());
    cmd.args(["dashboard_child", "--exact", "--test-threads=1"]);
    cmd.env(CHILD_ENV, dir.path());
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut keys = pair.master.take_writer().unwrap();
    let screen = Screen {
        parser: Arc::new(Mutex::new(vt100::Parser::new(
            NonZero::new(40).unwrap(),
            NonZero::new(120).unwrap(),
            0,
        ))),
        bytes: Arc::new(AtomicUsize::new(0)),
    };
    let (parser, bytes) = (screen.parser.clone(), screen.bytes.clone());
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            bytes.fetch_add(n, Ordering::SeqCst);
            parser.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut press = |key: &[u8]| {
        keys.write_all(key).unwrap();
        keys.flush().unwrap();
    };

    let first = screen.wait_for("gradient flow", Duration::from_secs(30));
    screen.wait_for("● running", Duration::from_secs(5));
    screen.wait_for("spread ×", Duration::from_secs(5));
    // Redraws while data changes: distinct screens in one second of training.
    let (start, mut frames, mut last) = (Instant::now(), 0, String::new());
    while start.elapsed() < Duration::from_secs(1) {
        let now = screen.text();
        if now != last {
            frames += 1;
            last = now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    press(b" ");
    let pause = screen.wait_for("‖ paused", Duration::from_secs(2));
    // Nothing changes while paused: nothing may be drawn.
    std::thread::sleep(Duration::from_millis(300));
    let before = screen.bytes.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    let idle_bytes = screen.bytes.load(Ordering::SeqCst) - before;
    press(b"\t");
    let tab = screen.wait_for("activations · v1-20", Duration::from_secs(2));
    press(b"s");
    screen.wait_for("saved ", Duration::from_secs(5));
    press(b"q");
    let status = child.wait().unwrap();
    drop(pair.master);
    reading.join().unwrap();
    eprintln!(
        "first frame {first:?}; {frames} screens in 1 s of training; key→screen: space {pause:?}, tab {tab:?}; {idle_bytes} bytes while paused"
    );

    assert!(status.success(), "child exited with {status:?}");
    let parser = screen.parser.lock().unwrap();
    assert!(
        !parser.screen().alternate_screen(),
        "terminal left in the alternate screen"
    );
    assert!(!parser.screen().hide_cursor(), "cursor left hidden");
    let saved: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(saved, ["Manual-1.txt"]);
    assert!(
        frames >= 10,
        "only {frames} redraws in a second of training"
    );
    assert_eq!(
        idle_bytes, 0,
        "the screen was redrawn while nothing changed"
    );
    assert!(
        pause < Duration::from_millis(100) && tab < Duration::from_millis(100),
        "slow keys: {pause:?} {tab:?}"
    );
}
