//! The GPU agent: buys power budget and thermal headroom for one GPU at the marginal
//! utility of more power, and sells its memory to workloads.
//!
//! Each tick, in this order, it:
//! - declares its `gpu_memory_mb` capacity once (from `memory_mb`, or the GPU's
//!   `memory_total_mb` minus `reserved_memory_mb`) and asks for the free megabytes at a
//!   reserve price that rises linearly from `memory_price_idle` to `memory_price_busy`
//!   with GPU utilization;
//! - asks for `baseline + held power budget` as the GPU's power limit when that differs
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
//! gamesa_agent_gpu::register(&mut registry).unwrap();
//! let spec = AgentSpec {
//!     id: AgentId(2),
//!     name: "gpu0".into(),
//!     kind: gamesa_agent_gpu::KIND.into(),
//!     weight: 3,
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
    proto::{GpuTelemetry, Resource},
};

pub use crate::params::GpuParams;

/// The kind name this crate registers.
pub const KIND: &str = "gpu";

/// Registers the GPU agent under [`KIND`].
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register_powering(
        KIND,
        |spec| Ok(Box::new(GpuAgent::from_spec(spec)?) as Box<dyn Agent>),
        |spec| {
            let params: GpuParams = spec.params()?;
            params.validate(&spec.name)?;
            Ok(Some(params.demand.component))
        },
    )
}

/// The GPU agent. Its state is what it learned from telemetry (memory size, thermal
/// resistance) and what it last declared; a restart relearns both.
#[derive(Debug, Clone)]
pub struct GpuAgent {
    params: GpuParams,
    gpu_index: Option<u32>,
    demand: PowerDemand,
    memory: FixedOffer,
}

impl GpuAgent {
    /// Builds the agent from its config entry: `params` and `weight`.
    pub fn from_spec(spec: &AgentSpec) -> Result<GpuAgent, AgentError> {
        let params: GpuParams = spec.params()?;
        params.validate(&spec.name)?;
        Ok(GpuAgent::new(params, spec.weight))
    }

    /// Builds the agent from validated params.
    pub fn new(params: GpuParams, weight: u32) -> GpuAgent {
        GpuAgent {
            gpu_index: params.gpu_index(),
            demand: PowerDemand::new(params.demand.clone(), weight),
            memory: FixedOffer::new(
                Resource::GpuMemoryMb,
                params.memory_mb,
                params.memory_price_idle,
                params.memory_price_busy,
            ),
            params,
        }
    }

    fn device<'a>(&self, obs: &Observation<'a>) -> Option<&'a GpuTelemetry> {
        let index = self.gpu_index?;
        obs.frame.gpus.iter().find(|gpu| gpu.index == index)
    }

    /// GPU utilization: the component's, else the NVML device's.
    fn utilization(&self, obs: &Observation<'_>) -> Option<u16> {
        obs.frame
            .component(&self.params.demand.component)
            .map(|component| component.utilization_permille)
            .or_else(|| {
                self.device(obs).map(|gpu| {
                    // At most 1000 after `min`, so the cast cannot truncate.
                    gpu.utilization_pct.saturating_mul(10).min(1000) as u16
                })
            })
    }

    /// Memory to sell when `memory_mb` is not set: the device's less the reserve.
    fn discovered_memory(&self, obs: &Observation<'_>) -> Option<u64> {
        let total = self.device(obs)?.memory_total_mb;
        (total > 0).then(|| total.saturating_sub(self.params.reserved_memory_mb))
    }
}

