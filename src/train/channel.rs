//! The trainer's event channel: never blocks the sender; consecutive step events coalesce into
//! one (bounded, oldest steps dropped first), consecutive evaluation progress events into the
//! latest, while lifecycle events are always delivered in order.

use crate::records::events::TrainerEvent;
use crate::records::record::StepRecord;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Most step records one coalesced event keeps (per channel, all runs together).
pub const MAX_COALESCED: usize = 4096;

#[derive(Default)]
struct Shared {
    queue: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    events: VecDeque<TrainerEvent>,
    closed: bool,
    /// Step records dropped because the consumer fell behind by more than MAX_COALESCED.
    dropped: u64,
}

pub struct EventSender(Arc<Shared>);
pub struct EventReceiver(Arc<Shared>);

pub fn event_channel() -> (EventSender, EventReceiver) {
    let shared = Arc::new(Shared::default());
    (EventSender(shared.clone()), EventReceiver(shared))
}

/// A second sender for work that runs beside the trainer (an experiment's thread). Unlike the
/// [`EventSender`], dropping it does not close the channel: the trainer's end does.
#[derive(Clone)]
pub struct AuxSender(Arc<Shared>);

impl AuxSender {
    pub fn send(&self, ev: TrainerEvent) {
        send(&self.0, ev);
    }
}

impl EventSender {
    /// An [`AuxSender`] into the same channel.
    pub fn aux(&self) -> AuxSender {
        AuxSender(self.0.clone())
    }

    pub fn send(&self, ev: TrainerEvent) {
        send(&self.0, ev);
    }

    /// Convenience for one step's records.
    pub fn send_steps(&self, records: Vec<(usize, StepRecord)>) {
        if !records.is_empty() {
            self.send(TrainerEvent::StepsFinished { records });
        }
    }
}

fn send(shared: &Shared, ev: TrainerEvent) {
    {
        let mut st = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        match (st.events.back_mut(), ev) {
            (
                Some(TrainerEvent::StepsFinished { records }),
                TrainerEvent::StepsFinished { records: new },
            ) => {
                records.extend(new);
                let excess = records.len().saturating_sub(MAX_COALESCED);
                if excess > 0 {
                    records.drain(..excess);
                    st.dropped += excess as u64;
                }
            }
            // Progress only matters as of now.
            (
                Some(last @ TrainerEvent::Evaluating { .. }),
                ev @ TrainerEvent::Evaluating { .. },
            ) => *last = ev,
            (_, ev) => st.events.push_back(ev),
        }
    }
    shared.notify.notify_one();
}

impl Drop for EventSender {
    fn drop(&mut self) {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.0.notify.notify_one();
    }
}

impl EventReceiver {
    /// The next event, or `None` once the trainer has ended and everything was delivered.
    pub async fn recv(&mut self) -> Option<TrainerEvent> {
        loop {
            let notified = self.0.notify.notified();
            if let Some(ev) = self.try_recv() {
                return Some(ev);
            }
            if self.is_closed() {
                return None;
            }
            notified.await;
        }
    }

    pub fn try_recv(&self) -> Option<TrainerEvent> {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .pop_front()
    }

    fn is_closed(&self) -> bool {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
    }

    /// Step records lost to coalescing so far.
    pub fn dropped(&self) -> u64 {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: u64) -> Vec<(usize, StepRecord)> {
        vec![(
            0,
            StepRecord {
                step: n,
                ..Default::default()
            },
        )]
    }

    #[test]
    fn steps_coalesce_and_lifecycle_events_keep_order() {
        let (tx, rx) = event_channel();
        tx.send_steps(step(1));
        tx.send_steps(step(2));
        tx.send(TrainerEvent::Paused { step: 2 });
        tx.send_steps(step(3));
        match rx.try_recv() {
            Some(TrainerEvent::StepsFinished { records }) => assert_eq!(records.len(), 2),
            other => panic!("expected coalesced steps, got {other:?}"),
        }
        assert_eq!(rx.try_recv(), Some(TrainerEvent::Paused { step: 2 }));
        assert!(matches!(
            rx.try_recv(),
            Some(TrainerEvent::StepsFinished { .. })
        ));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_slow_consumer_loses_only_old_steps() {
        let (tx, rx) = event_channel();
        for n in 0..(MAX_COALESCED as u64 + 10) {
            tx.send_steps(step(n));
        }
        let Some(TrainerEvent::StepsFinished { records }) = rx.try_recv() else {
            panic!()
        };
        assert_eq!(records.len(), MAX_COALESCED);
        assert_eq!(records.last().unwrap().1.step, MAX_COALESCED as u64 + 9);
        assert_eq!(rx.dropped(), 10);
    }

    #[tokio::test]
    async fn closed_channel_ends_after_draining() {
        let (tx, mut rx) = event_channel();
        tx.send(TrainerEvent::Finished { step: 1 });
        drop(tx);
        assert_eq!(rx.recv().await, Some(TrainerEvent::Finished { step: 1 }));
        assert_eq!(rx.recv().await, None);
    }
}
