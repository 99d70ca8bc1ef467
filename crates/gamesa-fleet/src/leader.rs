//! The leader's side: the pool beyond the safe shares, the leases it issued that may
//! still be valid, and each epoch's clearing of the nodes' orders into grants.

use std::collections::BTreeMap;

use crate::{FleetError, Grant, Order, Split, Term};

/// The cluster's budget and the timing of its leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderSettings {
    pub budget_mw: u64,
    /// How long a grant lasts.
    pub lease_ms: u64,
    /// What clocks may drift apart over a lease, and what a message may be late by:
    /// nodes end leases this much early, and a leader stops granting this much before
    /// its mandate ends.
    pub margin_ms: u64,
}

/// The node's grants that may still be valid, as the leader counts them: until issue
/// time plus the lease, on the leader's clock.
#[derive(Debug, Clone, Default)]
struct Issued {
    grants: Vec<(u64, u64)>,
}

impl Issued {
    /// The most the node can hold at `now_ms`: the largest grant it may still hold.
    fn committed(&self, now_ms: u64) -> u64 {
        self.grants
            .iter()
            .filter(|(_, until)| *until > now_ms)
            .map(|(mw, _)| *mw)
            .max()
            .unwrap_or(0)
    }
}

/// An elected leader for one term.
#[derive(Debug, Clone)]
pub struct Leader {
    settings: LeaderSettings,
    term: Term,
    split: Split,
    safe: BTreeMap<String, u64>,
    took_office_ms: u64,
    mandate_until_ms: u64,
    issued: BTreeMap<String, Issued>,
}

impl Leader {
    /// Takes office for `term` at `now_ms`, holding the mandate (the key-value lease)
    /// until `mandate_until_ms`, both on this leader's clock. `safe` is each node's safe
    /// share; what they leave of the budget is the pool.
    pub fn take_office(
        settings: LeaderSettings,
        term: Term,
        split: Split,
        safe: BTreeMap<String, u64>,
        now_ms: u64,
        mandate_until_ms: u64,
    ) -> Result<Leader, FleetError> {
        if settings.lease_ms <= settings.margin_ms.saturating_mul(2) {
            return Err(FleetError::LeaseTooShort {
                lease_ms: settings.lease_ms,
                margin_ms: settings.margin_ms,
            });
        }
        let safe_mw = safe.values().fold(0u64, |sum, &mw| sum.saturating_add(mw));
        if safe_mw > settings.budget_mw {
            return Err(FleetError::SafeSharesOverBudget {
                safe_mw,
                budget_mw: settings.budget_mw,
            });
        }
        Ok(Leader {
            settings,
            term,
            split,
            safe,
            took_office_ms: now_ms,
            mandate_until_ms,
            issued: BTreeMap::new(),
        })
    }

    pub fn term(&self) -> Term {
        self.term
    }

    /// The mandate was renewed until `mandate_until_ms`.
    pub fn renew(&mut self, mandate_until_ms: u64) {
        self.mandate_until_ms = self.mandate_until_ms.max(mandate_until_ms);
    }

    /// Whether a grant issued at `now_ms` is safe: the leases of any earlier term have
    /// run out, and this one will have before a later term can grant.
    pub fn may_grant(&self, now_ms: u64) -> bool {
        let settled = self.took_office_ms + self.settings.lease_ms + self.settings.margin_ms;
        now_ms >= settled && now_ms.saturating_add(self.settings.margin_ms) < self.mandate_until_ms
    }

    /// The budget beyond every safe share.
    pub fn pool_mw(&self) -> u64 {
        let safe_mw = self
            .safe
            .values()
            .fold(0u64, |sum, &mw| sum.saturating_add(mw));
        self.settings.budget_mw - safe_mw
    }

    /// What the issued leases that may still be valid hold of the pool at `now_ms`.
    pub fn committed_mw(&self, now_ms: u64) -> u64 {
        self.issued
            .values()
            .map(|issued| issued.committed(now_ms))
            .sum()
    }

