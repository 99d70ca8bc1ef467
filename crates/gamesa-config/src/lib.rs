//! GAMESA's TOML config: its shape, loading with `GAMESA__SECTION__KEY` overrides,
//! validation that names the offending key, and [`assemble`]: the tick engine's cores
//! and agents built from a validated config (what `gamesa run`'s actors own, and what
//! `gamesa sim` drives in place).
//!
//! Every table rejects unknown keys, so a typo is an error rather than a silent default.

pub mod assemble;
mod env;
pub mod fleet;
pub mod http;
pub mod ingress;
pub mod journal;
pub mod layers;
pub mod paths;
pub mod reload;
pub mod starter;
pub mod state_dir;
pub mod telemetry;
pub mod validate;

use std::{collections::BTreeMap, path::PathBuf};

use gamesa_agent::AgentRegistry;
use gamesa_hw::PowerLimitBinding;
use gamesa_proto::Effect;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use env::apply_env_overrides;
pub use http::HttpConfig;
pub use ingress::{ClientConfig, IngressConfig};
pub use journal::JournalConfig;
pub use layers::{ConfigSources, Layered, Origin, Provenance};
pub use telemetry::{OtlpProtocol, SamplerName, TelemetryConfig};
pub use validate::validate;

/// The key that is wrong, and what is wrong with it.
pub type Invalid = (String, String);

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub supervision: SupervisionConfig,
    #[serde(default)]
    pub sensors: SensorsConfig,
    pub guardian: GuardianConfig,
    #[serde(default)]
    pub actuators: ActuatorsConfig,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// The client protocol's listeners and limits (`docs/protocol.md`).
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Clients that may connect over ingress; their ids follow the agents'.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Traces, metrics and the decision log (`docs/observability.md`).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Every tick's inputs and decisions, kept for replay and `gamesa why`
    /// (`docs/journal.md`).
    #[serde(default)]
    pub journal: JournalConfig,
    /// The HTTP API and Prometheus `/metrics` (`docs/http.md`).
    #[serde(default)]
    pub http: HttpConfig,
    /// Fleet mode: a power budget shared with other nodes over NATS (`docs/fleet.md`).
    #[serde(default)]
    pub fleet: fleet::FleetConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Ticks per second, 1 to 1000.
    pub tick_hz: u32,
    /// Ticks per epoch: the allowance is minted and leases last this long.
    pub epoch_ticks: u64,
    /// Seeds correlation ids (and anything else that must be reproducible).
    pub seed: u64,
    /// Seconds between status lines printed by `gamesa run` (0 = never).
    pub status_interval_s: u64,
    /// How long each tick waits for an agent's answer, in ms; an agent that misses it
    /// skips the tick, and the miss counts as a failure. Unset: half a tick period.
    pub agent_deadline_ms: Option<u64>,
}

impl RuntimeConfig {
    /// The agents' deadline: `agent_deadline_ms`, or half a tick period.
    pub fn agent_deadline(&self) -> std::time::Duration {
        match self.agent_deadline_ms {
            Some(ms) => std::time::Duration::from_millis(ms),
            None => std::time::Duration::from_secs_f64(0.5 / f64::from(self.tick_hz.max(1))),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            tick_hz: 10,
            epoch_ticks: 10,
            seed: 0,
            status_interval_s: 1,
            agent_deadline_ms: None,
        }
    }
}

