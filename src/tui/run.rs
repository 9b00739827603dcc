//! The terminal loop: owns the terminal between `ratatui::try_init` and `ratatui::restore`, and
//! multiplexes keys (crossterm's `EventStream`), trainer events and a frame tick with
//! `tokio::select!`, feeding each to `App::update` and carrying out the returned actions.
//!
//! Drawing: a key or resize draws at once (a key must show within 100 ms); trainer events only
//! mark the state dirty and the next tick draws, so a fast trainer costs at most one frame per
//! tick; nothing is drawn while nothing changes.

use std::io;
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::sync::mpsc;

use super::app::{Action, App, Msg, SaveKind};
use super::views;
use crate::records::events::{TrainerCommand, TrainerEvent};
use crate::signals::Signals;
use crate::train::channel::EventReceiver;

/// 30 frames a second at most.
const TICK: Duration = Duration::from_millis(33);
/// Trainer events handled per wake-up before keys get a turn again.
const DRAIN: usize = 256;
/// Input events handled before one draw (a 3 s burst of keys is a few thousand).
const BURST: usize = 8192;

/// Set by the panic hook: a panic on any thread (the trainer's too) has already restored the
/// terminal and printed its message, so the loop must stop drawing over it.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Where trainer events come from: either kind of tokio receiver.
pub trait EventSource {
    /// The next event; `None` once the trainer side is gone.
    fn recv(&mut self) -> impl Future<Output = Option<TrainerEvent>> + Send;
    /// An already queued event, without waiting.
    fn try_next(&mut self) -> Option<TrainerEvent>;
}

impl EventSource for mpsc::UnboundedReceiver<TrainerEvent> {
    fn recv(&mut self) -> impl Future<Output = Option<TrainerEvent>> + Send {
        mpsc::UnboundedReceiver::recv(self)
    }
    fn try_next(&mut self) -> Option<TrainerEvent> {
        self.try_recv().ok()
    }
}

/// The trainer worker's own coalescing channel (`train::spawn`'s `TrainerHandle::events`).
impl EventSource for EventReceiver {
    fn recv(&mut self) -> impl Future<Output = Option<TrainerEvent>> + Send {
        EventReceiver::recv(self)
    }
    fn try_next(&mut self) -> Option<TrainerEvent> {
        self.try_recv()
    }
}

/// How the dashboard ended.
pub struct Exit {
    /// The final state, e.g. to print a summary after the terminal is restored.
    pub app: App,
    /// The autosave written on quitting, if progress was unsaved: its path, or why it failed.
    pub autosave: Option<Result<PathBuf, String>>,
    /// The signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that ended the dashboard as `q` would, if
    /// one did.
    pub signal: Option<i32>,
}

/// Run the live dashboard until the user quits. `save` writes a snapshot of `app` and returns
/// its path. The terminal is restored on every way out, panics included.
pub async fn run_dashboard<E, S>(
    app: App,
    commands: mpsc::UnboundedSender<TrainerCommand>,
    events: E,
    save: S,
) -> io::Result<Exit>
where
    E: EventSource,
    S: FnMut(&App, SaveKind) -> Result<PathBuf, String>,
{
    let mut terminal = ratatui::try_init()?;
    install_panic_hook();
    let mut app = app;
    // The layout's size decides what `p` cycles through; later sizes come as resize events.
    if let Ok(size) = terminal.size() {
        app.update(Msg::Resize {
            width: size.width,
            height: size.height,
        });
    }
    let result = event_loop(&mut terminal, app, commands, events, save).await;
    // After a panic the hook has restored already; a second leave-alternate-screen would move
    // the cursor back over the panic message (xterm restores the saved cursor again).
    if !PANICKED.load(Ordering::SeqCst) {
        ratatui::restore();
    }
    result
}

