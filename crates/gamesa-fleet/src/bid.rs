//! What a node asks the fleet for, read from its own telemetry and market: the pool
//! beyond its safe share it could use, and what that is worth to it.
//!
//! Prices fall in three tiers, highest first:
//! 1. **keep** ([`KEEP_TIER`]): a node that cannot tell when its job ends keeps what it
//!    draws, with headroom, and no less than the limits its own market has set;
//! 2. **deadline** ([`DEADLINE_TIER`]): a node that can ([`Outlook`]) prices each slice
//!    of power by when its job would end with it. Clearing highest first then gives
//!    each node power up to where its end falls to the others': the pool goes to the
//!    node that would finish last, as a job that waits for its last node needs;
//! 3. **more**: a node held back by power asks for the rest at its market's price.

use gamesa_proto::TelemetryFrame;

use crate::{BidStep, pace::Outlook};

/// How close to its cap a node draws before it counts as held back by it.
const CAP_BOUND_PERMILLE: u64 = 950;
/// The headroom above its draw a node that is not held back asks for at least (its keep
/// also covers the limits its own market set, see [`node_bid`]).
const HEADROOM_PERMILLE: u64 = 100;
/// Slices of a deadline bid: fine enough that the clearing lands within a few percent
/// of each node's power range, few enough for a small order.
const DEADLINE_STEPS: u64 = 16;
/// How a node's work rate grows with its power when nothing better is known: the
/// cube-root law of voltage and frequency scaling (dynamic power goes as `f·V²`, with
/// `V` roughly proportional to `f`), as the node's own agents assume before they learn.
/// A wrong law only slows the fleet's convergence: every epoch measures the rate anew.
const RATE_EXPONENT: f64 = 1.0 / 3.0;

/// Steps that keep what a node uses outrank every step that asks for more: the pool
/// first covers the power nodes draw, then goes where it is held back and most valued.
pub const KEEP_TIER: u64 = 1_000_000_000_000_000;
/// Deadline steps rank below keep steps and above every market-priced step; their
/// price above the tier is the job's end in milliseconds.
pub const DEADLINE_TIER: u64 = KEEP_TIER / 2;

/// The node's bid for the coming epoch, beyond its safe share.
///
/// With an [`Outlook`] of a job not yet done, `DEADLINE_STEPS` (16) slices from its safe
/// share up to all its components could draw (when held back by power) or what it
/// keeps (when not, see **keep**), each priced at [`DEADLINE_TIER`] plus when the job
/// would end at the slice's top power: the recent end scaled by `(draw / power)^⅓`,
/// and no sooner than at the power it draws when power does not hold it back.
///
/// Otherwise, in two steps:
/// - **keep**: its draw plus 10 % headroom, or its draw plus what its components may
///   still draw under the limits its own market set, whichever is more; at
///   [`KEEP_TIER`] plus its price. A cap below those limits would make its market cut
///   them, and a component it cut is then held back: the node would flap between
///   keeping and asking for more, each epoch. A node that finished its work and idles
///   asks for little or nothing, and its part of the pool goes to others.
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
    outlook: Option<Outlook>,
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
    let held_back = cap_bound || limit_bound;
    let under_limits_mw = frame
        .components
        .iter()
        .filter_map(|component| Some(component.limit_mw?.saturating_sub(component.power_mw?)))
        .fold(0u64, u64::saturating_add);
    let with_headroom_mw = draw_mw
        .saturating_add(draw_mw / 1_000 * HEADROOM_PERMILLE)
        .max(draw_mw.saturating_add(under_limits_mw));
    if let Some(outlook) = outlook.filter(|outlook| outlook.left_ms > 0) {
        let top_mw = if held_back {
            could_draw_mw.max(with_headroom_mw)
        } else {
            with_headroom_mw
        };
        return deadline_ladder(outlook, safe_share_mw, top_mw, held_back);
    }
    let price = power_price_per_mw
        .unwrap_or(1)
        .saturating_mul(1_000)
        .clamp(1, DEADLINE_TIER - 1);
    let keep_mw = with_headroom_mw.saturating_sub(safe_share_mw);
    let mut bids = Vec::new();
    if keep_mw > 0 {
        bids.push(BidStep {
            mw: keep_mw,
            price: KEEP_TIER + price,
        });
    }
    let more_mw = could_draw_mw.saturating_sub(safe_share_mw.saturating_add(keep_mw));
    if held_back && more_mw > 0 {
        bids.push(BidStep { mw: more_mw, price });
    }
    bids
}

