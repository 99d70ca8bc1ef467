//! What a node asks the fleet for, read from its own telemetry and market: the pool
//! beyond its safe share it could use, and what that is worth to it.

use gamesa_proto::TelemetryFrame;

use crate::BidStep;

/// How close to its cap a node draws before it counts as held back by it.
const CAP_BOUND_PERMILLE: u64 = 950;
/// A node that is not held back asks for its draw plus this much headroom.
const HEADROOM_PERMILLE: u64 = 100;

/// Steps that keep what a node uses outrank every step that asks for more: the pool
/// first covers the power nodes draw, then goes where it is held back and most valued.
pub const KEEP_TIER: u64 = 1_000_000_000_000_000;

/// The node's bid for the coming epoch, in two steps beyond its safe share:
/// - **keep**: its draw plus 10 % headroom, at [`KEEP_TIER`] plus its price. A node
///   that finished its work and idles asks for little or nothing, and its part of the
///   pool goes to others.
/// - **more**: when it is held back by power (drawing within 5 % of its cap, or with a
///   component within 5 % of a limit it could raise), everything else its components
///   could draw, at its price.
///
/// The price is its own market's last power trade (`power_price_per_mw`, credits per
/// mW; per W on the wire, at least 1). Without a draw reading it asks for nothing.
/// Readings it lacks count as nothing; nothing here can overflow.
pub fn node_bid(
    frame: &TelemetryFrame,
    power_price_per_mw: Option<u64>,
    safe_share_mw: u64,
) -> Vec<BidStep> {
    let Some(draw_mw) = frame.node.draw_mw else {
        return Vec::new();
    };
    let could_draw_mw = frame
        .components
        .iter()
        .filter_map(|component| component.limit_max_mw)
        .fold(0u64, u64::saturating_add);
    let near = |used: u64, bound: u64| {
        u128::from(used) * 1_000 >= u128::from(bound) * u128::from(CAP_BOUND_PERMILLE)
    };
    let cap_bound = frame.node.cap_mw.is_some_and(|cap| near(draw_mw, cap));
    let limit_bound = frame.components.iter().any(|component| {
        match (
            component.power_mw,
            component.limit_mw,
            component.limit_max_mw,
        ) {
            (Some(power), Some(limit), Some(max)) => limit < max && near(power, limit),
            _ => false,
        }
    });
    let price = power_price_per_mw
        .unwrap_or(1)
        .saturating_mul(1_000)
        .clamp(1, KEEP_TIER - 1);
    let keep_mw = draw_mw
        .saturating_add(draw_mw / 1_000 * HEADROOM_PERMILLE)
        .saturating_sub(safe_share_mw);
    let mut bids = Vec::new();
    if keep_mw > 0 {
        bids.push(BidStep {
            mw: keep_mw,
            price: KEEP_TIER + price,
        });
    }
    let more_mw = could_draw_mw.saturating_sub(safe_share_mw.saturating_add(keep_mw));
    if (cap_bound || limit_bound) && more_mw > 0 {
        bids.push(BidStep { mw: more_mw, price });
    }
    bids
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{ComponentKind, ComponentTelemetry, NodeTelemetry};

    use super::*;

    fn frame(draw_mw: Option<u64>, cap_mw: Option<u64>) -> TelemetryFrame {
        let gpu = |id: &str| ComponentTelemetry {
            id: id.into(),
            kind: ComponentKind::Gpu,
            utilization_permille: 900,
            power_mw: None,
            temp_mc: None,
            t_max_mc: None,
            limit_mw: None,
            limit_min_mw: None,
            limit_max_mw: Some(300_000),
            progress_micro: None,
        };
        TelemetryFrame {
            components: vec![gpu("gpu0"), gpu("gpu1")],
            node: NodeTelemetry { draw_mw, cap_mw },
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn a_node_at_its_cap_keeps_its_draw_and_asks_for_the_rest_at_its_market_price() {
        let bid = node_bid(&frame(Some(396_000), Some(400_000)), Some(7), 250_000);
        assert_eq!(
            bid,
            vec![
                BidStep {
                    mw: 185_600,
                    price: KEEP_TIER + 7_000
                },
                BidStep {
                    mw: 164_400,
                    price: 7_000
                },
            ]
        );
    }

    #[test]
    fn a_node_whose_component_is_at_a_limit_it_could_raise_is_held_back_too() {
        let mut held = frame(Some(300_000), Some(400_000));
        held.components[0].power_mw = Some(196_000);
        held.components[0].limit_mw = Some(200_000);
        assert_eq!(node_bid(&held, Some(7), 250_000).len(), 2);
        // At its highest limit already: more cap would not help it.
        held.components[0].limit_mw = Some(300_000);
        held.components[0].power_mw = Some(296_000);
        assert_eq!(node_bid(&held, Some(7), 250_000).len(), 1);
    }

    #[test]
    fn a_node_below_its_cap_keeps_its_draw_with_headroom_and_an_idle_one_asks_nothing() {
        let bid = node_bid(&frame(Some(300_000), Some(400_000)), Some(7), 250_000);
        assert_eq!(
            bid,
            vec![BidStep {
                mw: 80_000,
                price: KEEP_TIER + 7_000
            }]
        );
        assert!(node_bid(&frame(Some(100_000), Some(400_000)), Some(7), 250_000).is_empty());
        assert!(node_bid(&frame(None, Some(400_000)), Some(7), 0).is_empty());
        let huge = node_bid(&frame(Some(u64::MAX), None), Some(u64::MAX), 0);
        assert_eq!(huge[0].price, KEEP_TIER + KEEP_TIER - 1);
    }
}
