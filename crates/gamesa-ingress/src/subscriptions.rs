//! Subscriptions: each connection's bounded event queue. Publishing never waits: when a
//! queue is full its oldest event is dropped and counted, and the count is reported to
//! the subscriber with the next event it receives.
//!
//! # Invariants
//! - a queue never holds more than its capacity
//! - every event pushed to a subscribed queue is either delivered or counted as lost,
//!   exactly once
//! - `seq` numbers a queue's events from 1 in push order, lost ones included

use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicU8, Ordering},
    },
};

use gamesa_proto::Tick;
use gamesa_wire::{
    EventFrame, FillEvent, FrameError, PricesEvent, SignalEvent, Topic, TurnEvent, VetoEvent,
    encode_frame,
};
use serde::Serialize;
use tokio::sync::Notify;

/// What an event carries, by topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    Fill(FillEvent),
    Prices(PricesEvent),
    Signal(SignalEvent),
    Veto(VetoEvent),
    /// Boxed: an observation is much larger than the other events.
    Turn(Box<TurnEvent>),
}

/// One event as published by the tick, shared by every queue it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub topic: Topic,
    pub tick: Tick,
    pub data: EventData,
}

/// A bounded FIFO that drops its oldest item when full, counting what it dropped.
#[derive(Debug, Clone)]
pub struct DropOldest<T> {
    items: VecDeque<(u64, T)>,
    capacity: usize,
    next_seq: u64,
    /// Dropped since the last `pop`: reported with the next item popped.
    lost_since_pop: u64,
    lost_total: u64,
}

impl<T> DropOldest<T> {
    pub fn new(capacity: usize) -> DropOldest<T> {
        DropOldest {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 1,
            lost_since_pop: 0,
            lost_total: 0,
        }
    }

    /// Appends `item`, dropping the oldest when full; returns whether one was dropped.
    pub fn push(&mut self, item: T) -> bool {
        let dropped = self.items.len() >= self.capacity;
        if dropped {
            self.items.pop_front();
            self.lost_since_pop += 1;
            self.lost_total += 1;
        }
        self.items.push_back((self.next_seq, item));
        self.next_seq += 1;
        dropped
    }

    /// The oldest item with its sequence number and the count lost just before it.
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        let (seq, item) = self.items.pop_front()?;
        Some((seq, std::mem::take(&mut self.lost_since_pop), item))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }
}

/// A connection's event queue: the topics it subscribed to and its bounded buffer.
#[derive(Debug)]
pub struct EventQueue {
    topics: AtomicU8,
    queue: Mutex<DropOldest<std::sync::Arc<PublishedEvent>>>,
    /// Wakes the connection's task when an event arrives.
    pub ready: Notify,
}

impl EventQueue {
    pub fn new(capacity: usize) -> EventQueue {
        EventQueue {
            topics: AtomicU8::new(0),
            queue: Mutex::new(DropOldest::new(capacity)),
            ready: Notify::new(),
        }
    }

    pub fn subscribe(&self, topic: Topic) {
        self.topics.fetch_or(topic.bit(), Ordering::Relaxed);
    }

    /// Stops `topic`; returns the events lost so far on this connection.
    pub fn unsubscribe(&self, topic: Topic) -> u64 {
        self.topics.fetch_and(!topic.bit(), Ordering::Relaxed);
        self.lock().lost_total()
    }

    pub fn is_subscribed(&self) -> bool {
        self.topics.load(Ordering::Relaxed) != 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DropOldest<std::sync::Arc<PublishedEvent>>> {
        // A poisoned lock only means another thread panicked mid-push; the queue itself
        // is still consistent (push and pop are single VecDeque operations).
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Offers `event`; kept only when its topic is subscribed. Never blocks on the
    /// subscriber: a full queue drops its oldest event.
    pub fn offer(&self, event: &std::sync::Arc<PublishedEvent>) {
        if self.topics.load(Ordering::Relaxed) & event.topic.bit() == 0 {
            return;
        }
        self.lock().push(std::sync::Arc::clone(event));
        self.ready.notify_one();
    }

    /// Encodes queued events as frames into `out` until it holds `max_bytes`.
    pub fn drain_into(&self, out: &mut Vec<u8>, max_bytes: usize) -> Result<usize, FrameError> {
        let mut drained = 0;
        let mut queue = self.lock();
        while out.len() < max_bytes {
            let Some((seq, lost, event)) = queue.pop() else {
                break;
            };
            encode_frame(
                &EventFrame {
                    topic: event.topic,
                    seq,
                    tick: event.tick,
                    lost,
                    data: &event.data,
                },
                out,
            )?;
            drained += 1;
        }
        Ok(drained)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gamesa_wire::{PriceLine, ServerFrame, decode_server_frame};

    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_and_reports_the_loss() {
        let mut queue = DropOldest::new(3);
        for item in 1..=5 {
            queue.push(item);
        }
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop(), Some((3, 2, 3)), "seq 3, after 2 lost");
        assert_eq!(queue.pop(), Some((4, 0, 4)));
        queue.push(6);
        assert_eq!(queue.pop(), Some((5, 0, 5)));
        assert_eq!(queue.pop(), Some((6, 0, 6)));
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.lost_total(), 2);
    }

    fn prices(tick: u64) -> Arc<PublishedEvent> {
        Arc::new(PublishedEvent {
            topic: Topic::Prices,
            tick: Tick(tick),
            data: EventData::Prices(PricesEvent {
                prices: vec![PriceLine {
                    resource: gamesa_proto::Resource::CpuCores,
                    last: None,
                    best_bid: None,
                    best_ask: None,
                }],
            }),
        })
    }

    #[test]
    fn only_subscribed_topics_are_queued_and_events_encode_as_frames() {
        let queue = EventQueue::new(2);
        queue.offer(&prices(1));
        let mut out = Vec::new();
        assert_eq!(queue.drain_into(&mut out, 1 << 20).unwrap(), 0);
        queue.subscribe(Topic::Prices);
        for tick in 2..=5 {
            queue.offer(&prices(tick));
        }
        assert_eq!(queue.drain_into(&mut out, 1 << 20).unwrap(), 2);
        let length = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        let ServerFrame::Event(event) = decode_server_frame(&out[4..4 + length]).unwrap() else {
            panic!("not an event");
        };
        assert_eq!((event.tick, event.lost, event.seq), (Tick(4), 2, 3));
        assert_eq!(queue.unsubscribe(Topic::Prices), 2);
        assert!(!queue.is_subscribed());
    }
}
