//! The bidding strategy: how much power budget to bid for (the learned value or the
//! utilization prior, what the draw can use), the ladder of prices at the marginal
//! utility, the standby bid, and the headroom bid for the heat of the power.

use gamesa_proto::{ComponentTelemetry, Price, Resource, Side};

use super::PowerDemand;
use crate::{Intent, Observation, pricing::price_from_utility, quote::resting_this_tick};

/// Power bids are split into at most this many tranches, each priced at the marginal
/// utility of its middle, so that the book fills the most valuable watts first.
pub const MAX_TRANCHES: u64 = 8;

/// The power at which a component's marginal utility is measured: one more mW at a limit
/// of `max` is worth `REFERENCE_MW / max` of a mW at full utility.
pub const REFERENCE_MW: f64 = 100_000.0;

/// One unit of learned utility: the work per second that 1 kW more would buy at the
/// current marginal rate. Prices are `power_price` credits per mW per unit, so a GPU
/// doing one unit of work per second near 300 W at elasticity 0.4 bids about
/// `1.3 · power_price`, close to what the utilization prior bids.
pub const UTILITY_PER_W: f64 = 1000.0;

impl PowerDemand {
    /// Saturation in `[0, 1]`: 0 up to `idle_permille`, 1 from `saturated_permille`.
    pub fn saturation(&self, utilization_permille: u16) -> f64 {
        let utilization = f64::from(utilization_permille.min(1000));
        let idle = f64::from(self.params.idle_permille);
        let saturated = f64::from(self.params.saturated_permille);
        // Params validation guarantees idle < saturated, so the span is positive.
        ((utilization - idle) / (saturated - idle)).clamp(0.0, 1.0)
    }

