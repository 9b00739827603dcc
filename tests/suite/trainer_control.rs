//! The background trainer under command: pause, single step, swap, reset, divergence, stop.

use resviz::config::ExperimentConfig;
use resviz::records::StepRecord;
use resviz::records::{TrainerCommand as C, TrainerEvent as E};
use resviz::train::{self, EventReceiver, Trainer, WorkerOptions};
use std::sync::Arc;
use std::time::Duration;

fn trainer(models: &[&str], lr: f64) -> Trainer {
    let cfg = ExperimentConfig {
        models: models.iter().map(|s| s.to_string()).collect(),
        dataset: "synthetic".into(),
        batch: 8,
        width: 4,
        lr,
        eval_every: 0,
        ..Default::default()
    };
    let ds = Arc::new(resviz::data::load("synthetic", 0).unwrap());
    Trainer::new(cfg, ds).unwrap()
}

async fn next(rx: &mut EventReceiver) -> E {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}

/// Events until one matches, returning the step records seen on the way.
async fn until(rx: &mut EventReceiver, pred: impl Fn(&E) -> bool) -> (E, Vec<(usize, StepRecord)>) {
    let mut steps = Vec::new();
    loop {
        match next(rx).await {
            E::StepsFinished { records } => steps.extend(records),
            e if pred(&e) => return (e, steps),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_step_swap_reset_stop() {
    let mut h = train::spawn(
        trainer(&["plain-8", "v1-8"], 0.05),
        WorkerOptions {
            max_steps: None,
            start_paused: true,
            ..Default::default()
        },
    );
    until(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
    // Single step: exactly one step per run.
    h.commands.send(C::Step).unwrap();
    h.commands.send(C::Step).unwrap();
    h.commands.send(C::Pause).unwrap(); // already paused: ignored, but a marker would be nice
    h.commands.send(C::SetLr(0.01)).unwrap();
    let (_, steps) = until(&mut h.events, |e| matches!(e, E::LrChanged { .. })).await;
    let per_run: Vec<u64> = (0..2)
        .map(|r| steps.iter().filter(|(i, _)| *i == r).count() as u64)
        .collect();
    assert_eq!(per_run, vec![2, 2], "{steps:?}");
    // Swap run 1: it restarts, run 0 keeps counting.
    h.commands
        .send(C::ReplaceRun {
            run: 1,
            spec: "v2-8".into(),
        })
        .unwrap();
    let (ev, _) = until(&mut h.events, |e| matches!(e, E::RunRestarted { .. })).await;
    let E::RunRestarted { run: 1, info } = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(info.spec, "v2-8");
    h.commands.send(C::Step).unwrap();
    h.commands.send(C::Resume).unwrap();
    let (_, steps) = until(&mut h.events, |e| matches!(e, E::Resumed { .. })).await;
    let r0 = steps.iter().find(|(i, _)| *i == 0).unwrap().1.step;
    let r1 = steps.iter().find(|(i, _)| *i == 1).unwrap().1.step;
    assert_eq!((r0, r1), (3, 1));
    assert!((steps[0].1.lr - 0.01).abs() < 1e-9);
    // Pause stops stepping within one step.
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.commands.send(C::Pause).unwrap();
    let (ev, _) = until(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
    let E::Paused { step: paused_at } = ev else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    while let Some(e) = h.events.try_recv() {
        assert!(
            !matches!(e, E::StepsFinished { .. }),
            "stepped while paused: {e:?}"
        );
    }
    // Reset restarts every run.
    h.commands.send(C::Reset).unwrap();
    until(&mut h.events, |e| {
        matches!(e, E::RunRestarted { run: 1, .. })
    })
    .await;
    h.commands.send(C::Stop).unwrap();
    let (ev, _) = until(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    assert_eq!(ev, E::Finished { step: paused_at });
    assert!(
        h.events.recv().await.is_none(),
        "channel closes after Finished"
    );
    let t = h.task.await.unwrap();
    assert_eq!(t.runs[0].step, 0, "reset gave fresh runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_learning_rate_diverges_without_panicking() {
    let mut h = train::spawn(
        trainer(&["plain-8", "v1-8"], 1e4),
        WorkerOptions {
            max_steps: Some(30),
            start_paused: false,
            ..Default::default()
        },
    );
    let (ev, _) = until(&mut h.events, |e| {
        matches!(e, E::Diverged { .. } | E::Finished { .. })
    })
    .await;
    let E::Diverged { reason, .. } = ev else {
        panic!("no divergence within 30 steps: {ev:?}")
    };
    assert!(reason.contains("became"), "{reason}");
    until(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    h.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_command_sender_shuts_down() {
    let h = train::spawn(
        trainer(&["plain-8"], 0.1),
        WorkerOptions {
            max_steps: None,
            start_paused: true,
            ..Default::default()
        },
    );
    drop(h.commands);
    tokio::time::timeout(Duration::from_secs(30), h.task)
        .await
        .expect("ends")
        .unwrap();
}

/// A `Stop` evaluates every run first only when asked to (headless `train`); a quitting dashboard
/// must not wait for an evaluation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_evaluates_only_when_asked() {
    for eval_on_stop in [false, true] {
        let mut h = train::spawn(
            trainer(&["plain-8", "v1-8"], 0.05),
            WorkerOptions {
                start_paused: true,
                eval_on_stop,
                ..Default::default()
            },
        );
        until(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
        h.commands.send(C::Step).unwrap();
        h.commands.send(C::Stop).unwrap();
        let mut evals = Vec::new();
        loop {
            match next(&mut h.events).await {
                E::Evaluated { run, .. } => evals.push(run),
                E::Finished { .. } => break,
                _ => {}
            }
        }
        let expected: &[usize] = if eval_on_stop { &[0, 1] } else { &[] };
        assert_eq!(evals, expected, "eval_on_stop = {eval_on_stop}");
        h.task.await.unwrap();
    }
}

/// A trainer that evaluates after every step, on nets whose evaluation takes a while.
fn evaluating_trainer(models: &[&str]) -> Trainer {
    let mut t = trainer(models, 0.05);
    t.cfg.eval_every = 1;
    t
}

/// Events up to and including the first that matches, all of them.
async fn upto(rx: &mut EventReceiver, pred: impl Fn(&E) -> bool) -> Vec<E> {
    let mut seen = Vec::new();
    loop {
        let e = next(rx).await;
        let hit = pred(&e);
        seen.push(e);
        if hit {
            return seen;
        }
    }
}

/// A quitting dashboard's `Stop` abandons an evaluation at the next test batch: `Finished`
/// comes at once, with no `Evaluated` for the run that was under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_an_evaluation_abandons_it_at_once() {
    let mut h = train::spawn(
        evaluating_trainer(&["v1-20", "v2-20"]),
        WorkerOptions::default(),
    );
    let seen = upto(&mut h.events, |e| matches!(e, E::Evaluating { run: 0, .. })).await;
    assert!(!seen.iter().any(|e| matches!(e, E::Evaluated { .. })));
    let t0 = std::time::Instant::now();
    h.commands.send(C::Stop).unwrap();
    let seen = upto(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    let took = t0.elapsed();
    assert!(
        !seen.iter().any(|e| matches!(e, E::Evaluated { .. })),
        "the interrupted run was reported: {seen:?}"
    );
    assert!(took < Duration::from_secs(1), "Stop took {took:?}");
    assert!(h.events.recv().await.is_none());
    h.task.await.unwrap();
}

/// Commands sent during an evaluation wait for it and are then applied in order; a `Stop` to a
/// worker that evaluates on stop (headless `train`) lets the evaluation finish first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_during_an_evaluation_wait_for_it() {
    let mut h = train::spawn(
        evaluating_trainer(&["v1-20", "v2-20"]),
        WorkerOptions::default(),
    );
    upto(&mut h.events, |e| matches!(e, E::Evaluating { run: 0, .. })).await;
    h.commands.send(C::SetLr(0.01)).unwrap();
    h.commands.send(C::Pause).unwrap();
    let seen = upto(&mut h.events, |e| matches!(e, E::Paused { .. })).await;
    let order: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            E::Evaluated { run: 0, .. } => Some("eval 0"),
            E::Evaluated { run: 1, .. } => Some("eval 1"),
            E::LrChanged { .. } => Some("lr"),
            E::Paused { .. } => Some("paused"),
            E::StepsFinished { .. } => Some("step"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["eval 0", "eval 1", "lr", "paused"], "{seen:?}");
    // Progress is reported per run, with the number of test batches.
    assert!(
        seen.iter()
            .any(|e| matches!(e, E::Evaluating { run: 1, total, .. } if *total > 1))
    );
    h.commands.send(C::Stop).unwrap();
    until(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    h.task.await.unwrap();

    let mut h = train::spawn(
        evaluating_trainer(&["v1-20", "v2-20"]),
        WorkerOptions {
            eval_on_stop: true,
            ..Default::default()
        },
    );
    upto(&mut h.events, |e| matches!(e, E::Evaluating { run: 0, .. })).await;
    h.commands.send(C::Stop).unwrap();
    let seen = upto(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    let evals: Vec<usize> = seen
        .iter()
        .filter_map(|e| match e {
            E::Evaluated { run, .. } => Some(*run),
            _ => None,
        })
        .collect();
    assert_eq!(evals, [0, 1], "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, E::StepsFinished { .. })));
    h.task.await.unwrap();
}

/// The worker stops on the step the plateau rule fires at, whatever the consumer is doing: with
/// a tolerance of 1 the rule holds as soon as two 5-step windows exist, i.e. at step 10 of every
/// run, and not a step later, even with nobody reading the events until the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plateau_rule_stops_on_the_step_it_fires() {
    use resviz::records::plateau::PlateauRule;
    let mut h = train::spawn(
        trainer(&["plain-8", "v1-8"], 0.01),
        WorkerOptions {
            max_steps: Some(1000),
            plateau: Some(PlateauRule {
                window: 5,
                tol: 1.0,
                max_steps: 1000,
            }),
            ..Default::default()
        },
    );
    let t = h.task.await.unwrap();
    assert_eq!(t.batches, 10);
    assert!(t.runs.iter().all(|r| r.step == 10));
    let (ev, steps) = until(&mut h.events, |e| matches!(e, E::Finished { .. })).await;
    assert!(matches!(ev, E::Finished { step: 10 }), "{ev:?}");
    assert_eq!(steps.len(), 20, "two runs × ten steps");
}
