#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The order book on a seeded stream of 1,000,000 mixed operations, against `lobster`.
//!
//! The stream: 70 % passive limit orders that never cross (bids below a fixed mid,
//! asks above it, most within a few levels of the top), 20 % cancels of a live order,
//! 10 % aggressive orders that cross, sized so the book stays near 5,000 resting
//! orders (about 60 per level near the top). It is generated up front with a splitmix64
//! PRNG, and the same stream runs through `gamesa_market::OrderBook`,
//! `gamesa_market::Exchange` (validation, events, escrow data, pools and leases; the
//! clock advances every 100 operations, so leases expire; asks come from 8 seller
//! agents, bids from 1000 buyers) and `lobster::OrderBook`. An aggressive order is an immediate-or-cancel order priced
//! beyond every passive level for GAMESA and a market order for lobster, which match
//! identically. Every order has its own owner, so self-trade prevention never fires.
//!
//! Criterion reports throughput; a separate pass times every operation with
//! `Instant` and prints p50 / p99 / p99.9 (timer overhead included, printed too).
//!
//! ```sh
//! cargo bench -p gamesa-market --bench exchange -- --warm-up-time 1 --measurement-time 5
//! ```

use std::{hint::black_box, time::Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gamesa_market::{Exchange, MarketEvent, NewOrder, OrderBook};
use gamesa_proto::{
    AgentId, Fill, OrderId, OrderRequest, Price, Quantity, Resource, Side, Tick, TimeInForce,
};

const OPERATIONS: usize = 1_000_000;
const SEED: u64 = 0x6A4D_E5A0_2026_0001;
const MID: u64 = 1_000_000;
/// Aggressive orders are priced this far through the mid: beyond every passive level.
const THROUGH: u64 = 1_000;
const RESOURCE: Resource = Resource::PowerBudgetMw;
/// Resting orders the stream keeps the book near: aggressive sizes follow the depth,
/// so the book neither drains nor grows without bound.
const TARGET_RESTING: u64 = 5_000;
/// Room reserved up front in each book: about three times the steady depth.
const PREALLOCATED_ORDERS: usize = 1 << 14;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn side(&mut self) -> Side {
        if self.next() & 1 == 0 {
            Side::Bid
        } else {
            Side::Ask
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Place {
        id: u64,
        side: Side,
        price: u64,
        quantity: u64,
    },
    Cancel {
        id: u64,
        /// Lets the exchange run derive the owner without a lookup.
        side: Side,
    },
    Aggress {
        id: u64,
        side: Side,
        quantity: u64,
    },
}

fn owner_of(id: u64) -> AgentId {
    AgentId(id as u32)
}

/// Generates the stream, replaying it on a GAMESA book to know which orders are
/// still live when a cancel is drawn.
fn stream() -> Vec<Op> {
    let mut rng = SplitMix64(SEED);
    let mut book = OrderBook::with_capacity(RESOURCE, PREALLOCATED_ORDERS);
    let mut fills = Vec::new();
    let mut live: Vec<(u64, Side)> = Vec::new();
    let mut ops = Vec::with_capacity(OPERATIONS);
    let mut next_id = 1;
    while ops.len() < OPERATIONS {
        let roll = rng.below(100);
        let op = if roll < 70 || (roll < 90 && live.is_empty()) {
            let side = rng.side();
            // Triangular offset 1..=39 ticks from the mid: dense near the top.
            let offset = 1 + rng.below(20) + rng.below(20);
            let price = match side {
                Side::Bid => MID - offset,
                Side::Ask => MID + offset,
            };
            let op = Op::Place {
                id: next_id,
                side,
                price,
                quantity: 1 + rng.below(10),
            };
            live.push((next_id, side));
            next_id += 1;
            op
        } else if roll < 90 {
            // Draw until a still-live order comes up; filled ones are dropped lazily.
            loop {
                let at = rng.below(live.len() as u64) as usize;
                let (id, side) = live.swap_remove(at);
                if book.order(OrderId(id)).is_some() || live.is_empty() {
                    break Op::Cancel { id, side };
                }
            }
        } else {
            // Mean size ~27 units at the target depth: what balances the passive flow.
            let largest = (54 * book.len() as u64 / TARGET_RESTING).clamp(2, 200);
            let op = Op::Aggress {
                id: next_id,
                side: rng.side(),
                quantity: 1 + rng.below(largest),
            };
            next_id += 1;
            op
        };
        fills.clear();
        apply_gamesa(&mut book, op, &mut fills);
        ops.push(op);
    }
    ops
}

#[inline(always)]
fn apply_gamesa(book: &mut OrderBook, op: Op, fills: &mut Vec<Fill>) {
    match op {
        Op::Place {
            id,
            side,
            price,
            quantity,
        } => {
            let order = NewOrder {
                id: OrderId(id),
                owner: owner_of(id),
                side,
                price: Price(price),
                quantity: Quantity(quantity),
                time_in_force: TimeInForce::Limit { expires_at: None },
            };
            black_box(book.place(order, Tick(0), fills).ok());
        }
        Op::Cancel { id, .. } => {
            black_box(book.cancel(OrderId(id), owner_of(id)).ok());
        }
        Op::Aggress { id, side, quantity } => {
            let price = match side {
                Side::Bid => MID + THROUGH,
                Side::Ask => MID - THROUGH,
            };
            let order = NewOrder {
                id: OrderId(id),
                owner: owner_of(id),
                side,
                price: Price(price),
                quantity: Quantity(quantity),
                time_in_force: TimeInForce::ImmediateOrCancel,
            };
            black_box(book.place(order, Tick(0), fills).ok());
        }
    }
}

/// Operations per tick in the exchange run: the clock advances every so often, so
/// leases (10 ticks by default) expire as they would in the daemon instead of piling
/// up for the whole stream.
const OPS_PER_TICK: usize = 100;

#[inline(always)]
fn apply_exchange(exchange: &mut Exchange, at: usize, op: Op, events: &mut Vec<MarketEvent>) {
    events.clear();
    if at.is_multiple_of(OPS_PER_TICK) {
        let now = Tick((at / OPS_PER_TICK) as u64);
        exchange.advance_to(now, events).unwrap();
    }
    match op {
        Op::Place {
            id,
            side,
            price,
            quantity,
        } => {
            let request = OrderRequest::limit(
                exchange_owner(id, side),
                RESOURCE,
                side,
                Price(price),
                Quantity(quantity),
                None,
            );
            black_box(exchange.place(id, request, events).ok());
        }
        Op::Cancel { id, side } => {
            // Every order of the stream is accepted, so the exchange numbers them
            // exactly as the stream does.
            black_box(
                exchange
                    .cancel(exchange_owner(id, side), OrderId(id), events)
                    .ok(),
            );
        }
        Op::Aggress { id, side, quantity } => {
            let price = match side {
                Side::Bid => MID + THROUGH,
                Side::Ask => MID - THROUGH,
            };
            let request = OrderRequest::immediate(
                exchange_owner(id, side),
                RESOURCE,
                side,
                Price(price),
                Quantity(quantity),
            );
            black_box(exchange.place(id, request, events).ok());
        }
    }
}

/// Seller agents in the exchange run. In GAMESA the sellers are the few hardware
/// agents and the buyers are many workloads; the exchange only takes asks from
/// sellers that registered capacity.
const SELLERS: u64 = 8;

/// Asks come from the sellers, bids from 1000 buyer agents. No agent is on both
/// sides, so self-trade prevention never fires here either.
fn exchange_owner(id: u64, side: Side) -> AgentId {
    match side {
        Side::Ask => AgentId((id % SELLERS) as u32),
        Side::Bid => AgentId((SELLERS + id % 1000) as u32),
    }
}

fn new_exchange() -> Exchange {
    let mut exchange = Exchange::default();
    let mut events = Vec::new();
    for seller in 0..SELLERS {
        exchange
            .set_capacity(AgentId(seller as u32), RESOURCE, Quantity::MAX, &mut events)
            .unwrap();
    }
    exchange
}

#[inline(always)]
fn apply_lobster(book: &mut lobster::OrderBook, op: Op) {
    let side = |side: Side| match side {
        Side::Bid => lobster::Side::Bid,
        Side::Ask => lobster::Side::Ask,
    };
    let order = match op {
        Op::Place {
            id,
            side: order_side,
            price,
            quantity,
        } => lobster::OrderType::Limit {
            id: u128::from(id),
            side: side(order_side),
            qty: quantity,
            price,
        },
        Op::Cancel { id, .. } => lobster::OrderType::Cancel { id: u128::from(id) },
        Op::Aggress {
            id,
            side: order_side,
            quantity,
        } => lobster::OrderType::Market {
            id: u128::from(id),
            side: side(order_side),
            qty: quantity,
        },
    };
    black_box(book.execute(order));
}

fn new_lobster() -> lobster::OrderBook {
    lobster::OrderBook::new(PREALLOCATED_ORDERS, 10, false)
}

/// Times every operation and prints the percentiles.
fn latency_pass(name: &str, ops: &[Op], mut apply: impl FnMut(usize, Op)) {
    let mut nanos: Vec<u64> = Vec::with_capacity(ops.len());
    let pass = Instant::now();
    for (at, &op) in ops.iter().enumerate() {
        let start = Instant::now();
        apply(at, op);
        nanos.push(start.elapsed().as_nanos() as u64);
    }
    let elapsed = pass.elapsed();
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() as f64 * q) as usize).min(nanos.len() - 1)];
    println!(
        "latency {name:<16} p50 {:>6} ns  p99 {:>6} ns  p99.9 {:>7} ns  max {:>9} ns  \
         (timed pass: {:.2} M ops/s)",
        at(0.50),
        at(0.99),
        at(0.999),
        nanos[nanos.len() - 1],
        ops.len() as f64 / elapsed.as_secs_f64() / 1e6,
    );
}

