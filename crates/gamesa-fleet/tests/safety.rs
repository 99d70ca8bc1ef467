//! The promise of fleet mode, checked on random fleets: at every instant, the caps the
//! nodes themselves compute add up to no more than the cluster budget, whatever fails;
//! and a node that hears nothing for a lease is back at its safe share.
//!
//! Time runs in 50 ms steps of a real clock that nobody reads: each node and each
//! leader reads its own monotonic clock, offset from the real one by up to ten
//! minutes. Terms follow one another as a key-value lease allows (a term's mandate
//! starts no earlier than the last one's ended), and a leader whose mandate ended
//! keeps trying to clear orders, as a process that lost its lease unawares would.
//! Every order reaches every leader, live or not; each grant is lost, or arrives late
//! by up to two leases (and out of order); some nodes are cut off for a stretch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use gamesa_fleet::{BidStep, Grant, Leader, LeaderSettings, NodeLeases, Order, Split, Term};
use proptest::prelude::*;

const STEP_MS: u64 = 50;

#[derive(Debug, Clone)]
struct Fleet {
    budget_mw: u64,
    lease_ms: u64,
    margin_ms: u64,
    epoch_ms: u64,
    split: Split,
    /// Per node: safe share, clock offset, and a stretch of real time it is cut off.
    nodes: Vec<(u64, u64, (u64, u64))>,
    /// Per term: start and end of its mandate (real ms), and its clock offset.
    terms: Vec<(u64, u64, u64)>,
    /// Per (epoch, node): demand in mW and price; the fate of its grants: lost, or
    /// delayed by this many steps.
    demand: Vec<Vec<(u64, u64, Option<u64>)>>,
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (
        2usize..8,
        1u64..40,
        prop::sample::select(vec![Split::Market, Split::Static, Split::Proportional]),
        2u64..8,
        1u64..4,
        10u64..30,
    )
        .prop_flat_map(
            |(count, lease_steps, split, epoch_steps, margin_steps, epochs)| {
                let lease_ms = (lease_steps + 2 * margin_steps + 1) * STEP_MS;
                let margin_ms = margin_steps * STEP_MS;
                let epoch_ms = epoch_steps * STEP_MS;
                let horizon = epochs * epoch_ms;
                let node = (0u64..200_000, 0u64..12_000, (0..horizon, 0..horizon / 2)).prop_map(
                    |(safe, offset, (cut, length))| (safe, offset * STEP_MS, (cut, cut + length)),
                );
                let terms =
                    prop::collection::vec((0u64..horizon / 4, 1u64..horizon, 0u64..12_000), 1..5)
                        .prop_map(|gaps| {
                            // Mandates one after another, each after a gap (a failover).
                            let mut at = 0;
                            gaps.into_iter()
                                .map(|(gap, length, offset)| {
                                    let start = (at + gap) / STEP_MS * STEP_MS;
                                    let end = (start + length) / STEP_MS * STEP_MS + STEP_MS;
                                    at = end;
                                    (start, end, offset * STEP_MS)
                                })
                                .collect::<Vec<_>>()
                        });
                let fate = prop_oneof![
                    1 => Just(None),
                    4 => (0u64..(2 * lease_ms / STEP_MS)).prop_map(Some),
                ];
                let demand = prop::collection::vec(
                    prop::collection::vec((0u64..400_000, 1u64..1_000, fate), count),
                    epochs as usize,
                );
                (
                    prop::collection::vec(node, count),
                    terms,
                    demand,
                    200_000u64..1_500_000,
                )
                    .prop_map(move |(nodes, terms, demand, spare)| {
                        let safe: u64 = nodes.iter().map(|(safe, _, _)| safe).sum();
                        Fleet {
                            budget_mw: safe + spare,
                            lease_ms,
                            margin_ms,
                            epoch_ms,
                            split,
                            nodes,
                            terms,
                            demand,
                        }
                    })
            },
        )
}

fn name(index: usize) -> String {
    format!("node{index}")
}

