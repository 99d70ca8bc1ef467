//! A `gamesa` of your own: the whole command line (`run`, `check-config`, `sim`,
//! `replay`, ...) with an agent kind the built-in binary does not have.
//!
//! ```sh
//! cargo run --example custom_daemon -- check-config my.toml   # [[agents]] kind = "fixed_cores"
//! cargo run --example custom_daemon -- run --config my.toml
//! ```

use std::process::ExitCode;

use gamesa::agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation,
    pricing::clamp_price,
    proto::{Quantity, Resource, Side},
    quote::resting_this_tick,
};

fn main() -> Result<ExitCode, AgentError> {
    let mut registry = gamesa::builtin_registry()?;
    register(&mut registry)?;
    Ok(gamesa::cli::main_with(&registry))
}

/// Sells `cores` CPU cores at `price` credits each per epoch (`docs/agents.md`).
#[derive(Debug)]
struct FixedCores {
    cores: u64,
    price: u64,
    declared: bool,
}

impl Agent for FixedCores {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut intents = Vec::new();
        if !self.declared {
            self.declared = true;
            intents.push(Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(self.cores),
            });
        }
        let free = self
            .cores
            .saturating_sub(obs.granted(Resource::CpuCores))
            .saturating_sub(obs.resting_asks(Resource::CpuCores));
        intents.extend(resting_this_tick(
            obs,
            Resource::CpuCores,
            Side::Ask,
            clamp_price(self.price),
            free,
        ));
        Ok(intents)
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Params {
    cores: u64,
    price: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            cores: 2,
            price: 500,
        }
    }
}

fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register("fixed_cores", |spec: &AgentSpec| {
        let params: Params = spec.params()?;
        Ok(Box::new(FixedCores {
            cores: params.cores,
            price: params.price,
            declared: false,
        }) as Box<dyn Agent>)
    })
}
