//! The exchange actor: owns the market (books, pools, leases) and runs its phase.

use std::collections::BTreeMap;

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_agent::MarketView;
use gamesa_market::{BookDepth, Exchange, MarketError, MarketEvent, Submission};
use gamesa_proto::{
    AgentId, Lease, LeaseId, OrderId, OrderRequest, Quantity, Resource, Tick, TimeInForce,
};

#[derive(Debug)]
pub struct ExchangeActor {
    exchange: Exchange,
}

impl ExchangeActor {
    pub fn new(exchange: Exchange) -> ExchangeActor {
        ExchangeActor { exchange }
    }
}

impl Actor for ExchangeActor {
    type Context = Context<Self>;
}

/// What agents need to see of the market before they decide.
#[derive(Debug, Clone, Default)]
pub struct MarketSnapshot {
    pub view: MarketView,
    pub open_orders: BTreeMap<AgentId, Vec<(OrderId, OrderRequest)>>,
    /// Live leases each agent holds or granted.
    pub leases: BTreeMap<AgentId, Vec<Lease>>,
}

#[derive(Debug, Message)]
#[rtype(result = "MarketSnapshot")]
pub struct Snapshot {
    pub agents: Vec<AgentId>,
}

impl Handler<Snapshot> for ExchangeActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, message: Snapshot, _: &mut Context<Self>) -> Self::Result {
        let exchange = &self.exchange;
        let mut snapshot = MarketSnapshot::default();
        for resource in Resource::ALL {
            let index = resource.index();
            snapshot.view.last_price[index] = exchange.last_trade_price(resource);
            snapshot.view.best_bid[index] = exchange.best_bid(resource);
            snapshot.view.best_ask[index] = exchange.best_ask(resource);
        }
        for agent in message.agents {
            let mut orders = Vec::new();
            for resource in Resource::ALL {
                let book = exchange.book(resource);
                for id in book.orders_of(agent, None) {
                    if let Some(order) = book.order(id) {
                        orders.push((
                            id,
                            OrderRequest {
                                owner: order.owner,
                                resource,
                                side: order.side,
                                price: order.price,
                                quantity: order.remaining,
                                time_in_force: TimeInForce::Limit {
                                    expires_at: order.expires_at,
                                },
                            },
                        ));
                    }
                }
            }
            snapshot.open_orders.insert(agent, orders);
            snapshot.leases.insert(
                agent,
                exchange
                    .leases()
                    .iter()
                    .filter(|active| active.lease.holder == agent || active.lease.seller == agent)
                    .map(|active| active.lease.clone())
                    .collect(),
            );
        }
        MessageResult(snapshot)
    }
}

/// The match phase: advance the clock (expiring orders and leases), release the
/// leases in their last tick, apply capacity changes, then the tick's submissions in
/// canonical order.
#[derive(Debug, Message)]
#[rtype(result = "MatchOutcome")]
pub struct RunMatch {
    pub tick: Tick,
    pub capacities: Vec<(AgentId, Resource, Quantity)>,
    pub submissions: Vec<Submission>,
}

#[derive(Debug, Clone, Default)]
pub struct MatchOutcome {
    pub events: Vec<MarketEvent>,
    /// Capacity changes the market refused.
    pub refused_capacities: Vec<(AgentId, Resource, MarketError)>,
    /// Set when the tick itself was refused (the clock went backwards).
    pub error: Option<MarketError>,
}

impl Handler<RunMatch> for ExchangeActor {
    type Result = MessageResult<RunMatch>;

