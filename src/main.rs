//! The `gamesa` binary: the command line with the built-in agent kinds.

use std::process::ExitCode;

fn main() -> ExitCode {
    match gamesa::builtin_registry() {
        Ok(registry) => gamesa::cli::main_with(&registry),
        Err(error) => {
            eprintln!("gamesa: the built-in agents: {error}");
            ExitCode::FAILURE
        }
    }
}
