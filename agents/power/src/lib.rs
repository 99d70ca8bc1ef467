//! The power agent: sells the node's controllable power budget and raises power-cap
//! signals, with hysteresis.
//!
//! Each tick it:
//! - takes the cap from the frame (`node.cap_mw`), else the `cap_mw` param, and the draw
//!   from the frame (`node.draw_mw`), else the sum of every component's `power_mw` when
//!   all report one;
//! - sells `power_budget_mw`: the controllable budget `cap − Σ baselines` (each
//!   component's baseline from `baselines_mw`, else its `limit_min_mw`), declared with
//!   `SetCapacity` whenever it changes, and asked for (less what is leased out) at a
//!   reserve price that is `price_floor` until draw reaches `price_rise_from_permille` of
//!   the cap and then rises quadratically to `price_ceiling` at the cap. Without a draw
//!   reading the reserve is the ceiling; while over the cap it sells nothing; when any
//!   component's baseline is unknown the budget is unknown and nothing is sold;
//! - raises `power_near_cap` (power domain) once draw reaches `near_cap_permille` of the
//!   cap, strength rising from 0.1 there to 1 at the cap, and `power_over_cap` (safety
//!   domain, strength 1: the guardian cuts limits at once) when draw exceeds
//!   `over_cap_permille`; each stops only once draw is `hysteresis_permille` below where
//!   it started. Draw is judged as its average over the last `draw_average_ticks`
//!   readings (1 by default: each reading alone).
//!
//! ```
//! use gamesa_agent::{AgentRegistry, AgentSpec, proto::AgentId};
//!
//! let mut registry = AgentRegistry::new();
//! gamesa_agent_power::register(&mut registry).unwrap();
//! let spec = AgentSpec {
//!     id: AgentId(5),
//!     name: "power".into(),
//!     kind: gamesa_agent_power::KIND.into(),
//!     weight: 1,
//!     params: "cap_mw = 400000".parse().unwrap(),
//!     module: None,
//! };
//! assert!(registry.create(&spec).is_ok());
//! ```

mod params;

use std::collections::BTreeSet;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation,
    capacity::Capacity,
    hysteresis::{Latch, raise},
    moving_average::MovingAverage,
    pricing::reserve_price,
    proto::{Domain, Resource, Side, TelemetryFrame},
    quote::resting_this_tick,
};

pub use crate::params::PowerParams;

/// The kind name this crate registers.
pub const KIND: &str = "power";

/// Registers the power agent under [`KIND`].
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register(KIND, |spec| {
        Ok(Box::new(PowerAgent::from_spec(spec)?) as Box<dyn Agent>)
    })
}

/// Draw as a share of the cap is tracked in parts per million, so "exceeds the cap" is
/// exact to a microwatt per watt rather than a permille.
const PPM_PER_PERMILLE: i64 = 1_000;

/// The power agent. Its state is its two latches and the budget it last declared.
#[derive(Debug, Clone)]
pub struct PowerAgent {
    params: PowerParams,
    capacity: Capacity,
    near: Latch,
    over: Latch,
    /// The last `draw_average_ticks` draw readings.
    draws_mw: MovingAverage,
}

impl PowerAgent {
    /// Builds the agent from its config entry.
    pub fn from_spec(spec: &AgentSpec) -> Result<PowerAgent, AgentError> {
        let params: PowerParams = spec.params()?;
        params.validate(&spec.name)?;
        Ok(PowerAgent::new(params))
    }

    /// Builds the agent from validated params.
    pub fn new(params: PowerParams) -> PowerAgent {
        PowerAgent {
            params,
            // Re-declared on any change: the budget moves only when baselines do.
            capacity: Capacity::new(Resource::PowerBudgetMw, 0),
            near: Latch::default(),
            over: Latch::default(),
            draws_mw: MovingAverage::default(),
        }
    }

    /// Takes in this tick's draw and returns the average over the window; a tick
    /// without a reading empties the window, so an average never spans a gap.
    fn average_draw_mw(&mut self, draw_mw: Option<u64>) -> Option<u64> {
        let Some(draw_mw) = draw_mw else {
            self.draws_mw.clear();
            return None;
        };
        // A draw beyond i64::MAX mW is no real reading; it saturates.
        let draw_mw = i64::try_from(draw_mw).unwrap_or(i64::MAX);
        u64::try_from(self.draws_mw.push(draw_mw, self.params.draw_average_ticks)).ok()
    }

