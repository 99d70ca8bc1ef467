//! The exchange: one book per resource, order ids, validation, the canonical order of
//! a tick's commands, and the leases that fills create.
//!
//! # A tick
//! [`Exchange::process_tick`] first advances the clock (expiring orders, then
//! leases, whose `expires_at` is before `now`), then sorts the tick's submissions by
//! `(bids and cancels before asks, agent, sequence)` and applies them one by one with
//! continuous matching. The order in which submissions *arrived* within the tick never
//! changes the outcome. Taking a tick's bids before its asks means that supply offered
//! in a tick meets the tick's bids in price-time priority, like a call auction for the
//! buyers: with asks first, the bids of the lowest agent ids would take the supply
//! whatever the others bid.
//! Two submissions with the same agent and sequence are ordered by their content,
//! so even a duplicate sequence number cannot make the result depend on arrival.
//!
//! # Invariants
//! - order ids are assigned sequentially from 1, and only to accepted orders;
//! - a refused command changes nothing and emits only its `Rejected` event;
//! - for every pool, `leased + offered <= capacity`, where `offered` is the sum of
//!   the remaining quantities of the seller's resting asks on that resource;
//! - every book keeps its own invariants (see [`crate::book`]).

use gamesa_proto::{
    AgentId, Fill, Lease, LeaseId, OrderId, OrderRequest, Price, Quantity, Resource, Side, Tick,
    TimeInForce,
};

use crate::{
    BookDepth, CancelReason, Cancellation, LeaseGrant, Leases, MarketConfig, MarketError,
    MarketEvent, OrderBook, Pool, RevokeReason,
    book::{CancelledOrder, NewOrder},
};

/// What an agent (or client) asks the exchange to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Command {
    Place(OrderRequest),
    Cancel { agent: AgentId, order: OrderId },
}

impl Command {
    /// The agent the command comes from.
    pub fn agent(&self) -> AgentId {
        match self {
            Command::Place(request) => request.owner,
            Command::Cancel { agent, .. } => *agent,
        }
    }
}

/// A command with the submitter's sequence number: its position among the agent's
/// intents of the tick, which fixes the canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Submission {
    pub sequence: u64,
    pub command: Command,
}

/// `(asks after the rest, agent, sequence, then every field of the command)`.
type CanonicalKey = (u8, u32, u64, u8, u64, u64, u64, u64, u64, u64);

impl Submission {
    pub fn place(sequence: u64, request: OrderRequest) -> Submission {
        Submission {
            sequence,
            command: Command::Place(request),
        }
    }

    pub fn cancel(sequence: u64, agent: AgentId, order: OrderId) -> Submission {
        Submission {
            sequence,
            command: Command::Cancel { agent, order },
        }
    }

    /// A total order on submissions: cancels and bids before asks, then agent,
    /// sequence, then content. Equal keys mean equal submissions, so a sort by this key
    /// does not depend on arrival order. An agent's cancels still come before its asks
    /// (a seller that replaces its ask frees its capacity first).
    fn canonical_key(&self) -> CanonicalKey {
        let agent = self.command.agent().0;
        match self.command {
            Command::Place(request) => {
                let (kind, expires_at) = match request.time_in_force {
                    TimeInForce::ImmediateOrCancel => (0, 0),
                    TimeInForce::Limit { expires_at: None } => (1, 0),
                    TimeInForce::Limit {
                        expires_at: Some(tick),
                    } => (2, tick.0),
                };
                (
                    u8::from(request.side == Side::Ask),
                    agent,
                    self.sequence,
                    0,
                    request.resource.index() as u64,
                    request.side as u64,
                    request.price.0,
                    request.quantity.0,
                    kind,
                    expires_at,
                )
            }
            Command::Cancel { order, .. } => (0, agent, self.sequence, 1, order.0, 0, 0, 0, 0, 0),
        }
    }
}

/// The market: books, pools and leases.
#[derive(Debug)]
pub struct Exchange {
    config: MarketConfig,
    now: Tick,
    next_order_id: u64,
    books: [OrderBook; 7],
    leases: Leases,
    /// Reused buffers, so matching does not allocate once warm.
    fills: Vec<Fill>,
    removed: Vec<CancelledOrder>,
}

impl Default for Exchange {
    fn default() -> Exchange {
        Exchange::new(MarketConfig::default())
    }
}

impl Exchange {
    pub fn new(config: MarketConfig) -> Exchange {
        Exchange {
            config,
            now: Tick(0),
            next_order_id: 1,
            books: Resource::ALL.map(OrderBook::new),
            leases: Leases::default(),
            fills: Vec::new(),
            removed: Vec::new(),
        }
    }

    pub fn config(&self) -> &MarketConfig {
        &self.config
    }

    /// The tick the market is at.
    pub fn now(&self) -> Tick {
        self.now
    }

