//! What a node asks the fleet for, read from its own telemetry and market: the pool
//! beyond its safe share it could use, and what that is worth to it.

use gamesa_proto::TelemetryFrame;

use crate::BidStep;

/// How close to its cap a node draws before it counts as held back by it.
const CAP_BOUND_PERMILLE: u64 = 950;
/// A node that is not held back asks for its draw plus this much headroom.
const HEADROOM_PERMILLE: u64 = 100;

/// The node's bid for the coming epoch. A node held back by its cap (drawing within 5 %
/// of it) asks for all its components could draw beyond its safe share, at its own
/// market's power price (`power_price_per_mw`, credits per mW, the last trade of
/// `power_budget_mw`; per W on the wire). A node that is not held back asks for its
/// draw plus 10 % beyond the safe share at the lowest price: more cap buys it nothing
/// now. Without a draw reading it asks for nothing. Limits, caps and draws it cannot
/// read count as nothing; nothing here can overflow.
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
    let cap_bound = frame.node.cap_mw.is_some_and(|cap| {
        u128::from(draw_mw) * 1_000 >= u128::from(cap) * u128::from(CAP_BOUND_PERMILLE)
    });
    let (want_mw, price) = if cap_bound {
        let price = power_price_per_mw.unwrap_or(1).saturating_mul(1_000).max(1);
        (could_draw_mw.max(draw_mw), price)
    } else {
        let headroom = draw_mw / 1_000 * HEADROOM_PERMILLE;
        (draw_mw.saturating_add(headroom), 1)
    };
    let mw = want_mw.saturating_sub(safe_share_mw);
    if mw == 0 {
        return Vec::new();
    }
    vec![BidStep { mw, price }]
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
    fn a_node_at_its_cap_asks_for_what_it_could_draw_at_its_market_price() {
        let bid = node_bid(&frame(Some(396_000), Some(400_000)), Some(7), 250_000);
        assert_eq!(
            bid,
            vec![BidStep {
                mw: 350_000,
                price: 7_000
            }]
        );
    }

    #[test]
    fn a_node_below_its_cap_asks_for_its_draw_with_headroom_at_the_lowest_price() {
        let bid = node_bid(&frame(Some(300_000), Some(400_000)), Some(7), 250_000);
        assert_eq!(
            bid,
            vec![BidStep {
                mw: 80_000,
                price: 1
            }]
        );
        assert!(node_bid(&frame(Some(100_000), Some(400_000)), Some(7), 250_000).is_empty());
        assert!(node_bid(&frame(None, Some(400_000)), Some(7), 0).is_empty());
        let huge = node_bid(&frame(Some(u64::MAX), None), Some(u64::MAX), 0);
        assert_eq!(huge[0].price, 1);
    }
}
