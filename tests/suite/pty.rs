//! A child process on a pseudo-terminal and what its screen shows (vt100), for the dashboard's
//! end-to-end tests.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{Read, Write};
use std::num::NonZero;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// A child on a pty (120×40 unless sized), and what its screen shows.
pub struct Session {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    keys: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    pub bytes: Arc<AtomicUsize>,
    reading: std::thread::JoinHandle<()>,
}

impl Session {
    pub fn start(cmd: CommandBuilder) -> Session {
        Session::start_sized(cmd, 120, 40)
    }

    /// A child on a `cols`×`rows` pty.
    pub fn start_sized(mut cmd: CommandBuilder, cols: u16, rows: u16) -> Session {
        let size = PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        };
        let pair = native_pty_system().openpty(size).unwrap();
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let keys = pair.master.take_writer().unwrap();
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            NonZero::new(rows).unwrap(),
            NonZero::new(cols).unwrap(),
            0,
        )));
        let bytes = Arc::new(AtomicUsize::new(0));
        let (p, b) = (parser.clone(), bytes.clone());
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                b.fetch_add(n, Ordering::SeqCst);
                p.lock().unwrap().process(&buf[..n]);
            }
        });
        Session {
            child,
            master: pair.master,
            keys,
            parser,
            bytes,
            reading,
        }
    }

    pub fn press(&mut self, key: &[u8]) {
        self.keys.write_all(key).unwrap();
        self.keys.flush().unwrap();
    }

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// How long until the screen shows `needle`; panics after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.text().contains(needle) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.fail(&format!("screen never showed {needle:?}"));
    }

    /// Wait until the screen text satisfies `ok`.
    pub fn wait_until(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if ok(&self.text()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.fail(&format!("screen never showed {what}"));
    }

    /// Panic with the screen, killing the child first: a failed test must not leave a dashboard
    /// running (and training) after it.
    fn fail(&self, message: &str) -> ! {
        if let Some(pid) = self.child.process_id() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        panic!("{message}; it shows:\n{}", self.text());
    }

    /// Distinct screens seen during `period`.
    pub fn count_frames(&self, period: Duration) -> usize {
        let (start, mut frames, mut last) = (Instant::now(), 0, String::new());
        while start.elapsed() < period {
            let now = self.text();
            if now != last {
                frames += 1;
                last = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        frames
    }

    /// Wait for the child to exit; its exit code and the final screen (restored or not).
    pub fn finish(mut self) -> (u32, vt100::Screen) {
        let status = self.child.wait().unwrap();
        drop(self.master);
        self.reading.join().unwrap();
        let screen = self.parser.lock().unwrap().screen().clone();
        (status.exit_code(), screen)
    }
}

/// The real binary with `args`, run in `dir` on a 120×40 pty.
pub fn real(dir: &std::path::Path, args: &[&str]) -> Session {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_resviz"));
    cmd.args(args);
    cmd.cwd(dir);
    Session::start(cmd)
}

/// The real dashboard in `dir` training `models` on the synthetic set at batch 8, with `extra`
/// options (e.g. `--width 4`).
pub fn dashboard(dir: &std::path::Path, models: &str, extra: &[&str]) -> Session {
    let base = ["tui", "--models", models, "--dataset", "synthetic"];
    real(dir, &[&base[..], &["--batch", "8"], extra].concat())
}

/// How many runs show their growth figure (`/blk→in`), which comes with a run's first step.
pub fn runs_stepped(screen: &str) -> usize {
    screen.matches("/blk→in").count()
}

impl Session {
    /// Wait (a minute at most) until `runs` runs have stepped.
    pub fn wait_for_runs(&self, runs: usize) {
        let what = format!("a growth figure for {runs} run(s)");
        self.wait_until(&what, Duration::from_secs(60), |t| runs_stepped(t) >= runs);
    }

    /// Quit with `q`: the exit code must be 0. The final screen.
    pub fn quit(mut self) -> vt100::Screen {
        self.press(b"q");
        let (code, screen) = self.finish();
        assert_eq!(code, 0, "resviz failed:\n{}", screen.contents());
        screen
    }
}

/// The terminal was given back: out of the alternate screen, the cursor shown.
pub fn assert_restored(screen: &vt100::Screen, what: &str) {
    assert!(
        !screen.alternate_screen(),
        "{what}: terminal left in the alternate screen"
    );
    assert!(!screen.hide_cursor(), "{what}: cursor left hidden");
}

pub fn saved_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
