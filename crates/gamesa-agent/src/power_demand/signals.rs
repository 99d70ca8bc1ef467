//! How the live signals bear on the bids: the strongest signal of each domain that
//! concerns the component scales its prices, and a safety signal stops its buying.

use gamesa_proto::{Domain, Signal};

use super::PowerDemand;

/// How the live signals bear on this component's bids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalPressure {
    /// Multiplies the marginal utility: above 1 boosts, below 1 dampens.
    pub factor: f64,
    /// A safety signal concerns this component: buy nothing, never raise the limit.
    pub safety: bool,
}

impl PowerDemand {
    /// Strongest live signal per domain among those that concern this component.
    pub fn signal_pressure(&self, signals: &[Signal]) -> SignalPressure {
        let (mut performance, mut efficiency, mut thermal) = (0u16, 0u16, 0u16);
        let mut safety = false;
        for signal in signals.iter().filter(|s| self.concerns_me(s)) {
            let strength = signal.strength.permille();
            match signal.domain {
                Domain::Safety => safety = true,
                Domain::Thermal => thermal = thermal.max(strength),
                Domain::Performance => performance = performance.max(strength),
                Domain::Efficiency => efficiency = efficiency.max(strength),
                Domain::Power | Domain::Background => {}
            }
        }
        let scaled = |permille: u32, strength: u16| {
            f64::from(permille) / 1000.0 * f64::from(strength) / 1000.0
        };
        let boost = 1.0 + scaled(self.params.performance_boost_permille, performance);
        let efficiency =
            (1.0 - scaled(self.params.efficiency_damping_permille, efficiency)).max(0.0);
        let thermal = (1.0 - scaled(self.params.thermal_damping_permille, thermal)).max(0.0);
        SignalPressure {
            factor: boost * efficiency * thermal,
            safety,
        }
    }

    /// A signal concerns this component when it is global (`game_started`) or names it
    /// after a dot (`thermal_warning.gpu0`).
    fn concerns_me(&self, signal: &Signal) -> bool {
        match signal.kind.as_str().split_once('.') {
            None => true,
            Some((_, target)) => target == self.params.component,
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::Resource;

    use super::*;
    use crate::power_demand::fixtures::{ME, bid, decide, gpu, limit, params};
    use crate::testkit::{World, lease, signal};

    #[test]
    fn performance_signal_raises_the_bid_and_efficiency_lowers_it() {
        let plain = World::with_components(vec![gpu(800, 100_000)]);
        let (plain_price, _) = bid(&decide(params(), &plain), Resource::PowerBudgetMw).unwrap();

        let mut boosted = plain.clone();
        boosted.signals = vec![signal("game_started", Domain::Performance, 1000)];
        let (boosted_price, _) = bid(&decide(params(), &boosted), Resource::PowerBudgetMw).unwrap();
        assert!(
            boosted_price > plain_price,
            "{boosted_price} vs {plain_price}"
        );

        let mut thrifty = plain.clone();
        thrifty.signals = vec![signal("battery_saver", Domain::Efficiency, 1000)];
        let (thrifty_price, _) = bid(&decide(params(), &thrifty), Resource::PowerBudgetMw).unwrap();
        assert!(
            thrifty_price < plain_price,
            "{thrifty_price} vs {plain_price}"
        );
    }

    #[test]
    fn own_thermal_warning_dampens_but_another_components_does_not() {
        let plain = World::with_components(vec![gpu(1000, 100_000)]);
        let (plain_price, _) = bid(&decide(params(), &plain), Resource::PowerBudgetMw).unwrap();

        let mut other = plain.clone();
        other.signals = vec![signal("thermal_warning.cpu", Domain::Thermal, 1000)];
        let (other_price, _) = bid(&decide(params(), &other), Resource::PowerBudgetMw).unwrap();
        assert_eq!(other_price, plain_price);

        let mut mine = plain.clone();
        mine.signals = vec![signal("thermal_warning.gpu0", Domain::Thermal, 1000)];
        let (mine_price, _) = bid(&decide(params(), &mine), Resource::PowerBudgetMw).unwrap();
        assert!(mine_price < plain_price, "{mine_price} vs {plain_price}");
    }

    #[test]
    fn safety_signal_stops_buying_and_never_raises_the_limit() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            50_000,
            world.tick.plus(3),
        )];
        world.signals = vec![signal("thermal_critical.gpu0", Domain::Safety, 1000)];
        // The guardian has cut the limit to 100 W; the agent must not push it back up.
        let intents = decide(params(), &world);
        assert_eq!(intents, vec![]);

        // But a lower limit is still asked for when budget lapses.
        world.components_mut()[0].limit_mw = Some(200_000);
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), Some(150_000));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }
}
