//! The thermal agent: sells the machine's thermal headroom and raises thermal warning
//! and critical signals per zone, with hysteresis.
//!
//! Each tick it:
//! - finds the zones (see `zone.rs`): every component with a temperature and a `t_max`
//!   (its telemetry `t_max_mc`, or the `t_max_mc` param), plus any temperature sensor
//!   named in the `t_max_mc` param;
//! - raises `thermal_warning.<zone>` (thermal domain) from `t_max − warning_below_mc`
//!   and `thermal_critical.<zone>` (safety domain: the guardian applies the safe limit
//!   at once) from `t_max − critical_below_mc`; each stops only once the temperature is
//!   `hysteresis_mc` below where it started. The temperature they follow is the
//!   average of the zone's last `temp_average_ticks` readings (1 by default). Strength
//!   is how far the temperature has come from the warning threshold towards `t_max`
//!   (at least 0.1);
//! - sells headroom `Σ max(0, t_max − margin − t_now)` as `thermal_headroom_mc`: a
//!   `SetCapacity` when it has moved by `capacity_deadband_mc`, and an ask at
//!   `price_base / f`, where `f` is the headroom fraction left in the tightest zone
//!   (`(t_max − margin − t_now) / (t_max − margin − ambient)`), capped at `price_max`.
//!   While any zone is critical it sells nothing.
//!
//! ```
//! use gamesa_agent::{AgentRegistry, AgentSpec, proto::AgentId};
//!
//! let mut registry = AgentRegistry::new();
//! gamesa_agent_thermal::register(&mut registry).unwrap();
//! let spec = AgentSpec {
//!     id: AgentId(4),
//!     name: "thermal".into(),
//!     kind: gamesa_agent_thermal::KIND.into(),
//!     weight: 1,
//!     params: "t_max_mc = { thermal_zone0 = 95000 }".parse().unwrap(),
//!     module: None,
//! };
//! assert!(registry.create(&spec).is_ok());
//! ```

mod params;
mod zone;

use std::collections::BTreeMap;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation,
    capacity::Capacity,
    hysteresis::{Latch, raise},
    moving_average::MovingAverage,
    pricing::reserve_price,
    proto::{Domain, Resource, Side},
    quote::resting_this_tick,
};

pub use crate::params::ThermalParams;

/// The kind name this crate registers.
pub const KIND: &str = "thermal";