/// Run the dashboard on a replay-mode [`App`]: no trainer, nothing to save.
pub async fn run_replay(app: App) -> io::Result<Exit> {
    let (commands, _) = mpsc::unbounded_channel();
    let (_, events) = mpsc::unbounded_channel::<TrainerEvent>();
    run_dashboard(app, commands, events, |_, _| {
        Err("a replay is not saved again".into())
    })
    .await
}

/// After `ratatui::try_init`, so this hook runs before ratatui's restoring one.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            // ratatui's restore leaves the cursor hidden.
            let _ = ratatui::crossterm::execute!(io::stdout(), ratatui::crossterm::cursor::Show);
            previous(info);
        }));
    });
}

async fn event_loop<E, S>(
    terminal: &mut DefaultTerminal,
    mut app: App,
    commands: mpsc::UnboundedSender<TrainerCommand>,
    mut events: E,
    mut save: S,
) -> io::Result<Exit>
where
    E: EventSource,
    S: FnMut(&App, SaveKind) -> Result<PathBuf, String>,
{
    let mut input = EventStream::new();
    let mut signals = Signals::install()?;
    let mut signal = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut trainer_open = true;
    let mut autosave = None;
    loop {
        let (actions, may_draw) = tokio::select! {
            event = input.next() => match event {
                Some(Ok(first)) => (burst(&mut app, &mut input, first)?, true),
                Some(Err(e)) => return Err(e),
                // The terminal's input is gone: nobody can press q any more.
                None => (app.quit(), false),
            },
            event = events.recv(), if trainer_open => match event {
                Some(event) => (drain(&mut app, &mut events, event), false),
                None => {
                    trainer_open = false;
                    (app.update(Msg::TrainerClosed), false)
                }
            },
            _ = tick.tick() => (app.update(Msg::Tick), true),
            // Like `q`: autosave, then the caller restores the terminal.
            n = signals.recv() => {
                signal = Some(n);
                (app.quit(), false)
            }
        };
        if PANICKED.load(Ordering::SeqCst) {
            return Err(after_panic(&mut app, &mut save));
        }
        for action in actions {
            match action {
                // A closed command channel shows up as a closed event channel.
                Action::Send(command) => drop(commands.send(command)),
                Action::Save(kind) => {
                    let result = save(&app, kind);
                    match &result {
                        Ok(path) => app.saved(path, kind),
                        Err(message) => app.save_failed(message),
                    }
                    if kind == SaveKind::Autosave {
                        autosave = Some(result);
                    }
                }
                Action::Screenshot => {
                    let written = screenshot(terminal, &app);
                    app.screenshot_written(written.as_deref().map_err(|e| e.to_string()));
                }
                Action::Quit => {
                    return Ok(Exit {
                        app,
                        autosave,
                        signal,
                    });
                }
            }
        }
        if may_draw && app.take_dirty() {
            terminal.draw(|frame| views::draw(frame, &app))?;
        }
    }
}

/// The screen as drawn now, drawn again off screen and written beside the snapshots.
fn screenshot(terminal: &DefaultTerminal, app: &App) -> io::Result<PathBuf> {
    let size = terminal.size()?;
    let mut shot =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(size.width, size.height))
            .map_err(|e| io::Error::other(e.to_string()))?;
    shot.draw(|frame| views::draw(frame, app))
        .map_err(|e| io::Error::other(e.to_string()))?;
    super::screenshot::write(
        shot.backend().buffer(),
        std::path::Path::new(super::screenshot::DIR),
    )
}

/// A panic (even one the trainer catches and reports) has run ratatui's hook, which restored the
/// terminal, so the dashboard cannot go on; keep the progress, then say where it went.
fn after_panic<S>(app: &mut App, save: &mut S) -> io::Error
where
    S: FnMut(&App, SaveKind) -> Result<PathBuf, String>,
{
    let saved = match app.unsaved_steps() {
        0 => String::new(),
        _ => match save(app, SaveKind::Autosave) {
            Ok(path) => format!("; progress autosaved to {}", path.display()),
            Err(e) => format!("; autosave failed: {e}"),
        },
    };
    io::Error::other(format!("resviz panicked (message above){saved}"))
}

