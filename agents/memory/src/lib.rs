//! The memory agent: sells host memory to workloads and raises memory-pressure signals
//! from PSI, with hysteresis.
//!
//! Each tick it:
//! - sells `memory_mb`: what is available minus `reserve_mb`. The declared capacity is
//!   that plus what is leased out (a lessee using its lease does not shrink the pool),
//!   re-declared only when it moves by `capacity_deadband_mb`. The ask's reserve price is
//!   `price_base · (1 + gain · pressure) / (available / total)`, capped at `price_max`:
//!   memory gets dearer as it runs out and as tasks stall on it;
//! - raises `memory_pressure` once PSI `some avg10` reaches `pressure_enter_centipct`,
//!   until it falls below that minus `pressure_hysteresis_centipct`; strength is
//!   `some avg10 / full_scale_centipct` (at least 0.1);
//! - raises `memory_pressure_critical` the same way from `full avg10` (every task
//!   stalled) and the `critical_*` keys.
//!
//! Both signals go in the `domain` param's domain, `efficiency` by default: while tasks
//! stall on memory, power spent on compute buys little, so the CPU and GPU agents damp
//! their bids. Without memory telemetry it sells nothing; without PSI it raises nothing
//! and prices without the pressure term.
//!
//! ```
//! use gamesa_agent::{AgentRegistry, AgentSpec, proto::AgentId};
//!
//! let mut registry = AgentRegistry::new();
//! gamesa_agent_memory::register(&mut registry).unwrap();
//! let spec = AgentSpec {
//!     id: AgentId(3),
//!     name: "memory".into(),
//!     kind: gamesa_agent_memory::KIND.into(),
//!     weight: 1,
//!     params: "reserve_mb = 2048".parse().unwrap(),
//!     module: None,
//! };
//! assert!(registry.create(&spec).is_ok());
//! ```

mod params;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation,
    capacity::Capacity,
    hysteresis::{Latch, raise},
    pricing::reserve_price,
    proto::{MemoryTelemetry, PressureTelemetry, Resource, Side},
    quote::resting_this_tick,
};

pub use crate::params::MemoryParams;

/// The kind name this crate registers.
pub const KIND: &str = "memory";

/// Registers the memory agent under [`KIND`].
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register(KIND, |spec| {
        Ok(Box::new(MemoryAgent::from_spec(spec)?) as Box<dyn Agent>)
    })
}

/// The smallest available share the price divides by, so it stays finite.
const MIN_AVAILABLE_FRACTION: f64 = 0.01;

/// The memory agent. Its state is its two latches and the capacity it last declared.
#[derive(Debug, Clone)]
pub struct MemoryAgent {
    params: MemoryParams,
    capacity: Capacity,
    pressure: Latch,
    critical: Latch,
}

impl MemoryAgent {
    /// Builds the agent from its config entry.
    pub fn from_spec(spec: &AgentSpec) -> Result<MemoryAgent, AgentError> {
        let params: MemoryParams = spec.params()?;
        params.validate(&spec.name)?;
        Ok(MemoryAgent::new(params))
    }

    /// Builds the agent from validated params.
    pub fn new(params: MemoryParams) -> MemoryAgent {
        MemoryAgent {
            capacity: Capacity::new(Resource::MemoryMb, params.capacity_deadband_mb),
            params,
            pressure: Latch::default(),
            critical: Latch::default(),
        }
    }

    /// A PSI average as a share of full scale, in `[0, 1]`.
    fn scaled(&self, centipct: u32) -> f64 {
        (f64::from(centipct) / f64::from(self.params.full_scale_centipct)).min(1.0)
    }

    fn signals(&mut self, psi: &PressureTelemetry) -> Vec<Intent> {
        let params = &self.params;
        let mut signals = Vec::new();
        let critical = self.critical.update(
            i64::from(psi.full_avg10_centipct),
            i64::from(params.critical_enter_centipct),
            i64::from(params.critical_hysteresis_centipct),
        );
        if critical {
            signals.extend(raise(
                "memory_pressure_critical",
                params.domain,
                1000.0 * self.scaled(psi.full_avg10_centipct),
                params.signal_ttl_ticks,
            ));
        }
        let pressure = self.pressure.update(
            i64::from(psi.some_avg10_centipct),
            i64::from(params.pressure_enter_centipct),
            i64::from(params.pressure_hysteresis_centipct),
        );
        if pressure {
            signals.extend(raise(
                "memory_pressure",
                params.domain,
                1000.0 * self.scaled(psi.some_avg10_centipct),
                params.signal_ttl_ticks,
            ));
        }
        signals
    }