fn timer_overhead() -> u64 {
    let mut nanos: Vec<u64> = (0..100_000)
        .map(|_| {
            let start = Instant::now();
            start.elapsed().as_nanos() as u64
        })
        .collect();
    nanos.sort_unstable();
    nanos[nanos.len() / 2]
}

fn bench(c: &mut Criterion) {
    let ops = stream();
    let count = |f: fn(&Op) -> bool| ops.iter().filter(|op| f(op)).count();
    println!(
        "stream: {} ops = {} place, {} cancel, {} aggressive (seed {SEED:#x})",
        ops.len(),
        count(|op| matches!(op, Op::Place { .. })),
        count(|op| matches!(op, Op::Cancel { .. })),
        count(|op| matches!(op, Op::Aggress { .. })),
    );

    // Both books end in the same state: the stream means the same thing to both.
    let mut gamesa = OrderBook::with_capacity(RESOURCE, PREALLOCATED_ORDERS);
    let mut fills = Vec::new();
    let mut traded = 0;
    for &op in &ops {
        fills.clear();
        apply_gamesa(&mut gamesa, op, &mut fills);
        traded += fills.iter().map(|fill| fill.quantity.0).sum::<u64>();
    }
    let mut reference = new_lobster();
    for &op in &ops {
        apply_lobster(&mut reference, op);
    }
    let depth = reference.depth(100);
    let resting = |levels: &[lobster::BookLevel]| levels.iter().map(|level| level.qty).sum::<u64>();
    let ours = gamesa.depth(usize::MAX);
    let our_resting = |levels: &[gamesa_market::DepthLevel]| {
        levels.iter().map(|level| level.quantity.0).sum::<u64>()
    };
    assert_eq!(gamesa.best_bid().map(|price| price.0), reference.max_bid());
    assert_eq!(gamesa.best_ask().map(|price| price.0), reference.min_ask());
    assert_eq!(our_resting(&ours.bids), resting(&depth.bids));
    assert_eq!(our_resting(&ours.asks), resting(&depth.asks));
    println!(
        "end state: {} resting orders, {} units traded; identical best prices and depth in both books",
        gamesa.len(),
        traded
    );

    println!(
        "timer overhead (Instant::now + elapsed, median): {} ns",
        timer_overhead()
    );
    {
        let mut book = OrderBook::with_capacity(RESOURCE, PREALLOCATED_ORDERS);
        let mut fills = Vec::new();
        latency_pass("gamesa book", &ops, |_, op| {
            fills.clear();
            apply_gamesa(&mut book, op, &mut fills);
        });
    }
    {
        let mut exchange = new_exchange();
        let mut events = Vec::new();
        latency_pass("gamesa exchange", &ops, |at, op| {
            apply_exchange(&mut exchange, at, op, &mut events)
        });
    }
    {
        let mut book = new_lobster();
        latency_pass("lobster", &ops, |_, op| apply_lobster(&mut book, op));
    }

    let mut group = c.benchmark_group("mixed_1m");
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.sample_size(10);
    group.bench_function("gamesa_book", |b| {
        b.iter_batched_ref(
            || {
                (
                    OrderBook::with_capacity(RESOURCE, PREALLOCATED_ORDERS),
                    Vec::with_capacity(64),
                )
            },
            |(book, fills)| {
                for &op in &ops {
                    fills.clear();
                    apply_gamesa(book, op, fills);
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("gamesa_exchange", |b| {
        b.iter_batched_ref(
            || (new_exchange(), Vec::with_capacity(256)),
            |(exchange, events)| {
                for (at, &op) in ops.iter().enumerate() {
                    apply_exchange(exchange, at, op, events);
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("lobster", |b| {
        b.iter_batched_ref(
            new_lobster,
            |book| {
                for &op in &ops {
                    apply_lobster(book, op);
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
