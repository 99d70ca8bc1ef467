//! Limit order book for one resource: price-time priority, partial fills, cancel,
//! expiry, immediate-or-cancel orders and self-trade prevention.
//!
//! # Rules
//! - **Priority.** Better price first; at one price, earlier arrival first.
//! - **Execution price.** A trade executes at the resting (maker) order's price, so
//!   an aggressive bid pays at most its limit, and often less.
//! - **Expiry.** An order with `expires_at = Some(t)` is live through tick `t` and is
//!   removed by [`OrderBook::expire`] once `now > t`. The caller runs `expire(now)`
//!   before it places orders at `now` (the [`Exchange`](crate::Exchange) does).
//! - **Immediate-or-cancel.** Trades what crosses now; the remainder is cancelled with
//!   [`CancelReason::IocRemainder`] and never rests.
//! - **Self-trade prevention: cancel the incoming remainder** ("cancel newest"). When
//!   the next resting order to trade belongs to the incoming order's owner, matching
//!   stops, the fills already made stand, and what is left of the incoming order is
//!   cancelled with [`CancelReason::SelfTrade`]. The resting order keeps its place.
//!
//! # Layout
//! Orders live in a slab (`Vec<Slot>`) threaded by a free list, so a place or a fill
//! never allocates once the slab is warm. Each price level is an intrusive doubly
//! linked FIFO through the slots (`prev`/`next` indices), so a cancel unlinks in O(1).
//! The levels of one side sit in a `Vec` sorted so that the best level is the *last*
//! element: matching pops from the end and new orders near the top of the book insert
//! near the end, which moves few bytes. Both sides share one ordering by storing a
//! key (`price` for bids, `!price` for asks). `OrderId → slot` is an open-addressing
//! table without tombstones ([`order_index`](crate::order_index)), since ids are
//! integers chosen by the exchange and orders churn constantly.
//!
//! Compared with the `lobster` crate (a `BTreeMap<price, Vec<slot>>` per side plus a
//! `HashMap<u128, slot>` with SipHash): lobster cancels by a linear search and a
//! `Vec::remove` inside the level, keeps emptied levels in its map (so recomputing the
//! best price walks past them), and allocates a `Vec` of fills for every order. This
//! book unlinks in O(1), drops empty levels at once, and appends fills to a buffer
//! the caller reuses.
//!
//! # Invariants
//! - the book is never crossed: best bid < best ask whenever both exist;
//! - every resting order has a positive remaining quantity and sits in exactly one
//!   level's FIFO, in arrival order; a level's `total` is the sum of its orders and no
//!   level is empty;
//! - for every order, filled + resting + cancelled == original quantity;
//! - accepted order ids strictly increase.

use std::{cmp::Reverse, collections::BinaryHeap};

use gamesa_proto::{
    AgentId, Fill, OrderId, OrderRequest, Price, Quantity, Resource, Side, Tick, TimeInForce,
};
use serde::{Deserialize, Serialize};

use crate::{CancelReason, MarketError, order_index::OrderIndex};

/// End of a linked list of slots.
const NIL: u32 = u32::MAX;
/// `expires_at` of an order that never expires. An order that expires at
/// `Tick(u64::MAX)` is the same thing: the clock can never pass that tick.
const NEVER: u64 = u64::MAX;
/// Stale expiry entries tolerated before the heap is rebuilt from live orders.
const EXPIRY_SLACK: usize = 1024;

/// An order the book is asked to place; the exchange has already assigned its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    pub id: OrderId,
    pub owner: AgentId,
    pub side: Side,
    pub price: Price,
    pub quantity: Quantity,
    pub time_in_force: TimeInForce,
}

impl NewOrder {
    /// The book's view of a request accepted under `id`.
    pub fn from_request(id: OrderId, request: &OrderRequest) -> NewOrder {
        NewOrder {
            id,
            owner: request.owner,
            side: request.side,
            price: request.price,
            quantity: request.quantity,
            time_in_force: request.time_in_force,
        }
    }

    fn expires_at(&self) -> u64 {
        match self.time_in_force {
            TimeInForce::Limit {
                expires_at: Some(tick),
            } => tick.0,
            _ => NEVER,
        }
    }
}

/// What happened to an incoming order. `filled + resting + cancelled` always equals
/// its quantity; the fills themselves were appended to the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceOutcome {
    pub filled: Quantity,
    /// What rests in the book (zero for a fully filled or cancelled order).
    pub resting: Quantity,
    /// What was cancelled at once, and why (IOC remainder or self-trade).
    pub cancelled: Option<(Quantity, CancelReason)>,
}

/// An order taken out of the book without being filled: by its owner, by expiry, or
/// by isolation. Carries what the ledger needs to refund a bid's escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelledOrder {
    pub id: OrderId,
    pub owner: AgentId,
    pub side: Side,
    /// The order's limit price.
    pub price: Price,
    /// What was still resting when it was removed.
    pub remaining: Quantity,
}

