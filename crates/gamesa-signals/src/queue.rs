//! The signal queue: holds live signals in rank order, de-duplicates them by
//! `(kind, source)` and drops them when their ttl runs out.
//!
//! # Invariants
//! - `by_rank`, `by_source` and `by_expiry` index exactly the same set of signals
//! - at most one signal is held per `(source, kind)`
//! - every held signal has a distinct sequence number, so rank keys never tie
//! - after any call that takes `now`, no held signal has `expires_at <= latest`
//! - `latest` never decreases

use std::{cmp::Reverse, collections::BTreeMap};

use gamesa_proto::{AgentId, Signal, SignalKind, Strength, Tick};

use crate::{DomainRanking, SignalError};

/// Where a signal sits in the queue. The derived order is the ranking: lower domain
/// rank first, then higher strength, then older (lower sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RankKey {
    rank: u8,
    strength: Reverse<Strength>,
    seq: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    signal: Signal,
    /// The first tick at which the signal is no longer live.
    expires_at: Tick,
}

/// What [`SignalQueue::push`] did with the signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// No live signal with the same `(kind, source)` was queued; this one was added.
    Inserted,
    /// A live signal with the same `(kind, source)` was queued; it was replaced, and is
    /// given back here.
    Replaced { previous: Signal },
}

/// A domain-ranked queue of signals. Every operation is O(log n) in the number of
/// held signals, plus O(log n) for each signal it drops, returns or removes.
///
/// # Time
/// A signal pushed at tick `now` with `ttl_ticks = t` is live at ticks `now ..= now + t - 1`
/// and expired from tick `now + t` on (the sum saturates at `u64::MAX`). Ticks must not go
/// backwards: [`push`](Self::push) refuses an earlier tick than the latest it has seen, and
/// the read operations treat an earlier tick as the latest one.
///
/// # De-duplication
/// Pushing a signal whose `(kind, source)` matches a live queued one replaces it: the new
/// signal's domain, strength, ttl (counted from the new `now`) and correlation take
/// effect, but it **keeps the age** of the signal it replaces. An agent that refreshes a
/// standing condition every tick therefore keeps its place among equals instead of
/// falling behind signals raised after it first did.
#[derive(Debug, Clone)]
pub struct SignalQueue {
    ranking: DomainRanking,
    by_rank: BTreeMap<RankKey, Entry>,
    /// `(source, kind)` to rank key, for de-duplication and for [`remove_from`](Self::remove_from).
    by_source: BTreeMap<AgentId, BTreeMap<SignalKind, RankKey>>,
    /// `(expires_at, seq)` to rank key, so expired signals are found oldest deadline first.
    by_expiry: BTreeMap<(Tick, u64), RankKey>,
    /// The sequence number the next new signal gets; it orders equal signals by age.
    next_seq: u64,
    /// The latest tick any call has passed in.
    latest: Tick,
}

impl SignalQueue {
    /// An empty queue ranking domains by `ranking`.
    pub fn new(ranking: DomainRanking) -> SignalQueue {
        SignalQueue {
            ranking,
            by_rank: BTreeMap::new(),
            by_source: BTreeMap::new(),
            by_expiry: BTreeMap::new(),
            next_seq: 0,
            latest: Tick(0),
        }
    }

    /// The domain ranking this queue uses.
    pub fn ranking(&self) -> &DomainRanking {
        &self.ranking
    }