/// Runs `fleet`, checking the promises at every step; returns how many grants nodes
/// took, so that a run that granted nothing can be told from one that held.
fn run(fleet: &Fleet) -> Result<usize, TestCaseError> {
    let settings = LeaderSettings {
        budget_mw: fleet.budget_mw,
        lease_ms: fleet.lease_ms,
        margin_ms: fleet.margin_ms,
    };
    let safe: BTreeMap<String, u64> = fleet
        .nodes
        .iter()
        .enumerate()
        .map(|(index, (safe, _, _))| (name(index), *safe))
        .collect();
    let mut nodes: Vec<NodeLeases> = fleet
        .nodes
        .iter()
        .enumerate()
        .map(|(index, (safe, _, _))| {
            NodeLeases::new(name(index), *safe, fleet.lease_ms, fleet.margin_ms)
        })
        .collect();
    let mut leaders: Vec<Option<Leader>> = vec![None; fleet.terms.len()];
    // (real ms of delivery, node, grant)
    let mut in_flight: Vec<(u64, usize, Grant)> = Vec::new();
    // Per node: the local time of the last order a grant was accepted for.
    let mut last_granted: Vec<Option<u64>> = vec![None; nodes.len()];
    let mut accepted = 0;
    let horizon = fleet.demand.len() as u64 * fleet.epoch_ms + 3 * fleet.lease_ms;
    let cut = |node: usize, now: u64| {
        let (_, _, (from, to)) = fleet.nodes[node];
        (from..to).contains(&now)
    };
    let mut asked_at: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    for now in (0..horizon).step_by(STEP_MS as usize) {
        let local = |offset: u64| now + offset;
        for (term, (start, end, offset)) in fleet.terms.iter().enumerate() {
            if now == *start {
                leaders[term] = Some(
                    Leader::take_office(
                        settings,
                        Term(term as u64 + 1),
                        fleet.split,
                        safe.clone(),
                        local(*offset),
                        local(*offset) + (end - start),
                    )
                    .unwrap(),
                );
            }
        }
        // Grants arriving now.
        let (due, later): (Vec<_>, Vec<_>) =
            in_flight.into_iter().partition(|(at, _, _)| *at <= now);
        in_flight = later;
        for (_, node, grant) in due {
            let node_now = local(fleet.nodes[node].1);
            if !cut(node, now) && nodes[node].accept(&grant, node_now).is_ok() {
                accepted += 1;
                let asked = asked_at.get(&(node, grant.request)).copied();
                last_granted[node] = last_granted[node].max(asked);
            }
        }
        // An epoch: every node that is not cut off orders; every leader hears it.
        if now % fleet.epoch_ms == 0 && ((now / fleet.epoch_ms) as usize) < fleet.demand.len() {
            let epoch = (now / fleet.epoch_ms) as usize;
            let mut orders = Vec::new();
            for (index, node) in nodes.iter_mut().enumerate() {
                if cut(index, now) {
                    continue;
                }
                let node_now = local(fleet.nodes[index].1);
                let request = node.ask(node_now);
                asked_at.insert((index, request), node_now);
                let (mw, price, _) = fleet.demand[epoch][index];
                orders.push(Order {
                    node: name(index),
                    request,
                    draw_mw: 0,
                    weight: 1,
                    bids: vec![BidStep { mw, price }],
                });
            }
            for (term, leader) in leaders.iter_mut().enumerate() {
                let Some(leader) = leader else { continue };
                let leader_now = local(fleet.terms[term].2);
                for grant in leader.clear(leader_now, &orders) {
                    let node: usize = grant.node["node".len()..].parse().unwrap();
                    if let (_, _, Some(delay)) = fleet.demand[epoch][node] {
                        in_flight.push((now + delay * STEP_MS, node, grant));
                    }
                }
            }
        }
        // The promise, on the nodes' own clocks.
        let caps: u64 = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| node.cap_mw(local(fleet.nodes[index].1)))
            .sum();
        prop_assert!(
            caps <= fleet.budget_mw,
            "at {now} ms the caps add up to {caps} mW, over the budget of {} mW",
            fleet.budget_mw
        );
        for (index, node) in nodes.iter().enumerate() {
            let node_now = local(fleet.nodes[index].1);
            let heard = last_granted[index].is_some_and(|asked| node_now < asked + fleet.lease_ms);
            if !heard {
                prop_assert_eq!(
                    node.cap_mw(node_now),
                    node.safe_share_mw(),
                    "node {} heard nothing for a lease at {} ms",
                    index,
                    now
                );
            }
        }
    }
    Ok(accepted)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_caps_never_add_up_to_more_than_the_budget(fleet in fleet()) {
        run(&fleet)?;
    }
}

#[test]
fn a_quiet_fleet_hands_out_its_pool_and_a_failover_waits_out_the_old_leases() {
    let fleet = Fleet {
        budget_mw: 1_000_000,
        lease_ms: 3_000,
        margin_ms: 200,
        epoch_ms: 1_000,
        split: Split::Market,
        nodes: vec![(100_000, 0, (0, 0)), (100_000, 7_000, (0, 0))],
        // The first leader's mandate ends at 10 s; the second takes office at 12 s and
        // may grant from 15.2 s.
        terms: vec![(0, 10_000, 0), (12_000, 60_000, 123_000)],
        demand: vec![vec![(600_000, 5, Some(1)), (600_000, 3, Some(1))]; 30],
    };
    assert!(run(&fleet).unwrap() > 20);
}