    /// One epoch: divides the pool among `orders` by the split and answers each order
    /// of a known node with a grant (possibly of 0 mW, which ends its lease early). A
    /// node whose new share is larger than what it may still hold gets the increase only
    /// as far as the pool not committed to anyone allows; the rest follows as older
    /// leases run out. Nothing is granted outside [`Leader::may_grant`].
    pub fn clear(&mut self, now_ms: u64, orders: &[Order]) -> Vec<Grant> {
        if !self.may_grant(now_ms) {
            return Vec::new();
        }
        for issued in self.issued.values_mut() {
            issued.grants.retain(|(_, until)| *until > now_ms);
        }
        // One order per known node: its last.
        let mut latest: BTreeMap<&str, &Order> = BTreeMap::new();
        for order in orders {
            if self.safe.contains_key(&order.node) {
                latest.insert(order.node.as_str(), order);
            }
        }
        let orders: Vec<Order> = latest.into_values().cloned().collect();
        let pool = self.pool_mw();
        let desired = self.split.divide(pool, &orders, self.safe.len());
        let committed: Vec<u64> = orders
            .iter()
            .map(|order| {
                self.issued
                    .get(&order.node)
                    .map_or(0, |issued| issued.committed(now_ms))
            })
            .collect();
        let slack = pool.saturating_sub(self.committed_mw(now_ms));
        let increases: u128 = desired
            .iter()
            .zip(&committed)
            .map(|(want, held)| u128::from(want.saturating_sub(*held)))
            .sum();
        let until = now_ms + self.settings.lease_ms;
        orders
            .iter()
            .zip(desired.iter().zip(&committed))
            .map(|(order, (&want, &held))| {
                let mw = if want <= held || increases <= u128::from(slack) {
                    want
                } else {
                    let increase = u128::from(want - held) * u128::from(slack) / increases;
                    held + increase as u64
                };
                self.issued
                    .entry(order.node.clone())
                    .or_default()
                    .grants
                    .push((mw, until));
                Grant {
                    node: order.node.clone(),
                    term: self.term,
                    request: order.request,
                    mw,
                    ttl_ms: self.settings.lease_ms,
                    trace: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BidStep;

    const SETTINGS: LeaderSettings = LeaderSettings {
        budget_mw: 1_000,
        lease_ms: 3_000,
        margin_ms: 200,
    };

    fn safe() -> BTreeMap<String, u64> {
        [("a".to_owned(), 100), ("b".to_owned(), 100)].into()
    }

    fn order(node: &str, request: u64, mw: u64) -> Order {
        Order {
            node: node.into(),
            request,
            draw_mw: 0,
            weight: 1,
            bids: vec![BidStep { mw, price: 1 }],
        }
    }

    #[test]
    fn a_new_leader_waits_out_a_lease_and_stops_a_margin_before_its_mandate() {
        let leader =
            Leader::take_office(SETTINGS, Term(2), Split::Market, safe(), 1_000, 10_000).unwrap();
        assert!(!leader.may_grant(4_199));
        assert!(leader.may_grant(4_200));
        assert!(leader.may_grant(9_799));
        assert!(!leader.may_grant(9_800));
    }

    #[test]
    fn a_raise_waits_for_the_pool_that_older_leases_still_hold() {
        let mut leader =
            Leader::take_office(SETTINGS, Term(1), Split::Proportional, safe(), 0, 60_000).unwrap();
        assert_eq!(leader.pool_mw(), 800);
        let grants = leader.clear(3_200, &[order("a", 1, 700), order("b", 1, 100)]);
        assert_eq!(
            grants.iter().map(|g| g.mw).collect::<Vec<_>>(),
            vec![700, 100]
        );
        // b now wants everything: a may still hold 700 until 6 200, so b gets only what
        // is left, and a's share drops at once.
        let grants = leader.clear(4_200, &[order("a", 2, 0), order("b", 2, 800)]);
        assert_eq!(
            grants.iter().map(|g| g.mw).collect::<Vec<_>>(),
            vec![0, 100]
        );
        assert_eq!(leader.committed_mw(4_200), 800);
        let grants = leader.clear(6_200, &[order("a", 3, 0), order("b", 3, 800)]);
        assert_eq!(
            grants.iter().map(|g| g.mw).collect::<Vec<_>>(),
            vec![0, 800]
        );
    }

    #[test]
    fn unknown_nodes_get_nothing_and_a_bad_setup_is_refused() {
        let mut leader =
            Leader::take_office(SETTINGS, Term(1), Split::Static, safe(), 0, 60_000).unwrap();
        let grants = leader.clear(3_200, &[order("x", 1, 500), order("a", 1, 10)]);
        assert_eq!(grants.len(), 1);
        // Static: a's part of two, whether or not b orders.
        assert_eq!((grants[0].node.as_str(), grants[0].mw), ("a", 400));
        let too_much: BTreeMap<String, u64> = [("a".to_owned(), 1_001)].into();
        assert!(matches!(
            Leader::take_office(SETTINGS, Term(1), Split::Static, too_much, 0, 1),
            Err(FleetError::SafeSharesOverBudget { .. })
        ));
        let short = LeaderSettings {
            lease_ms: 400,
            ..SETTINGS
        };
        assert!(matches!(
            Leader::take_office(short, Term(1), Split::Static, safe(), 0, 1),
            Err(FleetError::LeaseTooShort { .. })
        ));
    }
}
