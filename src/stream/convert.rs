//! Streams as resviz's own run data: a header and its steps become a `RunHistory`, the headers
//! of the watched streams an `ExperimentConfig`, so snapshots, replay and compare read them
//! like runs trained here.

use super::{RunHeader, StreamStep};
use crate::config::ExperimentConfig;
use crate::records::record::{RunHistory, RunInfo, RunStatus};

/// The history of one streamed run, bounded as a live run's ([`RunHistory::push`]); its time is
/// the sum of batch / img_per_s over the steps that report a speed.
pub fn history(header: &RunHeader, steps: impl IntoIterator<Item = StreamStep>) -> RunHistory {
    let mut h = RunHistory::new(header.info.clone());
    let batch = header.batch.unwrap_or(0) as f64;
    for s in steps {
        if s.record.img_per_s > 0.0 {
            h.wall_secs += batch / s.record.img_per_s as f64;
        }
        h.push(s.record);
    }
    h.status = RunStatus::Finished;
    h
}

/// The experiment of streamed runs: one model per run (its name), the first header's dataset,
/// batch and rate. The optimiser and the rest are unknown and left at their defaults.
pub fn config(headers: &[&RunHeader]) -> ExperimentConfig {
    let first = headers.first();
    let d = ExperimentConfig::default();
    ExperimentConfig {
        models: headers.iter().map(|h| h.info.spec.clone()).collect(),
        dataset: first
            .and_then(|h| h.dataset.clone())
            .unwrap_or_else(|| "stream".into()),
        batch: first.and_then(|h| h.batch).unwrap_or(1),
        lr: first.and_then(|h| h.lr).unwrap_or(d.lr),
        ..d
    }
}

/// What the dashboard's header and a snapshot say the data was: the dataset, where the run was
/// trained, and the writer's note (e.g. that only rank 0's local batch is measured).
pub fn description(header: &RunHeader) -> String {
    let mut text = header.dataset.clone().unwrap_or_else(|| "stream".into());
    let extra: Vec<&str> = [header.writer.as_deref(), header.note.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !extra.is_empty() {
        text = format!("{text} ({})", extra.join("; "));
    }
    text
}

/// A placeholder run for a stream whose header has not arrived yet.
pub fn waiting(label: &str) -> RunInfo {
    RunInfo {
        spec: label.to_string(),
        ..Default::default()
    }
}
