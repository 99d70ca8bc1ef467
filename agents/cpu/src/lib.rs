//! The CPU agent: buys power budget and thermal headroom for the CPU package at the
//! marginal utility of more power, and sells cores (and optionally CPU time) to workloads.
//!
//! Each tick, in this order, it:
//! - declares its `cpu_cores` capacity once (from `cores`, or the cores in telemetry minus
//!   `reserved_cores`) and asks for the free cores at a reserve price that rises linearly
//!   from `core_price_idle` to `core_price_busy` with CPU utilization; the same for
//!   `cpu_time_us` when `cpu_time_us` is set;
//! - asks for `baseline + held power budget` as the CPU's power limit when that differs
//!   from the enforced one, and bids for power budget and the thermal headroom its heat
//!   will use (the SDK's `gamesa_agent::power_demand`, documented there and in
//!   `docs/agents.md`).
//!
//! Every order rests through the current tick only, so the agent re-quotes each tick and
//! never cancels. It is pure: same observation and state, same intents.
//!
//! ```
//! use gamesa_agent::{AgentRegistry, AgentSpec, proto::AgentId};
//!
//! let mut registry = AgentRegistry::new();
//! gamesa_agent_cpu::register(&mut registry).unwrap();
//! let spec = AgentSpec {
//!     id: AgentId(1),
//!     name: "cpu".into(),
//!     kind: gamesa_agent_cpu::KIND.into(),
//!     weight: 2,
//!     params: Default::default(),
//!     module: None,
//! };
//! assert!(registry.create(&spec).is_ok());
//! ```

mod params;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation,
    fixed_offer::FixedOffer,
    power_demand::PowerDemand,
    proto::{ComponentTelemetry, Resource},
};

pub use crate::params::CpuParams;

/// The kind name this crate registers.
pub const KIND: &str = "cpu";

/// Registers the CPU agent under [`KIND`].
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register_powering(
        KIND,
        |spec| Ok(Box::new(CpuAgent::from_spec(spec)?) as Box<dyn Agent>),
        |spec| {
            let params: CpuParams = spec.params()?;
            params.validate(&spec.name)?;
            Ok(Some(params.demand.component))
        },
    )
}

/// The CPU agent. Its state is what it learned from telemetry (core count, thermal
/// resistance) and what it last declared; a restart relearns both.
#[derive(Debug, Clone)]
pub struct CpuAgent {
    params: CpuParams,
    demand: PowerDemand,
    cores: FixedOffer,
    time: Option<FixedOffer>,
}

impl CpuAgent {
    /// Builds the agent from its config entry: `params` and `weight`.
    pub fn from_spec(spec: &AgentSpec) -> Result<CpuAgent, AgentError> {
        let params: CpuParams = spec.params()?;
        params.validate(&spec.name)?;
        Ok(CpuAgent::new(params, spec.weight))
    }

    /// Builds the agent from validated params.
    pub fn new(params: CpuParams, weight: u32) -> CpuAgent {
        let cores = FixedOffer::new(
            Resource::CpuCores,
            params.cores,
            params.core_price_idle,
            params.core_price_busy,
        );
        let time = params.cpu_time_us.map(|capacity| {
            FixedOffer::new(
                Resource::CpuTimeUs,
                Some(capacity),
                params.cpu_time_price_idle,
                params.cpu_time_price_busy,
            )
        });
        CpuAgent {
            demand: PowerDemand::new(params.demand.clone(), weight),
            params,
            cores,
            time,
        }
    }

    fn component<'a>(&self, obs: &Observation<'a>) -> Option<&'a ComponentTelemetry> {
        obs.frame.component(&self.params.demand.component)
    }

    /// CPU utilization: the component's, else the whole-CPU figure.
    fn utilization(&self, obs: &Observation<'_>) -> Option<u16> {
        self.component(obs)
            .map(|component| component.utilization_permille)
            .or(obs.frame.cpu.as_ref().map(|cpu| cpu.utilization_permille))
    }

    /// Cores to sell when `cores` is not set: those in telemetry less the reserved ones.
    fn discovered_cores(&self, obs: &Observation<'_>) -> Option<u64> {
        let count = obs.frame.cpu.as_ref()?.per_core_permille.len() as u64;
        (count > 0).then(|| count.saturating_sub(self.params.reserved_cores))
    }
}