impl Agent for GpuAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let utilization = self.utilization(obs);
        let discovered = self.discovered_memory(obs);
        let mut intents = self.memory.quote(obs, discovered, utilization);
        intents.extend(self.demand.decide(obs));
        Ok(intents)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{
            Actuation, AgentId, ComponentKind, ComponentTelemetry, Domain, Price, Quantity, Side,
        },
        testkit::{World, component_with_limits, lease, placed, signal},
    };

    use super::*;

    const ME: AgentId = AgentId(2);

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: ME,
            name: "gpu0".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    /// A 24 GB GPU with limits 100..300 W, bound by its limit, at `utilization` ‰.
    fn world(utilization: u16) -> World {
        let mut world = World::with_components(vec![ComponentTelemetry {
            utilization_permille: utilization,
            power_mw: Some(100_000),
            temp_mc: Some(60_000),
            limit_mw: Some(100_000),
            ..component_with_limits("gpu0", ComponentKind::Gpu)
        }]);
        world.frame.gpus = vec![GpuTelemetry {
            index: 0,
            utilization_pct: u32::from(utilization / 10),
            memory_total_mb: 24_576,
            ..GpuTelemetry::default()
        }];
        world
    }

    fn run(params: &str, world: &World) -> Vec<Intent> {
        let mut agent = GpuAgent::from_spec(&spec(params)).unwrap();
        agent.observe(&world.observation(ME)).unwrap()
    }

    #[test]
    fn register_makes_the_kind_creatable() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        assert_eq!(registry.kinds().collect::<Vec<_>>(), vec![KIND]);
        assert!(registry.create(&spec("memory_mb = 8192")).is_ok());
    }

    #[test]
    fn unknown_and_invalid_params_name_the_key() {
        for (params, key) in [
            ("memory = 10", "memory"),
            ("memory_mb = \"lots\"", "memory_mb"),
            ("step_mw = 0", "step_mw"),
            ("saturated_permille = 1200", "saturated_permille"),
            ("bound_permille = 0", "bound_permille"),
            (
                "memory_price_idle = 9\nmemory_price_busy = 1",
                "memory_price_idle",
            ),
            ("r_c_per_w = inf", "r_c_per_w"),
        ] {
            let err = GpuAgent::from_spec(&spec(params)).err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}");
            };
            assert_eq!(agent, "gpu0");
            assert!(message.contains(key), "{params}: {message}");
        }
    }

    #[test]
    fn a_saturated_gpu_bids_more_than_an_idle_one_which_only_holds_standby() {
        // R = 0.15 °C/W given, so the thermal cap ((90 − 4 − 25) / 0.15 = 407 W at a
        // 25 °C ambient) is above the 300 W maximum.
        let mut cool = world(1000);
        cool.components_mut()[0].temp_mc = Some(40_000);
        let busy = run("r_c_per_w = 0.15\nambient_mc = 25000", &cool);
        let idle = run("", &world(100));
        let bids: Vec<(Price, Quantity)> = busy
            .iter()
            .filter_map(|intent| match intent {
                Intent::Place(order)
                    if order.resource == Resource::PowerBudgetMw && order.side == Side::Bid =>
                {
                    Some((order.price, order.quantity))
                }
                _ => None,
            })
            .collect();
        // Saturated: the whole 200 W from its 100 W baseline to its 300 W maximum, in 8
        // tranches of 25 W. The first is priced at its middle, 112.5 W:
        // 10 · (300 / 112.5)^(2/3) · 100 / 300 = 6.41, so 6 credits per mW.
        assert_eq!(bids.len(), 8);
        assert_eq!(bids.iter().map(|(_, q)| q.0).sum::<u64>(), 200_000);
        assert_eq!(bids[0], (Price(6), Quantity(25_000)));
        // 200 W at 0.15 °C/W need 30 °C, priced at 2 · (300 / 100)^(2/3) / 3 = 1.39.
        assert_eq!(
            placed(&busy, Resource::ThermalHeadroomMc, Side::Bid),
            Some((Price(1), Quantity(30_000)))
        );
        // An idle GPU values no watt: it only holds its range on standby, at the lowest
        // price, which any bid that values the watts outbids.
        assert_eq!(
            placed(&idle, Resource::PowerBudgetMw, Side::Bid),
            Some((Price::MIN, Quantity(200_000)))
        );
        assert_eq!(placed(&idle, Resource::ThermalHeadroomMc, Side::Bid), None);
    }

    #[test]
    fn memory_is_sold_from_telemetry_at_a_price_rising_with_utilization() {
        let busy = run("", &world(1000));
        let idle = run("", &world(100));
        assert!(busy.contains(&Intent::SetCapacity {
            resource: Resource::GpuMemoryMb,
            quantity: Quantity(24_064)
        }));
        let (busy_price, busy_quantity) = placed(&busy, Resource::GpuMemoryMb, Side::Ask).unwrap();
        let (idle_price, _) = placed(&idle, Resource::GpuMemoryMb, Side::Ask).unwrap();
        assert_eq!(busy_quantity, Quantity(24_064));
        assert_eq!(busy_price, Price(100));
        assert_eq!(idle_price, Price(19));
    }

    #[test]
    fn a_performance_signal_raises_the_power_bid() {
        let plain = world(800);
        let mut boosted = plain.clone();
        boosted.signals = vec![signal("game_started", Domain::Performance, 1000)];
        let (plain_price, _) =
            placed(&run("", &plain), Resource::PowerBudgetMw, Side::Bid).unwrap();
        let (boosted_price, _) =
            placed(&run("", &boosted), Resource::PowerBudgetMw, Side::Bid).unwrap();
        assert!(
            boosted_price > plain_price,
            "{boosted_price} vs {plain_price}"
        );
    }

    #[test]
    fn the_limit_follows_held_budget_and_falls_when_it_lapses() {
        let mut world = world(100);
        // Cool, so that the thermal cap does not bind.
        world.components_mut()[0].temp_mc = Some(40_000);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            80_000,
            world.tick.plus(4),
        )];
        let mut agent = GpuAgent::from_spec(&spec("")).unwrap();
        let limit = |intents: Vec<Intent>| {
            intents.into_iter().find_map(|intent| match intent {
                Intent::Actuate(Actuation::PowerLimit {
                    component,
                    limit_mw,
                }) => Some((component, limit_mw)),
                _ => None,
            })
        };
        let raised = limit(agent.observe(&world.observation(ME)).unwrap());
        assert_eq!(raised, Some(("gpu0".into(), 180_000)));
        world.components_mut()[0].limit_mw = Some(180_000);
        assert_eq!(limit(agent.observe(&world.observation(ME)).unwrap()), None);
        world.tick = world.tick.plus(5);
        world.leases.clear();
        let lowered = limit(agent.observe(&world.observation(ME)).unwrap());
        assert_eq!(lowered, Some(("gpu0".into(), 100_000)));
    }

    #[test]
    fn no_gpu_telemetry_gives_no_orders_and_no_panic() {
        let empty = World::with_components(vec![]);
        assert_eq!(run("", &empty), vec![]);
        // A configured memory size is declared, but nothing is quoted without readings.
        assert_eq!(
            run("memory_mb = 1024", &empty),
            vec![Intent::SetCapacity {
                resource: Resource::GpuMemoryMb,
                quantity: Quantity(1024)
            }]
        );
    }
}