/// Apply the input event `first` and every key or resize already waiting behind it (a burst of
/// keys, a held key), up to [`BURST`], then return their actions [`coalesce`]d: the caller draws
/// once for the lot instead of once per key, so a long burst is worked through in a frame or two.
fn burst(app: &mut App, input: &mut EventStream, first: Event) -> io::Result<Vec<Action>> {
    let mut actions = Vec::new();
    let mut next = Some(first);
    for _ in 0..BURST {
        let Some(event) = next.take() else { break };
        actions.extend(match event {
            Event::Key(key) => app.update(Msg::Key(key)),
            Event::Resize(width, height) => app.update(Msg::Resize { width, height }),
            _ => Vec::new(),
        });
        if actions.contains(&Action::Quit) {
            break;
        }
        next = match input.next().now_or_never() {
            Some(Some(Ok(event))) => Some(event),
            Some(Some(Err(e))) => return Err(e),
            Some(None) => {
                actions.extend(app.quit());
                break;
            }
            None => None,
        };
    }
    Ok(coalesce(actions))
}

/// Drop the actions a later one in the same burst makes moot: all but the last learning rate,
/// pause/resume, and model swap of each run; repeated manual saves and resets. Everything after
/// a quit is dropped.
fn coalesce(actions: Vec<Action>) -> Vec<Action> {
    use TrainerCommand::{Pause, ReplaceRun, Reset, Resume, SetLr};
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        let supersedes = |earlier: &Action| match (earlier, &action) {
            (Action::Send(SetLr(_)), Action::Send(SetLr(_))) => true,
            (Action::Send(Pause | Resume), Action::Send(Pause | Resume)) => true,
            (Action::Send(ReplaceRun { run: a, .. }), Action::Send(ReplaceRun { run: b, .. })) => {
                a == b
            }
            _ => false,
        };
        out.retain(|earlier| !supersedes(earlier));
        let repeated = matches!(action, Action::Save(SaveKind::Manual) | Action::Send(Reset))
            && out.last() == Some(&action);
        let quit = action == Action::Quit;
        if !repeated {
            out.push(action);
        }
        if quit {
            break;
        }
    }
    out
}

/// Apply `first` and whatever else is already queued, up to [`DRAIN`] events.
fn drain<E: EventSource>(app: &mut App, events: &mut E, first: TrainerEvent) -> Vec<Action> {
    let mut actions = app.update(Msg::Trainer(first));
    for _ in 0..DRAIN {
        let Some(event) = events.try_next() else {
            break;
        };
        actions.extend(app.update(Msg::Trainer(event)));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrainerCommand::*;

    #[test]
    fn a_burst_keeps_only_what_is_not_superseded() {
        let send = Action::Send;
        let burst = vec![
            send(SetLr(0.1)),
            send(Pause),
            send(ReplaceRun {
                run: 0,
                spec: "v1-8".into(),
            }),
            send(SetLr(0.2)),
            Action::Save(SaveKind::Manual),
            Action::Save(SaveKind::Manual),
            send(ReplaceRun {
                run: 1,
                spec: "v2-8".into(),
            }),
            send(Resume),
            send(Step),
            send(ReplaceRun {
                run: 0,
                spec: "v2-14".into(),
            }),
            Action::Quit,
            send(Reset),
        ];
        assert_eq!(
            coalesce(burst),
            vec![
                send(SetLr(0.2)),
                Action::Save(SaveKind::Manual),
                send(ReplaceRun {
                    run: 1,
                    spec: "v2-8".into()
                }),
                send(Resume),
                send(Step),
                send(ReplaceRun {
                    run: 0,
                    spec: "v2-14".into()
                }),
                Action::Quit,
            ]
        );
    }
}
