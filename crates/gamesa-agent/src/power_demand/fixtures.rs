//! Fixtures shared by the power-demand unit tests: default params, a GPU bound by its
//! limit, and readers of the intents a tick returns.

use gamesa_proto::{
    Actuation, AgentId, ComponentKind, ComponentTelemetry, Price, Quantity, Resource, Side,
};

use super::{PowerDemand, PowerDemandParams};
use crate::{
    Intent,
    testkit::{World, component_with_limits},
};

pub(super) const ME: AgentId = AgentId(1);

pub(super) fn params() -> PowerDemandParams {
    PowerDemandParams {
        component: "gpu0".into(),
        baseline_mw: None,
        max_mw: None,
        power_price: 4,
        headroom_price: 2,
        step_mw: 1_000,
        idle_permille: 200,
        saturated_permille: 900,
        bound_permille: 900,
        r_c_per_w: Some(0.2),
        ambient_mc: Some(25_000),
        thermal_margin_mc: 4_000,
        performance_boost_permille: 1_000,
        efficiency_damping_permille: 500,
        thermal_damping_permille: 750,
        standby: false,
    }
}

/// A GPU with limits 100..300 W, bound by its limit, at `utilization` ‰.
pub(super) fn gpu(utilization: u16, limit_mw: u64) -> ComponentTelemetry {
    ComponentTelemetry {
        utilization_permille: utilization,
        power_mw: Some(limit_mw),
        limit_mw: Some(limit_mw),
        ..component_with_limits("gpu0", ComponentKind::Gpu)
    }
}

/// The bids for `resource`: the price of the first (the dearest tranche) and the
/// total quantity of all.
pub(super) fn bid(intents: &[Intent], resource: Resource) -> Option<(Price, Quantity)> {
    let bids = ladder(intents, resource);
    let (price, _) = *bids.first()?;
    Some((price, Quantity(bids.iter().map(|(_, q)| q.0).sum())))
}

pub(super) fn ladder(intents: &[Intent], resource: Resource) -> Vec<(Price, Quantity)> {
    intents
        .iter()
        .filter_map(|intent| match intent {
            Intent::Place(order) if order.resource == resource && order.side == Side::Bid => {
                Some((order.price, order.quantity))
            }
            _ => None,
        })
        .collect()
}

pub(super) fn limit(intents: &[Intent]) -> Option<u64> {
    intents.iter().find_map(|intent| match intent {
        Intent::Actuate(Actuation::PowerLimit { limit_mw, .. }) => Some(*limit_mw),
        _ => None,
    })
}

pub(super) fn decide(params: PowerDemandParams, world: &World) -> Vec<Intent> {
    PowerDemand::new(params, 1).decide(&world.observation(ME))
}