    /// Enqueues `signal` at tick `now`, first dropping every signal expired at `now`.
    ///
    /// A live queued signal with the same `(kind, source)` is replaced (see the type's
    /// docs); an expired one is dropped and the new signal is inserted as new.
    ///
    /// # Errors
    /// On any error the queue is unchanged.
    /// - [`SignalError::InvalidSignal`] when `signal.validate()` fails (a zero ttl);
    /// - [`SignalError::StaleTick`] when `now` is earlier than a tick already seen;
    /// - [`SignalError::SequenceExhausted`] after 2^64 - 1 insertions.
    pub fn push(&mut self, signal: Signal, now: Tick) -> Result<PushOutcome, SignalError> {
        signal.validate()?;
        if now < self.latest {
            return Err(SignalError::StaleTick {
                now,
                latest: self.latest,
            });
        }
        let live_previous = self
            .key_of(signal.source, &signal.kind)
            .filter(|key| self.by_rank.get(key).is_some_and(|e| e.expires_at > now));
        if live_previous.is_none() && self.next_seq == u64::MAX {
            return Err(SignalError::SequenceExhausted);
        }

        self.advance(now, drop);
        let expires_at = now.plus(u64::from(signal.ttl_ticks));
        match live_previous {
            Some(old_key) => {
                let previous = self.unlink(old_key);
                self.link(signal, expires_at, old_key.seq);
                Ok(PushOutcome::Replaced { previous })
            }
            None => {
                let seq = self.next_seq;
                self.next_seq += 1; // below u64::MAX, checked above
                self.link(signal, expires_at, seq);
                Ok(PushOutcome::Inserted)
            }
        }
    }

    /// Removes and returns the highest-ranked live signal at `now`. Expired signals are
    /// dropped on the way and never returned.
    pub fn pop(&mut self, now: Tick) -> Option<Signal> {
        self.advance(now, drop);
        let key = *self.by_rank.keys().next()?;
        Some(self.unlink(key))
    }

    /// The highest-ranked live signal at `now`, left in place. Expired signals are
    /// dropped first, hence `&mut self`.
    pub fn peek(&mut self, now: Tick) -> Option<&Signal> {
        self.advance(now, drop);
        self.by_rank.values().next().map(|entry| &entry.signal)
    }

    /// Drops every signal expired at `now` and returns them, earliest deadline first
    /// (then oldest first).
    pub fn expire(&mut self, now: Tick) -> Vec<Signal> {
        let mut expired = Vec::new();
        self.advance(now, |signal| expired.push(signal));
        expired
    }

    /// The signals live at `now`, highest-ranked first, without removing anything. This
    /// is the list the runtime hands to agents. O(n).
    pub fn ranked(&self, now: Tick) -> Vec<Signal> {
        let now = now.max(self.latest);
        self.by_rank
            .values()
            .filter(|entry| entry.expires_at > now)
            .map(|entry| entry.signal.clone())
            .collect()
    }

    /// Removes every signal and returns those live at `now`, highest-ranked first.
    pub fn drain_ranked(&mut self, now: Tick) -> Vec<Signal> {
        self.advance(now, drop);
        self.by_source.clear();
        self.by_expiry.clear();
        std::mem::take(&mut self.by_rank)
            .into_values()
            .map(|entry| entry.signal)
            .collect()
    }