    fn cap_mw(&self, frame: &TelemetryFrame) -> Option<u64> {
        frame
            .node
            .cap_mw
            .or(self.params.cap_mw)
            .filter(|&cap| cap > 0)
    }

    /// The node's draw, or the sum of the components' when every one reports it.
    fn draw_mw(frame: &TelemetryFrame) -> Option<u64> {
        frame.node.draw_mw.or_else(|| {
            if frame.components.is_empty() {
                return None;
            }
            frame
                .components
                .iter()
                .map(|component| component.power_mw)
                .try_fold(0u64, |sum, power| Some(sum.saturating_add(power?)))
        })
    }

    /// `Σ baselines` over every component in the frame or in `baselines_mw`; `None` when
    /// a component's baseline is unknown.
    fn baselines_mw(&self, frame: &TelemetryFrame) -> Option<u64> {
        let ids: BTreeSet<&str> = frame
            .components
            .iter()
            .map(|component| component.id.as_str())
            .chain(self.params.baselines_mw.keys().map(String::as_str))
            .collect();
        ids.into_iter().try_fold(0u64, |sum, id| {
            let baseline = self
                .params
                .baselines_mw
                .get(id)
                .copied()
                .or_else(|| frame.component(id)?.limit_min_mw)?;
            Some(sum.saturating_add(baseline))
        })
    }

    /// The reserve price for draw at `ppm` of the cap, or the ceiling when unknown.
    fn reserve_for_draw(&self, ppm: Option<i64>) -> f64 {
        let floor = self.params.price_floor as f64;
        let ceiling = self.params.price_ceiling as f64;
        let Some(ppm) = ppm else {
            return ceiling;
        };
        let share = ppm as f64 / 1e6;
        let rise_from = f64::from(self.params.price_rise_from_permille) / 1000.0;
        // Validation keeps `rise_from` below 1, so the span is positive.
        let rise = ((share - rise_from) / (1.0 - rise_from)).clamp(0.0, 1.0);
        floor + (ceiling - floor) * rise * rise
    }

    fn signals(&mut self, ppm: i64) -> Vec<Intent> {
        let params = &self.params;
        let hysteresis = i64::from(params.hysteresis_permille) * PPM_PER_PERMILLE;
        let mut signals = Vec::new();
        // "Exceeds": strictly above the threshold.
        let over_at = i64::from(params.over_cap_permille) * PPM_PER_PERMILLE + 1;
        if self.over.update(ppm, over_at, hysteresis) {
            signals.extend(raise(
                "power_over_cap",
                Domain::Safety,
                1000.0,
                params.signal_ttl_ticks,
            ));
        }
        let near_at = i64::from(params.near_cap_permille) * PPM_PER_PERMILLE;
        if self.near.update(ppm, near_at, hysteresis) {
            let span = (1_000_000 - near_at).max(1) as f64;
            let closeness = 1000.0 * (ppm - near_at) as f64 / span;
            signals.extend(raise(
                "power_near_cap",
                Domain::Power,
                closeness,
                params.signal_ttl_ticks,
            ));
        }
        signals
    }
}

