//! What can go wrong in a simulation run, each with enough detail for a clear message.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    #[error("unknown policy `{name}` (known: {known})")]
    UnknownPolicy { name: String, known: String },
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{0}")]
    Scenario(String),
    #[error("invalid config: {0}")]
    Config(String),
    #[error(
        "the scenario's component `{component}` is a {kind}, and the config has no {kind} agent to model its agent on"
    )]
    NoTemplate { component: String, kind: String },
    #[error(
        "the config's `{setting}` = {config_mw} mW contradicts {scenario_path}, whose component `{component}` has {scenario}; leave it out of the config (the scenario's device bounds are used)"
    )]
    ContradictsScenario {
        component: String,
        /// The config key, such as `guardian.limits."power.limit:gpu0".min`.
        setting: String,
        config_mw: u64,
        /// What the scenario says, such as `min_w = 20 W`.
        scenario: String,
        scenario_path: PathBuf,
    },
    #[error("agent plugins: {0}")]
    Agent(String),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("plot: {0}")]
    Plot(String),
    #[error("the optimum: {0}")]
    Optimum(String),
    #[error("a comparison needs the `{0}` policy among its runs")]
    MissingPolicy(String),
}
