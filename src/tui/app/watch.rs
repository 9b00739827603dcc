//! Watching streams (`resviz watch`): the dashboard without a trainer of its own. Runs arrive
//! as their streams' headers do; keys that would change training say they cannot; `s` saves.

use super::{App, TrainerPhase};
use crate::config::ExperimentConfig;
use crate::records::record::{RunHistory, RunInfo};
use crate::tui::keys::Intent;

/// What the dashboard knows of the watched streams beyond their runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Watch {
    /// Step records dropped so far because the dashboard fell behind.
    pub dropped: u64,
}

impl App {
    /// A dashboard on streams: one run per stream, named `labels` until their headers arrive.
    /// The config's models become the labels (the headers rename them).
    pub fn watch(config: ExperimentConfig, labels: &[String]) -> Self {
        let config = ExperimentConfig {
            models: labels.to_vec(),
            ..config
        };
        let mut app = Self::new(config);
        app.runs = labels
            .iter()
            .map(|l| {
                RunHistory::new(RunInfo {
                    spec: l.clone(),
                    ..Default::default()
                })
            })
            .collect();
        app.state = TrainerPhase::Running;
        app.watch = Some(Watch::default());
        app
    }

    /// The watched streams' state, when watching.
    pub fn watching(&self) -> Option<&Watch> {
        self.watch.as_ref()
    }

    pub(super) fn refuse_while_watching(&mut self, intent: Intent) {
        let what = match intent {
            Intent::TogglePause | Intent::Step => "pause or step",
            Intent::HalveLr | Intent::DoubleLr => "change the learning rate",
            Intent::CycleVariant | Intent::Deeper | Intent::Shallower => "change a model",
            Intent::Reset => "reset runs",
            Intent::RunExperiment => "run experiments (they need the weights)",
            _ => "do that",
        };
        self.set_status(
            format!("watching a stream: cannot {what} here, its trainer runs elsewhere"),
            false,
        );
    }

    pub(super) fn stream_run(&mut self, run: usize, info: RunInfo, dataset: String) {
        let Some(h) = self.runs.get_mut(run) else {
            return;
        };
        let text = format!("run {}: {}", run + 1, info.spec);
        if let Some(m) = self.config.models.get_mut(run) {
            m.clone_from(&info.spec);
        }
        *h = RunHistory::new(info);
        self.dataset = dataset;
        self.set_status(text, false);
    }

    pub(super) fn stream_note(&mut self, text: String, error: bool, dropped: u64) {
        if let Some(w) = self.watch.as_mut() {
            w.dropped = w.dropped.max(dropped);
        }
        self.set_status(text, error);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::key;
    use super::super::{Action, Msg, SaveKind};
    use super::*;
    use crate::records::events::TrainerEvent;
    use crate::records::record::StepRecord;
    use ratatui::crossterm::event::KeyCode;

    fn watching() -> App {
        App::watch(ExperimentConfig::default(), &["a.jsonl".to_string()])
    }

    #[test]
    fn training_keys_are_refused_and_s_saves() {
        let mut app = watching();
        for c in [' ', 'n', '[', ']', 'v', '+', 'r', 'x'] {
            assert_eq!(app.update(key(KeyCode::Char(c))), vec![], "{c}");
            let status = app.status().unwrap();
            assert!(
                status.text.starts_with("watching a stream: cannot"),
                "{c}: {status:?}"
            );
        }
        assert_eq!(app.state(), &TrainerPhase::Running);
        assert_eq!(
            app.update(key(KeyCode::Char('s'))),
            vec![Action::Save(SaveKind::Manual)]
        );
    }

    #[test]
    fn a_header_names_the_run_and_drops_are_counted() {
        let mut app = watching();
        assert_eq!(app.histories()[0].info.spec, "a.jsonl");
        let info = RunInfo {
            spec: "resnet18".into(),
            block_names: vec!["stem".into()],
            ..Default::default()
        };
        app.update(Msg::Trainer(TrainerEvent::StreamRun {
            run: 0,
            info: info.clone(),
            dataset: "synthetic".into(),
        }));
        assert_eq!(app.histories()[0].info, info);
        assert_eq!(app.config().models, ["resnet18"]);
        assert_eq!(app.dataset(), "synthetic");
        let rec = StepRecord {
            step: 1,
            blocks: vec![Default::default()],
            ..Default::default()
        };
        app.update(Msg::Trainer(TrainerEvent::StepsFinished {
            records: vec![(0, rec)],
        }));
        assert_eq!(app.unsaved_steps(), 1);
        app.update(Msg::Trainer(TrainerEvent::StreamNote {
            text: "7 step records dropped".into(),
            error: false,
            dropped: 7,
        }));
        assert_eq!(app.watching().unwrap().dropped, 7);
        // A header for a run that does not exist is ignored, not a panic.
        app.update(Msg::Trainer(TrainerEvent::StreamRun {
            run: 5,
            info,
            dataset: String::new(),
        }));
    }
}