/// A resting order as the book holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestingOrder {
    pub id: OrderId,
    pub owner: AgentId,
    pub side: Side,
    pub price: Price,
    pub remaining: Quantity,
    pub expires_at: Option<Tick>,
}

/// One aggregated price level of a depth snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthLevel {
    pub price: Price,
    pub quantity: Quantity,
    pub orders: u32,
}

/// The top of a book, best levels first on each side.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BookDepth {
    pub bids: Vec<DepthLevel>,
    pub asks: Vec<DepthLevel>,
}

/// An order in the slab. `next` doubles as the free-list link of an empty slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    remaining: u64,
    price: u64,
    expires_at: u64,
    owner: u32,
    prev: u32,
    next: u32,
    side: Side,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    /// `price ^ Ladder::mask`: ascending keys put the best level last on both sides.
    key: u64,
    total: u64,
    head: u32,
    tail: u32,
    orders: u32,
}

/// The levels of one side, sorted by ascending key, best level last.
#[derive(Debug)]
struct Ladder {
    /// 0 for bids (key = price), all ones for asks (key = !price).
    mask: u64,
    levels: Vec<Level>,
}

impl Ladder {
    fn new(side: Side) -> Ladder {
        Ladder {
            mask: match side {
                Side::Bid => 0,
                Side::Ask => u64::MAX,
            },
            levels: Vec::new(),
        }
    }

    fn price_of(&self, level: &Level) -> u64 {
        level.key ^ self.mask
    }

    /// Position of the level with `price`, or where it would be inserted. Most
    /// activity is at the top of the book, so the last level is checked first.
    #[inline]
    fn position(&self, price: u64) -> Result<usize, usize> {
        let key = price ^ self.mask;
        match self.levels.last() {
            None => Err(0),
            Some(last) if last.key == key => Ok(self.levels.len() - 1),
            Some(last) if last.key < key => Err(self.levels.len()),
            Some(_) => self.levels.binary_search_by_key(&key, |level| level.key),
        }
    }

    fn best_price(&self) -> Option<Price> {
        self.levels.last().map(|level| Price(self.price_of(level)))
    }

    fn depth(&self, levels: usize) -> Vec<DepthLevel> {
        self.levels
            .iter()
            .rev()
            .take(levels)
            .map(|level| DepthLevel {
                price: Price(self.price_of(level)),
                quantity: Quantity(level.total),
                orders: level.orders,
            })
            .collect()
    }
}

/// The order book of one resource.
#[derive(Debug)]
pub struct OrderBook {
    resource: Resource,
    slots: Vec<Slot>,
    /// Head of the free list of slots, linked through `Slot::next`.
    free_slot: u32,
    index: OrderIndex,
    bids: Ladder,
    asks: Ladder,
    /// Min-heap of `(expires_at, id)`. Entries of orders that left the book early
    /// stay until popped (ids are never reused, so a popped id that is no longer in
    /// `index` is simply skipped); the heap is rebuilt when stale entries pile up.
    expiries: BinaryHeap<Reverse<(u64, u64)>>,
    /// Resting orders that carry an expiry: the live part of `expiries`.
    expiring: usize,
    last_id: Option<OrderId>,
    last_trade: Option<Price>,
}

impl OrderBook {
    pub fn new(resource: Resource) -> OrderBook {
        OrderBook::with_capacity(resource, 0)
    }

    /// A book with room for `orders` resting orders before it allocates.
    pub fn with_capacity(resource: Resource, orders: usize) -> OrderBook {
        let index = OrderIndex::with_capacity(orders);
        OrderBook {
            resource,
            slots: Vec::with_capacity(orders),
            free_slot: NIL,
            index,
            bids: Ladder::new(Side::Bid),
            asks: Ladder::new(Side::Ask),
            expiries: BinaryHeap::new(),
            expiring: 0,
            last_id: None,
            last_trade: None,
        }
    }

    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn best_bid(&self) -> Option<Price> {
        self.bids.best_price()
    }

    pub fn best_ask(&self) -> Option<Price> {
        self.asks.best_price()
    }

    /// The price of the most recent trade in this book.
    pub fn last_trade_price(&self) -> Option<Price> {
        self.last_trade
    }

    /// Up to `levels` price levels per side, best first.
    pub fn depth(&self, levels: usize) -> BookDepth {
        BookDepth {
            bids: self.bids.depth(levels),
            asks: self.asks.depth(levels),
        }
    }

    /// The resting order `id`, if it is in the book.
    pub fn order(&self, id: OrderId) -> Option<RestingOrder> {
        let slot = &self.slots[self.index.get(id.0)? as usize];
        Some(RestingOrder {
            id,
            owner: AgentId(slot.owner),
            side: slot.side,
            price: Price(slot.price),
            remaining: Quantity(slot.remaining),
            expires_at: (slot.expires_at != NEVER).then_some(Tick(slot.expires_at)),
        })
    }

