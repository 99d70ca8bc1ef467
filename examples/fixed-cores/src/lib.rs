//! A toy agent: sells `cores` CPU cores at `price` credits each per epoch
//! (docs/agents.md walks through it).
//!
//! One strategy, two ways to run it: `examples/custom_daemon.rs` registers [`build`] in
//! a daemon of its own, and `examples/wasm-agent` exports the same [`build`] as a WASM
//! component the stock daemon loads (`[[agents]] kind = "wasm"`).

use gamesa_agent::{
    Agent, AgentError, AgentSpec, Intent, Observation,
    pricing::clamp_price,
    proto::{Quantity, Resource, Side},
    quote::resting_this_tick,
};
use serde::Deserialize;

/// The kind name `examples/custom_daemon.rs` registers [`build`] under.
pub const KIND: &str = "fixed_cores";

/// The agent's `[agents.params]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Cores for sale. Default 2.
    pub cores: u64,
    /// Credits per core per epoch. Default 500.
    pub price: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            cores: 2,
            price: 500,
        }
    }
}

/// Declares its cores once, then each tick offers those not leased out or already
/// offered, in an ask that rests through the tick only.
#[derive(Debug)]
pub struct FixedCores {
    params: Params,
    declared: bool,
}

impl FixedCores {
    pub fn new(params: Params) -> FixedCores {
        FixedCores {
            params,
            declared: false,
        }
    }
}

impl Agent for FixedCores {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut intents = Vec::new();
        if !self.declared {
            self.declared = true;
            intents.push(Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(self.params.cores),
            });
        }
        let free = self
            .params
            .cores
            .saturating_sub(obs.granted(Resource::CpuCores))
            .saturating_sub(obs.resting_asks(Resource::CpuCores));
        // Rests through this tick only: re-quoted next tick, never cancelled. Nothing is
        // placed when `free` is 0.
        intents.extend(resting_this_tick(
            obs,
            Resource::CpuCores,
            Side::Ask,
            clamp_price(self.params.price),
            free,
        ));
        Ok(intents)
    }
}

/// The factory: reads [`Params`] from the spec. A registry takes it as is
/// (`registry.register(KIND, build)`), and so does `gamesa_wasm_guest::export_agent!`.
pub fn build(spec: &AgentSpec) -> Result<Box<dyn Agent>, AgentError> {
    let params: Params = spec.params()?;
    if params.cores == 0 {
        return Err(AgentError::InvalidParams {
            agent: spec.name.clone(),
            message: "`cores` must be at least 1".into(),
        });
    }
    Ok(Box::new(FixedCores::new(params)))
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        AgentRegistry,
        proto::{AgentId, OrderId, OrderRequest, Price, Tick, TimeInForce},
        testkit::{World, lease_between, sole_ask},
    };

    use super::*;

    const ME: AgentId = AgentId(4);

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: ME,
            name: "cores0".into(),
            kind: KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    #[test]
    fn it_declares_its_cores_once_and_offers_them_each_tick() {
        let mut agent = build(&spec("cores = 3\nprice = 700")).unwrap();
        let world = World::default();
        let first = agent.observe(&world.observation(ME)).unwrap();
        assert_eq!(
            first[0],
            Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(3),
            }
        );
        assert_eq!(
            sole_ask(&first, Resource::CpuCores),
            Some((Price(700), Quantity(3)))
        );
        let Some(Intent::Place(order)) = first.last() else {
            panic!("no ask in {first:?}")
        };
        assert_eq!(
            order.time_in_force,
            TimeInForce::Limit {
                expires_at: Some(world.tick)
            }
        );

        let second = agent.observe(&world.observation(ME)).unwrap();
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(
            sole_ask(&second, Resource::CpuCores),
            Some((Price(700), Quantity(3)))
        );
    }

    #[test]
    fn cores_leased_out_or_already_offered_are_not_offered_again() {
        let mut agent = build(&spec("")).unwrap();
        let mut world = World::default();
        world.leases.push(lease_between(
            AgentId(7),
            ME,
            Resource::CpuCores,
            1,
            Tick(150),
        ));
        let intents = agent.observe(&world.observation(ME)).unwrap();
        assert_eq!(
            sole_ask(&intents, Resource::CpuCores),
            Some((Price(500), Quantity(1))),
            "default 2 cores, 1 leased out"
        );

        world.open_orders.push((
            OrderId(9),
            OrderRequest::limit(
                ME,
                Resource::CpuCores,
                Side::Ask,
                Price(500),
                Quantity(1),
                None,
            ),
        ));
        let intents = agent.observe(&world.observation(ME)).unwrap();
        assert!(intents.is_empty(), "{intents:?}");
    }

    #[test]
    fn params_are_checked() {
        let Err(AgentError::InvalidParams { message, .. }) = build(&spec("cores = 0")) else {
            panic!("0 cores accepted")
        };
        assert!(message.contains("cores"), "{message}");
        let Err(AgentError::InvalidParams { message, .. }) = build(&spec("coers = 2")) else {
            panic!("a typo accepted")
        };
        assert!(message.contains("coers"), "{message}");
    }

    #[test]
    fn a_registry_takes_the_factory_as_it_is() {
        let mut registry = AgentRegistry::new();
        registry.register(KIND, build).unwrap();
        assert!(registry.create(&spec("cores = 1")).is_ok());
    }
}
