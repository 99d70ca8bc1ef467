//! What the simulator's integration tests share: the repository root and the market's
//! agent kinds.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

use gamesa_agent::AgentRegistry;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The market's agent kinds, as `gamesa::builtin_registry()` registers them.
pub fn registry() -> AgentRegistry {
    let mut registry = AgentRegistry::new();
    gamesa_agent_cpu::register(&mut registry).unwrap();
    gamesa_agent_gpu::register(&mut registry).unwrap();
    gamesa_agent_memory::register(&mut registry).unwrap();
    gamesa_agent_thermal::register(&mut registry).unwrap();
    gamesa_agent_power::register(&mut registry).unwrap();
    registry
}