    fn handle(&mut self, message: RunMatch, _: &mut Context<Self>) -> Self::Result {
        let mut outcome = MatchOutcome::default();
        if let Err(error) = self.exchange.advance_to(message.tick, &mut outcome.events) {
            outcome.error = Some(error);
            return MessageResult(outcome);
        }
        self.exchange.release_leases_ending_now(&mut outcome.events);
        for (seller, resource, quantity) in message.capacities {
            if let Err(error) =
                self.exchange
                    .set_capacity(seller, resource, quantity, &mut outcome.events)
            {
                outcome.refused_capacities.push((seller, resource, error));
            }
        }
        match self
            .exchange
            .process_tick(message.tick, message.submissions)
        {
            Ok(events) => outcome.events.extend(events),
            Err(error) => outcome.error = Some(error),
        }
        MessageResult(outcome)
    }
}

/// End leases early: those behind denied fills, or those a safety action revokes.
#[derive(Debug, Message)]
#[rtype(result = "Vec<MarketEvent>")]
pub enum Revoke {
    Leases(Vec<LeaseId>),
    /// Every lease of `resource` held by one of `holders`.
    Holdings {
        holders: Vec<AgentId>,
        resource: Resource,
    },
}

impl Handler<Revoke> for ExchangeActor {
    type Result = MessageResult<Revoke>;

    fn handle(&mut self, message: Revoke, _: &mut Context<Self>) -> Self::Result {
        let ids = match message {
            Revoke::Leases(ids) => ids,
            Revoke::Holdings { holders, resource } => self
                .exchange
                .leases()
                .iter()
                .filter(|active| {
                    active.lease.resource == resource && holders.contains(&active.lease.holder)
                })
                .map(|active| active.lease.id)
                .collect(),
        };
        let mut events = Vec::new();
        for id in ids {
            // A lease that already ended has nothing left to revoke.
            let _ = self.exchange.revoke_lease(id, &mut events);
        }
        MessageResult(events)
    }
}

/// Cancel every order of these agents, and revoke the leases they hold when asked
/// (isolation revokes; shutdown only cancels).
#[derive(Debug, Message)]
#[rtype(result = "Vec<MarketEvent>")]
pub struct Withdraw {
    pub agents: Vec<AgentId>,
    pub revoke_leases: bool,
}

impl Handler<Withdraw> for ExchangeActor {
    type Result = MessageResult<Withdraw>;

    fn handle(&mut self, message: Withdraw, _: &mut Context<Self>) -> Self::Result {
        let mut events = Vec::new();
        for agent in message.agents {
            if message.revoke_leases {
                self.exchange.isolate(agent, &mut events);
            } else {
                self.exchange.cancel_all_for(agent, &mut events);
            }
        }
        MessageResult(events)
    }
}

/// The depth of one resource's book.
#[derive(Debug, Message)]
#[rtype(result = "BookDepth")]
pub struct Depth {
    pub resource: Resource,
    pub levels: usize,
}

impl Handler<Depth> for ExchangeActor {
    type Result = MessageResult<Depth>;

    fn handle(&mut self, message: Depth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.exchange.depth(message.resource, message.levels))
    }
}

/// Everything ingress queries read of the market after a tick: each book's depth and
/// last trade, and every live lease.
#[derive(Debug, Message)]
#[rtype(result = "MarketOverview")]
pub struct Overview {
    pub levels: usize,
}

#[derive(Debug, Clone, Default)]
pub struct MarketOverview {
    /// One entry per resource, in `Resource::ALL` order.
    pub books: Vec<(Resource, BookDepth, Option<gamesa_proto::Price>)>,
    pub leases: Vec<Lease>,
}

impl Handler<Overview> for ExchangeActor {
    type Result = MessageResult<Overview>;

    fn handle(&mut self, message: Overview, _: &mut Context<Self>) -> Self::Result {
        let exchange = &self.exchange;
        MessageResult(MarketOverview {
            books: Resource::ALL
                .into_iter()
                .map(|resource| {
                    (
                        resource,
                        exchange.depth(resource, message.levels),
                        exchange.last_trade_price(resource),
                    )
                })
                .collect(),
            leases: exchange
                .leases()
                .iter()
                .map(|active| active.lease.clone())
                .collect(),
        })
    }
}