    /// Ids of `owner`'s resting orders (on `side`, or both sides with `None`),
    /// ascending.
    pub fn orders_of(&self, owner: AgentId, side: Option<Side>) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .index
            .slots()
            .map(|slot| &self.slots[slot as usize])
            .filter(|slot| slot.owner == owner.0 && side.is_none_or(|side| slot.side == side))
            .map(|slot| OrderId(slot.id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Matches `order` against the other side, then rests, or cancels, what is left.
    /// Fills are appended to `fills` (nothing is cleared). On error the book is
    /// unchanged and nothing is appended.
    pub fn place(
        &mut self,
        order: NewOrder,
        now: Tick,
        fills: &mut Vec<Fill>,
    ) -> Result<PlaceOutcome, MarketError> {
        // The same checks as `OrderRequest::validate`, written out so the hot path
        // makes no call across the crate boundary.
        if !(Price::MIN..=Price::MAX).contains(&order.price) {
            return Err(MarketError::PriceOutOfRange {
                price: order.price,
                min: Price::MIN,
                max: Price::MAX,
            });
        }
        if order.quantity.0 == 0 || order.quantity > Quantity::MAX {
            return Err(MarketError::QuantityOutOfRange {
                quantity: order.quantity,
                max: Quantity::MAX,
            });
        }
        let expires_at = order.expires_at();
        if expires_at < now.0 {
            return Err(MarketError::ExpiryInPast {
                expires_at: Tick(expires_at),
                now,
            });
        }
        if let Some(last) = self.last_id
            && order.id <= last
        {
            return Err(MarketError::OrderIdNotIncreasing { id: order.id, last });
        }
        self.last_id = Some(order.id);

        let (filled, self_trade) = self.match_incoming(&order, now, fills);
        let remaining = order.quantity.0 - filled;
        let mut outcome = PlaceOutcome {
            filled: Quantity(filled),
            resting: Quantity(0),
            cancelled: None,
        };
        if remaining == 0 {
            return Ok(outcome);
        }
        if self_trade {
            outcome.cancelled = Some((Quantity(remaining), CancelReason::SelfTrade));
        } else if order.time_in_force == TimeInForce::ImmediateOrCancel {
            outcome.cancelled = Some((Quantity(remaining), CancelReason::IocRemainder));
        } else {
            self.rest(&order, remaining, expires_at);
            outcome.resting = Quantity(remaining);
        }
        Ok(outcome)
    }

    /// Removes `owner`'s order `id`. On error the book is unchanged.
    pub fn cancel(&mut self, id: OrderId, owner: AgentId) -> Result<CancelledOrder, MarketError> {
        let slots = &self.slots;
        match self
            .index
            .remove_unless(id.0, |slot| slots[slot as usize].owner != owner.0)
        {
            None => Err(MarketError::UnknownOrder(id)),
            Some(Ok(slot)) => Ok(self.unlink(slot)),
            Some(Err(slot)) => Err(MarketError::NotOwner {
                order: id,
                owner: AgentId(self.slots[slot as usize].owner),
                requested_by: owner,
            }),
        }
    }

    /// Removes order `id` whoever owns it (isolation, capacity loss).
    pub fn remove(&mut self, id: OrderId) -> Option<CancelledOrder> {
        let slot = self.index.remove(id.0)?;
        Some(self.unlink(slot))
    }

    /// Removes every order whose last live tick is before `now`, in `(expires_at, id)`
    /// order, and appends them to `expired`.
    pub fn expire(&mut self, now: Tick, expired: &mut Vec<CancelledOrder>) {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if expires_at >= now.0 {
                break;
            }
            self.expiries.pop();
            if let Some(slot) = self.index.remove(id) {
                expired.push(self.unlink(slot));
            }
        }
    }

    /// Removes all of `owner`'s orders, in id order, and appends them to `cancelled`.
    pub fn cancel_all_for(&mut self, owner: AgentId, cancelled: &mut Vec<CancelledOrder>) {
        for id in self.orders_of(owner, None) {
            if let Some(order) = self.remove(id) {
                cancelled.push(order);
            }
        }
    }

    fn match_incoming(
        &mut self,
        order: &NewOrder,
        now: Tick,
        fills: &mut Vec<Fill>,
    ) -> (u64, bool) {
        let OrderBook {
            resource,
            slots,
            free_slot,
            index,
            bids,
            asks,
            expiring,
            last_trade,
            ..
        } = self;
        let opposite = match order.side {
            Side::Bid => asks,
            Side::Ask => bids,
        };
        let limit = order.price.0;
        let mut remaining = order.quantity.0;
        let mut self_trade = false;

        'levels: while remaining > 0 {
            let mask = opposite.mask;
            let Some(level) = opposite.levels.last_mut() else {
                break;
            };
            let level_price = level.key ^ mask;
            let crosses = match order.side {
                Side::Bid => level_price <= limit,
                Side::Ask => level_price >= limit,
            };
            if !crosses {
                break;
            }
            loop {
                // A level in the ladder is never empty, so `head` is a live slot.
                let cursor = level.head as usize;
                let maker = &mut slots[cursor];
                if maker.owner == order.owner.0 {
                    self_trade = true;
                    break 'levels;
                }
                let traded = remaining.min(maker.remaining);
                maker.remaining -= traded;
                remaining -= traded;
                level.total -= traded;
                let (buyer, seller, buy_order, sell_order) = match order.side {
                    Side::Bid => (
                        order.owner,
                        AgentId(maker.owner),
                        order.id,
                        OrderId(maker.id),
                    ),
                    Side::Ask => (
                        AgentId(maker.owner),
                        order.owner,
                        OrderId(maker.id),
                        order.id,
                    ),
                };
                fills.push(Fill {
                    tick: now,
                    resource: *resource,
                    buyer,
                    seller,
                    buy_order,
                    sell_order,
                    price: Price(level_price),
                    quantity: Quantity(traded),
                    aggressor: order.side,
                });
                *last_trade = Some(Price(level_price));
                if maker.remaining > 0 {
                    // The incoming order is exhausted.
                    break 'levels;
                }
                let next = maker.next;
                index.remove(maker.id);
                if maker.expires_at != NEVER {
                    *expiring -= 1;
                }
                maker.next = *free_slot;
                *free_slot = cursor as u32;
                level.head = next;
                level.orders -= 1;
                if next == NIL {
                    opposite.levels.pop();
                    continue 'levels;
                }
                slots[next as usize].prev = NIL;
                if remaining == 0 {
                    break 'levels;
                }
            }
        }
        (order.quantity.0 - remaining, self_trade)
    }