    fn offer(
        &mut self,
        obs: &Observation<'_>,
        memory: &MemoryTelemetry,
        pressure: f64,
    ) -> Vec<Intent> {
        let params = &self.params;
        let mut intents = Vec::new();
        if memory.total_mb == 0 {
            return intents;
        }
        let sellable = memory.available_mb.saturating_sub(params.reserve_mb);
        let available = (memory.available_mb as f64 / memory.total_mb as f64)
            .clamp(MIN_AVAILABLE_FRACTION, 1.0);
        let gain = f64::from(params.pressure_price_gain_permille) / 1000.0;
        let price = reserve_price(params.price_base as f64 * (1.0 + gain * pressure) / available)
            .min(reserve_price(params.price_max as f64));
        let quote = self.capacity.update(obs, sellable);
        intents.extend(quote.declare);
        intents.extend(resting_this_tick(
            obs,
            Resource::MemoryMb,
            Side::Ask,
            price,
            quote.free,
        ));
        intents
    }
}

impl Agent for MemoryAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let psi = obs.frame.pressure.as_ref();
        let pressure = psi.map_or(0.0, |psi| self.scaled(psi.some_avg10_centipct));
        let mut intents = match &obs.frame.memory {
            Some(memory) => self.offer(obs, memory, pressure),
            None => Vec::new(),
        };
        if let Some(psi) = psi {
            intents.extend(self.signals(psi));
        }
        Ok(intents)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{AgentId, Domain, Price, Quantity, Tick},
        testkit::{World, lease_between, raised, sole_ask},
    };

    use super::*;

    const ME: AgentId = AgentId(3);

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: ME,
            name: "memory".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    /// 16 GB, `available_mb` of it available, with PSI `some` and `full` avg10.
    fn world(available_mb: u64, some: u32, full: u32) -> World {
        let mut world = World::default();
        world.frame.memory = Some(MemoryTelemetry {
            total_mb: 16_384,
            used_mb: 16_384 - available_mb,
            available_mb,
            ..MemoryTelemetry::default()
        });
        world.frame.pressure = Some(PressureTelemetry {
            some_avg10_centipct: some,
            full_avg10_centipct: full,
            ..PressureTelemetry::default()
        });
        world
    }

    fn ask(intents: &[Intent]) -> Option<(Price, Quantity)> {
        sole_ask(intents, Resource::MemoryMb)
    }

    #[test]
    fn register_makes_the_kind_creatable() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        assert!(registry.create(&spec("domain = \"performance\"")).is_ok());
    }

    #[test]
    fn unknown_and_invalid_params_name_the_key() {
        for (params, key) in [
            ("reserve = 1", "reserve"),
            ("reserve_mb = -1", "reserve_mb"),
            ("domain = \"safety\"", "domain"),
            ("domain = \"speed\"", "domain"),
            ("pressure_enter_centipct = 0", "pressure_enter_centipct"),
            (
                "critical_hysteresis_centipct = 1000",
                "critical_hysteresis_centipct",
            ),
            ("full_scale_centipct = 0", "full_scale_centipct"),
            ("signal_ttl_ticks = 0", "signal_ttl_ticks"),
        ] {
            let err = MemoryAgent::from_spec(&spec(params)).err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}");
            };
            assert_eq!(agent, "memory");
            assert!(message.contains(key), "{params}: {message}");
        }
    }

    #[test]
    fn available_memory_less_the_reserve_is_sold() {
        let mut agent = MemoryAgent::from_spec(&spec("")).unwrap();
        let intents = agent.observe(&world(8_192, 0, 0).observation(ME)).unwrap();
        assert_eq!(
            intents[0],
            Intent::SetCapacity {
                resource: Resource::MemoryMb,
                quantity: Quantity(7_168)
            }
        );
        // Half available: twice the base price.
        assert_eq!(ask(&intents), Some((Price(4), Quantity(7_168))));
        assert_eq!(raised(&intents), vec![]);
    }

    #[test]
    fn the_price_rises_as_memory_runs_out_and_under_pressure() {
        let mut agent = MemoryAgent::from_spec(&spec("")).unwrap();
        let price = |agent: &mut MemoryAgent, world: World| {
            ask(&agent.observe(&world.observation(ME)).unwrap())
                .unwrap()
                .0
        };
        let plenty = price(&mut agent, world(12_288, 0, 0));
        let scarce = price(&mut agent, world(2_048, 0, 0));
        let pressed = price(&mut agent, world(2_048, 2_500, 0));
        assert!(
            plenty < scarce && scarce < pressed,
            "{plenty} {scarce} {pressed}"
        );
        assert_eq!(scarce, Price(16));
        assert_eq!(pressed, Price(48));
    }

    #[test]
    fn leased_memory_is_not_offered_twice() {
        let mut agent = MemoryAgent::from_spec(&spec("")).unwrap();
        agent.observe(&world(8_192, 0, 0).observation(ME)).unwrap();
        let mut leased = world(6_144, 0, 0);
        leased.leases = vec![lease_between(
            AgentId(9),
            ME,
            Resource::MemoryMb,
            2_048,
            Tick(150),
        )];
        let intents = agent.observe(&leased.observation(ME)).unwrap();
        assert!(
            !intents
                .iter()
                .any(|i| matches!(i, Intent::SetCapacity { .. }))
        );
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity(5_120)));
    }

    #[test]
    fn pressure_signals_follow_psi_with_hysteresis() {
        let mut agent = MemoryAgent::from_spec(&spec("")).unwrap();
        let mut run = |some, full| {
            let intents = agent
                .observe(&world(4_096, some, full).observation(ME))
                .unwrap();
            raised(&intents)
        };
        let pressure = |strength| ("memory_pressure".to_owned(), Domain::Efficiency, strength);
        let critical = |strength| {
            (
                "memory_pressure_critical".to_owned(),
                Domain::Efficiency,
                strength,
            )
        };
        assert_eq!(run(999, 0), vec![]);
        assert_eq!(run(1_000, 0), vec![pressure(200)]);
        assert_eq!(run(4_000, 1_500), vec![critical(300), pressure(800)]);
        // Inside both bands: both hold, strength follows the readings.
        assert_eq!(run(600, 500), vec![critical(100), pressure(120)]);
        assert_eq!(run(600, 499), vec![pressure(120)]);
        assert_eq!(run(499, 0), vec![]);
        assert_eq!(run(900, 0), vec![]);
    }

    #[test]
    fn the_domain_is_configurable() {
        let mut agent = MemoryAgent::from_spec(&spec("domain = \"performance\"")).unwrap();
        let intents = agent
            .observe(&world(4_096, 9_000, 0).observation(ME))
            .unwrap();
        assert_eq!(
            raised(&intents),
            vec![("memory_pressure".to_owned(), Domain::Performance, 1000)]
        );
    }

    #[test]
    fn missing_or_extreme_telemetry_does_not_panic() {
        let mut agent = MemoryAgent::from_spec(&spec("")).unwrap();
        assert_eq!(
            agent.observe(&World::default().observation(ME)).unwrap(),
            vec![]
        );
        let mut extreme = world(0, u32::MAX, u32::MAX);
        extreme.frame.memory = Some(MemoryTelemetry {
            total_mb: 0,
            available_mb: u64::MAX,
            ..MemoryTelemetry::default()
        });
        let intents = agent.observe(&extreme.observation(ME)).unwrap();
        assert_eq!(ask(&intents), None);
        assert_eq!(raised(&intents).len(), 2);
        extreme.frame.memory = Some(MemoryTelemetry {
            total_mb: 1,
            available_mb: u64::MAX,
            ..MemoryTelemetry::default()
        });
        let intents = agent.observe(&extreme.observation(ME)).unwrap();
        assert_eq!(ask(&intents).map(|(_, q)| q), Some(Quantity::MAX));
    }
}
