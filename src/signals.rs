//! The signals that end a session politely: SIGINT, SIGTERM, SIGHUP and SIGQUIT stop training at
//! the next step boundary (and the dashboard as `q` does), so progress is saved and the terminal
//! restored; the process then exits with 128 + the signal number, as a shell reports it —
//! unless the signal came after `train`'s last step and cut nothing: that run is finished and
//! exits 0 (`cli::train`).

use std::io;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listeners for the four signals, installed when created (inside a tokio runtime).
pub struct Signals {
    streams: Vec<(Signal, i32)>,
}

impl Signals {
    pub fn install() -> io::Result<Self> {
        let kinds = [
            (SignalKind::interrupt(), 2),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
            (SignalKind::quit(), 3),
        ];
        let streams = kinds
            .into_iter()
            .map(|(k, n)| signal(k).map(|s| (s, n)))
            .collect::<io::Result<_>>()?;
        Ok(Self { streams })
    }

    /// The number of the next signal received.
    pub async fn recv(&mut self) -> i32 {
        let waits = self.streams.iter_mut().map(|(s, n)| {
            let n = *n;
            Box::pin(async move {
                s.recv().await;
                n
            })
        });
        futures::future::select_all(waits).await.0
    }
}

/// A session stopped by a signal, after saving what there was. `main` exits with
/// [`exit_code`](Self::exit_code).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}{saved}", name(*signal))]
pub struct Interrupted {
    pub signal: i32,
    /// What was saved, e.g. `; progress saved to run.ron` (may be empty).
    pub saved: String,
}

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        (128 + self.signal).clamp(0, 255) as u8
    }
}

/// `SIGINT` and so on for the signals [`Signals`] listens to.
pub fn name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        3 => "SIGQUIT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
