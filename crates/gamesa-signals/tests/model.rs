//! Property test: the signal queue behaves like a naive reference model (a `Vec` sorted
//! on every read) over random sequences of push, pop, peek, expire, remove and time steps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;

use gamesa_proto::{AgentId, Domain, ProtoError, Signal, SignalKind, Strength, Tick};
use gamesa_signals::{DomainRanking, PushOutcome, SignalError, SignalQueue};
use proptest::prelude::*;

const KINDS: [&str; 3] = ["thermal_high", "power_over_cap", "game_started"];

#[derive(Debug, Clone)]
enum Op {
    Push { signal: Signal, ticks_back: u64 },
    Pop { ticks_back: u64 },
    Peek,
    Advance(u64),
    Expire,
    Ranked { ticks_back: u64 },
    Drain,
    RemoveFrom(AgentId),
}

#[derive(Debug, Clone)]
struct ModelEntry {
    signal: Signal,
    pushed_at: u64,
    seq: u64,
}

impl ModelEntry {
    fn expires_at(&self) -> u64 {
        self.pushed_at
            .saturating_add(u64::from(self.signal.ttl_ticks))
    }

    fn live_at(&self, tick: u64) -> bool {
        tick < self.expires_at()
    }
}

/// The obvious implementation: a flat list, filtered and sorted whenever it is read.
#[derive(Debug)]
struct Model {
    ranking: DomainRanking,
    entries: Vec<ModelEntry>,
    next_seq: u64,
    latest: u64,
}

impl Model {
    fn sort(&self, entries: &mut [ModelEntry]) {
        entries.sort_by_key(|e| {
            (
                self.ranking.rank_of(e.signal.domain),
                Reverse(e.signal.strength),
                e.seq,
            )
        });
    }

    fn expire(&mut self, tick: u64) -> Vec<Signal> {
        self.latest = self.latest.max(tick);
        let latest = self.latest;
        let (live, mut expired): (Vec<_>, Vec<_>) =
            self.entries.drain(..).partition(|e| e.live_at(latest));
        self.entries = live;
        expired.sort_by_key(|e| (e.expires_at(), e.seq));
        expired.into_iter().map(|e| e.signal).collect()
    }

    fn push(&mut self, signal: Signal, tick: u64) -> Result<PushOutcome, SignalError> {
        if signal.ttl_ticks == 0 {
            return Err(SignalError::InvalidSignal(ProtoError::ZeroTtl));
        }
        if tick < self.latest {
            return Err(SignalError::StaleTick {
                now: Tick(tick),
                latest: Tick(self.latest),
            });
        }
        self.expire(tick);
        let same = self
            .entries
            .iter_mut()
            .find(|e| e.signal.kind == signal.kind && e.signal.source == signal.source);
        match same {
            Some(entry) => {
                let previous = std::mem::replace(&mut entry.signal, signal);
                entry.pushed_at = tick;
                Ok(PushOutcome::Replaced { previous })
            }
            None => {
                self.entries.push(ModelEntry {
                    signal,
                    pushed_at: tick,
                    seq: self.next_seq,
                });
                self.next_seq += 1;
                Ok(PushOutcome::Inserted)
            }
        }
    }

    fn ranked(&self, tick: u64) -> Vec<Signal> {
        let now = tick.max(self.latest);
        let mut live: Vec<ModelEntry> = self
            .entries
            .iter()
            .filter(|e| e.live_at(now))
            .cloned()
            .collect();
        self.sort(&mut live);
        live.into_iter().map(|e| e.signal).collect()
    }

    fn pop(&mut self, tick: u64) -> Option<Signal> {
        self.expire(tick);
        let best = self.ranked(tick).into_iter().next()?;
        self.entries
            .retain(|e| !(e.signal.kind == best.kind && e.signal.source == best.source));
        Some(best)
    }

    fn remove_from(&mut self, source: AgentId) -> Vec<Signal> {
        let (mut removed, kept): (Vec<_>, Vec<_>) = self
            .entries
            .drain(..)
            .partition(|e| e.signal.source == source);
        self.entries = kept;
        self.sort(&mut removed);
        removed.into_iter().map(|e| e.signal).collect()
    }
}

fn signal_strategy() -> impl Strategy<Value = Signal> {
    (
        0..KINDS.len(),
        0u32..3,
        0..Domain::ALL.len(),
        // Few strengths, so ties (decided by age) are common.
        prop_oneof![Just(0u16), Just(500), Just(1000), 0u16..=1000],
        prop_oneof![1 => Just(0u32), 8 => 1u32..6],
    )
        .prop_map(|(kind, source, domain, permille, ttl)| Signal {
            kind: SignalKind::new(KINDS[kind]).unwrap(),
            domain: Domain::ALL[domain],
            strength: Strength::from_permille(permille).unwrap(),
            source: AgentId(source),
            ttl_ticks: ttl,
            correlation: None,
        })
}

fn ticks_back() -> impl Strategy<Value = u64> {
    prop_oneof![6 => Just(0u64), 1 => 1u64..3]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (signal_strategy(), ticks_back())
            .prop_map(|(signal, ticks_back)| Op::Push { signal, ticks_back }),
        4 => ticks_back().prop_map(|ticks_back| Op::Pop { ticks_back }),
        1 => Just(Op::Peek),
        3 => (0u64..4).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        2 => ticks_back().prop_map(|ticks_back| Op::Ranked { ticks_back }),
        1 => (0u32..4).prop_map(|source| Op::RemoveFrom(AgentId(source))),
        1 => Just(Op::Drain),
    ]
}

fn ranking_strategy() -> impl Strategy<Value = DomainRanking> {
    Just(Domain::ALL.to_vec())
        .prop_shuffle()
        .prop_map(|order| DomainRanking::new(&order).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn queue_matches_the_naive_model(
        ranking in ranking_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..80),
    ) {
        let mut queue = SignalQueue::new(ranking);
        let mut model = Model { ranking, entries: Vec::new(), next_seq: 0, latest: 0 };
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Push { signal, ticks_back } => {
                    let tick = now.saturating_sub(ticks_back);
                    let expected = model.push(signal.clone(), tick);
                    prop_assert_eq!(queue.push(signal, Tick(tick)), expected);
                }
                Op::Pop { ticks_back } => {
                    let tick = now.saturating_sub(ticks_back);
                    prop_assert_eq!(queue.pop(Tick(tick)), model.pop(tick));
                }
                Op::Peek => {
                    model.expire(now);
                    let expected = model.ranked(now).into_iter().next();
                    prop_assert_eq!(queue.peek(Tick(now)).cloned(), expected);
                }
                Op::Advance(ticks) => now += ticks,
                Op::Expire => {
                    prop_assert_eq!(queue.expire(Tick(now)), model.expire(now));
                }
                Op::Ranked { ticks_back } => {
                    let tick = now.saturating_sub(ticks_back);
                    prop_assert_eq!(queue.ranked(Tick(tick)), model.ranked(tick));
                }
                Op::RemoveFrom(source) => {
                    prop_assert_eq!(queue.remove_from(source), model.remove_from(source));
                }
                Op::Drain => {
                    model.expire(now);
                    let expected = model.ranked(now);
                    model.entries.clear();
                    prop_assert_eq!(queue.drain_ranked(Tick(now)), expected);
                }
            }
            prop_assert_eq!(queue.len(), model.entries.len());
            prop_assert_eq!(queue.is_empty(), model.entries.is_empty());
        }
    }
}
