//! Key bindings: which key means what, and the one table the footer and the help overlay print,
//! so the documentation of a key cannot drift from its handling.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for, before the app decides whether it applies in the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    TogglePause,
    Step,
    FocusNext,
    FocusPrev,
    /// Zero-based run index.
    Focus(usize),
    CycleVariant,
    Deeper,
    Shallower,
    HalveLr,
    DoubleLr,
    Reset,
    Save,
    /// Cycle the panel beside the gradient flow.
    CyclePanel,
    /// Toggle what the heatmap colours.
    HeatMode,
    /// The learning panel: bring it into view, or toggle update ratio / weight growth.
    Learning,
    /// Start the shown experiment on the live weights, or stop the running one.
    RunExperiment,
    /// Show the next kind of experiment.
    NextExperiment,
    Help,
    Quit,
    /// Loss chart: linear or log axis.
    LogAxis,
    /// Write the screen to a file.
    Screenshot,
    /// Start a focus-by-number prompt (runs 10 and up).
    GoTo,
    /// Replay playback speed.
    Slower,
    Faster,
    /// Replay time cursor.
    Back,
    Forward,
    PageBack,
    PageForward,
    Start,
    End,
    /// Cursor readout: along blocks toward the output / the input.
    Up,
    Down,
    /// Enter / leave the cursor readout.
    Readout,
    /// Hide / show the focused run in the charts.
    Hide,
    /// Smoothing window smaller / larger.
    LessSmooth,
    MoreSmooth,
    /// Time charts' x axis: step / training time.
    TimeAxis,
}

/// Map a key event to an intent. Releases are ignored (Windows reports them; others do not).
pub fn intent(key: KeyEvent) -> Option<Intent> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Intent::Quit);
    }
    Some(match key.code {
        KeyCode::Char(' ') => Intent::TogglePause,
        KeyCode::Char('n') => Intent::Step,
        KeyCode::Tab => Intent::FocusNext,
        KeyCode::BackTab => Intent::FocusPrev,
        KeyCode::Char(c @ '1'..='9') => Intent::Focus(c as usize - '1' as usize),
        KeyCode::Char('0') => Intent::Focus(9),
        KeyCode::Char('l') => Intent::LogAxis,
        KeyCode::Char('S') => Intent::Screenshot,
        KeyCode::Char('g') => Intent::GoTo,
        KeyCode::Char('<' | ',') => Intent::Slower,
        KeyCode::Char('>' | '.') => Intent::Faster,
        KeyCode::Char('v') => Intent::CycleVariant,
        // '=' is '+' without shift on most layouts.
        KeyCode::Char('+' | '=') => Intent::Deeper,
        KeyCode::Char('-' | '_') => Intent::Shallower,
        KeyCode::Char('[') => Intent::HalveLr,
        KeyCode::Char(']') => Intent::DoubleLr,
        KeyCode::Char('r') => Intent::Reset,
        KeyCode::Char('s') => Intent::Save,
        KeyCode::Char('p') => Intent::CyclePanel,
        KeyCode::Char('m') => Intent::HeatMode,
        KeyCode::Char('w') => Intent::Learning,
        KeyCode::Char('x') => Intent::RunExperiment,
        KeyCode::Char('e') => Intent::NextExperiment,
        KeyCode::Char('?') => Intent::Help,
        KeyCode::Char('q') | KeyCode::Esc => Intent::Quit,
        KeyCode::Left => Intent::Back,
        KeyCode::Right => Intent::Forward,
        KeyCode::PageUp => Intent::PageBack,
        KeyCode::PageDown => Intent::PageForward,
        KeyCode::Home => Intent::Start,
        KeyCode::End => Intent::End,
        KeyCode::Up => Intent::Up,
        KeyCode::Down => Intent::Down,
        KeyCode::Char('c') => Intent::Readout,
        KeyCode::Char('h') => Intent::Hide,
        KeyCode::Char('(') => Intent::LessSmooth,
        KeyCode::Char(')') => Intent::MoreSmooth,
        KeyCode::Char('t') => Intent::TimeAxis,
        _ => return None,
    })
}

/// A documented binding: the keys as printed, and what they do.
pub struct Binding {
    pub keys: &'static str,
    pub short: &'static str,
    pub long: &'static str,
}

const fn b(keys: &'static str, short: &'static str, long: &'static str) -> Binding {
    Binding { keys, short, long }
}

