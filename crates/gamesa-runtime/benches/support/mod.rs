//! What the runtime's benches share: the repository's files, the five built-in agents,
//! and `config/sim.toml`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use gamesa_agent::AgentRegistry;
use gamesa_runtime::Config;

/// The repository root; `GAMESA_REPO_ROOT` names another checkout (a bench binary
/// copied to another machine).
pub fn repo_root() -> PathBuf {
    std::env::var_os("GAMESA_REPO_ROOT").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")),
        PathBuf::from,
    )
}

/// The five built-in agents, as `gamesa::builtin_registry()` registers them (the
/// runtime crate cannot depend on the root package).
pub fn registry() -> AgentRegistry {
    let mut registry = AgentRegistry::new();
    gamesa_agent_cpu::register(&mut registry).unwrap();
    gamesa_agent_gpu::register(&mut registry).unwrap();
    gamesa_agent_memory::register(&mut registry).unwrap();
    gamesa_agent_thermal::register(&mut registry).unwrap();
    gamesa_agent_power::register(&mut registry).unwrap();
    registry
}

/// `config/sim.toml` as it is.
pub fn sim_config(registry: &AgentRegistry) -> Config {
    let path = repo_root().join("config/sim.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    Config::from_toml_str(&text, &path, std::iter::empty(), registry).unwrap()
}