    /// Removes every signal raised by `source` (an isolated agent) and returns them,
    /// highest-ranked first. This includes signals past their ttl that no call taking
    /// a tick has dropped yet.
    pub fn remove_from(&mut self, source: AgentId) -> Vec<Signal> {
        let Some(kinds) = self.by_source.remove(&source) else {
            return Vec::new();
        };
        let mut keys: Vec<RankKey> = kinds.into_values().collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|key| {
                let entry = self.by_rank.remove(&key)?;
                self.by_expiry.remove(&(entry.expires_at, key.seq));
                Some(entry.signal)
            })
            .collect()
    }

    /// How many signals the queue holds. Signals past their ttl count until a call that
    /// takes a tick (`push`, `pop`, `peek`, `expire`, `drain_ranked`) drops them.
    pub fn len(&self) -> usize {
        self.by_rank.len()
    }

    /// Whether the queue holds no signal.
    pub fn is_empty(&self) -> bool {
        self.by_rank.is_empty()
    }

    fn key_of(&self, source: AgentId, kind: &SignalKind) -> Option<RankKey> {
        self.by_source.get(&source)?.get(kind).copied()
    }

    /// Moves time to `now` (never backwards) and hands every signal expired by then to
    /// `on_expired`, earliest deadline first.
    fn advance(&mut self, now: Tick, mut on_expired: impl FnMut(Signal)) {
        self.latest = self.latest.max(now);
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > self.latest {
                break;
            }
            let key = *entry.get();
            on_expired(self.unlink(key));
        }
    }

    fn link(&mut self, signal: Signal, expires_at: Tick, seq: u64) {
        let key = RankKey {
            rank: self.ranking.rank_of(signal.domain),
            strength: Reverse(signal.strength),
            seq,
        };
        self.by_source
            .entry(signal.source)
            .or_default()
            .insert(signal.kind.clone(), key);
        self.by_expiry.insert((expires_at, seq), key);
        self.by_rank.insert(key, Entry { signal, expires_at });
    }

    /// Removes the signal at `key` from all three indexes. `key` must be held.
    fn unlink(&mut self, key: RankKey) -> Signal {
        let Some(entry) = self.by_rank.remove(&key) else {
            unreachable!("unlink is only called with a key read from an index");
        };
        self.by_expiry.remove(&(entry.expires_at, key.seq));
        if let Some(kinds) = self.by_source.get_mut(&entry.signal.source) {
            kinds.remove(&entry.signal.kind);
            if kinds.is_empty() {
                self.by_source.remove(&entry.signal.source);
            }
        }
        entry.signal
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{CorrelationId, Domain, ProtoError};

    use super::*;

    fn signal(kind: &str, domain: Domain, permille: u16, source: u32, ttl: u32) -> Signal {
        Signal {
            kind: SignalKind::new(kind).unwrap(),
            domain,
            strength: Strength::from_permille(permille).unwrap(),
            source: AgentId(source),
            ttl_ticks: ttl,
            correlation: None,
        }
    }

    fn kinds(signals: &[Signal]) -> Vec<&str> {
        signals.iter().map(|s| s.kind.as_str()).collect()
    }

    fn queue() -> SignalQueue {
        SignalQueue::new(DomainRanking::default())
    }

    #[test]
    fn ranks_by_domain_then_strength_then_age() {
        let mut q = queue();
        let now = Tick(0);
        for s in [
            signal("perf_weak", Domain::Performance, 100, 1, 10),
            signal("background", Domain::Background, 1000, 1, 10),
            signal("perf_strong_old", Domain::Performance, 900, 1, 10),
            signal("safety_weak", Domain::Safety, 1, 1, 10),
            signal("perf_strong_new", Domain::Performance, 900, 2, 10),
            signal("thermal", Domain::Thermal, 500, 1, 10),
        ] {
            assert_eq!(q.push(s, now), Ok(PushOutcome::Inserted));
        }
        let expected = [
            "safety_weak",
            "thermal",
            "perf_strong_old",
            "perf_strong_new",
            "perf_weak",
            "background",
        ];
        assert_eq!(kinds(&q.ranked(now)), expected);
        let popped: Vec<Signal> = std::iter::from_fn(|| q.pop(now)).collect();
        assert_eq!(kinds(&popped), expected);
        assert!(q.is_empty());
    }

    #[test]
    fn custom_ranking_reorders_domains() {
        let ranking = DomainRanking::new(&[
            Domain::Background,
            Domain::Safety,
            Domain::Thermal,
            Domain::Power,
            Domain::Performance,
            Domain::Efficiency,
        ])
        .unwrap();
        let mut q = SignalQueue::new(ranking);
        q.push(signal("safety", Domain::Safety, 1000, 1, 5), Tick(0))
            .unwrap();
        q.push(
            signal("efficiency", Domain::Efficiency, 1000, 1, 5),
            Tick(0),
        )
        .unwrap();
        q.push(signal("background", Domain::Background, 0, 1, 5), Tick(0))
            .unwrap();
        assert_eq!(
            kinds(&q.drain_ranked(Tick(0))),
            ["background", "safety", "efficiency"]
        );
        assert_eq!(q.ranking(), &ranking);
    }

    #[test]
    fn signal_is_live_for_exactly_its_ttl() {
        let mut q = queue();
        q.push(signal("hot", Domain::Thermal, 500, 1, 3), Tick(5))
            .unwrap();
        // Live at ticks 5, 6 and 7.
        assert_eq!(kinds(&q.ranked(Tick(7))), ["hot"]);
        assert_eq!(q.peek(Tick(7)).map(|s| s.kind.as_str()), Some("hot"));
        assert!(q.ranked(Tick(8)).is_empty());
        assert_eq!(q.pop(Tick(8)), None);
        assert!(q.is_empty());
    }

    #[test]
    fn expired_signals_are_never_popped_even_when_higher_ranked() {
        let mut q = queue();
        q.push(signal("critical", Domain::Safety, 1000, 1, 1), Tick(0))
            .unwrap();
        q.push(signal("idle", Domain::Background, 0, 1, 10), Tick(0))
            .unwrap();
        assert_eq!(q.pop(Tick(1)).unwrap().kind.as_str(), "idle");
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn expire_returns_expired_signals_earliest_deadline_first() {
        let mut q = queue();
        q.push(signal("c", Domain::Safety, 0, 1, 3), Tick(0))
            .unwrap();
        q.push(signal("a", Domain::Background, 0, 1, 1), Tick(0))
            .unwrap();
        q.push(signal("b", Domain::Power, 0, 1, 1), Tick(0))
            .unwrap();
        q.push(signal("keep", Domain::Power, 0, 1, 4), Tick(0))
            .unwrap();
        assert!(q.expire(Tick(0)).is_empty());
        assert_eq!(kinds(&q.expire(Tick(3))), ["a", "b", "c"]);
        assert_eq!(q.len(), 1);
        assert_eq!(kinds(&q.expire(Tick(4))), ["keep"]);
        assert!(q.is_empty());
    }

    #[test]
    fn time_never_goes_backwards_for_reads() {
        let mut q = queue();
        q.push(signal("short", Domain::Power, 0, 1, 2), Tick(0))
            .unwrap();
        q.push(signal("long", Domain::Power, 0, 2, 20), Tick(0))
            .unwrap();
        assert_eq!(q.expire(Tick(10)).len(), 1);
        // An earlier tick is read as tick 10: "short" stays gone.
        assert_eq!(kinds(&q.ranked(Tick(1))), ["long"]);
        assert_eq!(q.pop(Tick(1)).unwrap().kind.as_str(), "long");
        assert_eq!(q.pop(Tick(1)), None);
    }

    #[test]
    fn repeated_kind_and_source_replaces_and_refreshes() {
        let mut q = queue();
        let first = signal("hot", Domain::Thermal, 300, 1, 2);
        q.push(first.clone(), Tick(0)).unwrap();
        let mut refreshed = signal("hot", Domain::Safety, 900, 1, 2);
        refreshed.correlation = Some(CorrelationId::from_parts(1, 2));
        assert_eq!(
            q.push(refreshed.clone(), Tick(1)),
            Ok(PushOutcome::Replaced { previous: first })
        );
        assert_eq!(q.len(), 1);
        // ttl counted from the refresh: live at 1 and 2, gone at 3.
        assert_eq!(q.ranked(Tick(2)), vec![refreshed]);
        assert!(q.ranked(Tick(3)).is_empty());
        assert_eq!(q.pop(Tick(3)), None);
    }

    #[test]
    fn replacement_keeps_its_age() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 10), Tick(0))
            .unwrap();
        q.push(signal("b", Domain::Power, 500, 2, 10), Tick(0))
            .unwrap();
        // "a" is refreshed after "b" was raised, but stays older than "b".
        q.push(signal("a", Domain::Power, 500, 1, 10), Tick(1))
            .unwrap();
        assert_eq!(kinds(&q.ranked(Tick(1))), ["a", "b"]);
    }

    #[test]
    fn a_push_over_an_expired_duplicate_is_a_new_signal() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 1), Tick(0))
            .unwrap();
        q.push(signal("b", Domain::Power, 500, 2, 10), Tick(0))
            .unwrap();
        assert_eq!(
            q.push(signal("a", Domain::Power, 500, 1, 10), Tick(1)),
            Ok(PushOutcome::Inserted)
        );
        // The old "a" expired, so the new one is younger than "b".
        assert_eq!(kinds(&q.ranked(Tick(1))), ["b", "a"]);
    }

    #[test]
    fn only_the_same_kind_from_the_same_source_is_a_duplicate() {
        let mut q = queue();
        let now = Tick(0);
        q.push(signal("hot", Domain::Thermal, 500, 1, 5), now)
            .unwrap();
        assert_eq!(
            q.push(signal("hot", Domain::Thermal, 500, 2, 5), now),
            Ok(PushOutcome::Inserted)
        );
        assert_eq!(
            q.push(signal("cold", Domain::Thermal, 500, 1, 5), now),
            Ok(PushOutcome::Inserted)
        );
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn remove_from_drops_only_that_agents_signals() {
        let mut q = queue();
        let now = Tick(0);
        q.push(signal("a_low", Domain::Background, 0, 7, 5), now)
            .unwrap();
        q.push(signal("other", Domain::Power, 500, 1, 5), now)
            .unwrap();
        q.push(signal("a_high", Domain::Safety, 0, 7, 5), now)
            .unwrap();
        assert_eq!(kinds(&q.remove_from(AgentId(7))), ["a_high", "a_low"]);
        assert!(q.remove_from(AgentId(7)).is_empty());
        assert!(q.remove_from(AgentId(99)).is_empty());
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(now).unwrap().kind.as_str(), "other");
        // The removed signals no longer de-duplicate a new one.
        assert_eq!(
            q.push(signal("a_high", Domain::Safety, 0, 7, 5), now),
            Ok(PushOutcome::Inserted)
        );
        // ... nor expire later.
        q.remove_from(AgentId(7));
        assert!(q.expire(Tick(100)).is_empty());
    }

    #[test]
    fn ranked_leaves_the_queue_alone_and_drain_empties_it() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 5), Tick(0))
            .unwrap();
        q.push(signal("gone", Domain::Safety, 500, 1, 1), Tick(0))
            .unwrap();
        q.push(signal("b", Domain::Efficiency, 500, 1, 5), Tick(0))
            .unwrap();
        assert_eq!(kinds(&q.ranked(Tick(1))), ["a", "b"]);
        assert_eq!(q.len(), 3);
        assert_eq!(kinds(&q.drain_ranked(Tick(1))), ["a", "b"]);
        assert!(q.is_empty());
        assert_eq!(q.pop(Tick(1)), None);
        assert_eq!(
            q.push(signal("a", Domain::Power, 500, 1, 5), Tick(1)),
            Ok(PushOutcome::Inserted)
        );
    }

    #[test]
    fn zero_ttl_is_refused_and_changes_nothing() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 5), Tick(0))
            .unwrap();
        let before = q.ranked(Tick(0));
        assert_eq!(
            q.push(signal("a", Domain::Safety, 900, 1, 0), Tick(0)),
            Err(SignalError::InvalidSignal(ProtoError::ZeroTtl))
        );
        assert_eq!(q.ranked(Tick(0)), before);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_stale_tick_is_refused_and_changes_nothing() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 5), Tick(4))
            .unwrap();
        assert_eq!(
            q.push(signal("b", Domain::Power, 500, 1, 5), Tick(3)),
            Err(SignalError::StaleTick {
                now: Tick(3),
                latest: Tick(4)
            })
        );
        assert_eq!(kinds(&q.ranked(Tick(4))), ["a"]);
        // The same tick again is fine.
        assert!(
            q.push(signal("b", Domain::Power, 500, 1, 5), Tick(4))
                .is_ok()
        );
    }

    #[test]
    fn exhausted_sequence_refuses_new_signals_but_allows_refreshes() {
        let mut q = queue();
        q.push(signal("a", Domain::Power, 500, 1, 5), Tick(0))
            .unwrap();
        q.next_seq = u64::MAX;
        assert_eq!(
            q.push(signal("b", Domain::Power, 500, 1, 5), Tick(0)),
            Err(SignalError::SequenceExhausted)
        );
        assert_eq!(q.len(), 1);
        assert!(matches!(
            q.push(signal("a", Domain::Power, 900, 1, 5), Tick(0)),
            Ok(PushOutcome::Replaced { .. })
        ));
    }

    #[test]
    fn ttl_near_the_end_of_time_saturates_without_panicking() {
        let mut q = queue();
        let late = Tick(u64::MAX - 1);
        q.push(signal("a", Domain::Power, 500, 1, u32::MAX), late)
            .unwrap();
        assert_eq!(q.ranked(late).len(), 1);
        assert_eq!(q.pop(Tick(u64::MAX)), None);
    }
}