/// Slices of `(safe_share_mw, top_mw]`, each priced by when the job would end with
/// the slice's top as the node's power.
fn deadline_ladder(
    outlook: Outlook,
    safe_share_mw: u64,
    top_mw: u64,
    held_back: bool,
) -> Vec<BidStep> {
    let range_mw = top_mw.saturating_sub(safe_share_mw);
    if range_mw == 0 {
        return Vec::new();
    }
    // The power its recent pace was measured at: more than that speeds it up only
    // while power holds it back.
    let measured_w = outlook.draw_mw.max(1) as f64;
    let end_ms = |power_mw: u64| {
        let power_w = power_mw.max(1) as f64;
        let power_w = if held_back {
            power_w
        } else {
            power_w.min(measured_w)
        };
        let end = outlook.left_ms as f64 * (measured_w / power_w).powf(RATE_EXPONENT);
        // Saturating: `as` clamps a float too large (or NaN, as 0) for the integer.
        (end as u64).min(DEADLINE_TIER - 1)
    };
    let mut bids: Vec<BidStep> = Vec::new();
    let mut bottom_mw = safe_share_mw;
    for step in 1..=DEADLINE_STEPS {
        let top = safe_share_mw.saturating_add(
            u64::try_from(u128::from(range_mw) * u128::from(step) / u128::from(DEADLINE_STEPS))
                .unwrap_or(u64::MAX),
        );
        let price = DEADLINE_TIER + end_ms(top);
        let mw = top - bottom_mw;
        bottom_mw = top;
        match bids.last_mut() {
            // Slices at one price are one step.
            Some(last) if last.price == price => last.mw += mw,
            _ if mw > 0 => bids.push(BidStep { mw, price }),
            _ => {}
        }
    }
    bids
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{ComponentKind, ComponentTelemetry, NodeTelemetry};

    use super::*;

    fn frame(draw_mw: Option<u64>, cap_mw: Option<u64>) -> TelemetryFrame {
        let gpu = |id: &str| ComponentTelemetry {
            utilization_permille: 900,
            limit_max_mw: Some(300_000),
            ..ComponentTelemetry::unread(id, ComponentKind::Gpu)
        };
        TelemetryFrame {
            components: vec![gpu("gpu0"), gpu("gpu1")],
            node: NodeTelemetry { draw_mw, cap_mw },
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn a_node_at_its_cap_keeps_its_draw_and_asks_for_the_rest_at_its_market_price() {
        let bid = node_bid(&frame(Some(396_000), Some(400_000)), Some(7), 250_000, None);
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
        assert_eq!(node_bid(&held, Some(7), 250_000, None).len(), 2);
        // At its highest limit already: more cap would not help it.
        held.components[0].limit_mw = Some(300_000);
        held.components[0].power_mw = Some(296_000);
        assert_eq!(node_bid(&held, Some(7), 250_000, None).len(), 1);
    }

    #[test]
    fn a_node_below_its_cap_keeps_its_draw_with_headroom_and_an_idle_one_asks_nothing() {
        let bid = node_bid(&frame(Some(300_000), Some(400_000)), Some(7), 250_000, None);
        assert_eq!(
            bid,
            vec![BidStep {
                mw: 80_000,
                price: KEEP_TIER + 7_000
            }]
        );
        assert!(node_bid(&frame(Some(100_000), Some(400_000)), Some(7), 250_000, None).is_empty());
        assert!(node_bid(&frame(None, Some(400_000)), Some(7), 0, None).is_empty());
        let huge = node_bid(&frame(Some(u64::MAX), None), Some(u64::MAX), 0, None);
        assert_eq!(huge[0].price, KEEP_TIER + DEADLINE_TIER - 1);
    }

    #[test]
    fn a_node_keeps_the_limits_its_market_set_when_they_exceed_its_draw_with_headroom() {
        // 300 W drawn, of which gpu0 180 W under a 200 W limit and gpu1 60 W under a
        // 150 W limit: 110 W more is allowed, above the 30 W of headroom.
        let mut planned = frame(Some(300_000), Some(450_000));
        planned.components[0].power_mw = Some(180_000);
        planned.components[0].limit_mw = Some(200_000);
        planned.components[1].power_mw = Some(60_000);
        planned.components[1].limit_mw = Some(150_000);
        let keep = |frame: &TelemetryFrame, outlook| {
            node_bid(frame, Some(7), 250_000, outlook)
                .iter()
                .map(|step| step.mw)
                .sum::<u64>()
        };
        assert_eq!(keep(&planned, None), 160_000);
        let outlook = Outlook {
            left_ms: 100_000,
            draw_mw: 300_000,
        };
        assert_eq!(keep(&planned, Some(outlook)), 160_000);
        // Limits it nearly uses leave the headroom as the larger.
        planned.components[1].limit_mw = Some(65_000);
        assert_eq!(keep(&planned, None), 80_000);
    }

    #[test]
    fn a_node_that_knows_its_end_prices_each_slice_by_it_and_the_later_end_outranks() {
        let held = frame(Some(396_000), Some(400_000));
        let outlook = |left_ms| {
            Some(Outlook {
                left_ms,
                draw_mw: 396_000,
            })
        };
        let late = node_bid(&held, Some(7), 250_000, outlook(500_000));
        let early = node_bid(&held, Some(7), 250_000, outlook(300_000));
        // Up to all its components could draw, in slices whose price falls with power.
        assert_eq!(late.iter().map(|step| step.mw).sum::<u64>(), 350_000);
        assert!(late.windows(2).all(|pair| pair[0].price > pair[1].price));
        assert!(
            late.iter()
                .all(|step| (DEADLINE_TIER..KEEP_TIER).contains(&step.price))
        );
        // At its draw its end is the measured one: cube-root law around it.
        let at_600 = late.last().unwrap().price - DEADLINE_TIER;
        let expected = 500_000.0 * (396.0f64 / 600.0).powf(1.0 / 3.0);
        assert!(
            (at_600 as f64 - expected).abs() < 1.0,
            "{at_600} against {expected}"
        );
        // The node that would finish last is served first, slice for slice.
        assert!(late.iter().zip(&early).all(|(l, e)| l.price > e.price));
    }

    #[test]
    fn a_node_not_held_back_gains_nothing_above_its_draw_and_a_done_one_bids_as_before() {
        let free = frame(Some(300_000), Some(400_000));
        let outlook = Outlook {
            left_ms: 100_000,
            draw_mw: 300_000,
        };
        let bid = node_bid(&free, Some(7), 250_000, Some(outlook));
        assert_eq!(bid.iter().map(|step| step.mw).sum::<u64>(), 80_000);
        assert_eq!(bid.last().unwrap().price, DEADLINE_TIER + 100_000);
        let done = Outlook {
            left_ms: 0,
            ..outlook
        };
        assert_eq!(
            node_bid(&free, Some(7), 250_000, Some(done)),
            node_bid(&free, Some(7), 250_000, None)
        );
        let huge = Outlook {
            left_ms: u64::MAX,
            draw_mw: u64::MAX,
        };
        let bid = node_bid(&frame(Some(u64::MAX), Some(1)), Some(7), 0, Some(huge));
        assert!(!bid.is_empty());
        assert!(bid.iter().all(|step| step.price < KEEP_TIER), "{bid:?}");
    }
}
