//! A node's side of the cluster market: the orders it sent, the newest lease it holds,
//! and its cap, judged on its own monotonic clock.

use std::collections::BTreeMap;

use crate::{Grant, Term};

/// Orders older than this many leases get no grant any more: their grant, if one
/// comes, could not be valid long enough to be worth holding.
const ASK_KEPT_LEASES: u64 = 1;

/// Why a node refused a grant. Each is counted and logged; none changes the cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the grant is for node `{0}`")]
    NotMine(String),
    #[error("term {got} is below term {seen}, which this node already took a grant from")]
    StaleTerm { got: u64, seen: u64 },
    #[error("no open order {0}: never sent, already answered, or too old")]
    UnknownRequest(u64),
    #[error(
        "the lease would be over before it began (ttl {ttl_ms} ms, {age_ms} ms since the order, margin {margin_ms} ms)"
    )]
    AlreadyExpired {
        ttl_ms: u64,
        age_ms: u64,
        margin_ms: u64,
    },
}

/// A lease the node holds: until its own clock reads `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    mw: u64,
    until_ms: u64,
}

/// What one node knows of its share of the cluster budget.
#[derive(Debug, Clone)]
pub struct NodeLeases {
    name: String,
    safe_share_mw: u64,
    margin_ms: u64,
    lease_ms: u64,
    next_request: u64,
    /// Open orders: request → when the node sent it.
    asked: BTreeMap<u64, u64>,
    term: Term,
    /// The newest grant's lease: a newer grant replaces it (the leader counts the
    /// largest it issued that may still be valid, so holding one is always covered).
    held: Option<Held>,
}

impl NodeLeases {
    /// `safe_share_mw` is always the node's; leases last at most `lease_ms` and end
    /// `margin_ms` early on this node's clock.
    pub fn new(name: impl Into<String>, safe_share_mw: u64, lease_ms: u64, margin_ms: u64) -> Self {
        NodeLeases {
            name: name.into(),
            safe_share_mw,
            margin_ms,
            lease_ms,
            next_request: 1,
            asked: BTreeMap::new(),
            term: Term(0),
            held: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn safe_share_mw(&self) -> u64 {
        self.safe_share_mw
    }

    /// The highest term this node took a grant from.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Opens an order sent now: its request number, for the [`crate::Order`].
    pub fn ask(&mut self, now_ms: u64) -> u64 {
        let too_old = now_ms.saturating_sub(self.lease_ms.saturating_mul(ASK_KEPT_LEASES));
        self.asked.retain(|_, sent| *sent >= too_old);
        let request = self.next_request;
        self.next_request += 1;
        self.asked.insert(request, now_ms);
        request
    }

    /// Takes `grant` in at `now_ms`: its lease runs from when its order was sent to a
    /// margin before the grant's ttl, and replaces the one held.
    pub fn accept(&mut self, grant: &Grant, now_ms: u64) -> Result<(), Refused> {
        if grant.node != self.name {
            return Err(Refused::NotMine(grant.node.clone()));
        }
        if grant.term < self.term {
            return Err(Refused::StaleTerm {
                got: grant.term.0,
                seen: self.term.0,
            });
        }
        let Some(&sent_ms) = self.asked.get(&grant.request) else {
            return Err(Refused::UnknownRequest(grant.request));
        };
        let until_ms = (sent_ms + grant.ttl_ms.min(self.lease_ms)).saturating_sub(self.margin_ms);
        if until_ms <= now_ms {
            return Err(Refused::AlreadyExpired {
                ttl_ms: grant.ttl_ms,
                age_ms: now_ms.saturating_sub(sent_ms),
                margin_ms: self.margin_ms,
            });
        }
        self.asked.remove(&grant.request);
        self.term = grant.term;
        // An older order's grant that arrives late must not replace a newer one.
        let newer = self.held.is_none_or(|held| until_ms >= held.until_ms);
        if newer {
            self.held = Some(Held {
                mw: grant.mw,
                until_ms,
            });
        }
        Ok(())
    }

    /// Milliwatts of the pool held at `now_ms` (0 once the lease ran out).
    pub fn leased_mw(&self, now_ms: u64) -> u64 {
        self.held
            .filter(|held| held.until_ms > now_ms)
            .map_or(0, |held| held.mw)
    }

    /// The node's cap at `now_ms`: its safe share plus its lease, if still valid. A node
    /// that hears nothing falls back to its safe share when its lease runs out.
    pub fn cap_mw(&self, now_ms: u64) -> u64 {
        self.safe_share_mw.saturating_add(self.leased_mw(now_ms))
    }

    /// When the held lease runs out on this node's clock, if one is held.
    pub fn lease_until_ms(&self) -> Option<u64> {
        self.held.map(|held| held.until_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(request: u64, term: u64, mw: u64) -> Grant {
        Grant {
            node: "n1".into(),
            term: Term(term),
            request,
            mw,
            ttl_ms: 3_000,
            trace: None,
        }
    }

    #[test]
    fn a_lease_runs_from_the_order_to_a_margin_before_its_ttl() {
        let mut node = NodeLeases::new("n1", 100_000, 3_000, 200);
        let request = node.ask(10_000);
        node.accept(&grant(request, 1, 50_000), 10_400).unwrap();
        assert_eq!(node.cap_mw(10_400), 150_000);
        assert_eq!(node.cap_mw(12_799), 150_000);
        assert_eq!(node.cap_mw(12_800), 100_000, "from 10 000 + 3 000 - 200");
    }

    #[test]
    fn stale_terms_unknown_orders_and_answered_ones_are_refused() {
        let mut node = NodeLeases::new("n1", 0, 3_000, 200);
        let first = node.ask(0);
        let second = node.ask(100);
        node.accept(&grant(second, 5, 10), 200).unwrap();
        assert_eq!(
            node.accept(&grant(first, 4, 99), 250),
            Err(Refused::StaleTerm { got: 4, seen: 5 })
        );
        assert_eq!(
            node.accept(&grant(second, 5, 99), 250),
            Err(Refused::UnknownRequest(second)),
            "answered already"
        );
        assert_eq!(
            node.accept(&grant(77, 5, 99), 250),
            Err(Refused::UnknownRequest(77))
        );
        let other = Grant {
            node: "n2".into(),
            ..grant(first, 5, 99)
        };
        assert_eq!(node.accept(&other, 250), Err(Refused::NotMine("n2".into())));
        assert_eq!(node.leased_mw(250), 10);
    }

    #[test]
    fn a_late_grant_of_an_older_order_does_not_replace_a_newer_lease() {
        let mut node = NodeLeases::new("n1", 0, 3_000, 200);
        let older = node.ask(0);
        let newer = node.ask(1_000);
        node.accept(&grant(newer, 1, 20), 1_100).unwrap();
        node.accept(&grant(older, 1, 90), 1_200).unwrap();
        assert_eq!(node.leased_mw(1_200), 20);
        assert_eq!(node.lease_until_ms(), Some(3_800));
    }

    #[test]
    fn a_grant_too_late_to_be_valid_is_refused_and_a_long_ttl_is_cut_to_the_lease() {
        let mut node = NodeLeases::new("n1", 0, 3_000, 200);
        let request = node.ask(0);
        assert!(matches!(
            node.accept(&grant(request, 1, 5), 2_800),
            Err(Refused::AlreadyExpired { .. })
        ));
        let request = node.ask(5_000);
        let long = Grant {
            ttl_ms: 60_000,
            ..grant(request, 1, 5)
        };
        node.accept(&long, 5_001).unwrap();
        assert_eq!(node.lease_until_ms(), Some(7_800));
    }
}
