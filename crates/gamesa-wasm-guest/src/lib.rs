//! The guest SDK for WASM agents (docs/wasm-agents.md): one macro that turns the very
//! factory a native crate registers into a wasm component exporting the `plugin` world
//! of `crates/gamesa-wasm/wit/agent.wit`.
//!
//! ```ignore
//! // src/lib.rs of a crate with `crate-type = ["cdylib"]`, built with
//! // `cargo build --release --target wasm32-wasip2`:
//! gamesa_wasm_guest::export_agent!(my_strategy::build);
//! ```
//!
//! `my_strategy::build` is any `fn(&AgentSpec) -> Result<Box<dyn Agent>, AgentError>`,
//! so one strategy crate builds natively (registered in a registry) and as WASM. The
//! agent sees the spec config gave it, with `kind = "wasm"`, and the same
//! [`Observation`](gamesa_agent::Observation)s a built-in agent sees.
//!
//! The work is done by plain functions in [`slot`], which build and test natively; the
//! macro only wires them to the generated exports in [`bindings`]. [`gamesa_agent`] is
//! re-exported, so an agent crate needs this one dependency.

pub mod bindings;
pub mod slot;

pub use gamesa_agent;
pub use slot::{Slot, agent_spec};

/// Exports an agent built by `factory` as the component's `gamesa:agent/agent`
/// interface.
///
/// `factory` is any expression callable as
/// `Fn(&AgentSpec) -> Result<Box<dyn Agent>, AgentError>`. Use the macro once, at the
/// root of a `cdylib` crate. `init` builds the agent (and builds a fresh one if called
/// again), `warm` hands it its past epochs, `observe` runs one tick; see [`Slot`] for the
/// errors each reports. Built for anything but `wasm32` the crate exports nothing, so
/// `cargo build --workspace` and clippy still build it natively.
// rustfmt misplaces the cfg'd `export!` call below (it dedents it to the macro's own
// level), so this macro is laid out by hand.
#[rustfmt::skip]
#[macro_export]
macro_rules! export_agent {
    ($factory:expr $(,)?) => {
        const _: () = {
            use $crate::bindings::exports::gamesa::agent::agent as __gamesa_agent;

            // The one agent of this instance; the host builds a fresh instance to restart it.
            static SLOT: $crate::Slot = $crate::Slot::new();

            struct GamesaAgent;

            impl __gamesa_agent::Guest for GamesaAgent {
                fn init(
                    spec: __gamesa_agent::Spec,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let spec = $crate::agent_spec(spec.id, spec.name, spec.weight, &spec.params)?;
                    SLOT.init(&spec, $factory)
                }

                fn warm(past: ::std::vec::Vec<u8>) {
                    SLOT.warm(&past)
                }

                fn observe(
                    observation: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    SLOT.observe(&observation)
                }
            }

            // The exports' symbol names (`gamesa:agent/agent@0.1.0#init`) mean something
            // to a wasm component only, and a native linker's version script refuses them:
            // natively the impl above is type-checked and nothing is exported.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::export!(GamesaAgent with_types_in $crate::bindings);
        };
    };
}