/// The OTP-style restart intensity: at most `max_restarts` within `window_s` seconds of
/// tick time, after which the agent is isolated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    pub max_restarts: u32,
    pub window_s: f64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            max_restarts: 3,
            window_s: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorSource {
    /// This Linux machine: sysinfo, sysfs, powercap, NVML, PSI.
    Linux,
    /// The simulated twin, driven by `sensors.scenario`.
    Twin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorsConfig {
    pub source: SensorSource,
    /// Root that every sysfs and procfs path is relative to.
    pub root: PathBuf,
    /// The twin's scenario file (required with `source = "twin"`).
    pub scenario: Option<PathBuf>,
}

impl Default for SensorsConfig {
    fn default() -> Self {
        SensorsConfig {
            source: SensorSource::Linux,
            root: PathBuf::from("/"),
            scenario: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardianConfig {
    /// The node's power cap shared by every managed component, in milliwatts. With the
    /// twin, the scenario's cap is used instead.
    pub cap_mw: Option<u64>,
    /// Credits minted per epoch, split between agents by weight.
    #[serde(default = "default_allowance")]
    pub allowance_per_epoch: u64,
    /// Balances are capped at this many epochs of an agent's allowance.
    #[serde(default = "default_balance_cap_epochs")]
    pub balance_cap_epochs: u64,
    /// The power-managed components contracts may name (`cpu`, `gpu0`). With the
    /// twin, every scenario component must be listed.
    #[serde(default)]
    pub components: Vec<String>,
    /// Named constants contracts may use, such as `gpu0.r_th = 0.2`.
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
    #[serde(default)]
    pub contracts: Vec<ContractConfig>,
    /// Action-gate rules per actuation target (`power.limit:gpu0`, ...).
    #[serde(default)]
    pub limits: BTreeMap<String, GateLimitConfig>,
    /// The limit the guardian applies at once on a safety signal, per component, in mW.
    /// A component without an entry falls back to its lowest allowed limit.
    #[serde(default)]
    pub safe_limits_mw: BTreeMap<String, u64>,
}

fn default_allowance() -> u64 {
    1_000_000
}

fn default_balance_cap_epochs() -> u64 {
    3
}

/// One contract, as a string in the guardian's expression language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    pub name: String,
    /// `pre` (current state), `post` (proposed state) or `invariant` (both).
    pub phase: String,
    /// `*`, a resource (`power_budget_mw`: its fills) or a target (`power.limit:gpu0`).
    #[serde(default = "default_scope")]
    pub scope: String,
    pub expr: String,
}

fn default_scope() -> String {
    "*".to_owned()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateLimitConfig {
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Largest change allowed in one step.
    pub max_step: Option<u64>,
    /// Changes smaller than this are ignored (hysteresis).
    pub deadband: Option<u64>,
    /// At most this many changes per `rate_window_ticks`.
    pub max_changes: Option<u32>,
    pub rate_window_ticks: Option<u64>,
}

/// Real actuators are off unless a target is listed in `real`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActuatorsConfig {
    /// Where original values are recorded before the first write to a target. Used
    /// only when `real` enables a target. Absolute by default, so that the service,
    /// a root shell and `sudo gamesa restore` all find the same file; a relative path
    /// is under the state directory.
    pub state_file: PathBuf,
    /// Targets written for real: exact (`power.limit:gpu0`) or a prefix ending in `*`
    /// (`cgroup.cpu_max:*`). Empty by default: every actuation is a dry run.
    pub real: Vec<String>,
    /// Which hardware backs a component's power limit, such as
    /// `cpu = { via = "powercap", zone = "intel-rapl:0" }` or
    /// `gpu0 = { via = "nvml", index = 0 }`. Without an entry, `cpu` is
    /// `intel-rapl:0` and `gpuN` is NVML index N.
    pub power_limits: BTreeMap<String, PowerLimitBinding>,
}

impl Default for ActuatorsConfig {
    fn default() -> Self {
        ActuatorsConfig {
            state_file: PathBuf::from(gamesa_hw::actuators::DEFAULT_STATE_FILE),
            real: Vec::new(),
            power_limits: BTreeMap::new(),
        }
    }
}

/// One agent plugin: its kind picks the factory in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub kind: String,
    /// Unique name of this agent (`cpu`, `gpu0`).
    pub id: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub effects: Vec<Effect>,
    #[serde(default)]
    pub params: toml::Table,
    /// `kind = "wasm"`: the WebAssembly component it runs. A relative path is from the
    /// directory of the config file that names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// `kind = "wasm"`: the module's XXH3-64 digest in hex. Config load fills it in from
    /// the file, so the journal records which module ran and a reload sees a module
    /// rebuilt in place; when config sets it, a module with another digest is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_xxh3: Option<String>,
    /// `kind = "wasm"`: fuel for one call, about one unit per instruction (default
    /// [`DEFAULT_WASM_FUEL`]); running out is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// `kind = "wasm"`: the most linear memory the module may use, in MiB (default
    /// [`DEFAULT_WASM_MEMORY_MIB`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// `kind = "external"`: the `[[clients]]` entry whose connections may answer this
    /// agent's turns (`attach`): the process proves who it is with that client's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Its participant id in the market. Unset: numbered by file order, agents from 1
    /// and then the clients. A reload sets it, so that every participant keeps its id
    /// (and its account, orders and leases) while others come and go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<u32>,
}

fn default_weight() -> u32 {
    1
}

/// A WASM module's digest as `module_xxh3` holds it: XXH3-64 in 16 hex digits.
pub fn module_digest(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Makes a WASM agent's `module` path absolute (from `base`, the directory of the file
/// that names it) and fills in the module's digest, refusing a module that does not
/// match a digest config pinned.
fn pin_module(agent: &mut AgentConfig, base: Option<&std::path::Path>) -> Result<(), String> {
    let Some(module) = agent.module.as_mut() else {
        return Ok(());
    };
    if let Some(base) = base.filter(|_| module.is_relative()) {
        *module = base.join(&*module);
    }
    let bytes = std::fs::read(&*module)
        .map_err(|error| format!("cannot read {}: {error}", module.display()))?;
    let digest = module_digest(&bytes);
    match &agent.module_xxh3 {
        Some(pinned) if *pinned != digest => Err(format!(
            "{} has digest {digest}, but `module_xxh3` pins {pinned}",
            module.display()
        )),
        _ => {
            agent.module_xxh3 = Some(digest);
            Ok(())
        }
    }
}

/// A WASM agent's fuel per call when config does not say: about 10 ms of work on a
/// current core, a fifth of the default deadline at 10 Hz, and some 200 times what the
/// example agent uses (docs/wasm-agents.md).
pub const DEFAULT_WASM_FUEL: u64 = 10_000_000;
/// A WASM agent's memory limit when config does not say.
pub const DEFAULT_WASM_MEMORY_MIB: u32 = 64;

/// A config that cannot be used. The message names the key, and the line where TOML
/// gives one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("environment override `{variable}`: {message}")]
    Env { variable: String, message: String },
}

impl Config {
    /// Reads one config file, overrides it from the environment, parses and validates it.
    pub fn load(
        path: &std::path::Path,
        env: impl IntoIterator<Item = (String, String)>,
        registry: &AgentRegistry,
    ) -> Result<Config, ConfigError> {
        Config::load_layered(&ConfigSources::file(path), env, registry).map(|(config, _)| config)
    }

    /// Reads every layer of `sources` (system file or built-in defaults, drop-ins,
    /// `--config`, `GAMESA__` variables), then parses, places and validates the result;
    /// the [`Layered`] says where each value came from.
    pub fn load_layered(
        sources: &ConfigSources,
        env: impl IntoIterator<Item = (String, String)>,
        registry: &AgentRegistry,
    ) -> Result<(Config, Layered), ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let layered = Layered::read(sources, env.iter().cloned())?;
        let config = Config::from_layered(&layered, &env, registry)?;
        Ok((config, layered))
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_toml_str(
        text: &str,
        origin: &std::path::Path,
        env: impl IntoIterator<Item = (String, String)>,
        registry: &AgentRegistry,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let layered = Layered::text(text, origin, env.iter().cloned())?;
        Config::from_layered(&layered, &env, registry)
    }

    fn from_layered(
        layered: &Layered,
        env: &[(String, String)],
        registry: &AgentRegistry,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = match &layered.sole_text {
            // One file as written: serde's errors carry its line and column.
            Some((text, path)) => {
                toml::from_str(text).map_err(|error: toml::de::Error| ConfigError::Syntax {
                    path: path.clone(),
                    message: error.to_string().trim_end().to_owned(),
                })?
            }
            // Spans are meaningless once tables were merged; report keys only.
            None => toml::Value::Table(layered.table.clone())
                .try_into()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    path: layered.path_for(""),
                    message: error.message().to_owned(),
                })?,
        };
        let base = layered.provenance.base_dir("agents");
        for (index, agent) in config.agents.iter_mut().enumerate() {
            pin_module(agent, base).map_err(|message| {
                let key = format!("agents[{index}].module");
                ConfigError::Invalid {
                    path: layered.path_for(&key),
                    key,
                    message,
                }
            })?;
        }
        paths::place(&mut config, |name| {
            env.iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.as_str())
        });
        validate(&config, registry).map_err(|(key, message)| ConfigError::Invalid {
            path: layered.path_for(&key),
            key,
            message,
        })?;
        Ok(config)
    }
}
