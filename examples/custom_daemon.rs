//! A `gamesa` of your own: the whole command line (`run`, `check-config`, `sim`,
//! `replay`, ...) with an agent kind the built-in binary does not have.
//!
//! ```sh
//! cargo run --example custom_daemon -- check-config my.toml   # [[agents]] kind = "fixed_cores"
//! cargo run --example custom_daemon -- run --config my.toml
//! ```
//!
//! The agent itself lives in `examples/fixed-cores`, a crate of its own, so the same
//! strategy also builds as a WASM agent (`examples/wasm-agent`).

use std::process::ExitCode;

use gamesa::agent::AgentError;

fn main() -> Result<ExitCode, AgentError> {
    let mut registry = gamesa::builtin_registry()?;
    registry.register(
        gamesa_example_fixed_cores::KIND,
        gamesa_example_fixed_cores::build,
    )?;
    Ok(gamesa::cli::main_with(&registry))
}