    /// What the agent has learned of its component's work: the elasticity of its work
    /// rate to its limit and how many limit changes it was learned from, or `None`
    /// while the component reports no progress (the agent then bids on the utilization
    /// prior).
    pub fn learned_elasticity(&self) -> Option<(f64, u32)> {
        self.work.rate()?;
        Some((self.work.elasticity(), self.work.changes()))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn bids(
        &self,
        obs: &Observation<'_>,
        component: &ComponentTelemetry,
        baseline: u64,
        max: u64,
        max_wanted: u64,
        signal_factor: f64,
    ) -> Vec<Intent> {
        let mut intents = Vec::new();
        let span = max - baseline;
        // With progress, the agent wants all it can use and lets its learned value decide
        // how much it wins; without, the utilization prior says how much it needs.
        let learned_rate = self.work.rate();
        let mut wanted_limit = match learned_rate {
            Some(rate) if rate <= 0.0 => baseline,
            Some(_) => max_wanted,
            None => baseline
                .saturating_add(
                    (self.saturation(component.utilization_permille) * span as f64).round() as u64,
                )
                .min(max_wanted),
        };
        if let (Some(power), Some(limit)) = (component.power_mw, component.limit_mw) {
            let bound = u64::from(self.params.bound_permille);
            if power.saturating_mul(1000) < limit.saturating_mul(bound) {
                // Drawing well under the limit: more limit would not be used.
                let useful = power.saturating_mul(1000) / bound;
                wanted_limit = wanted_limit.min(useful.max(baseline));
            }
        }
        let lasting_power = held_beyond_now(obs, Resource::PowerBudgetMw);
        let lasting_limit = baseline.saturating_add(lasting_power);
        let need = wanted_limit.saturating_sub(lasting_limit);
        let room = span.saturating_sub(lasting_power);
        let step = self.params.step_mw;
        let wanted = need.div_ceil(step).saturating_mul(step).min(room);

        let scale = f64::from(self.weight) * signal_factor;
        let enforced_limit = component.limit_mw.unwrap_or(lasting_limit).max(1);
        let max_mw = max as f64;
        // The utilization prior: work taken to grow as d^(2/3) · L^(1/3) (the cube-root
        // law of voltage and frequency scaling at utilization d), so one more mW at L is
        // worth d^(2/3) · (max / L)^(2/3) / max, scaled to REFERENCE_MW.
        let prior_demand =
            (f64::from(component.utilization_permille.min(1000)) / 1000.0).powf(2.0 / 3.0);
        let utility_at = |limit_mw: f64| match learned_rate {
            Some(_) => {
                scale
                    * self
                        .work
                        .marginal_per_w(enforced_limit, limit_mw)
                        .unwrap_or(0.0)
                    * UTILITY_PER_W
            }
            None => {
                scale * prior_demand * (max_mw / limit_mw.max(1.0)).powf(2.0 / 3.0) * REFERENCE_MW
                    / max_mw
            }
        };
        let resistance = self.thermal_resistance();
        let headroom_price = price_from_utility(
            self.params.headroom_price as f64 * utility_at(lasting_limit as f64),
        );
        let heat_price_per_mw = match (resistance, headroom_price) {
            (Some(r), Some(price)) => r * price.0 as f64,
            _ => 0.0,
        };

        // The ladder: tranches from the lasting limit up, each at the utility of its
        // middle, cut where the balance runs out.
        let tranche = wanted
            .div_ceil(MAX_TRANCHES)
            .div_ceil(step)
            .saturating_mul(step)
            .max(step);
        let mut budget = obs.balance.0 as f64;
        let mut from = lasting_limit;
        let mut left = wanted;
        let mut bought = 0u64;
        while left > 0 {
            let quantity = tranche.min(left);
            let middle = from as f64 + quantity as f64 / 2.0;
            let Some(price) =
                price_from_utility(self.params.power_price as f64 * utility_at(middle))
            else {
                break;
            };
            let per_mw = price.0 as f64 + heat_price_per_mw;
            let affordable = (budget / per_mw).floor().max(0.0) as u64;
            let quantity = quantity.min(affordable);
            if quantity == 0 {
                break;
            }
            intents.extend(resting_this_tick(
                obs,
                Resource::PowerBudgetMw,
                Side::Bid,
                price,
                quantity,
            ));
            budget -= price.0 as f64 * quantity as f64;
            from = from.saturating_add(quantity);
            left -= quantity;
            bought = bought.saturating_add(quantity);
        }

        // Standby: budget up to what the component could use (its maximum, under the
        // thermal cap) that nobody values more is held at the lowest price, so that when
        // its load jumps the limit is already there instead of climbing at the gate's
        // step limit. Any bid that values the watts outbids it at the next lease.
        let standby_from = lasting_limit.saturating_add(wanted).max(from);
        let standby = (max_wanted.min(max).saturating_sub(standby_from) / step)
            .saturating_mul(step)
            .min(budget.max(0.0) as u64 / Price::MIN.0);
        if self.params.standby && standby > 0 {
            intents.extend(resting_this_tick(
                obs,
                Resource::PowerBudgetMw,
                Side::Bid,
                Price::MIN,
                standby,
            ));
            budget -= (Price::MIN.0 * standby) as f64;
        }

        if let (Some(r), Some(headroom_price)) = (resistance, headroom_price) {
            let covered_mw = lasting_power.saturating_add(bought);
            let heat_mc = (covered_mw as f64 * r).ceil() as u64;
            let need_mc = heat_mc.saturating_sub(held_beyond_now(obs, Resource::ThermalHeadroomMc));
            let left = budget.max(0.0) as u64;
            let headroom_quantity = need_mc.min(left / headroom_price.0);
            intents.extend(resting_this_tick(
                obs,
                Resource::ThermalHeadroomMc,
                Side::Bid,
                headroom_price,
                headroom_quantity,
            ));
        }
        intents
    }
}

/// What this agent holds of `resource` in leases that outlive the current tick: leases
/// in their last tick are about to lapse and are renewed as if already gone.
fn held_beyond_now(obs: &Observation<'_>, resource: Resource) -> u64 {
    obs.leases
        .iter()
        .filter(|lease| {
            lease.holder == obs.agent && lease.resource == resource && lease.expires_at > obs.tick
        })
        .map(|lease| lease.quantity.0)
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{Credits, Quantity, Tick, TimeInForce};

    use super::*;
    use crate::power_demand::PowerDemandParams;
    use crate::power_demand::fixtures::{ME, bid, decide, gpu, ladder, limit, params};
    use crate::testkit::{World, lease};

    #[test]
    fn saturated_component_below_max_outbids_a_moderately_busy_one() {
        let busy = World::with_components(vec![gpu(1000, 100_000)]);
        let moderate = World::with_components(vec![gpu(500, 100_000)]);
        let (busy_price, busy_quantity) =
            bid(&decide(params(), &busy), Resource::PowerBudgetMw).unwrap();
        let (moderate_price, moderate_quantity) =
            bid(&decide(params(), &moderate), Resource::PowerBudgetMw).unwrap();
        assert!(
            busy_price > moderate_price,
            "{busy_price} vs {moderate_price}"
        );
        assert!(busy_quantity > moderate_quantity);
        // Saturated: wants the whole range up to max.
        assert_eq!(busy_quantity, Quantity(200_000));
    }

    #[test]
    fn bids_rest_through_the_current_tick_only() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(params(), &world);
        for intent in &intents {
            if let Intent::Place(order) = intent {
                assert_eq!(
                    order.time_in_force,
                    TimeInForce::Limit {
                        expires_at: Some(world.tick)
                    }
                );
            }
        }
    }