    fn rest(&mut self, order: &NewOrder, remaining: u64, expires_at: u64) {
        let slot = Slot {
            id: order.id.0,
            remaining,
            price: order.price.0,
            expires_at,
            owner: order.owner.0,
            prev: NIL,
            next: NIL,
            side: order.side,
        };
        let at = if self.free_slot == NIL {
            // Slot indices are u32: four billion resting orders would need hundreds of
            // gigabytes of slab before this could wrap.
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        } else {
            let at = self.free_slot;
            self.free_slot = self.slots[at as usize].next;
            self.slots[at as usize] = slot;
            at
        };
        self.index.insert(order.id.0, at);

        let ladder = match order.side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        match ladder.position(order.price.0) {
            Ok(position) => {
                let level = &mut ladder.levels[position];
                let tail = level.tail;
                self.slots[tail as usize].next = at;
                self.slots[at as usize].prev = tail;
                level.tail = at;
                level.total += remaining;
                level.orders += 1;
            }
            Err(position) => ladder.levels.insert(
                position,
                Level {
                    key: order.price.0 ^ ladder.mask,
                    total: remaining,
                    head: at,
                    tail: at,
                    orders: 1,
                },
            ),
        }

        if expires_at != NEVER {
            self.expiring += 1;
            self.expiries.push(Reverse((expires_at, order.id.0)));
            if self.expiries.len() > 2 * self.expiring + EXPIRY_SLACK {
                self.rebuild_expiries();
            }
        }
    }

    /// Drops the heap entries of orders that already left the book.
    fn rebuild_expiries(&mut self) {
        let slots = &self.slots;
        self.expiries = self
            .index
            .slots()
            .map(|slot| &slots[slot as usize])
            .filter(|slot| slot.expires_at != NEVER)
            .map(|slot| Reverse((slot.expires_at, slot.id)))
            .collect();
    }

    /// Takes the slot out of its level and frees it. The caller has already removed
    /// its id from `index`.
    fn unlink(&mut self, at: u32) -> CancelledOrder {
        let slot = self.slots[at as usize];
        let ladder = match slot.side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        // Every resting slot sits in the level of its price.
        if let Ok(position) = ladder.position(slot.price) {
            let level = &mut ladder.levels[position];
            level.total -= slot.remaining;
            level.orders -= 1;
            if slot.prev == NIL {
                level.head = slot.next;
            } else {
                self.slots[slot.prev as usize].next = slot.next;
            }
            if slot.next == NIL {
                level.tail = slot.prev;
            } else {
                self.slots[slot.next as usize].prev = slot.prev;
            }
            if level.orders == 0 {
                ladder.levels.remove(position);
            }
        } else {
            debug_assert!(false, "resting order {} has no level", slot.id);
        }
        if slot.expires_at != NEVER {
            self.expiring -= 1;
        }
        self.slots[at as usize].next = self.free_slot;
        self.free_slot = at;
        CancelledOrder {
            id: OrderId(slot.id),
            owner: AgentId(slot.owner),
            side: slot.side,
            price: Price(slot.price),
            remaining: Quantity(slot.remaining),
        }
    }

