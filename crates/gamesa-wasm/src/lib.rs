//! WebAssembly agents: `[[agents]] kind = "wasm"`, a component that exports
//! `wit/agent.wit`, run by wasmtime as an [`Agent`](gamesa_agent::Agent) in a sandbox.
//!
//! - [`host`]: the engine, compiled modules kept by digest, and the registry kind;
//! - [`agent`]: one instance, its calls bounded by fuel and a memory limit;
//! - [`sandbox`]: what the guest may touch (nothing of the host's: no files, no network,
//!   no environment, clocks at zero, random bytes seeded from its name).
//!
//! A guest that traps, runs out of fuel or memory, returns an error, or answers bytes
//! that are not intents fails its turn; the runtime counts it like a built-in agent's
//! panic, restarts it from a fresh instance and isolates it past the restart limit.

pub mod agent;
pub mod host;
pub mod sandbox;

/// The bindings `wit/agent.wit` generates: the `plugin` world the guest exports.
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/agent.wit",
        world: "plugin",
    });
}

pub use agent::WasmAgent;
pub use host::{WasmHost, register};