    #[test]
    fn a_lease_in_its_last_tick_is_renewed() {
        let mut world = World::with_components(vec![gpu(1000, 300_000)]);
        world.leases = vec![lease(ME, Resource::PowerBudgetMw, 200_000, world.tick)];
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), None, "the limit is already right");
        let (_, quantity) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        assert_eq!(quantity, Quantity(200_000));
    }

    #[test]
    fn weight_scales_the_price() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            power_price: 1_000,
            ..params()
        };
        let (light, _) = bid(&decide(params.clone(), &world), Resource::PowerBudgetMw).unwrap();
        let heavy = PowerDemand::new(params, 3).decide(&world.observation(ME));
        let (heavy, _) = bid(&heavy, Resource::PowerBudgetMw).unwrap();
        // Three times the price, to within the rounding of each to a whole credit.
        assert!(heavy.0.abs_diff(light.0 * 3) <= 2, "{heavy} vs 3 × {light}");
    }

    #[test]
    fn the_bid_is_a_ladder_whose_dearest_watts_come_first() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            power_price: 1_000,
            step_mw: 5_000,
            ..params()
        };
        let bids = ladder(&decide(params, &world), Resource::PowerBudgetMw);
        // 200 W wanted in 8 tranches of 25 W, each priced at the marginal utility of its
        // middle: d^(2/3) · (max / L)^(2/3) · 100 W / max, max = 300 W, d = 1.
        assert_eq!(bids.len(), 8);
        assert!(
            bids.iter()
                .all(|(_, quantity)| *quantity == Quantity(25_000))
        );
        let expected = |middle_w: f64| (1_000.0 * (300.0 / middle_w).powf(2.0 / 3.0) / 3.0).round();
        assert_eq!(bids[0].0, Price(expected(112.5) as u64));
        assert_eq!(bids[7].0, Price(expected(287.5) as u64));
        assert!(
            bids.windows(2).all(|pair| pair[0].0 > pair[1].0),
            "{bids:?}"
        );
    }

    /// A demand side that watched its GPU do `0.8 · ((L − 30) / 270)^alpha` units per
    /// second through a staircase of limits from 100 to 240 W and back to 100 W.
    fn learned(alpha: f64) -> (PowerDemand, World) {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.frame.interval_ms = 100;
        // Money never binds here: the test is about value.
        world.balance = Credits(1_000_000_000_000);
        let params = PowerDemandParams {
            power_price: 1000,
            ..params()
        };
        let mut demand = PowerDemand::new(params, 1);
        let mut progress = 0.0;
        for step in (0..15).chain((0..15).rev()) {
            let limit_w = 100.0 + 10.0 * f64::from(step);
            for _ in 0..5 {
                progress += 0.8 * ((limit_w - 30.0) / 270.0_f64).powf(alpha) * 0.1;
                let gpu0 = &mut world.components_mut()[0];
                gpu0.limit_mw = Some((limit_w * 1000.0) as u64);
                gpu0.power_mw = gpu0.limit_mw;
                gpu0.progress_micro = Some((progress * 1e6) as u64);
                demand.decide(&world.observation(ME));
            }
        }
        (demand, world)
    }

    #[test]
    fn with_progress_a_memory_bound_gpu_learns_to_bid_less_than_a_compute_bound_one() {
        let (mut memory_bound, memory_world) = learned(0.05);
        let (mut compute_bound, compute_world) = learned(0.5);
        let (memory_elasticity, memory_changes) = memory_bound.learned_elasticity().unwrap();
        let (compute_elasticity, _) = compute_bound.learned_elasticity().unwrap();
        assert!(memory_changes > 20, "{memory_changes}");
        assert!(memory_elasticity < 0.15, "{memory_elasticity}");
        assert!(compute_elasticity > 0.5, "{compute_elasticity}");
        let (memory_price, memory_quantity) = bid(
            &memory_bound.decide(&memory_world.observation(ME)),
            Resource::PowerBudgetMw,
        )
        .unwrap();
        let (compute_price, compute_quantity) = bid(
            &compute_bound.decide(&compute_world.observation(ME)),
            Resource::PowerBudgetMw,
        )
        .unwrap();
        // Both want everything up to their maximum; the compute-bound one values it more.
        assert_eq!(memory_quantity, compute_quantity);
        assert!(
            compute_price.0 > 3 * memory_price.0,
            "{compute_price} vs {memory_price}"
        );
    }

    #[test]
    fn without_progress_the_agent_says_it_bids_on_the_utilization_prior() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let mut demand = PowerDemand::new(params(), 1);
        demand.decide(&world.observation(ME));
        assert_eq!(demand.learned_elasticity(), None);
    }

    #[test]
    fn an_idle_component_holds_spare_budget_on_standby_at_the_lowest_price() {
        // Drawing 40 W under a 100 W limit: no valued bid, but the watts up to its
        // 300 W maximum are held at the lowest price, in whole steps.
        let world = World::with_components(vec![ComponentTelemetry {
            power_mw: Some(40_000),
            ..gpu(100, 100_000)
        }]);
        let standby = PowerDemandParams {
            standby: true,
            ..params()
        };
        let bids = ladder(&decide(standby, &world), Resource::PowerBudgetMw);
        assert_eq!(bids, vec![(Price::MIN, Quantity(200_000))]);
        assert_eq!(
            ladder(&decide(params(), &world), Resource::PowerBudgetMw),
            vec![]
        );
    }

    #[test]
    fn more_held_power_lowers_the_marginal_utility() {
        let low = World::with_components(vec![gpu(1000, 100_000)]);
        let mut high = World::with_components(vec![gpu(1000, 250_000)]);
        let beyond_now = Tick(high.tick.0 + 5);
        high.leases = vec![lease(ME, Resource::PowerBudgetMw, 150_000, beyond_now)];
        let params = PowerDemandParams {
            power_price: 100,
            ..params()
        };
        let (low_price, _) = bid(&decide(params.clone(), &low), Resource::PowerBudgetMw).unwrap();
        let (high_price, _) = bid(&decide(params, &high), Resource::PowerBudgetMw).unwrap();
        assert!(high_price < low_price, "{high_price} vs {low_price}");
    }

    #[test]
    fn a_lapsing_lease_is_renewed_at_the_price_it_was_bought_at() {
        let fresh = World::with_components(vec![gpu(1000, 100_000)]);
        let mut renewing = World::with_components(vec![gpu(1000, 250_000)]);
        renewing.leases = vec![lease(ME, Resource::PowerBudgetMw, 150_000, renewing.tick)];
        let (fresh_price, _) = bid(&decide(params(), &fresh), Resource::PowerBudgetMw).unwrap();
        let (renewal_price, quantity) =
            bid(&decide(params(), &renewing), Resource::PowerBudgetMw).unwrap();
        assert_eq!(renewal_price, fresh_price);
        assert!(quantity.0 >= 150_000, "{quantity}");
    }

    #[test]
    fn headroom_is_bid_for_the_heat_of_the_power() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(params(), &world);
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let (_, heat) = bid(&intents, Resource::ThermalHeadroomMc).unwrap();
        // 200 W at 0.2 °C/W is 40 °C.
        assert_eq!(power, Quantity(200_000));
        assert_eq!(heat, Quantity(40_000));
    }

    #[test]
    fn no_headroom_bid_without_a_resistance_estimate() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(
            PowerDemandParams {
                r_c_per_w: None,
                ..params()
            },
            &world,
        );
        assert!(bid(&intents, Resource::PowerBudgetMw).is_some());
        assert_eq!(bid(&intents, Resource::ThermalHeadroomMc), None);
    }

    #[test]
    fn bids_are_bounded_by_the_balance() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.balance = Credits(100_000);
        let intents = decide(params(), &world);
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let escrow: u64 = ladder(&intents, Resource::PowerBudgetMw)
            .into_iter()
            .chain(ladder(&intents, Resource::ThermalHeadroomMc))
            .map(|(price, quantity)| Credits::cost(price, quantity).0)
            .sum();
        assert!(escrow <= 100_000, "{escrow}");
        assert!(power.0 > 0 && power.0 < 200_000);

        world.balance = Credits(0);
        assert_eq!(decide(params(), &world), vec![]);
    }

    #[test]
    fn a_component_drawing_well_under_its_limit_asks_for_no_more() {
        let world = World::with_components(vec![ComponentTelemetry {
            power_mw: Some(120_000),
            ..gpu(1000, 200_000)
        }]);
        let mut params = params();
        params.r_c_per_w = None;
        let mut demand = PowerDemand::new(params, 1);
        let mut observed = world.clone();
        observed.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            100_000,
            world.tick.plus(5),
        )];
        let intents = demand.decide(&observed.observation(ME));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
        // Without the lease it only wants what its draw can use: 120 W / 0.9 ≈ 133.3 W.
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(
            bid(&intents, Resource::PowerBudgetMw).map(|(_, q)| q),
            Some(Quantity(34_000))
        );
    }
}
