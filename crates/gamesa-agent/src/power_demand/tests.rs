//! Tests of the whole demand side, tick by tick: missing or extreme telemetry never
//! panics, and the same observation always gives the same intents.

use gamesa_proto::{
    ComponentKind, ComponentTelemetry, Credits, Domain, Price, Quantity, Resource, Tick,
};

use super::fixtures::{ME, bid, decide, gpu, limit, params};
use super::{PowerDemand, PowerDemandParams};
use crate::{
    Intent,
    testkit::{World, component, component_with_limits, lease, signal},
};

#[test]
fn missing_telemetry_gives_no_bid_and_no_panic() {
    // No component at all.
    assert_eq!(decide(params(), &World::with_components(vec![])), vec![]);
    // No limits known: no baseline, no max.
    let bare = World::with_components(vec![ComponentTelemetry {
        utilization_permille: 1000,
        ..component("gpu0", ComponentKind::Gpu)
    }]);
    assert_eq!(decide(params(), &bare), vec![]);
    // Limits known but no readings: bids by utilization, and asks for its limit once.
    let mut partial = bare.clone();
    partial.components_mut()[0].limit_min_mw = Some(100_000);
    partial.components_mut()[0].limit_max_mw = Some(300_000);
    let mut demand = PowerDemand::new(params(), 1);
    let intents = demand.decide(&partial.observation(ME));
    assert_eq!(limit(&intents), Some(100_000));
    assert!(bid(&intents, Resource::PowerBudgetMw).is_some());
    assert_eq!(limit(&demand.decide(&partial.observation(ME))), None);
}

#[test]
fn extreme_telemetry_does_not_panic() {
    let world = World::with_components(vec![ComponentTelemetry {
        utilization_permille: u16::MAX,
        power_mw: Some(u64::MAX),
        temp_mc: Some(i32::MAX),
        t_max_mc: Some(i32::MIN),
        limit_mw: Some(u64::MAX),
        limit_min_mw: Some(0),
        limit_max_mw: Some(u64::MAX),
        ..component_with_limits("gpu0", ComponentKind::Gpu)
    }]);
    let mut demand = PowerDemand::new(
        PowerDemandParams {
            r_c_per_w: None,
            ..params()
        },
        1,
    );
    let mut extreme = world.clone();
    extreme.balance = Credits(u64::MAX);
    extreme.leases = vec![
        lease(ME, Resource::PowerBudgetMw, Quantity::MAX.0, Tick(u64::MAX)),
        lease(ME, Resource::PowerBudgetMw, Quantity::MAX.0, Tick(u64::MAX)),
    ];
    for world in [&world, &extreme] {
        for intent in demand.decide(&world.observation(ME)) {
            if let Intent::Place(order) = intent {
                assert!(order.price >= Price::MIN && order.price <= Price::MAX);
                assert!(order.quantity.0 >= 1 && order.quantity <= Quantity::MAX);
            }
        }
    }
    let zero = World::with_components(vec![ComponentTelemetry {
        power_mw: Some(0),
        limit_mw: Some(0),
        temp_mc: Some(0),
        ..gpu(1000, 0)
    }]);
    demand.decide(&zero.observation(ME));
}

#[test]
fn same_observation_gives_same_intents() {
    let mut world = World::with_components(vec![gpu(730, 140_000)]);
    world.signals = vec![
        signal("game_started", Domain::Performance, 800),
        signal("thermal_warning.gpu0", Domain::Thermal, 300),
    ];
    world.leases = vec![lease(
        ME,
        Resource::PowerBudgetMw,
        40_000,
        world.tick.plus(2),
    )];
    let first = decide(params(), &world);
    assert_eq!(first, decide(params(), &world));
    assert!(!first.is_empty());
}