    pub fn book(&self, resource: Resource) -> &OrderBook {
        &self.books[resource.index()]
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub fn pool(&self, seller: AgentId, resource: Resource) -> Option<&Pool> {
        self.leases.pool(seller, resource)
    }

    pub fn best_bid(&self, resource: Resource) -> Option<Price> {
        self.book(resource).best_bid()
    }

    pub fn best_ask(&self, resource: Resource) -> Option<Price> {
        self.book(resource).best_ask()
    }

    pub fn last_trade_price(&self, resource: Resource) -> Option<Price> {
        self.book(resource).last_trade_price()
    }

    /// Up to `levels` aggregated levels per side, best first (for a `book` query).
    pub fn depth(&self, resource: Resource, levels: usize) -> BookDepth {
        self.book(resource).depth(levels)
    }

    /// Runs one tick: advances the clock to `now`, then applies `submissions` in
    /// canonical order. A refused submission becomes a `Rejected` event; the only
    /// error is a clock that went backwards, and then nothing changed.
    pub fn process_tick(
        &mut self,
        now: Tick,
        mut submissions: Vec<Submission>,
    ) -> Result<Vec<MarketEvent>, MarketError> {
        let mut events = Vec::new();
        self.advance_to(now, &mut events)?;
        // Equal keys mean equal submissions, so an unstable sort is still canonical
        // (and does not allocate).
        submissions.sort_unstable_by_key(Submission::canonical_key);
        for submission in submissions {
            self.apply(submission, &mut events);
        }
        Ok(events)
    }

    /// Applies one submission at the current tick; a refusal becomes a `Rejected`
    /// event.
    pub fn apply(&mut self, submission: Submission, events: &mut Vec<MarketEvent>) {
        let result = match submission.command {
            Command::Place(request) => self.place(submission.sequence, request, events).map(drop),
            Command::Cancel { agent, order } => self.cancel(agent, order, events),
        };
        if let Err(error) = result {
            events.push(MarketEvent::Rejected {
                agent: submission.command.agent(),
                sequence: submission.sequence,
                error,
            });
        }
    }

    /// Moves the clock to `now`: orders, then leases, whose `expires_at` is before
    /// `now` are removed, in `(resource, expires_at, id)` order.
    pub fn advance_to(
        &mut self,
        now: Tick,
        events: &mut Vec<MarketEvent>,
    ) -> Result<(), MarketError> {
        if now < self.now {
            return Err(MarketError::TickWentBackwards {
                now,
                current: self.now,
            });
        }
        self.now = now;
        for resource in Resource::ALL {
            let mut removed = std::mem::take(&mut self.removed);
            self.books[resource.index()].expire(now, &mut removed);
            for order in removed.drain(..) {
                self.book_left(resource, order, CancelReason::Expired, events);
            }
            self.removed = removed;
        }
        self.leases.expire(now, events);
        Ok(())
    }

    /// Releases the leases whose last tick is the current one, before this tick's
    /// orders match. A holder can then renew in its lease's last tick and the seller
    /// re-offer the capacity in the same tick, so a renewed lease never lapses.
    pub fn release_leases_ending_now(&mut self, events: &mut Vec<MarketEvent>) {
        self.leases.expire(self.now.next(), events);
    }

    /// Registers or changes `seller`'s capacity of `resource`.
    ///
    /// Growing always works. A positional pool (cores, CPU time, GPU memory) shrinks
    /// only while nothing is leased or offered ([`MarketError::PoolInUse`]). A
    /// fungible pool (priority, weighted) shrinks at once: the seller's asks on the
    /// resource are cancelled newest first until the offers fit, then leases are
    /// revoked (priority) or scaled down (weighted) until they fit.
    pub fn set_capacity(
        &mut self,
        seller: AgentId,
        resource: Resource,
        capacity: Quantity,
        events: &mut Vec<MarketEvent>,
    ) -> Result<(), MarketError> {
        let strategy = self.config.strategy(resource);
        let max = strategy.max_capacity();
        if capacity > max {
            return Err(MarketError::CapacityOutOfRange {
                resource,
                capacity,
                max,
            });
        }
        let Some(pool) = self.leases.pool_mut(seller, resource) else {
            self.leases
                .add_pool(seller, resource, Pool::new(strategy, capacity));
            return Ok(());
        };
        if capacity >= pool.capacity() {
            pool.set_capacity(capacity);
            return Ok(());
        }
        if pool.strategy().is_positional() {
            if !pool.is_idle() {
                return Err(MarketError::PoolInUse { seller, resource });
            }
            pool.set_capacity(capacity);
            return Ok(());
        }
        pool.set_capacity(capacity);
        let book = &mut self.books[resource.index()];
        for id in book.orders_of(seller, Some(Side::Ask)).into_iter().rev() {
            let Some(pool) = self.leases.pool_mut(seller, resource) else {
                break;
            };
            if pool.allocated().0 + pool.offered().0 <= capacity.0 {
                break;
            }
            if let Some(order) = book.remove(id) {
                pool.withdraw(order.remaining);
                events.push(cancellation(resource, order, CancelReason::CapacityShrunk));
            }
        }
        self.leases.fit_leases_to_capacity(seller, resource, events);
        Ok(())
    }

    /// Validates and places an order at the current tick. On success, emits
    /// `Accepted`, then a `Filled` (with its lease) per trade, then a
    /// `Cancelled` for an IOC or self-trade remainder. On error, nothing changed.
    pub fn place(
        &mut self,
        sequence: u64,
        request: OrderRequest,
        events: &mut Vec<MarketEvent>,
    ) -> Result<OrderId, MarketError> {
        request.validate(self.now)?;
        let resource = request.resource;
        if request.side == Side::Ask {
            let pool =
                self.leases
                    .pool(request.owner, resource)
                    .ok_or(MarketError::NotASeller {
                        seller: request.owner,
                        resource,
                    })?;
            let free = pool.free();
            if request.quantity > free {
                return Err(MarketError::InsufficientCapacity {
                    seller: request.owner,
                    resource,
                    requested: request.quantity,
                    free,
                });
            }
        }

        let id = OrderId(self.next_order_id);
        let mut fills = std::mem::take(&mut self.fills);
        fills.clear();
        let placed = self.books[resource.index()].place(
            NewOrder::from_request(id, &request),
            self.now,
            &mut fills,
        );
        let outcome = match placed {
            Ok(outcome) => outcome,
            Err(error) => {
                self.fills = fills;
                return Err(error);
            }
        };
        self.next_order_id += 1;
        events.push(MarketEvent::Accepted {
            order: id,
            sequence,
            request,
        });

        let duration = self.config.lease_ticks(resource);
        for fill in fills.drain(..) {
            let buyer_limit = match fill.aggressor {
                Side::Bid => request.price,
                Side::Ask => fill.price,
            };
            // The seller's quantity was offered by a resting ask when the bid came in
            // second; otherwise it is the incoming ask, checked against `free` above.
            let from_offer = fill.aggressor == Side::Bid;
            let lease = self
                .leases
                .grant(&fill, duration, from_offer)
                .map(|active| LeaseGrant {
                    lease: active.lease,
                    allocation: active.allocation,
                });
            events.push(MarketEvent::Filled {
                fill,
                buyer_limit,
                lease,
            });
        }
        self.fills = fills;

        if request.side == Side::Ask
            && outcome.resting.0 > 0
            && let Some(pool) = self.leases.pool_mut(request.owner, resource)
        {
            pool.offer(outcome.resting);
        }
        if let Some((remaining, reason)) = outcome.cancelled {
            events.push(MarketEvent::Cancelled(Cancellation {
                order: id,
                owner: request.owner,
                resource,
                side: request.side,
                limit_price: request.price,
                remaining,
                reason,
            }));
        }
        Ok(id)
    }

    /// Cancels `agent`'s resting order. On error, nothing changed.
    pub fn cancel(
        &mut self,
        agent: AgentId,
        order: OrderId,
        events: &mut Vec<MarketEvent>,
    ) -> Result<(), MarketError> {
        for resource in Resource::ALL {
            match self.books[resource.index()].cancel(order, agent) {
                Ok(cancelled) => {
                    self.book_left(resource, cancelled, CancelReason::User, events);
                    return Ok(());
                }
                Err(MarketError::UnknownOrder(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(MarketError::UnknownOrder(order))
    }

    /// Cancels every resting order of `agent` (for example when it is isolated), in
    /// resource then id order.
    pub fn cancel_all_for(&mut self, agent: AgentId, events: &mut Vec<MarketEvent>) {
        for resource in Resource::ALL {
            let mut removed = std::mem::take(&mut self.removed);
            self.books[resource.index()].cancel_all_for(agent, &mut removed);
            for order in removed.drain(..) {
                self.book_left(resource, order, CancelReason::Isolated, events);
            }
            self.removed = removed;
        }
    }

    /// Revokes every lease `agent` holds, in id order; the capacity goes back to the
    /// sellers. Leases the agent *sold* stay: the hardware behind them is still there.
    pub fn revoke_all_for(&mut self, agent: AgentId, events: &mut Vec<MarketEvent>) {
        self.leases.revoke_all_for(agent, events);
    }

    /// What the guardian's isolation needs from the market: the agent's orders
    /// cancelled and its leases revoked.
    pub fn isolate(&mut self, agent: AgentId, events: &mut Vec<MarketEvent>) {
        self.cancel_all_for(agent, events);
        self.revoke_all_for(agent, events);
    }

    /// Ends one lease early (for example, the guardian denied the fill behind it).
    pub fn revoke_lease(
        &mut self,
        lease: LeaseId,
        events: &mut Vec<MarketEvent>,
    ) -> Result<Lease, MarketError> {
        self.leases.revoke(lease, RevokeReason::Requested, events)
    }

    /// An order left `resource`'s book unfilled: release an ask's offer, report it.
    fn book_left(
        &mut self,
        resource: Resource,
        order: CancelledOrder,
        reason: CancelReason,
        events: &mut Vec<MarketEvent>,
    ) {
        if order.side == Side::Ask
            && let Some(pool) = self.leases.pool_mut(order.owner, resource)
        {
            pool.withdraw(order.remaining);
        }
        events.push(cancellation(resource, order, reason));
    }

    /// Checks every book, pool and offer; used by the tests.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        for book in &self.books {
            book.assert_invariants();
            let mut offered = std::collections::BTreeMap::<AgentId, u64>::new();
            for (seller, _) in self.leases.pools(book.resource()) {
                for id in book.orders_of(seller, Some(Side::Ask)) {
                    if let Some(order) = book.order(id) {
                        *offered.entry(seller).or_default() += order.remaining.0;
                    }
                }
            }
            for (seller, pool) in self.leases.pools(book.resource()) {
                assert_eq!(
                    pool.offered().0,
                    offered.get(&seller).copied().unwrap_or(0),
                    "offered capacity of {seller} on {} out of sync",
                    book.resource()
                );
            }
        }
        self.leases.assert_invariants();
    }
}

fn cancellation(resource: Resource, order: CancelledOrder, reason: CancelReason) -> MarketEvent {
    MarketEvent::Cancelled(Cancellation {
        order: order.id,
        owner: order.owner,
        resource,
        side: order.side,
        limit_price: order.price,
        remaining: order.remaining,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;

    use gamesa_proto::Credits;

    use super::*;
    use crate::{Allocation, Strategy, pool::buddy::BuddyBlock};

    const SELLER: AgentId = AgentId(1);
    const BUYER: AgentId = AgentId(2);
    const OTHER: AgentId = AgentId(3);
    const CORES: Resource = Resource::CpuCores;

    fn limit(
        owner: AgentId,
        resource: Resource,
        side: Side,
        price: u64,
        quantity: u64,
    ) -> OrderRequest {
        OrderRequest::limit(
            owner,
            resource,
            side,
            Price(price),
            Quantity(quantity),
            None,
        )
    }

    fn market() -> Exchange {
        let mut exchange = Exchange::new(MarketConfig::new(NonZeroU64::new(10).unwrap()));
        let mut events = Vec::new();
        for resource in Resource::ALL {
            exchange
                .set_capacity(
                    SELLER,
                    resource,
                    Quantity(1000.min(resource_max(resource))),
                    &mut events,
                )
                .unwrap();
        }
        assert!(events.is_empty());
        exchange
    }

    fn resource_max(resource: Resource) -> u64 {
        Strategy::default_for(resource).max_capacity().0
    }

    fn place(exchange: &mut Exchange, request: OrderRequest) -> (OrderId, Vec<MarketEvent>) {
        let mut events = Vec::new();
        let id = exchange.place(0, request, &mut events).unwrap();
        exchange.assert_invariants();
        (id, events)
    }

    #[test]
    fn bad_commands_are_typed_errors_and_change_nothing() {
        let mut exchange = market();
        let mut events = Vec::new();
        exchange.advance_to(Tick(5), &mut events).unwrap();
        let (ask, _) = place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 600));
        place(&mut exchange, limit(BUYER, CORES, Side::Bid, 8, 3));
        let (_, filled) = place(&mut exchange, limit(BUYER, CORES, Side::Bid, 10, 2));
        let lease = filled
            .iter()
            .find_map(|event| match event {
                MarketEvent::Filled {
                    lease: Ok(grant), ..
                } => Some(grant.lease.id),
                _ => None,
            })
            .unwrap();
        let before = format!("{exchange:?}");

        let bad_orders = [
            (
                limit(BUYER, CORES, Side::Bid, 10, 0),
                MarketError::QuantityOutOfRange {
                    quantity: Quantity(0),
                    max: Quantity::MAX,
                },
            ),
            (
                limit(BUYER, CORES, Side::Bid, 0, 1),
                MarketError::PriceOutOfRange {
                    price: Price(0),
                    min: Price::MIN,
                    max: Price::MAX,
                },
            ),
            (
                limit(BUYER, CORES, Side::Bid, Price::MAX.0 + 1, 1),
                MarketError::PriceOutOfRange {
                    price: Price(Price::MAX.0 + 1),
                    min: Price::MIN,
                    max: Price::MAX,
                },
            ),
            (
                OrderRequest::limit(
                    BUYER,
                    CORES,
                    Side::Bid,
                    Price(9),
                    Quantity(1),
                    Some(Tick(4)),
                ),
                MarketError::ExpiryInPast {
                    expires_at: Tick(4),
                    now: Tick(5),
                },
            ),
            (
                // 1000 cores registered; 2 leased and 598 still offered.
                limit(SELLER, CORES, Side::Ask, 12, 403),
                MarketError::InsufficientCapacity {
                    seller: SELLER,
                    resource: CORES,
                    requested: Quantity(403),
                    free: Quantity(400),
                },
            ),
            (
                limit(OTHER, CORES, Side::Ask, 12, 1),
                MarketError::NotASeller {
                    seller: OTHER,
                    resource: CORES,
                },
            ),
        ];
        for (request, error) in bad_orders {
            assert_eq!(exchange.place(7, request, &mut events), Err(error));
        }
        assert_eq!(
            exchange.cancel(BUYER, OrderId(99), &mut events),
            Err(MarketError::UnknownOrder(OrderId(99)))
        );
        assert_eq!(
            exchange.cancel(BUYER, ask, &mut events),
            Err(MarketError::NotOwner {
                order: ask,
                owner: SELLER,
                requested_by: BUYER
            })
        );
        assert_eq!(
            exchange.set_capacity(SELLER, CORES, Quantity(5000), &mut events),
            Err(MarketError::CapacityOutOfRange {
                resource: CORES,
                capacity: Quantity(5000),
                max: Quantity(4096)
            })
        );
        assert_eq!(
            exchange.set_capacity(SELLER, CORES, Quantity(10), &mut events),
            Err(MarketError::PoolInUse {
                seller: SELLER,
                resource: CORES
            })
        );
        assert_eq!(
            exchange.revoke_lease(LeaseId(lease.0 + 100), &mut events),
            Err(MarketError::UnknownLease(LeaseId(lease.0 + 100)))
        );
        assert_eq!(
            exchange.advance_to(Tick(4), &mut events),
            Err(MarketError::TickWentBackwards {
                now: Tick(4),
                current: Tick(5)
            })
        );
        assert!(events.is_empty());
        assert_eq!(format!("{exchange:?}"), before);

        // Through a tick, a refusal is a `Rejected` event for its submitter.
        let events = exchange
            .process_tick(
                Tick(5),
                vec![Submission::place(3, limit(BUYER, CORES, Side::Bid, 10, 0))],
            )
            .unwrap();
        assert_eq!(
            events,
            vec![MarketEvent::Rejected {
                agent: BUYER,
                sequence: 3,
                error: MarketError::QuantityOutOfRange {
                    quantity: Quantity(0),
                    max: Quantity::MAX
                },
            }]
        );
        assert_eq!(format!("{exchange:?}"), before);
        assert_eq!(
            exchange.process_tick(Tick(1), Vec::new()),
            Err(MarketError::TickWentBackwards {
                now: Tick(1),
                current: Tick(5)
            })
        );
    }

    #[test]
    fn a_fill_grants_a_lease_and_carries_what_refunds_need() {
        let mut exchange = market();
        let (ask, _) = place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 3));
        assert_eq!(exchange.pool(SELLER, CORES).unwrap().offered(), Quantity(3));
        let (bid, events) = place(&mut exchange, limit(BUYER, CORES, Side::Bid, 12, 2));
        assert_eq!((ask, bid), (OrderId(1), OrderId(2)));
        let fill = Fill {
            tick: Tick(0),
            resource: CORES,
            buyer: BUYER,
            seller: SELLER,
            buy_order: bid,
            sell_order: ask,
            price: Price(10),
            quantity: Quantity(2),
            aggressor: Side::Bid,
        };
        let lease = Lease {
            id: LeaseId(0),
            resource: CORES,
            holder: BUYER,
            seller: SELLER,
            quantity: Quantity(2),
            price: Price(10),
            start: Tick(0),
            expires_at: Tick(9),
        };
        assert_eq!(
            events,
            vec![
                MarketEvent::Accepted {
                    order: bid,
                    sequence: 0,
                    request: limit(BUYER, CORES, Side::Bid, 12, 2)
                },
                MarketEvent::Filled {
                    fill,
                    buyer_limit: Price(12),
                    lease: Ok(LeaseGrant {
                        lease,
                        allocation: Allocation::Cores(vec![0, 1])
                    }),
                },
            ]
        );
        // The buyer escrowed 12 per unit and paid 10: 4 credits come back.
        assert_eq!(events[1].escrow_refund(), Some((BUYER, Credits(4))));
        let pool = exchange.pool(SELLER, CORES).unwrap();
        assert_eq!(
            (pool.allocated(), pool.offered(), pool.free()),
            (Quantity(2), Quantity(1), Quantity(997))
        );
        assert_eq!(exchange.last_trade_price(CORES), Some(Price(10)));
        assert_eq!(exchange.best_ask(CORES), Some(Price(10)));
        assert_eq!(exchange.best_bid(CORES), None);
        assert_eq!(exchange.depth(CORES, 1).asks[0].quantity, Quantity(1));
    }

    #[test]
    fn an_incoming_ask_trades_at_the_resting_bid_and_refunds_nothing() {
        let mut exchange = market();
        place(&mut exchange, limit(BUYER, CORES, Side::Bid, 12, 2));
        let (_, events) = place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 5));
        let MarketEvent::Filled {
            fill, buyer_limit, ..
        } = events[1]
        else {
            panic!("expected a fill, got {events:?}");
        };
        assert_eq!((fill.price, buyer_limit), (Price(12), Price(12)));
        assert_eq!(events[1].escrow_refund(), None);
        let pool = exchange.pool(SELLER, CORES).unwrap();
        assert_eq!(
            (pool.allocated(), pool.offered()),
            (Quantity(2), Quantity(3))
        );
    }

    #[test]
    fn ioc_and_self_trade_remainders_are_cancelled_with_refund_data() {
        let mut exchange = market();
        place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 1));
        let (ioc, events) = place(
            &mut exchange,
            OrderRequest::immediate(BUYER, CORES, Side::Bid, Price(11), Quantity(4)),
        );
        let cancelled = Cancellation {
            order: ioc,
            owner: BUYER,
            resource: CORES,
            side: Side::Bid,
            limit_price: Price(11),
            remaining: Quantity(3),
            reason: CancelReason::IocRemainder,
        };
        assert_eq!(events.last(), Some(&MarketEvent::Cancelled(cancelled)));
        assert_eq!(
            events.last().unwrap().escrow_refund(),
            Some((BUYER, Credits(33)))
        );

        // The seller's bid for its own cores meets its own ask: no trade.
        place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 2));
        let (own, events) = place(&mut exchange, limit(SELLER, CORES, Side::Bid, 10, 2));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            MarketEvent::Cancelled(Cancellation {
                order: own,
                owner: SELLER,
                resource: CORES,
                side: Side::Bid,
                limit_price: Price(10),
                remaining: Quantity(2),
                reason: CancelReason::SelfTrade,
            })
        );
        assert_eq!(exchange.best_ask(CORES), Some(Price(10)));
        assert_eq!(exchange.best_bid(CORES), None);
    }

    #[test]
    fn expired_asks_give_their_offer_back() {
        let mut exchange = market();
        let mut events = Vec::new();
        let request = OrderRequest::limit(
            SELLER,
            CORES,
            Side::Ask,
            Price(10),
            Quantity(600),
            Some(Tick(3)),
        );
        let id = exchange.place(0, request, &mut events).unwrap();
        events.clear();
        exchange.advance_to(Tick(3), &mut events).unwrap();
        assert!(events.is_empty());
        assert_eq!(exchange.pool(SELLER, CORES).unwrap().free(), Quantity(400));
        exchange.advance_to(Tick(4), &mut events).unwrap();
        assert_eq!(
            events,
            vec![MarketEvent::Cancelled(Cancellation {
                order: id,
                owner: SELLER,
                resource: CORES,
                side: Side::Ask,
                limit_price: Price(10),
                remaining: Quantity(600),
                reason: CancelReason::Expired,
            })]
        );
        assert_eq!(exchange.pool(SELLER, CORES).unwrap().free(), Quantity(1000));
        exchange.assert_invariants();
    }

    #[test]
    fn arrival_order_inside_a_tick_does_not_matter() {
        let submissions = vec![
            Submission::place(0, limit(BUYER, CORES, Side::Bid, 12, 2)),
            Submission::place(1, limit(BUYER, CORES, Side::Bid, 9, 2)),
            Submission::cancel(2, BUYER, OrderId(2)),
            Submission::place(0, limit(SELLER, CORES, Side::Ask, 10, 3)),
        ];
        let mut forward = market();
        let mut backward = market();
        let events = forward.process_tick(Tick(1), submissions.clone()).unwrap();
        let mut reversed = submissions;
        reversed.reverse();
        assert_eq!(backward.process_tick(Tick(1), reversed).unwrap(), events);
        // Canonical order: bids and cancels before asks, so the buyer's bids rest as
        // orders 1 and 2 although the seller (agent 1) has the lower id, its cancel of
        // order 2 finds it, and the seller's ask (order 3), which arrived first, then
        // meets the best bid: two units at its resting price of 12.
        let summary: Vec<String> = events
            .iter()
            .map(|event| match event {
                MarketEvent::Accepted { order, request, .. } => {
                    format!("accept {order} {}", request.owner)
                }
                MarketEvent::Filled {
                    fill,
                    lease: Ok(grant),
                    ..
                } => format!(
                    "fill {} {}@{} lease {}",
                    fill.buy_order, fill.quantity, fill.price, grant.lease.id
                ),
                MarketEvent::Cancelled(cancelled) => {
                    format!("cancel {} {:?}", cancelled.order, cancelled.reason)
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "accept order#1 agent#2",
                "accept order#2 agent#2",
                "cancel order#2 User",
                "accept order#3 agent#1",
                "fill order#1 2@12 lease lease#0",
            ]
        );
        assert_eq!(forward.best_ask(CORES), Some(Price(10)));
        assert_eq!(forward.best_bid(CORES), None);
    }

    #[test]
    fn isolation_cancels_orders_and_revokes_leases() {
        let mut exchange = market();
        place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 4));
        place(&mut exchange, limit(BUYER, CORES, Side::Bid, 10, 4));
        place(
            &mut exchange,
            limit(BUYER, Resource::MemoryMb, Side::Bid, 3, 100),
        );
        place(&mut exchange, limit(BUYER, CORES, Side::Bid, 5, 1));
        let mut events = Vec::new();
        exchange.isolate(BUYER, &mut events);
        let reasons: Vec<String> = events
            .iter()
            .map(|event| match event {
                MarketEvent::Cancelled(cancelled) => {
                    format!("cancel {} {:?}", cancelled.order, cancelled.reason)
                }
                MarketEvent::LeaseRevoked { lease, reason } => {
                    format!("revoke {} {:?}", lease.id, reason)
                }
                other => format!("{other:?}"),
            })
            .collect();
        // Resource order: memory_mb comes after cpu_cores.
        assert_eq!(
            reasons,
            vec![
                "cancel order#4 Isolated",
                "cancel order#3 Isolated",
                "revoke lease#0 Isolated"
            ]
        );
        assert_eq!(exchange.pool(SELLER, CORES).unwrap().free(), Quantity(1000));
        assert!(exchange.leases().is_empty());
        exchange.assert_invariants();
    }

    #[test]
    fn guardian_can_revoke_one_lease() {
        let mut exchange = market();
        place(&mut exchange, limit(SELLER, CORES, Side::Ask, 10, 4));
        place(&mut exchange, limit(BUYER, CORES, Side::Bid, 10, 4));
        let mut events = Vec::new();
        let lease = exchange.revoke_lease(LeaseId(0), &mut events).unwrap();
        assert_eq!(
            events,
            vec![MarketEvent::LeaseRevoked {
                lease,
                reason: RevokeReason::Requested
            }]
        );
        assert_eq!(
            exchange.pool(SELLER, CORES).unwrap().allocated(),
            Quantity(0)
        );
    }

    #[test]
    fn gpu_memory_and_cpu_time_leases_use_their_strategies() {
        let mut exchange = market();
        place(
            &mut exchange,
            limit(SELLER, Resource::GpuMemoryMb, Side::Ask, 10, 1000),
        );
        let (_, events) = place(
            &mut exchange,
            limit(BUYER, Resource::GpuMemoryMb, Side::Bid, 10, 300),
        );
        // The pool tiles 1000 as 512@0, 256@512, 128@768, 64@896, 32@960, 8@992.
        // 300 = 256 + 32 + 8 + 4: the 256, 32 and 8 blocks fit exactly; the 4 is
        // split off the smallest larger block, 64@896.
        let granted = events.iter().find_map(|event| match event {
            MarketEvent::Filled { lease, .. } => lease.clone().ok(),
            _ => None,
        });
        assert_eq!(
            granted,
            Some(LeaseGrant {
                lease: Lease {
                    id: LeaseId(0),
                    resource: Resource::GpuMemoryMb,
                    holder: BUYER,
                    seller: SELLER,
                    quantity: Quantity(300),
                    price: Price(10),
                    start: Tick(0),
                    expires_at: Tick(9),
                },
                allocation: Allocation::Blocks(vec![
                    BuddyBlock {
                        offset: 512,
                        order: 8
                    },
                    BuddyBlock {
                        offset: 960,
                        order: 5
                    },
                    BuddyBlock {
                        offset: 992,
                        order: 3
                    },
                    BuddyBlock {
                        offset: 896,
                        order: 2
                    },
                ]),
            })
        );
        place(
            &mut exchange,
            limit(SELLER, Resource::CpuTimeUs, Side::Ask, 10, 1000),
        );
        let (_, events) = place(
            &mut exchange,
            limit(BUYER, Resource::CpuTimeUs, Side::Bid, 10, 250),
        );
        assert!(events.iter().any(|event| matches!(
            event,
            MarketEvent::Filled { lease: Ok(LeaseGrant { allocation: Allocation::Segments(segments), .. }), .. }
                if segments == &[crate::pool::best_fit::Segment { start: 0, len: 250 }]
        )));
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use gamesa_proto::Credits;
    use proptest::prelude::*;

    use super::*;

    /// One of each pool strategy.
    const RESOURCES: [Resource; 5] = [
        Resource::CpuCores,
        Resource::CpuTimeUs,
        Resource::GpuMemoryMb,
        Resource::ThermalHeadroomMc,
        Resource::PowerBudgetMw,
    ];
    const AGENTS: u32 = 4;

    fn submission() -> impl Strategy<Value = Submission> {
        prop_oneof![
            4 => (
                0..AGENTS,
                0..4u64,
                prop::sample::select(RESOURCES.to_vec()),
                any::<bool>(),
                8..13u64,
                1..12u64,
                0..5u8,
            )
                .prop_map(|(agent, sequence, resource, bid, price, quantity, time_in_force)| {
                    let side = if bid { Side::Bid } else { Side::Ask };
                    let request = match time_in_force {
                        0 => OrderRequest::immediate(AgentId(agent), resource, side, Price(price), Quantity(quantity)),
                        1 => OrderRequest::limit(AgentId(agent), resource, side, Price(price), Quantity(quantity), None),
                        // May lie in the past: then it is rejected.
                        n => OrderRequest::limit(AgentId(agent), resource, side, Price(price), Quantity(quantity), Some(Tick(u64::from(n) * 3))),
                    };
                    Submission::place(sequence, request)
                }),
            1 => (0..AGENTS, 0..4u64, 0..60u64)
                .prop_map(|(agent, sequence, order)| Submission::cancel(sequence, AgentId(agent), OrderId(order))),
        ]
    }

    /// A market where every agent sells 40 units of every resource.
    fn market() -> Exchange {
        let mut exchange = Exchange::new(MarketConfig::new(std::num::NonZeroU64::new(3).unwrap()));
        let mut events = Vec::new();
        for agent in 0..AGENTS {
            for resource in RESOURCES {
                exchange
                    .set_capacity(AgentId(agent), resource, Quantity(40), &mut events)
                    .unwrap();
            }
        }
        exchange
    }

    #[derive(Debug, Clone)]
    enum Action {
        Tick(Vec<Submission>),
        SetCapacity {
            agent: u32,
            resource: Resource,
            capacity: u64,
        },
        Isolate(u32),
        Revoke(u64),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            6 => prop::collection::vec(submission(), 0..10).prop_map(Action::Tick),
            2 => (0..AGENTS, prop::sample::select(RESOURCES.to_vec()), 0..60u64)
                .prop_map(|(agent, resource, capacity)| Action::SetCapacity { agent, resource, capacity }),
            1 => (0..AGENTS).prop_map(Action::Isolate),
            1 => (0..40u64).prop_map(Action::Revoke),
        ]
    }

    /// What the test knows of each accepted order, from events only.
    #[derive(Debug, Default)]
    struct Tally {
        request: Option<OrderRequest>,
        filled: u64,
        cancelled: u64,
        /// Credits a bid escrowed, paid out and got back.
        escrowed: u64,
        paid: u64,
        refunded: u64,
    }

    fn record(
        events: &[MarketEvent],
        tallies: &mut BTreeMap<OrderId, Tally>,
    ) -> Result<(), TestCaseError> {
        for event in events {
            match event {
                MarketEvent::Accepted { order, request, .. } => {
                    let tally = tallies.entry(*order).or_default();
                    tally.request = Some(*request);
                    if request.side == Side::Bid {
                        tally.escrowed = request.notional().0;
                    }
                }
                MarketEvent::Filled { fill, lease, .. } => {
                    prop_assert!(lease.is_ok(), "a fill got no lease: {:?}", event);
                    prop_assert!(fill.buyer != fill.seller, "self-trade {:?}", fill);
                    tallies.entry(fill.sell_order).or_default().filled += fill.quantity.0;
                    let buy = tallies.entry(fill.buy_order).or_default();
                    buy.filled += fill.quantity.0;
                    buy.paid += fill.cost().0;
                    if let Some((_, Credits(refund))) = event.escrow_refund() {
                        buy.refunded += refund;
                    }
                }
                MarketEvent::Cancelled(cancelled) => {
                    let tally = tallies.entry(cancelled.order).or_default();
                    tally.cancelled += cancelled.remaining.0;
                    if let Some((_, Credits(refund))) = event.escrow_refund() {
                        tally.refunded += refund;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Shuffling the submissions of every tick changes no event.
        #[test]
        fn arrival_order_inside_a_tick_never_changes_the_outcome(
            ticks in prop::collection::vec(
                prop::collection::vec((submission(), any::<u64>()), 0..16),
                1..6,
            ),
        ) {
            let mut arrived = market();
            let mut shuffled = market();
            for (tick, batch) in ticks.into_iter().enumerate() {
                let now = Tick(tick as u64 * 2);
                let in_order: Vec<Submission> = batch.iter().map(|(submission, _)| *submission).collect();
                let mut permuted = batch;
                permuted.sort_by_key(|(_, key)| *key);
                let permuted: Vec<Submission> = permuted.into_iter().map(|(submission, _)| submission).collect();
                let expected = arrived.process_tick(now, in_order).unwrap();
                prop_assert_eq!(shuffled.process_tick(now, permuted).unwrap(), expected);
            }
            prop_assert_eq!(format!("{arrived:?}"), format!("{shuffled:?}"));
        }

        /// Whatever happens, no book is crossed, no pool is over-allocated or out of
        /// step with its asks and leases, every order's quantity is accounted for, and
        /// every bid's escrow is paid out or refunded exactly.
        #[test]
        fn the_market_keeps_its_invariants(actions in prop::collection::vec(action(), 1..40)) {
            let mut exchange = market();
            let mut tallies = BTreeMap::new();
            let mut now = Tick(0);
            for action in actions {
                let mut events = Vec::new();
                match action {
                    Action::Tick(batch) => {
                        now = now.next();
                        events = exchange.process_tick(now, batch).unwrap();
                    }
                    Action::SetCapacity { agent, resource, capacity } => {
                        let pool_before = exchange.pool(AgentId(agent), resource).cloned();
                        let result = exchange.set_capacity(AgentId(agent), resource, Quantity(capacity), &mut events);
                        if let Err(error) = result {
                            prop_assert_eq!(error, MarketError::PoolInUse { seller: AgentId(agent), resource });
                            prop_assert!(events.is_empty());
                            let pool_before = pool_before.unwrap();
                            prop_assert!(!pool_before.is_idle());
                        }
                    }
                    Action::Isolate(agent) => {
                        exchange.isolate(AgentId(agent), &mut events);
                        for resource in RESOURCES {
                            prop_assert!(exchange.book(resource).orders_of(AgentId(agent), None).is_empty());
                        }
                        prop_assert!(exchange.leases().iter().all(|active| active.lease.holder != AgentId(agent)));
                    }
                    Action::Revoke(lease) => {
                        let _ = exchange.revoke_lease(LeaseId(lease), &mut events);
                    }
                }
                record(&events, &mut tallies)?;
                exchange.assert_invariants();
            }
            for (id, tally) in &tallies {
                let request = tally.request.unwrap();
                let resting = exchange.book(request.resource).order(*id).map_or(0, |order| order.remaining.0);
                prop_assert_eq!(request.quantity.0, tally.filled + tally.cancelled + resting, "order {}", id);
                if request.side == Side::Bid {
                    prop_assert_eq!(
                        tally.escrowed,
                        tally.paid + tally.refunded + request.price.0 * resting,
                        "escrow of {}", id
                    );
                }
            }
        }
    }
}