/// Bindings that drive a live trainer.
pub const LIVE: &[Binding] = &[
    b("space", "pause", "pause / resume training"),
    b("n", "step", "one step (while paused)"),
    b(
        "tab",
        "focus",
        "focus next run (shift-tab: previous, 1-9, 0: run 1-10)",
    ),
    b(
        "v",
        "variant",
        "cycle the focused run's variant (the run restarts)",
    ),
    b(
        "+/-",
        "depth",
        "focused run 6 layers deeper / shallower (restarts)",
    ),
    b("[/]", "lr", "halve / double the learning rate"),
    b(
        "r",
        "reset",
        "reset all runs to fresh weights (progress autosaved)",
    ),
    b("s", "save", "save a snapshot into saves/"),
    b(
        "x",
        "experiment",
        "run the shown experiment on the live weights (x again: stop)",
    ),
    b("e", "which", "show the next experiment"),
];

/// Bindings of the replay time cursor.
pub const REPLAY: &[Binding] = &[
    b("space", "play", "play / pause through time"),
    b("</>", "speed", "play slower / faster (also , and .)"),
    b("←/→", "step", "one step back / forward"),
    b("pgup/pgdn", "10%", "10 % of the run back / forward"),
    b("home/end", "ends", "first / last step"),
    b(
        "tab",
        "focus",
        "focus next run (shift-tab: previous, 1-9, 0: run 1-10)",
    ),
];

/// Bindings that work when watching streams (`resviz watch`): no trainer to command.
pub const WATCH: &[Binding] = &[
    b(
        "tab",
        "focus",
        "focus next run (shift-tab: previous, 1-9, 0: run 1-10)",
    ),
    b("s", "save", "save a snapshot into saves/"),
];

/// Bindings of how the charts are read, in every mode.
pub const VIEW: &[Binding] = &[
    b(
        "c",
        "cursor",
        "cursor: every run's values; ←/→ step, ↑/↓ block, esc leaves",
    ),
    b("h", "hide", "hide / show the focused run in the charts"),
    b(
        "(/)",
        "smooth",
        "loss smoothing smaller / larger (off, 1-20 % of the run)",
    ),
    b("t", "time", "loss and accuracy over step / training time"),
];

/// Bindings in every mode.
pub const COMMON: &[Binding] = &[
    b("?", "help", "this help (any key closes it)"),
    b(
        "q",
        "quit",
        "quit (esc, ctrl-c too; unsaved progress is autosaved)",
    ),
    b(
        "p",
        "panel",
        "side panels (small: +learning, heatmap); ↑/↓ histogram block",
    ),
    b(
        "w",
        "learning",
        "learning panel: ‖ΔW‖/‖W‖ / weight growth (small: show it)",
    ),
    b(
        "m",
        "heatmap",
        "heatmap colours: gradient RMS / shortcut share / ‖ΔW‖/‖W‖",
    ),
    b(
        "l",
        "log",
        "loss axis: linear / log (bold: smoothed, faint: raw)",
    ),
    b(
        "g",
        "go to",
        "focus run by number: g, digits, Enter (Esc cancels)",
    ),
    b(
        "S",
        "shot",
        "screenshot: write the screen to saves/ as HTML",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Intent> {
        intent(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn maps_keys() {
        assert_eq!(
            press(KeyCode::Char(' '), KeyModifiers::NONE),
            Some(Intent::TogglePause)
        );
        assert_eq!(
            press(KeyCode::Char('3'), KeyModifiers::NONE),
            Some(Intent::Focus(2))
        );
        assert_eq!(
            press(KeyCode::Char('+'), KeyModifiers::SHIFT),
            Some(Intent::Deeper)
        );
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Intent::Quit)
        );
        assert_eq!(press(KeyCode::Char('s'), KeyModifiers::CONTROL), None);
        assert_eq!(
            press(KeyCode::Char('0'), KeyModifiers::NONE),
            Some(Intent::Focus(9))
        );
        assert_eq!(
            press(KeyCode::Char('x'), KeyModifiers::NONE),
            Some(Intent::RunExperiment)
        );
        assert_eq!(
            press(KeyCode::Char('e'), KeyModifiers::NONE),
            Some(Intent::NextExperiment)
        );
        assert_eq!(press(KeyCode::Char('z'), KeyModifiers::NONE), None);
    }

    #[test]
    fn ignores_releases() {
        let mut key = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        key.kind = KeyEventKind::Release;
        assert_eq!(intent(key), None);
    }
}
