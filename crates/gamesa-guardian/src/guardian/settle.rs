//! Settlement: the guardian takes in what the exchange reported, in order. It escrows
//! accepted bids, checks and settles fills, refunds cancelled bids, and takes ended
//! power leases out of the proposed state.

use gamesa_market::MarketEvent;
use gamesa_proto::{AgentId, Fill, LeaseId, OrderId, Resource, Side, Tick};

use super::Guardian;
use crate::Verdict;

/// What settling a batch of market events decided, and what the exchange must undo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    /// Every fill with the guardian's verdict, in the exchange's order.
    pub fills: Vec<(Fill, Verdict)>,
    /// Leases behind denied fills: the exchange must revoke them.
    pub revoke: Vec<LeaseId>,
    /// Accepted bids whose escrow failed: the exchange must cancel them.
    pub cancel: Vec<(AgentId, OrderId)>,
}

impl Settlement {
    /// Whether the exchange has anything to undo.
    pub fn needs_followup(&self) -> bool {
        !self.revoke.is_empty() || !self.cancel.is_empty()
    }
}

impl Guardian {
    /// Settles `events` in the order the exchange reported them. A denied fill's lease
    /// is listed for revocation; revocations and cancels of bids only release, so
    /// settling the exchange's follow-up events never asks for more.
    pub fn settle(&mut self, tick: Tick, events: &[MarketEvent]) -> Settlement {
        let mut settlement = Settlement::default();
        for event in events {
            match event {
                MarketEvent::Accepted { order, request, .. } if request.side == Side::Bid => {
                    let escrowed =
                        self.ledger
                            .escrow(*order, request.owner, request.price, request.quantity);
                    if escrowed.is_err() {
                        settlement.cancel.push((request.owner, *order));
                    }
                }
                MarketEvent::Filled { fill, lease, .. } => {
                    let verdict = self.check_fill(tick, fill);
                    if matches!(verdict, Verdict::Deny { .. })
                        && let Ok(grant) = lease
                    {
                        settlement.revoke.push(grant.lease.id);
                    }
                    settlement.fills.push((*fill, verdict));
                }
                MarketEvent::Cancelled(cancellation) if cancellation.side == Side::Bid => {
                    // A bid whose escrow failed has nothing to refund.
                    let _ = self
                        .ledger
                        .refund(cancellation.order, cancellation.remaining);
                }
                MarketEvent::LeaseExpired { lease } | MarketEvent::LeaseRevoked { lease, .. }
                    if lease.resource == Resource::PowerBudgetMw =>
                {
                    self.release_power(lease.holder, lease.quantity.0);
                }
                MarketEvent::LeaseResized {
                    lease, previous, ..
                } if lease.resource == Resource::PowerBudgetMw => {
                    self.release_power(lease.holder, previous.0.saturating_sub(lease.quantity.0));
                }
                _ => {}
            }
        }
        settlement
    }
}