    /// Checks every structural invariant; used by the tests after each operation.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        if let (Some(bid), Some(ask)) = (self.best_bid(), self.best_ask()) {
            assert!(bid < ask, "crossed book: bid {bid} >= ask {ask}");
        }
        let mut seen = 0;
        for ladder in [&self.bids, &self.asks] {
            for pair in ladder.levels.windows(2) {
                assert!(pair[0].key < pair[1].key, "levels out of order");
            }
            for level in &ladder.levels {
                assert!(level.orders > 0, "empty level");
                let (mut total, mut orders, mut prev, mut cursor) = (0, 0, NIL, level.head);
                let mut last_id = 0;
                while cursor != NIL {
                    let slot = &self.slots[cursor as usize];
                    assert_eq!(slot.prev, prev);
                    assert_eq!(slot.price, ladder.price_of(level));
                    assert!(slot.remaining > 0);
                    assert!(slot.id > last_id, "FIFO out of arrival order");
                    assert_eq!(self.index.get(slot.id), Some(cursor));
                    last_id = slot.id;
                    total += slot.remaining;
                    orders += 1;
                    prev = cursor;
                    cursor = slot.next;
                }
                assert_eq!(level.tail, prev);
                assert_eq!(level.total, total);
                assert_eq!(level.orders, orders);
                seen += orders as usize;
            }
        }
        assert_eq!(seen, self.index.len());
        let expiring = self
            .index
            .slots()
            .filter(|&slot| self.slots[slot as usize].expires_at != NEVER)
            .count();
        assert_eq!(expiring, self.expiring);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const R: Resource = Resource::CpuCores;

    fn order(id: u64, owner: u32, side: Side, price: u64, quantity: u64) -> NewOrder {
        NewOrder {
            id: OrderId(id),
            owner: AgentId(owner),
            side,
            price: Price(price),
            quantity: Quantity(quantity),
            time_in_force: TimeInForce::Limit { expires_at: None },
        }
    }

    fn ioc(id: u64, owner: u32, side: Side, price: u64, quantity: u64) -> NewOrder {
        NewOrder {
            time_in_force: TimeInForce::ImmediateOrCancel,
            ..order(id, owner, side, price, quantity)
        }
    }

    fn expiring(id: u64, owner: u32, side: Side, price: u64, quantity: u64, at: u64) -> NewOrder {
        NewOrder {
            time_in_force: TimeInForce::Limit {
                expires_at: Some(Tick(at)),
            },
            ..order(id, owner, side, price, quantity)
        }
    }

    fn place(book: &mut OrderBook, order: NewOrder) -> (PlaceOutcome, Vec<Fill>) {
        let mut fills = Vec::new();
        let outcome = book.place(order, Tick(0), &mut fills).unwrap();
        book.assert_invariants();
        (outcome, fills)
    }

    /// (maker order, price, quantity) of each fill.
    fn trades(fills: &[Fill]) -> Vec<(u64, u64, u64)> {
        fills
            .iter()
            .map(|fill| {
                let maker = match fill.aggressor {
                    Side::Bid => fill.sell_order,
                    Side::Ask => fill.buy_order,
                };
                (maker.0, fill.price.0, fill.quantity.0)
            })
            .collect()
    }

    #[test]
    fn price_then_time_priority_at_the_makers_price() {
        let mut book = OrderBook::new(R);
        place(&mut book, order(1, 1, Side::Ask, 10, 5));
        place(&mut book, order(2, 2, Side::Ask, 10, 5));
        place(&mut book, order(3, 3, Side::Ask, 9, 5));
        place(&mut book, order(4, 4, Side::Ask, 11, 5));
        let (outcome, fills) = place(&mut book, order(5, 9, Side::Bid, 10, 12));
        // Best price first (9), then arrival order at 10; all at the maker's price.
        assert_eq!(trades(&fills), vec![(3, 9, 5), (1, 10, 5), (2, 10, 2)]);
        assert_eq!(
            outcome,
            PlaceOutcome {
                filled: Quantity(12),
                resting: Quantity(0),
                cancelled: None
            }
        );
        let fill = fills[0];
        assert_eq!((fill.buyer, fill.seller), (AgentId(9), AgentId(3)));
        assert_eq!((fill.buy_order, fill.sell_order), (OrderId(5), OrderId(3)));
        assert_eq!(fill.aggressor, Side::Bid);
        assert_eq!(book.order(OrderId(2)).unwrap().remaining, Quantity(3));
        assert_eq!(book.best_ask(), Some(Price(10)));
        assert_eq!(book.last_trade_price(), Some(Price(10)));
    }

    #[test]
    fn partial_fill_rests_the_remainder_at_its_limit() {
        let mut book = OrderBook::new(R);
        place(&mut book, order(1, 1, Side::Bid, 20, 4));
        let (outcome, fills) = place(&mut book, order(2, 2, Side::Ask, 18, 10));
        assert_eq!(trades(&fills), vec![(1, 20, 4)]);
        assert_eq!(outcome.filled, Quantity(4));
        assert_eq!(outcome.resting, Quantity(6));
        assert_eq!(book.best_bid(), None);
        assert_eq!(book.best_ask(), Some(Price(18)));
        assert_eq!(
            book.depth(5),
            BookDepth {
                bids: vec![],
                asks: vec![DepthLevel {
                    price: Price(18),
                    quantity: Quantity(6),
                    orders: 1
                }],
            }
        );
    }

    #[test]
    fn immediate_or_cancel_never_rests() {
        let mut book = OrderBook::new(R);
        place(&mut book, order(1, 1, Side::Ask, 10, 3));
        let (outcome, fills) = place(&mut book, ioc(2, 2, Side::Bid, 12, 5));
        assert_eq!(trades(&fills), vec![(1, 10, 3)]);
        assert_eq!(
            outcome.cancelled,
            Some((Quantity(2), CancelReason::IocRemainder))
        );
        assert_eq!(outcome.resting, Quantity(0));
        assert!(book.is_empty());
        let (outcome, fills) = place(&mut book, ioc(3, 2, Side::Bid, 12, 5));
        assert!(fills.is_empty());
        assert_eq!(
            outcome.cancelled,
            Some((Quantity(5), CancelReason::IocRemainder))
        );
    }

    #[test]
    fn self_trade_cancels_the_incoming_remainder() {
        let mut book = OrderBook::new(R);
        place(&mut book, order(1, 1, Side::Ask, 9, 2));
        place(&mut book, order(2, 7, Side::Ask, 10, 5));
        place(&mut book, order(3, 1, Side::Ask, 10, 5));
        // Agent 7 buys: trades with agent 1 at 9, then meets its own ask at 10.
        let (outcome, fills) = place(&mut book, order(4, 7, Side::Bid, 10, 10));
        assert_eq!(trades(&fills), vec![(1, 9, 2)]);
        assert_eq!(outcome.filled, Quantity(2));
        assert_eq!(
            outcome.cancelled,
            Some((Quantity(8), CancelReason::SelfTrade))
        );
        assert_eq!(outcome.resting, Quantity(0));
        // Both resting asks keep their place and size.
        assert_eq!(book.order(OrderId(2)).unwrap().remaining, Quantity(5));
        assert_eq!(book.order(OrderId(3)).unwrap().remaining, Quantity(5));
        assert_eq!(book.best_bid(), None);
    }

    #[test]
    fn expiry_is_inclusive_of_its_tick() {
        let mut book = OrderBook::new(R);
        place(&mut book, expiring(1, 1, Side::Bid, 10, 1, 5));
        place(&mut book, expiring(2, 1, Side::Bid, 11, 1, 3));
        place(&mut book, order(3, 1, Side::Bid, 9, 1));
        let mut expired = Vec::new();
        book.expire(Tick(3), &mut expired);
        assert!(expired.is_empty());
        book.expire(Tick(5), &mut expired);
        assert_eq!(
            expired,
            vec![CancelledOrder {
                id: OrderId(2),
                owner: AgentId(1),
                side: Side::Bid,
                price: Price(11),
                remaining: Quantity(1)
            }]
        );
        book.expire(Tick(6), &mut expired);
        assert_eq!(expired.len(), 2);
        assert_eq!(expired[1].id, OrderId(1));
        assert_eq!(book.len(), 1);
        assert_eq!(book.best_bid(), Some(Price(9)));
        book.assert_invariants();
    }

    #[test]
    fn bad_orders_are_typed_errors_and_change_nothing() {
        let mut book = OrderBook::new(R);
        place(&mut book, order(5, 1, Side::Ask, 10, 1));
        let before = format!("{book:?}");
        let mut fills = Vec::new();
        let cases = [
            (
                order(6, 2, Side::Bid, 10, 0),
                MarketError::QuantityOutOfRange {
                    quantity: Quantity(0),
                    max: Quantity::MAX,
                },
            ),
            (
                order(6, 2, Side::Bid, 0, 1),
                MarketError::PriceOutOfRange {
                    price: Price(0),
                    min: Price::MIN,
                    max: Price::MAX,
                },
            ),
            (
                expiring(6, 2, Side::Bid, 10, 1, 3),
                MarketError::ExpiryInPast {
                    expires_at: Tick(3),
                    now: Tick(4),
                },
            ),
            (
                order(5, 2, Side::Bid, 10, 1),
                MarketError::OrderIdNotIncreasing {
                    id: OrderId(5),
                    last: OrderId(5),
                },
            ),
        ];
        for (bad, error) in cases {
            assert_eq!(book.place(bad, Tick(4), &mut fills), Err(error));
        }
        assert!(fills.is_empty());
        assert_eq!(
            book.cancel(OrderId(99), AgentId(1)),
            Err(MarketError::UnknownOrder(OrderId(99)))
        );
        assert_eq!(
            book.cancel(OrderId(5), AgentId(2)),
            Err(MarketError::NotOwner {
                order: OrderId(5),
                owner: AgentId(1),
                requested_by: AgentId(2)
            })
        );
        assert_eq!(format!("{book:?}"), before);
    }

    #[test]
    fn cancel_unlinks_from_the_middle_of_a_level() {
        let mut book = OrderBook::new(R);
        for id in 1..=3 {
            place(&mut book, order(id, id as u32, Side::Bid, 10, id));
        }
        let cancelled = book.cancel(OrderId(2), AgentId(2)).unwrap();
        assert_eq!(cancelled.remaining, Quantity(2));
        book.assert_invariants();
        let (_, fills) = place(&mut book, order(4, 9, Side::Ask, 10, 4));
        assert_eq!(trades(&fills), vec![(1, 10, 1), (3, 10, 3)]);
        assert!(book.is_empty());
    }

    #[test]
    fn stale_expiry_entries_are_compacted() {
        let mut book = OrderBook::new(R);
        for id in 1..=10_000 {
            place(&mut book, expiring(id, 1, Side::Bid, 10, 1, 1_000_000));
            book.cancel(OrderId(id), AgentId(1)).unwrap();
        }
        assert!(book.expiries.len() <= 2 * book.expiring + EXPIRY_SLACK + 1);
    }

    /// A deliberately simple book: a list in arrival order, searched in full for the
    /// best match each time. The real book must behave exactly like it.
    #[derive(Default)]
    struct NaiveBook {
        resting: Vec<NewOrder>,
    }

    impl NaiveBook {
        fn place(&mut self, order: NewOrder, now: Tick) -> (PlaceOutcome, Vec<Fill>) {
            let mut remaining = order.quantity.0;
            let mut fills = Vec::new();
            let mut self_trade = false;
            while remaining > 0 {
                let best = self
                    .resting
                    .iter()
                    .enumerate()
                    .filter(|(_, maker)| maker.side != order.side)
                    .filter(|(_, maker)| match order.side {
                        Side::Bid => maker.price <= order.price,
                        Side::Ask => maker.price >= order.price,
                    })
                    .min_by_key(|(_, maker)| {
                        let price_rank = match order.side {
                            Side::Bid => maker.price.0,
                            Side::Ask => u64::MAX - maker.price.0,
                        };
                        (price_rank, maker.id)
                    })
                    .map(|(position, _)| position);
                let Some(position) = best else { break };
                let maker = &mut self.resting[position];
                if maker.owner == order.owner {
                    self_trade = true;
                    break;
                }
                let traded = remaining.min(maker.quantity.0);
                maker.quantity.0 -= traded;
                remaining -= traded;
                let (buyer, seller, buy_order, sell_order) = match order.side {
                    Side::Bid => (order.owner, maker.owner, order.id, maker.id),
                    Side::Ask => (maker.owner, order.owner, maker.id, order.id),
                };
                fills.push(Fill {
                    tick: now,
                    resource: R,
                    buyer,
                    seller,
                    buy_order,
                    sell_order,
                    price: maker.price,
                    quantity: Quantity(traded),
                    aggressor: order.side,
                });
                if maker.quantity.0 == 0 {
                    self.resting.remove(position);
                }
            }
            let mut outcome = PlaceOutcome {
                filled: Quantity(order.quantity.0 - remaining),
                resting: Quantity(0),
                cancelled: None,
            };
            if remaining > 0 {
                if self_trade {
                    outcome.cancelled = Some((Quantity(remaining), CancelReason::SelfTrade));
                } else if order.time_in_force == TimeInForce::ImmediateOrCancel {
                    outcome.cancelled = Some((Quantity(remaining), CancelReason::IocRemainder));
                } else {
                    outcome.resting = Quantity(remaining);
                    self.resting.push(NewOrder {
                        quantity: Quantity(remaining),
                        ..order
                    });
                }
            }
            (outcome, fills)
        }

        fn cancel(&mut self, id: OrderId, owner: AgentId) -> Result<CancelledOrder, MarketError> {
            let position = self
                .resting
                .iter()
                .position(|order| order.id == id)
                .ok_or(MarketError::UnknownOrder(id))?;
            if self.resting[position].owner != owner {
                return Err(MarketError::NotOwner {
                    order: id,
                    owner: self.resting[position].owner,
                    requested_by: owner,
                });
            }
            Ok(Self::cancelled(self.resting.remove(position)))
        }

        fn expire(&mut self, now: Tick) -> Vec<CancelledOrder> {
            let mut expired: Vec<NewOrder> = self
                .resting
                .iter()
                .filter(|order| order.expires_at() < now.0)
                .copied()
                .collect();
            expired.sort_by_key(|order| (order.expires_at(), order.id));
            self.resting.retain(|order| order.expires_at() >= now.0);
            expired.into_iter().map(Self::cancelled).collect()
        }

        fn cancelled(order: NewOrder) -> CancelledOrder {
            CancelledOrder {
                id: order.id,
                owner: order.owner,
                side: order.side,
                price: order.price,
                remaining: order.quantity,
            }
        }

        fn depth(&self) -> BookDepth {
            let mut depth = BookDepth::default();
            for side in [Side::Bid, Side::Ask] {
                let mut levels: Vec<DepthLevel> = Vec::new();
                let mut orders: Vec<&NewOrder> = self
                    .resting
                    .iter()
                    .filter(|order| order.side == side)
                    .collect();
                orders.sort_by_key(|order| match side {
                    Side::Bid => u64::MAX - order.price.0,
                    Side::Ask => order.price.0,
                });
                for order in orders {
                    match levels.last_mut() {
                        Some(level) if level.price == order.price => {
                            level.quantity.0 += order.quantity.0;
                            level.orders += 1;
                        }
                        _ => levels.push(DepthLevel {
                            price: order.price,
                            quantity: order.quantity,
                            orders: 1,
                        }),
                    }
                }
                match side {
                    Side::Bid => depth.bids = levels,
                    Side::Ask => depth.asks = levels,
                }
            }
            depth
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Place {
            owner: u32,
            side: Side,
            price: u64,
            quantity: u64,
            /// 0: IOC, 1: no expiry, 2..: expires `n - 2` ticks from now.
            time_in_force: u8,
        },
        Cancel {
            pick: usize,
            by_owner: bool,
        },
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4u32, any::<bool>(), 95..106u64, 1..20u64, 0..6u8).prop_map(
                |(owner, bid, price, quantity, time_in_force)| Op::Place {
                    owner,
                    side: if bid { Side::Bid } else { Side::Ask },
                    price,
                    quantity,
                    time_in_force,
                }
            ),
            2 => (any::<usize>(), prop::bool::weighted(0.8))
                .prop_map(|(pick, by_owner)| Op::Cancel { pick, by_owner }),
            1 => (0..3u64).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The book matches exactly like the naive reference, is never crossed, and
        /// every order's quantity is conserved.
        #[test]
        fn matches_like_the_reference_model(ops in prop::collection::vec(op(), 1..250)) {
            let mut book = OrderBook::new(R);
            let mut naive = NaiveBook::default();
            let mut now = Tick(0);
            let mut next_id = 1;
            // id → (owner, original, filled, cancelled)
            let mut ledger: Vec<(AgentId, u64, u64, u64)> = vec![(AgentId(0), 0, 0, 0)];
            let mut fills = Vec::new();
            for op in ops {
                match op {
                    Op::Place { owner, side, price, quantity, time_in_force } => {
                        let time_in_force = match time_in_force {
                            0 => TimeInForce::ImmediateOrCancel,
                            1 => TimeInForce::Limit { expires_at: None },
                            n => TimeInForce::Limit { expires_at: Some(now.plus(u64::from(n) - 2)) },
                        };
                        let new = NewOrder {
                            id: OrderId(next_id),
                            owner: AgentId(owner),
                            side,
                            price: Price(price),
                            quantity: Quantity(quantity),
                            time_in_force,
                        };
                        next_id += 1;
                        ledger.push((AgentId(owner), quantity, 0, 0));
                        fills.clear();
                        let outcome = book.place(new, now, &mut fills).unwrap();
                        let (expected_outcome, expected_fills) = naive.place(new, now);
                        prop_assert_eq!(outcome, expected_outcome);
                        prop_assert_eq!(&fills, &expected_fills);
                        for fill in &fills {
                            ledger[fill.buy_order.0 as usize].2 += fill.quantity.0;
                            ledger[fill.sell_order.0 as usize].2 += fill.quantity.0;
                        }
                        if let Some((cancelled, _)) = outcome.cancelled {
                            ledger[new.id.0 as usize].3 += cancelled.0;
                        }
                    }
                    Op::Cancel { pick, by_owner } => {
                        let id = OrderId((pick % ledger.len()) as u64);
                        let owner = ledger[id.0 as usize].0;
                        let owner = if by_owner { owner } else { AgentId(owner.0 + 1) };
                        let result = book.cancel(id, owner);
                        prop_assert_eq!(&result, &naive.cancel(id, owner));
                        if let Ok(cancelled) = result {
                            ledger[id.0 as usize].3 += cancelled.remaining.0;
                        }
                    }
                    Op::Advance(ticks) => {
                        now = now.plus(ticks);
                        let mut expired = Vec::new();
                        book.expire(now, &mut expired);
                        prop_assert_eq!(&expired, &naive.expire(now));
                        for order in expired {
                            ledger[order.id.0 as usize].3 += order.remaining.0;
                        }
                    }
                }
                book.assert_invariants();
                prop_assert_eq!(book.depth(usize::MAX), naive.depth());
            }
            for (id, (_, original, filled, cancelled)) in ledger.iter().enumerate().skip(1) {
                let resting = book.order(OrderId(id as u64)).map_or(0, |order| order.remaining.0);
                prop_assert_eq!(*original, filled + cancelled + resting, "order {}", id);
            }
        }
    }
}
