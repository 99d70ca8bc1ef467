//! The power limit the demand side asks for: a change only when it differs from the
//! enforced one (only lower under a safety signal), and a refused raise retried smaller.

use gamesa_proto::Actuation;

use super::PowerDemand;
use crate::Intent;

impl PowerDemand {
    pub(super) fn limit_change(
        &mut self,
        enforced_mw: Option<u64>,
        limit_mw: u64,
        safety: bool,
    ) -> Option<Intent> {
        let current = enforced_mw.or(self.last_limit_mw);
        let wanted = match current {
            _ if limit_mw == 0 => false,
            Some(current) if safety => limit_mw < current,
            Some(current) => limit_mw != current,
            None => !safety,
        };
        if !wanted {
            self.refused_raises = 0;
            return None;
        }
        let mut limit_mw = limit_mw;
        if let (Some(enforced), Some(asked)) = (enforced_mw, self.last_limit_mw)
            && asked > enforced
            && limit_mw > enforced
        {
            // The last raise did not happen: ask for less, halving each time.
            self.refused_raises = self.refused_raises.saturating_add(1).min(16);
            let step = (limit_mw - enforced) >> self.refused_raises;
            limit_mw =
                enforced.saturating_add(step.max(self.params.step_mw.min(limit_mw - enforced)));
        } else {
            self.refused_raises = 0;
        }
        self.last_limit_mw = Some(limit_mw);
        Some(Intent::Actuate(Actuation::PowerLimit {
            component: self.params.component.clone(),
            limit_mw,
        }))
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, Resource};

    use super::*;
    use crate::power_demand::fixtures::{ME, bid, decide, gpu, limit, params};
    use crate::testkit::{World, lease};

    #[test]
    fn idle_component_bids_nothing_and_its_limit_falls_as_leases_expire() {
        let mut world = World::with_components(vec![gpu(50, 150_000)]);
        world.leases = vec![lease(ME, Resource::PowerBudgetMw, 50_000, world.tick)];
        let mut demand = PowerDemand::new(params(), 1);
        // The lease is live this tick: limit 150 W, as enforced; nothing to bid.
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(intents, vec![]);
        // Next tick the lease has lapsed: the agent asks for its baseline.
        world.tick = world.tick.next();
        world.leases.clear();
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(limit(&intents), Some(100_000));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
        assert_eq!(bid(&intents, Resource::ThermalHeadroomMc), None);
    }

    #[test]
    fn held_budget_raises_the_limit_up_to_max() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![
            lease(ME, Resource::PowerBudgetMw, 150_000, world.tick.plus(5)),
            lease(ME, Resource::PowerBudgetMw, 150_000, world.tick.plus(5)),
            // Someone else's lease does not count.
            lease(
                AgentId(9),
                Resource::PowerBudgetMw,
                50_000,
                world.tick.plus(5),
            ),
        ];
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), Some(300_000));
        // At max already: nothing more to buy.
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }

    #[test]
    fn a_refused_raise_is_retried_smaller() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            200_000,
            world.tick.plus(5),
        )];
        let mut demand = PowerDemand::new(params(), 1);
        let mut ask = |world: &World| limit(&demand.decide(&world.observation(ME)));
        assert_eq!(ask(&world), Some(300_000));
        // Still at 100 W: the guardian refused the raise. Half of it, then a quarter.
        assert_eq!(ask(&world), Some(200_000));
        assert_eq!(ask(&world), Some(150_000));
        // Once a raise is applied, the next one asks for everything again.
        world.components_mut()[0].limit_mw = Some(150_000);
        assert_eq!(ask(&world), Some(300_000));
    }
}
