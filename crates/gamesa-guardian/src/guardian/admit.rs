//! Admission: the first look the guardian takes at a tick's intents, before the
//! exchange sees any of them. Effects for every intent, affordability for bids.

use std::collections::BTreeMap;

use gamesa_market::Submission;
use gamesa_proto::{
    Actuation, AgentId, Credits, Effect, EffectAction, Intent, OrderRequest, Quantity, Resource,
    Side, Signal, Tick,
};

use super::{Guardian, require};
use crate::{LedgerError, Reason};

/// One intent, stamped with who sent it and its place among that sender's intents.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StampedIntent {
    pub agent: AgentId,
    pub sequence: u64,
    pub intent: Intent,
}

/// What passed admission, sorted by the phase that takes it next, and what did not,
/// with why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// For the exchange's match, in canonical order.
    pub submissions: Vec<Submission>,
    /// Capacity changes for the exchange, before the submissions.
    pub capacities: Vec<(AgentId, Resource, Quantity)>,
    /// For the signal queue.
    pub signals: Vec<Signal>,
    /// Checked in full (effects, contracts, gate) by [`Guardian::check_actuation`] once
    /// the fills are settled.
    pub actuations: Vec<(AgentId, Actuation)>,
    pub denied: Vec<(StampedIntent, Reason)>,
}

impl Guardian {
    /// Admits a tick's intents, given in canonical order (sender, sequence): each needs
    /// its effect (`order:<resource>` for orders and capacity, `signal:<domain>` for
    /// signals), and an agent's bids of the tick together may not exceed its available
    /// balance. Nothing is escrowed here: escrow is taken when the exchange accepts the
    /// bid ([`Guardian::settle`]). Cancels pass as they are: the exchange only lets an
    /// owner cancel its own orders.
    pub fn admit(&mut self, tick: Tick, intents: Vec<StampedIntent>) -> Admission {
        let mut admission = Admission::default();
        // What each agent's bids of this tick will escrow.
        let mut committed: BTreeMap<AgentId, u64> = BTreeMap::new();
        for stamped in intents {
            let agent = stamped.agent;
            let admitted = match &stamped.intent {
                Intent::Place(order) => {
                    let request = OrderRequest {
                        owner: agent,
                        resource: order.resource,
                        side: order.side,
                        price: order.price,
                        quantity: order.quantity,
                        time_in_force: order.time_in_force,
                    };
                    let effect = Guardian::order_effect(&self.order_effects, order.resource);
                    require(&mut self.effects, tick, agent, effect)
                        .and_then(|()| self.affordable(&request, &mut committed))
                        .map(|()| {
                            admission
                                .submissions
                                .push(Submission::place(stamped.sequence, request))
                        })
                }
                Intent::Cancel(order) => {
                    admission
                        .submissions
                        .push(Submission::cancel(stamped.sequence, agent, *order));
                    Ok(())
                }
                Intent::SetCapacity { resource, quantity } => {
                    let effect = Guardian::order_effect(&self.order_effects, *resource);
                    require(&mut self.effects, tick, agent, effect)
                        .map(|()| admission.capacities.push((agent, *resource, *quantity)))
                }
                Intent::Raise(raised) => {
                    let effect = Effect {
                        action: EffectAction::Signal,
                        scope: raised.domain.as_str().to_owned(),
                    };
                    require(&mut self.effects, tick, agent, &effect).map(|()| {
                        admission.signals.push(Signal {
                            kind: raised.kind.clone(),
                            domain: raised.domain,
                            strength: raised.strength,
                            source: agent,
                            ttl_ticks: raised.ttl_ticks,
                            correlation: None,
                        })
                    })
                }
                Intent::Actuate(actuation) => {
                    admission.actuations.push((agent, actuation.clone()));
                    Ok(())
                }
            };
            if let Err(reason) = admitted {
                admission.denied.push((stamped, reason));
            }
        }
        admission
    }

    /// Whether a bid fits in what its owner has left after the tick's earlier bids.
    fn affordable(
        &self,
        request: &OrderRequest,
        committed: &mut BTreeMap<AgentId, u64>,
    ) -> Result<(), Reason> {
        if request.side != Side::Bid {
            return Ok(());
        }
        let agent = request.owner;
        let available = self.ledger.account(agent).unwrap_or_default().available;
        let already = committed.entry(agent).or_default();
        let needed = already.saturating_add(request.notional().0);
        if needed > available.0 {
            return Err(Reason::Ledger {
                error: LedgerError::InsufficientBalance {
                    agent,
                    needed: Credits(needed),
                    available,
                },
            });
        }
        *already = needed;
        Ok(())
    }
}
