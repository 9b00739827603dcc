//! `resviz watch FILE|tcp://HOST:PORT ...`: the dashboard on training streams (runs trained
//! elsewhere, ARCHITECTURE.md *The stream format*) instead of its own trainer. Each stream is
//! read on its own thread (`stream::source`) into the trainer's event channel, which never
//! blocks the reader (step records coalesce; the oldest are dropped, counted, when the dashboard
//! falls behind). `s` saves a snapshot that `replay` and `compare` read.

use super::dashboard::{need_terminal, save_app};
use crate::records::TrainerEvent;
use crate::stream::convert;
use crate::stream::source::{self, Event, Source};
use crate::train::channel::{EventReceiver, event_channel};
use crate::tui::app::App;
use crate::tui::run::{EventSource, run_dashboard};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

pub fn run(names: &[String]) -> Result<()> {
    let sources = names
        .iter()
        .map(|n| n.parse::<Source>().map_err(|e| eyre!(e)))
        .collect::<Result<Vec<_>>>()?;
    need_terminal()?;
    let labels: Vec<String> = sources.iter().map(Source::label).collect();
    let app = App::watch(convert::config(&[]), &labels);
    let (tx, rx) = event_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (run, (src, label)) in sources.into_iter().zip(&labels).enumerate() {
        let aux = tx.aux();
        let sink = move |event| {
            aux.send(match event {
                Event::Run(h) => TrainerEvent::StreamRun {
                    run,
                    dataset: convert::description(&h),
                    info: h.info,
                },
                Event::Step(s) => TrainerEvent::StepsFinished {
                    records: vec![(run, s.record)],
                },
                Event::Note(text) => note(run, text, false),
                Event::Error(text) => note(run, text, true),
            })
        };
        let t = source::spawn(src, sink, stop.clone())
            .map_err(|e| eyre!("cannot watch {label}: {e}"))?;
        threads.push(t);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Commands have no trainer to go to: the keys that would send them say so first.
    let (commands, _ignored) = mpsc::unbounded_channel();
    let events = Dropped { rx, seen: 0 };
    let exit = rt
        .block_on(run_dashboard(app, commands, events, save_app))
        .wrap_err("dashboard")?;
    stop.store(true, Ordering::Relaxed);
    drop(tx);
    for t in threads {
        let _ = t.join();
    }
    match exit.autosave {
        Some(Ok(path)) => eprintln!("autosaved {}", path.display()),
        Some(Err(e)) => bail!("autosave failed, the unsaved progress is lost: {e}"),
        None => {}
    }
    Ok(())
}

fn note(run: usize, text: String, error: bool) -> TrainerEvent {
    TrainerEvent::StreamNote {
        text: format!("stream {}: {text}", run + 1),
        error,
        dropped: 0,
    }
}

/// The channel's events, with a note whenever it has dropped more step records.
struct Dropped {
    rx: EventReceiver,
    seen: u64,
}

impl Dropped {
    fn news(&mut self) -> Option<TrainerEvent> {
        let dropped = self.rx.dropped();
        (dropped > self.seen).then(|| {
            self.seen = dropped;
            TrainerEvent::StreamNote {
                text: format!("{dropped} step records dropped: the dashboard fell behind"),
                error: false,
                dropped,
            }
        })
    }
}

impl EventSource for Dropped {
    async fn recv(&mut self) -> Option<TrainerEvent> {
        if let Some(news) = self.news() {
            return Some(news);
        }
        self.rx.recv().await
    }
    fn try_next(&mut self) -> Option<TrainerEvent> {
        self.news().or_else(|| self.rx.try_recv())
    }
}
