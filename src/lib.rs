//! The `gamesa` facade: the built-in agent kinds, the whole command line over any agent
//! registry ([`cli::main_with`]), and re-exports of the crates a program embedding
//! GAMESA needs.

pub mod cli;

pub use gamesa_agent as agent;
use gamesa_agent::{AgentError, AgentRegistry};
pub use gamesa_hw as hw;
pub use gamesa_proto as proto;
pub use gamesa_runtime as runtime;

/// A registry with the five built-in hardware agents (`cpu`, `gpu`, `memory`, `thermal`
/// and `power`), `wasm`, which runs an agent compiled to a WebAssembly component, and
/// `external`, an agent in another process that answers over the ingress protocol.
pub fn builtin_registry() -> Result<AgentRegistry, AgentError> {
    let mut registry = AgentRegistry::new();
    gamesa_agent_cpu::register(&mut registry)?;
    gamesa_agent_gpu::register(&mut registry)?;
    gamesa_agent_memory::register(&mut registry)?;
    gamesa_agent_thermal::register(&mut registry)?;
    gamesa_agent_power::register(&mut registry)?;
    gamesa_wasm::register(&mut registry)?;
    gamesa_agent::external::register(&mut registry)?;
    Ok(registry)
}
