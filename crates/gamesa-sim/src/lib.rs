//! `gamesa sim`: runs the real runtime against the twin in virtual time under a policy
//! (the market or a baseline), measures the run, compares policies and plots a run.
//!
//! - [`policy`]: the market and the baselines (`none`, `static-equal`, `static-tdp`,
//!   `proportional`, `greedy-oracle`, …), each baseline a split function run as one
//!   agent;
//! - [`optimum`]: the physical limit, the best limits over a whole run with perfect
//!   knowledge (a convex program), set straight on the twin;
//! - [`fit`]: the runtime config for a scenario and a policy, from `config/sim.toml`;
//! - [`run`]: one run, tick by tick, to the end of the scenario;
//! - [`metrics`]: what a run measured (deterministic), and what its ticks cost (wall
//!   time, kept apart);
//! - [`compare`]: tables, the evaluation's targets, JSON;
//! - [`plot`]: an SVG of a run over time;
//! - [`report`]: the generated tables of `docs/evaluation.md` (`gamesa sim report`);
//! - [`generate`]: random but plausible scenarios from a seed (`gamesa sim generate`);
//! - [`fleet`]: many twin nodes under one power budget, divided by the fleet's market
//!   or its baselines (`gamesa sim --fleet`).
//!
//! ```no_run
//! use std::path::Path;
//! use gamesa_agent::AgentRegistry;
//! use gamesa_sim::{Policy, RunSpec, run};
//!
//! # fn main() -> Result<(), gamesa_sim::SimError> {
//! let registry = AgentRegistry::new(); // the market's agent kinds: `gamesa::builtin_registry()`
//! let template = run::load_template(Path::new("config/sim.toml"), [], &registry)?;
//! let path = Path::new("scenarios/cap_drop.toml");
//! let scenario = run::load_scenario(path)?;
//! let outcome = run::run(&RunSpec {
//!     scenario: &scenario,
//!     scenario_path: path,
//!     template: &template,
//!     registry: &registry,
//!     policy: Policy::GreedyOracle,
//!     seed: None,
//!     trace: false,
//! })?;
//! println!("{}", serde_json::to_string(&outcome.metrics).unwrap());
//! # Ok(())
//! # }
//! ```

pub mod compare;
mod error;
pub mod fit;
pub mod fleet;
pub mod generate;
pub mod metrics;
pub mod optimum;
pub mod plot;
pub mod policy;
pub mod report;
pub mod run;

pub use compare::{Comparison, SuiteReport, SuiteTargets};
pub use error::SimError;
pub use metrics::{Metrics, TickCost};
pub use policy::Policy;
pub use run::{RunOutcome, RunSpec, RunTrace};
