//! The leader's work per cluster epoch: clearing 1,000 nodes' orders (16 bid steps
//! each, as many as a node that knows its job's end sends) into grants, under each
//! split, and the MessagePack encoding of one order and one grant (what a node sends
//! and receives per epoch). At 1 Hz epochs, the clearing time per epoch is the
//! leader's share of a core spent deciding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, hint::black_box};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gamesa_fleet::{BidStep, Leader, LeaderSettings, Order, Split, Term};

const NODES: usize = 1_000;

fn orders(request: u64) -> Vec<Order> {
    (0..NODES)
        .map(|index| {
            let mixed = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            Order {
                node: format!("node{index:04}"),
                request,
                draw_mw: 300_000 + mixed % 200_000,
                weight: 1,
                bids: (0..16)
                    .map(|step| BidStep {
                        mw: 10_000 + (mixed >> (4 * step)) % 20_000,
                        price: 4_000 - 200 * step - (mixed >> 40) % 150,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn clear(c: &mut Criterion) {
    let settings = LeaderSettings {
        budget_mw: 500_000 * NODES as u64,
        lease_ms: 3_000,
        margin_ms: 200,
    };
    let safe: BTreeMap<String, u64> = (0..NODES)
        .map(|index| (format!("node{index:04}"), 300_000))
        .collect();
    let mut group = c.benchmark_group("fleet/clear_1000_nodes");
    for split in [Split::Market, Split::Proportional, Split::Static] {
        let batches: Vec<Vec<Order>> = (0..4).map(orders).collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{split:?}").to_lowercase()),
            &split,
            |b, &split| {
                let mut leader =
                    Leader::take_office(settings, Term(1), split, safe.clone(), 0, u64::MAX / 2)
                        .unwrap();
                let mut now = 3_200;
                b.iter(|| {
                    let grants = leader.clear(now, &batches[(now / 1_000 % 4) as usize]);
                    now += 1_000;
                    black_box(grants)
                });
            },
        );
    }
    group.finish();

    let order = &orders(1)[7];
    let grant = gamesa_fleet::Grant {
        node: order.node.clone(),
        term: Term(3),
        request: 1,
        mw: 42_000,
        ttl_ms: 3_000,
        trace: None,
    };
    let bytes = (
        rmp_serde::to_vec_named(order).unwrap().len(),
        rmp_serde::to_vec_named(&grant).unwrap().len(),
    );
    println!(
        "fleet/message_bytes: order {} B, grant {} B",
        bytes.0, bytes.1
    );
    c.bench_function("fleet/encode_order", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(order)).unwrap())
    });
}

criterion_group!(benches, clear);
criterion_main!(benches);