impl Agent for PowerAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut intents = Vec::new();
        let Some(cap) = self.cap_mw(obs.frame) else {
            return Ok(intents);
        };
        let draw = self.average_draw_mw(PowerAgent::draw_mw(obs.frame));
        let ppm = draw.map(|draw| {
            let ppm = u128::from(draw) * 1_000_000 / u128::from(cap);
            i64::try_from(ppm).unwrap_or(i64::MAX)
        });
        let signals = match ppm {
            Some(ppm) => self.signals(ppm),
            None => Vec::new(),
        };
        let over_cap = signals
            .iter()
            .any(|intent| matches!(intent, Intent::Raise(s) if s.domain == Domain::Safety));
        if let Some(baselines) = self.baselines_mw(obs.frame) {
            let budget = cap.saturating_sub(baselines);
            let sellable = budget.saturating_sub(obs.granted_beyond_now(Resource::PowerBudgetMw));
            let quote = self.capacity.update(obs, sellable);
            intents.extend(quote.declare);
            if !over_cap {
                let price = reserve_price(self.reserve_for_draw(ppm));
                intents.extend(resting_this_tick(
                    obs,
                    Resource::PowerBudgetMw,
                    Side::Ask,
                    price,
                    quote.free,
                ));
            }
        }
        intents.extend(signals);
        Ok(intents)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{AgentId, ComponentKind, ComponentTelemetry, Price, Quantity, Tick},
        testkit::{World, component, lease_between, raised, sole_ask},
    };

    use super::*;

    const ME: AgentId = AgentId(5);

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: ME,
            name: "power".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    /// A 400 W node drawing `draw_mw`: a CPU with a 50 W baseline and a GPU with 100 W.
    fn world(draw_mw: u64) -> World {
        let mut world = World::default();
        world.frame.node.cap_mw = Some(400_000);
        world.frame.node.draw_mw = Some(draw_mw);
        world.frame.components = vec![
            ComponentTelemetry {
                limit_min_mw: Some(50_000),
                ..component("cpu", ComponentKind::Cpu)
            },
            ComponentTelemetry {
                limit_min_mw: Some(100_000),
                ..component("gpu0", ComponentKind::Gpu)
            },
        ];
        world
    }

    fn signals(intents: &[Intent]) -> Vec<(String, Domain)> {
        raised(intents)
            .into_iter()
            .map(|(kind, domain, _)| (kind, domain))
            .collect()
    }

    fn ask(intents: &[Intent]) -> Option<(Price, Quantity)> {
        sole_ask(intents, Resource::PowerBudgetMw)
    }

    fn observe(agent: &mut PowerAgent, world: &World) -> Vec<Intent> {
        agent.observe(&world.observation(ME)).unwrap()
    }

    #[test]
    fn register_makes_the_kind_creatable() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        assert!(
            registry
                .create(&spec("baselines_mw = { cpu = 40000 }"))
                .is_ok()
        );
    }

    #[test]
    fn unknown_and_invalid_params_name_the_key() {
        for (params, key) in [
            ("cap = 1", "cap"),
            ("cap_mw = 0", "cap_mw"),
            ("cap_mw = 1.5", "cap_mw"),
            ("baselines_mw = { cpu = -3 }", "baselines_mw"),
            ("price_floor = 5\nprice_ceiling = 2", "price_ceiling"),
            (
                "price_rise_from_permille = 1000",
                "price_rise_from_permille",
            ),
            ("near_cap_permille = 1000", "near_cap_permille"),
            ("draw_average_ticks = 0", "draw_average_ticks"),
            ("draw_average_ticks = 601", "draw_average_ticks"),
            ("hysteresis_permille = 960", "hysteresis_permille"),
        ] {
            let err = PowerAgent::from_spec(&spec(params)).err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}");
            };
            assert_eq!(agent, "power");
            assert!(message.contains(key), "{params}: {message}");
        }
    }

    #[test]
    fn sells_the_cap_less_the_baselines() {
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let intents = observe(&mut agent, &world(150_000));
        assert_eq!(
            intents[0],
            Intent::SetCapacity {
                resource: Resource::PowerBudgetMw,
                quantity: Quantity(250_000)
            }
        );
        assert_eq!(ask(&intents), Some((Price(1), Quantity(250_000))));
        // Leased budget is not offered again, and the capacity is not re-declared.
        let mut leased = world(150_000);
        leased.leases = vec![lease_between(
            AgentId(2),
            ME,
            Resource::PowerBudgetMw,
            100_000,
            Tick(105),
        )];
        let intents = observe(&mut agent, &leased);
        assert!(
            !intents
                .iter()
                .any(|i| matches!(i, Intent::SetCapacity { .. }))
        );
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity(150_000)));
    }

    #[test]
    fn the_reserve_rises_as_draw_nears_the_cap() {
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let prices: Vec<Price> = [100_000, 200_000, 300_000, 380_000, 400_000]
            .into_iter()
            .map(|draw| ask(&observe(&mut agent, &world(draw))).unwrap().0)
            .collect();
        // Floor to half the cap, then 1 + 7·x²: x = 0.5 → 2.75, x = 0.9 → 6.67, x = 1 → 8.
        assert_eq!(prices, [Price(1), Price(1), Price(3), Price(7), Price(8)]);
    }

    #[test]
    fn over_the_cap_it_signals_safety_and_stops_selling_until_below_the_band() {
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let over = ("power_over_cap".to_owned(), Domain::Safety);
        let near = ("power_near_cap".to_owned(), Domain::Power);
        let at_cap = observe(&mut agent, &world(400_000));
        assert_eq!(
            signals(&at_cap),
            vec![near.clone()],
            "at the cap is not over it"
        );
        let above = observe(&mut agent, &world(400_001));
        assert_eq!(signals(&above), vec![over.clone(), near.clone()]);
        assert_eq!(ask(&above), None);
        // 97.5 % is inside the over-cap band (3 %): still over.
        let band = observe(&mut agent, &world(390_000));
        assert_eq!(signals(&band), vec![over.clone(), near.clone()]);
        assert_eq!(ask(&band), None);
        // Below 97 %: over clears and selling resumes; near holds.
        let below = observe(&mut agent, &world(387_999));
        assert_eq!(signals(&below), vec![near.clone()]);
        assert!(ask(&below).is_some());
    }

    #[test]
    fn averaged_draw_rides_out_a_noisy_reading_but_not_a_cap_drop() {
        let params = "draw_average_ticks = 10\nover_cap_permille = 1010\nhysteresis_permille = 10";
        let mut agent = PowerAgent::from_spec(&spec(params)).unwrap();
        let over = ("power_over_cap".to_owned(), Domain::Safety);
        for _ in 0..9 {
            observe(&mut agent, &world(398_000));
        }
        // One reading 3 % over the cap: the 1 s average is 399.4 W, under the cap.
        let spike = observe(&mut agent, &world(412_000));
        assert!(!signals(&spike).contains(&over), "{:?}", signals(&spike));
        // Without the window the same reading is over the cap.
        let mut alone = PowerAgent::from_spec(&spec("over_cap_permille = 1010")).unwrap();
        assert!(signals(&observe(&mut alone, &world(412_000))).contains(&over));
        // The cap drops to 300 W under a 398 W draw: over at the first tick.
        let mut dropped = world(398_000);
        dropped.frame.node.cap_mw = Some(300_000);
        assert!(signals(&observe(&mut agent, &dropped)).contains(&over));
        // A tick without a draw reading starts the average afresh.
        let mut blind = world(0);
        blind.frame.node.draw_mw = None;
        blind.frame.components.clear();
        observe(&mut agent, &blind);
        assert!(signals(&observe(&mut agent, &world(412_000))).contains(&over));
    }

    #[test]
    fn near_cap_signal_has_hysteresis() {
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let mut run = |draw| signals(&observe(&mut agent, &world(draw)));
        let near = vec![("power_near_cap".to_owned(), Domain::Power)];
        assert_eq!(run(379_999), vec![]);
        assert_eq!(run(380_000), near);
        assert_eq!(run(368_000), near);
        assert_eq!(run(367_999), vec![]);
        assert_eq!(run(379_000), vec![]);
    }

    #[test]
    fn cap_and_baselines_come_from_params_when_telemetry_lacks_them() {
        let mut world = world(100_000);
        world.frame.node.cap_mw = None;
        world.frame.components[1].limit_min_mw = None;
        let mut agent =
            PowerAgent::from_spec(&spec("cap_mw = 300000\nbaselines_mw = { gpu0 = 80000 }"))
                .unwrap();
        let intents = observe(&mut agent, &world);
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity(170_000)));
        // Without a gpu0 baseline, the budget is unknown: nothing is sold.
        let mut agent = PowerAgent::from_spec(&spec("cap_mw = 300000")).unwrap();
        assert_eq!(observe(&mut agent, &world), vec![]);
    }

    #[test]
    fn draw_is_summed_from_components_when_the_node_has_none() {
        let mut world = world(0);
        world.frame.node.draw_mw = None;
        world.frame.components[0].power_mw = Some(200_000);
        world.frame.components[1].power_mw = Some(190_000);
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let intents = observe(&mut agent, &world);
        assert_eq!(
            signals(&intents),
            vec![("power_near_cap".to_owned(), Domain::Power)]
        );
        // One component without a reading: no draw, so no signal and the dearest reserve.
        world.frame.components[1].power_mw = None;
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        let intents = observe(&mut agent, &world);
        assert_eq!(signals(&intents), vec![]);
        assert_eq!(ask(&intents).map(|(p, _)| p), Some(Price(8)));
    }

    #[test]
    fn missing_or_extreme_telemetry_does_not_panic() {
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        assert_eq!(observe(&mut agent, &World::default()), vec![]);
        let mut extreme = world(u64::MAX);
        extreme.frame.node.cap_mw = Some(1);
        let intents = observe(&mut agent, &extreme);
        assert_eq!(ask(&intents), None);
        assert_eq!(signals(&intents).len(), 2);
        let mut zero = world(0);
        zero.frame.node.cap_mw = Some(0);
        let mut agent = PowerAgent::from_spec(&spec("")).unwrap();
        assert_eq!(observe(&mut agent, &zero), vec![]);
        let mut huge = world(0);
        huge.frame.node.cap_mw = Some(u64::MAX);
        let intents = observe(&mut agent, &huge);
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity::MAX));
    }
}
