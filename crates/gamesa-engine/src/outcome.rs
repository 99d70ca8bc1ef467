//! What became of each order and cancel a participant submitted in a tick, by
//! `(participant, sequence)`: what ingress answers a client with, read off the tick's
//! admission and market events rather than rebuilt by each reader.

use std::collections::BTreeMap;

use gamesa_guardian::Reason;
use gamesa_market::{CancelReason, Command, MarketError, MarketEvent};
use gamesa_proto::{AgentId, Intent, OrderId, Quantity};

use crate::TickOutput;

/// The fate of one submission within its tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The guardian refused it at admission (effects, balance).
    Denied(Reason),
    /// The exchange refused it; nothing changed.
    Rejected(MarketError),
    /// An order the exchange accepted and numbered, with what it traded this tick and
    /// what left the book unfilled this tick (an IOC or self-trade remainder).
    Placed {
        order: OrderId,
        quantity: Quantity,
        filled: Quantity,
        cancelled: Quantity,
    },
    /// A cancel that took `remaining` out of the book.
    Cancelled { order: OrderId, remaining: Quantity },
    /// A cancel of an order that was no longer resting.
    NotResting { order: OrderId },
    /// An order the exchange reported nothing for (the tick itself was refused).
    Unreported,
}

impl Outcome {
    /// What is left resting of a placed order after its tick.
    pub fn resting(&self) -> Option<Quantity> {
        match self {
            Outcome::Placed {
                quantity,
                filled,
                cancelled,
                ..
            } => Some(Quantity(
                quantity
                    .0
                    .saturating_sub(filled.0)
                    .saturating_sub(cancelled.0),
            )),
            _ => None,
        }
    }
}

impl TickOutput {
    /// What became of every order and cancel that `of` participants submitted this
    /// tick, by `(participant, sequence)`.
    pub fn outcomes(&self, of: impl Fn(AgentId) -> bool) -> BTreeMap<(AgentId, u64), Outcome> {
        let mut outcomes = BTreeMap::new();
        for (stamped, reason) in &self.denied_intents {
            if of(stamped.agent) && matches!(stamped.intent, Intent::Place(_) | Intent::Cancel(_)) {
                outcomes.insert(
                    (stamped.agent, stamped.sequence),
                    Outcome::Denied(reason.clone()),
                );
            }
        }
        // What each submission was, until the events say what became of it. Cancels of
        // one order by one owner are matched to its cancellation in sequence order.
        let mut cancels: BTreeMap<(AgentId, OrderId), Vec<u64>> = BTreeMap::new();
        for submission in &self.submissions {
            let agent = submission.command.agent();
            if !of(agent) {
                continue;
            }
            let key = (agent, submission.sequence);
            match submission.command {
                Command::Place(_) => outcomes.insert(key, Outcome::Unreported),
                Command::Cancel { order, .. } => {
                    cancels
                        .entry((agent, order))
                        .or_default()
                        .push(submission.sequence);
                    outcomes.insert(key, Outcome::NotResting { order })
                }
            };
        }
        let mut placed: BTreeMap<OrderId, (AgentId, u64)> = BTreeMap::new();
        for event in &self.market_events {
            match event {
                MarketEvent::Accepted {
                    order,
                    sequence,
                    request,
                } if of(request.owner) => {
                    let key = (request.owner, *sequence);
                    if matches!(outcomes.get(&key), Some(Outcome::Unreported)) {
                        placed.insert(*order, key);
                        outcomes.insert(
                            key,
                            Outcome::Placed {
                                order: *order,
                                quantity: request.quantity,
                                filled: Quantity(0),
                                cancelled: Quantity(0),
                            },
                        );
                    }
                }
                MarketEvent::Rejected {
                    agent,
                    sequence,
                    error,
                } if of(*agent) => {
                    outcomes.insert((*agent, *sequence), Outcome::Rejected(error.clone()));
                }
                MarketEvent::Filled { fill, .. } => {
                    for order in [fill.buy_order, fill.sell_order] {
                        if let Some(Outcome::Placed { filled, .. }) =
                            placed.get(&order).and_then(|key| outcomes.get_mut(key))
                        {
                            filled.0 += fill.quantity.0;
                        }
                    }
                }
                MarketEvent::Cancelled(cancellation) => {
                    if let Some(Outcome::Placed { cancelled, .. }) = placed
                        .get(&cancellation.order)
                        .and_then(|key| outcomes.get_mut(key))
                    {
                        cancelled.0 += cancellation.remaining.0;
                    }
                    if cancellation.reason == CancelReason::User
                        && let Some(waiting) =
                            cancels.get_mut(&(cancellation.owner, cancellation.order))
                        && !waiting.is_empty()
                    {
                        let sequence = waiting.remove(0);
                        outcomes.insert(
                            (cancellation.owner, sequence),
                            Outcome::Cancelled {
                                order: cancellation.order,
                                remaining: cancellation.remaining,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        outcomes
    }
}