/// Registers the thermal agent under [`KIND`].
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register(KIND, |spec| {
        Ok(Box::new(ThermalAgent::from_spec(spec)?) as Box<dyn Agent>)
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ZoneLatches {
    warning: Latch,
    critical: Latch,
    /// The zone's last `temp_average_ticks` readings.
    recent_mc: MovingAverage,
}

/// The thermal agent. Its state is the latches of each zone it has seen and the
/// capacity it last declared; a zone missing from a frame keeps its latches but raises
/// nothing until it reports again.
#[derive(Debug, Clone)]
pub struct ThermalAgent {
    params: ThermalParams,
    capacity: Capacity,
    latches: BTreeMap<String, ZoneLatches>,
}

impl ThermalAgent {
    /// Builds the agent from its config entry.
    pub fn from_spec(spec: &AgentSpec) -> Result<ThermalAgent, AgentError> {
        let params: ThermalParams = spec.params()?;
        params.validate(&spec.name)?;
        Ok(ThermalAgent::new(params))
    }

    /// Builds the agent from validated params.
    pub fn new(params: ThermalParams) -> ThermalAgent {
        ThermalAgent {
            capacity: Capacity::new(Resource::ThermalHeadroomMc, params.capacity_deadband_mc),
            params,
            latches: BTreeMap::new(),
        }
    }
}

impl Agent for ThermalAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let params = &self.params;
        let zones = zone::zones(obs.frame, params);
        let mut signals = Vec::new();
        let mut any_critical = false;
        let mut headroom_mc = 0u64;
        let mut tightest = 1.0f64;
        for (id, zone) in &zones {
            let latches = self.latches.entry(id.clone()).or_default();
            let temp = latches
                .recent_mc
                .push(i64::from(zone.temp_mc), params.temp_average_ticks);
            let t_max = i64::from(zone.t_max_mc);
            let warning_at = t_max - i64::from(params.warning_below_mc);
            let critical_at = t_max - i64::from(params.critical_below_mc);
            let hysteresis = i64::from(params.hysteresis_mc);
            // Validation keeps `warning_below_mc` above `critical_below_mc >= 0`.
            let closeness =
                1000.0 * (temp - warning_at) as f64 / f64::from(params.warning_below_mc);
            if latches.critical.update(temp, critical_at, hysteresis) {
                any_critical = true;
                let kind = format!("thermal_critical.{}", zone.signal_name);
                signals.extend(raise(
                    &kind,
                    Domain::Safety,
                    closeness,
                    params.signal_ttl_ticks,
                ));
            }
            if latches.warning.update(temp, warning_at, hysteresis) {
                let kind = format!("thermal_warning.{}", zone.signal_name);
                signals.extend(raise(
                    &kind,
                    Domain::Thermal,
                    closeness,
                    params.signal_ttl_ticks,
                ));
            }
            headroom_mc = headroom_mc.saturating_add(zone.headroom_mc(params.margin_mc));
            tightest = tightest.min(zone.headroom_fraction(params.margin_mc, params.ambient_mc));
        }

        let mut intents = Vec::new();
        if !zones.is_empty() {
            let quote = self.capacity.update(obs, headroom_mc);
            intents.extend(quote.declare);
            let price = if tightest > 0.0 {
                reserve_price(params.price_base as f64 / tightest)
                    .min(reserve_price(params.price_max as f64))
            } else {
                reserve_price(params.price_max as f64)
            };
            let free = if any_critical { 0 } else { quote.free };
            intents.extend(resting_this_tick(
                obs,
                Resource::ThermalHeadroomMc,
                Side::Ask,
                price,
                free,
            ));
        }
        intents.extend(signals);
        Ok(intents)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{
            AgentId, ComponentKind, ComponentTelemetry, Price, Quantity, TemperatureTelemetry,
        },
        testkit::{World, component, raised, sole_ask},
    };

    use super::*;

    const ME: AgentId = AgentId(4);

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: ME,
            name: "thermal".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    /// A GPU at `temp_mc` with t_max 90 °C.
    fn world(temp_mc: i32) -> World {
        let mut world = World::default();
        world.frame.components = vec![ComponentTelemetry {
            temp_mc: Some(temp_mc),
            t_max_mc: Some(90_000),
            ..component("gpu0", ComponentKind::Gpu)
        }];
        world
    }

    fn ask(intents: &[Intent]) -> Option<(Price, Quantity)> {
        sole_ask(intents, Resource::ThermalHeadroomMc)
    }

    #[test]
    fn register_makes_the_kind_creatable() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        assert!(registry.create(&spec("margin_mc = 3000")).is_ok());
    }

    #[test]
    fn unknown_and_invalid_params_name_the_key() {
        for (params, key) in [
            ("margin = 3", "margin"),
            ("margin_mc = \"3\"", "margin_mc"),
            (
                "warning_below_mc = 1000\ncritical_below_mc = 2000",
                "warning_below_mc",
            ),
            ("hysteresis_mc = -1", "hysteresis_mc"),
            ("signal_ttl_ticks = 0", "signal_ttl_ticks"),
            ("price_max = 0", "price_max"),
            ("t_max_mc = { gpu0 = 20000 }", "t_max_mc.gpu0"),
        ] {
            let err = ThermalAgent::from_spec(&spec(params)).err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}");
            };
            assert_eq!(agent, "thermal");
            assert!(message.contains(key), "{params}: {message}");
        }
    }

    #[test]
    fn headroom_is_sold_and_its_price_rises_as_it_shrinks() {
        let mut agent = ThermalAgent::from_spec(&spec("")).unwrap();
        // 45 °C: 40 °C of headroom below 85 °C, two thirds of the 60 °C at ambient.
        let cool = agent.observe(&world(45_000).observation(ME)).unwrap();
        assert_eq!(
            cool[0],
            Intent::SetCapacity {
                resource: Resource::ThermalHeadroomMc,
                quantity: Quantity(40_000)
            }
        );
        assert_eq!(ask(&cool), Some((Price(2), Quantity(40_000))));
        // 79 °C: 6 °C left, a tenth: ten times the base price.
        let warm = agent.observe(&world(79_000).observation(ME)).unwrap();
        assert_eq!(ask(&warm), Some((Price(10), Quantity(6_000))));
        // Past t_max − margin: nothing left, and the price is at its cap.
        let hot = agent.observe(&world(86_000).observation(ME)).unwrap();
        assert_eq!(ask(&hot), None);
    }

    #[test]
    fn warning_then_critical_and_both_clear_only_after_hysteresis() {
        let mut agent = ThermalAgent::from_spec(&spec("")).unwrap();
        let mut run = |temp_mc| {
            let intents = agent.observe(&world(temp_mc).observation(ME)).unwrap();
            raised(&intents)
                .into_iter()
                .map(|(kind, domain, _)| (kind, domain))
                .collect::<Vec<_>>()
        };
        let warning = ("thermal_warning.gpu0".to_owned(), Domain::Thermal);
        let critical = ("thermal_critical.gpu0".to_owned(), Domain::Safety);
        assert_eq!(run(79_999), vec![]);
        assert_eq!(run(80_000), vec![warning.clone()]);
        assert_eq!(run(87_000), vec![critical.clone(), warning.clone()]);
        // Below the critical threshold but inside its band: still critical.
        assert_eq!(run(85_500), vec![critical.clone(), warning.clone()]);
        // Below 87 − 2 °C: critical clears, the warning holds.
        assert_eq!(run(84_999), vec![warning.clone()]);
        // Inside the warning band.
        assert_eq!(run(78_000), vec![warning.clone()]);
        assert_eq!(run(77_999), vec![]);
        // Re-entering needs the threshold again.
        assert_eq!(run(79_000), vec![]);
    }

    #[test]
    fn strength_grows_towards_t_max() {
        let mut agent = ThermalAgent::from_spec(&spec("")).unwrap();
        let strength = |agent: &mut ThermalAgent, temp_mc| {
            let intents = agent.observe(&world(temp_mc).observation(ME)).unwrap();
            raised(&intents)
                .into_iter()
                .find(|(kind, _, _)| kind.starts_with("thermal_warning"))
                .map(|(_, _, strength)| strength)
        };
        assert_eq!(strength(&mut agent, 80_000), Some(100), "floored at 0.1");
        assert_eq!(strength(&mut agent, 85_000), Some(500));
        assert_eq!(strength(&mut agent, 95_000), Some(1000));
    }

    #[test]
    fn an_averaged_temperature_rides_out_a_noisy_reading_but_not_a_rise() {
        let critical = ("thermal_critical.gpu0".to_owned(), Domain::Safety);
        let mut agent = ThermalAgent::from_spec(&spec("temp_average_ticks = 5")).unwrap();
        let mut raised_at = Vec::new();
        // t_max 87 °C, critical from 84 °C: one reading of 85 °C among 83 °C ones
        // averages 83.4 °C; a zone that stays at 85 °C trips within the window.
        for (tick, temp_mc) in [
            83_000, 83_000, 83_000, 83_000, 85_000, 83_000, 85_000, 85_000, 85_000, 85_000,
        ]
        .into_iter()
        .enumerate()
        {
            let world = World::with_components(vec![ComponentTelemetry {
                temp_mc: Some(temp_mc),
                t_max_mc: Some(87_000),
                ..component("gpu0", ComponentKind::Gpu)
            }]);
            let intents = agent.observe(&world.observation(ME)).unwrap();
            if raised(&intents)
                .iter()
                .any(|(kind, domain, _)| (kind.clone(), *domain) == critical)
            {
                raised_at.push(tick);
            }
        }
        // At tick 7 the window holds 83, 85, 83, 85, 85 °C: 84.2 °C.
        assert_eq!(raised_at.first(), Some(&7), "{raised_at:?}");
        assert!(ThermalAgent::from_spec(&spec("temp_average_ticks = 0")).is_err());
    }

    #[test]
    fn nothing_is_sold_while_a_zone_is_critical() {
        let mut agent =
            ThermalAgent::from_spec(&spec("t_max_mc = { thermal_zone0 = 95000 }")).unwrap();
        let mut two = world(88_000);
        two.frame.temperatures = vec![TemperatureTelemetry {
            id: "thermal_zone0".into(),
            temp_mc: 40_000,
            ..TemperatureTelemetry::default()
        }];
        let intents = agent.observe(&two.observation(ME)).unwrap();
        assert_eq!(ask(&intents), None);
        assert!(
            raised(&intents)
                .iter()
                .any(|(kind, _, _)| kind == "thermal_critical.gpu0")
        );
        // Once the GPU has cooled past the band, both zones' headroom is for sale.
        two.frame.components[0].temp_mc = Some(50_000);
        let intents = agent.observe(&two.observation(ME)).unwrap();
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity(85_000)));
        assert_eq!(raised(&intents), vec![]);
    }

    #[test]
    fn missing_or_extreme_temperatures_do_not_panic() {
        let mut agent = ThermalAgent::from_spec(&spec("")).unwrap();
        let mut world = World::default();
        world.frame.components = vec![component("gpu0", ComponentKind::Gpu)];
        assert_eq!(agent.observe(&world.observation(ME)).unwrap(), vec![]);
        for temp_mc in [i32::MIN, 0, i32::MAX] {
            let mut extreme = world.clone();
            extreme.frame.components[0].temp_mc = Some(temp_mc);
            extreme.frame.components[0].t_max_mc = Some(i32::MAX);
            agent.observe(&extreme.observation(ME)).unwrap();
            extreme.frame.components[0].t_max_mc = Some(i32::MIN);
            agent.observe(&extreme.observation(ME)).unwrap();
        }
    }
}
