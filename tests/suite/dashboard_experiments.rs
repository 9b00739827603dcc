//! Experiments started through the trainer's command channel, as the dashboard's `x` does: they
//! run on copies of the live weights beside training, report progress, can be stopped, and give
//! exactly what the headless study gives on the same weights.

use resviz::config::ExperimentConfig;
use resviz::experiments::lesion;
use resviz::records::{ExperimentKind, ExperimentResult};
use resviz::records::{TrainerCommand as C, TrainerEvent as E};
use resviz::train::{self, EventReceiver, Trainer};
use std::sync::Arc;
use std::time::Duration;

fn trainer() -> Trainer {
    let cfg = ExperimentConfig {
        models: vec!["plain-8".into(), "v1-8".into()],
        dataset: "synthetic".into(),
        batch: 8,
        width: 4,
        lr: 0.05,
        eval_every: 0,
        ..Default::default()
    };
    let ds = Arc::new(resviz::data::load("synthetic", 0).unwrap());
    Trainer::new(cfg, ds).unwrap()
}

async fn next(rx: &mut EventReceiver) -> E {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}

/// Every event until one matches (inclusive).
async fn until(rx: &mut EventReceiver, pred: impl Fn(&E) -> bool) -> Vec<E> {
    let mut seen = Vec::new();
    loop {
        let e = next(rx).await;
        let done = pred(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesion_from_the_dashboard_matches_the_headless_study() {
    let opts = train::WorkerOptions {
        start_paused: true,
        ..Default::default()
    };
    let mut h = train::spawn(trainer(), opts);
    until(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
    for _ in 0..3 {
        h.commands.send(C::Step).unwrap();
    }
    h.commands
        .send(C::RunExperiment(ExperimentKind::Lesion))
        .unwrap();
    let seen = until(&mut h.events, |e| matches!(e, E::ExperimentFinished { .. })).await;
    let progress: Vec<(usize, usize)> = seen
        .iter()
        .filter_map(|e| match e {
            E::ExperimentProgress { done, total, .. } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    // plain-8 and v1-8: 3 blocks each, plus the intact net.
    assert_eq!(progress.first(), Some(&(0, 8)), "{progress:?}");
    assert_eq!(progress.last(), Some(&(8, 8)), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));
    let Some(E::ExperimentFinished { result }) = seen.last() else {
        unreachable!()
    };
    let ExperimentResult::Lesion { report, classes } = result.as_ref() else {
        panic!("a lesion study gives a lesion result: {result:?}")
    };
    assert_eq!(*classes, 10);
    assert_eq!(
        report.params.steps,
        vec![3, 3],
        "lesioned after the 3 steps"
    );
    h.commands.send(C::Stop).unwrap();
    let mut t = h.task.await.unwrap();
    // The same weights (the trainer was paused), lesioned headless.
    let ranges = lesion::ranges(&t.ds, report.params.test_images, report.params.eval_batch);
    let ds = t.ds.clone();
    for (run, m) in t.runs.iter_mut().zip(&report.models) {
        let name = run.spec.to_string();
        let bn = resviz::records::default_bn(t.cfg.batch).gather(&ds);
        let never = std::sync::atomic::AtomicBool::new(false);
        let quiet = &mut |_, _| {};
        let headless =
            lesion::lesion_net(&run.net, &name, &ds, (&ranges, &bn), quiet, &never).unwrap();
        assert_eq!(&headless, m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_can_be_stopped_and_training_goes_on_meanwhile() {
    let opts = train::WorkerOptions {
        start_paused: true,
        ..Default::default()
    };
    let mut h = train::spawn(trainer(), opts);
    until(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
    // Both commands are queued before the worker reads either: the stop reaches the study well
    // before its eight evaluations of the test split are done.
    h.commands
        .send(C::RunExperiment(ExperimentKind::Lesion))
        .unwrap();
    h.commands.send(C::CancelExperiment).unwrap();
    let seen = until(&mut h.events, |e| {
        matches!(
            e,
            E::ExperimentStopped { .. } | E::ExperimentFinished { .. }
        )
    })
    .await;
    assert!(
        matches!(
            seen.last(),
            Some(E::ExperimentStopped {
                kind: ExperimentKind::Lesion
            })
        ),
        "{seen:?}"
    );
    // Training runs beside an experiment: start one, resume, and steps arrive before it ends.
    h.commands
        .send(C::RunExperiment(ExperimentKind::Lesion))
        .unwrap();
    h.commands.send(C::Resume).unwrap();
    let seen = until(&mut h.events, |e| matches!(e, E::StepsFinished { .. })).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, E::ExperimentFinished { .. })),
        "training waited for the experiment"
    );
    h.commands.send(C::Stop).unwrap();
    h.task.await.unwrap();
}