impl Agent for CpuAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let utilization = self.utilization(obs);
        let discovered = self.discovered_cores(obs);
        let mut intents = self.cores.quote(obs, discovered, utilization);
        if let Some(time) = self.time.as_mut() {
            intents.extend(time.quote(obs, None, utilization));
        }
        intents.extend(self.demand.decide(obs));
        Ok(intents)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{Actuation, AgentId, ComponentKind, CpuTelemetry, Quantity, Side},
        testkit::{World, component_with_limits},
    };

    use super::*;

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: AgentId(1),
            name: "cpu".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    fn busy_cpu_world() -> World {
        let mut world = World::with_components(vec![ComponentTelemetry {
            utilization_permille: 950,
            power_mw: Some(45_000),
            limit_mw: Some(45_000),
            limit_min_mw: Some(45_000),
            limit_max_mw: Some(125_000),
            ..component_with_limits("cpu", ComponentKind::Cpu)
        }]);
        world.frame.cpu = Some(CpuTelemetry {
            utilization_permille: 950,
            per_core_permille: vec![950; 8],
            frequency_khz: vec![None; 8],
        });
        world
    }

    #[test]
    fn register_makes_the_kind_creatable() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        assert!(registry.contains(KIND));
        assert!(registry.create(&spec("cores = 4\nstep_mw = 500")).is_ok());
        assert_eq!(
            register(&mut registry),
            Err(AgentError::DuplicateKind(KIND.into()))
        );
    }

    #[test]
    fn unknown_and_invalid_params_name_the_key() {
        for (params, key) in [
            ("step_mw = 0", "step_mw"),
            ("stepmw = 10", "stepmw"),
            ("step_mw = \"x\"", "step_mw"),
            ("max_mw = -5", "max_mw"),
            ("idle_permille = 950", "idle_permille"),
            ("baseline_mw = 10\nmax_mw = 5", "baseline_mw"),
            ("r_c_per_w = -1.0", "r_c_per_w"),
            ("component = \"CPU 0\"", "component"),
            (
                "core_price_idle = 9\ncore_price_busy = 1",
                "core_price_idle",
            ),
            (
                "thermal_damping_permille = 2000",
                "thermal_damping_permille",
            ),
        ] {
            let err = CpuAgent::from_spec(&spec(params)).err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}");
            };
            assert_eq!(agent, "cpu");
            assert!(message.contains(key), "{params}: {message}");
        }
    }

    #[test]
    fn a_busy_cpu_sells_its_cores_and_bids_for_power() {
        let world = busy_cpu_world();
        let mut agent = CpuAgent::from_spec(&spec("")).unwrap();
        let intents = agent.observe(&world.observation(AgentId(1))).unwrap();
        assert_eq!(
            intents[0],
            Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(7)
            }
        );
        let ask = intents.iter().find_map(|intent| match intent {
            Intent::Place(order) if order.side == Side::Ask => Some(*order),
            _ => None,
        });
        let ask = ask.unwrap();
        assert_eq!(ask.resource, Resource::CpuCores);
        assert_eq!(ask.quantity, Quantity(7));
        assert_eq!(ask.price.0, 1_000 + 19_000 * 950 / 1000);
        // The power bid is a ladder of tranches; together they ask for 80 W.
        let power: u64 = intents
            .iter()
            .filter_map(|intent| match intent {
                Intent::Place(order)
                    if order.side == Side::Bid && order.resource == Resource::PowerBudgetMw =>
                {
                    Some(order.quantity.0)
                }
                _ => None,
            })
            .sum();
        assert_eq!(power, 80_000);
        assert!(
            !intents
                .iter()
                .any(|intent| matches!(intent, Intent::Actuate(Actuation::PowerLimit { .. })))
        );
    }

    #[test]
    fn cpu_time_is_sold_only_when_configured() {
        let world = busy_cpu_world();
        let sells_time = |params: &str| {
            let mut agent = CpuAgent::from_spec(&spec(params)).unwrap();
            agent
                .observe(&world.observation(AgentId(1)))
                .unwrap()
                .iter()
                .any(|intent| {
                    matches!(intent, Intent::Place(order) if order.resource == Resource::CpuTimeUs)
                })
        };
        assert!(!sells_time(""));
        assert!(sells_time("cpu_time_us = 4000000"));
    }

    #[test]
    fn an_empty_frame_gives_no_orders() {
        let world = World::with_components(vec![]);
        let mut agent = CpuAgent::from_spec(&spec("")).unwrap();
        assert_eq!(
            agent.observe(&world.observation(AgentId(1))).unwrap(),
            vec![]
        );
    }
}
