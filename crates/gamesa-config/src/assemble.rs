//! Builds the pure cores (guardian, market, signal queue, supervisor) and the agent
//! specs from a validated config. Config validation runs the same code, so anything
//! that would fail at start fails at `check-config` first.

use std::{collections::BTreeMap, num::NonZeroU64};

use gamesa_agent::{AgentError, AgentRegistry, AgentSpec, ModuleSpec};
use gamesa_engine::{
    ExchangeCore, GuardianCore, HostedAgent, SchedulerCore, TickEngine, TickSettings,
    engine::LocalCores,
};
use gamesa_guardian::SafetyPolicy;
use gamesa_guardian::{
    ContractPhase, ContractScope, GateRule, Guardian, GuardianConfig, LedgerConfig,
    MissingValuePolicy, RateLimit, schema_for_components,
};
use gamesa_market::{Exchange, MarketConfig};
use gamesa_proto::{AgentId, Credits};
use gamesa_signals::{DomainRanking, SignalQueue};

use gamesa_guardian::Supervisor;

use crate::{Config, Invalid};

/// Agent ids are an agent's `participant` when set, else dense in config order from 1.
pub fn agent_specs(config: &Config) -> Vec<AgentSpec> {
    config
        .agents
        .iter()
        .enumerate()
        .map(|(index, agent)| AgentSpec {
            id: AgentId(agent.participant.unwrap_or(index as u32 + 1)),
            name: agent.id.clone(),
            kind: agent.kind.clone(),
            weight: agent.weight,
            params: agent.params.clone(),
            module: agent.module.as_ref().map(|path| ModuleSpec {
                path: path.clone(),
                fuel: agent.fuel.unwrap_or(crate::DEFAULT_WASM_FUEL),
                memory_bytes: u64::from(agent.memory_mib.unwrap_or(crate::DEFAULT_WASM_MEMORY_MIB))
                    << 20,
            }),
        })
        .collect()
}

/// Ingress clients: their `participant` when set, else numbered after the agents in
/// config order.
pub fn client_ids(config: &Config) -> Vec<(AgentId, &crate::ClientConfig)> {
    let first = config.agents.len() as u32 + 1;
    config
        .clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let id = client.participant.unwrap_or(first + index as u32);
            (AgentId(id), client)
        })
        .collect()
}

/// Every participant's id and name: the agents, then the ingress clients.
pub fn participants(config: &Config) -> Vec<(AgentId, String)> {
    agent_specs(config)
        .into_iter()
        .map(|spec| (spec.id, spec.name))
        .chain(
            client_ids(config)
                .into_iter()
                .map(|(id, client)| (id, client.name.clone())),
        )
        .collect()
}

/// Each agent that buys power for a component, with that component, as its kind
/// declares it (`AgentRegistry::powered_component`), in id order.
pub fn powered_components(
    config: &Config,
    registry: &AgentRegistry,
) -> Result<Vec<(AgentId, String)>, Invalid> {
    let mut powered = Vec::new();
    for (index, spec) in agent_specs(config).into_iter().enumerate() {
        let component = registry
            .powered_component(&spec)
            .map_err(|error| (format!("agents[{index}].params"), error.to_string()))?;
        if let Some(component) = component {
            powered.push((spec.id, component));
        }
    }
    Ok(powered)
}

/// The guardian with its schema, constants, contracts, gate rules, effects, accounts
/// and power bindings; the error names the config key at fault.
pub fn build_guardian(config: &Config, registry: &AgentRegistry) -> Result<Guardian, Invalid> {
    let settings = &config.guardian;
    let mut components = settings.components.clone();
    components.sort();
    components.dedup();
    let guardian_config = GuardianConfig {
        ledger: LedgerConfig {
            allowance_per_epoch: Credits(settings.allowance_per_epoch),
            cap_epochs: settings.balance_cap_epochs,
        },
        missing_values: MissingValuePolicy::Deny,
    };
    let mut guardian = Guardian::new(guardian_config, schema_for_components(&components));
    for (name, value) in &settings.constants {
        if !value.is_finite() {
            return Err((
                format!("guardian.constants.{name}"),
                format!("{value} is not a finite number"),
            ));
        }
        guardian.set_constant(name, *value);
    }
    for (index, contract) in settings.contracts.iter().enumerate() {
        let key = |field: &str| format!("guardian.contracts[{index}].{field}");
        let phase = match contract.phase.as_str() {
            "pre" => ContractPhase::Pre,
            "post" => ContractPhase::Post,
            "invariant" => ContractPhase::Invariant,
            other => {
                return Err((
                    key("phase"),
                    format!("unknown phase `{other}` (expected pre, post or invariant)"),
                ));
            }
        };
        let scope: ContractScope =
            contract
                .scope
                .parse()
                .map_err(|error: gamesa_guardian::ContractSetError| {
                    (key("scope"), error.to_string())
                })?;
        guardian
            .add_contract(phase, scope, &contract.name, &contract.expr)
            .map_err(|error| (key("expr"), error.to_string()))?;
    }
    for (target, limit) in &settings.limits {
        let rate = match (limit.max_changes, limit.rate_window_ticks) {
            (Some(max_changes), Some(window_ticks)) => Some(RateLimit {
                max_changes,
                window_ticks,
            }),
            (None, None) => None,
            _ => {
                return Err((
                    format!("guardian.limits.\"{target}\""),
                    "max_changes and rate_window_ticks go together".into(),
                ));
            }
        };
        let rule = GateRule {
            min: limit.min,
            max: limit.max,
            max_step: limit.max_step,
            deadband: limit.deadband.unwrap_or(0),
            rate,
        };
        guardian
            .set_gate_rule(target, rule)
            .map_err(|error| (format!("guardian.limits.\"{target}\""), error.to_string()))?;
    }
    for (spec, agent) in agent_specs(config).into_iter().zip(&config.agents) {
        guardian.ledger_mut().open_account(spec.id);
        guardian
            .effects_mut()
            .grant_all(spec.id, agent.effects.iter().cloned());
    }
    for (agent, component) in powered_components(config, registry)? {
        guardian.bind_power_component(agent, component);
    }
    // Clients trade through accounts of their own, with the effects config grants them.
    for (id, client) in client_ids(config) {
        guardian.ledger_mut().open_account(id);
        guardian
            .effects_mut()
            .grant_all(id, client.effects.iter().cloned());
    }
    Ok(guardian)
}

/// Component → the agents whose power leases raise its limit.
pub fn power_holders(
    config: &Config,
    registry: &AgentRegistry,
) -> Result<BTreeMap<String, Vec<AgentId>>, Invalid> {
    let mut holders: BTreeMap<String, Vec<AgentId>> = BTreeMap::new();
    for (agent, component) in powered_components(config, registry)? {
        holders.entry(component).or_default().push(agent);
    }
    Ok(holders)
}

/// Minting weights: every agent's, and every client's that is not 0.
pub fn weights(config: &Config) -> BTreeMap<AgentId, u64> {
    agent_specs(config)
        .into_iter()
        .map(|spec| (spec.id, u64::from(spec.weight)))
        .chain(
            client_ids(config)
                .into_iter()
                .filter(|(_, client)| client.weight > 0)
                .map(|(id, client)| (id, u64::from(client.weight))),
        )
        .collect()
}

pub fn market_config(config: &Config) -> MarketConfig {
    // Validation guarantees epoch_ticks >= 1.
    MarketConfig::new(NonZeroU64::new(config.runtime.epoch_ticks).unwrap_or(NonZeroU64::MIN))
}

pub fn signal_queue() -> SignalQueue {
    SignalQueue::new(DomainRanking::default())
}

/// The restart window converted to ticks, rounded up.
pub fn supervisor(config: &Config) -> Supervisor {
    let window_ticks =
        (config.supervision.window_s * f64::from(config.runtime.tick_hz)).ceil() as u64;
    Supervisor::new(config.supervision.max_restarts, window_ticks)
}

/// How the engine numbers ticks and counts epochs.
pub fn tick_settings(config: &Config) -> TickSettings {
    TickSettings {
        epoch_ticks: config.runtime.epoch_ticks,
        seed: config.runtime.seed,
    }
}

/// The guardian and central bank: guardian, supervisor, safety policy, weights.
pub fn guardian_core(config: &Config, registry: &AgentRegistry) -> Result<GuardianCore, Invalid> {
    Ok(GuardianCore::new(
        build_guardian(config, registry)?,
        supervisor(config),
        SafetyPolicy {
            safe_limits_mw: config.guardian.safe_limits_mw.clone(),
            power_holders: power_holders(config, registry)?,
        },
        weights(config),
    ))
}

pub fn exchange_core(config: &Config) -> ExchangeCore {
    ExchangeCore::new(Exchange::new(market_config(config)))
}

pub fn scheduler_core() -> SchedulerCore {
    SchedulerCore::new(signal_queue())
}

/// Every configured agent built by its kind's factory, in id order; the error names
/// the agent whose factory failed.
pub fn hosted_agents(
    config: &Config,
    registry: &AgentRegistry,
) -> Result<Vec<HostedAgent>, (String, AgentError)> {
    host(agent_specs(config), registry)
}

/// Each spec built by its kind's factory; the error names the agent whose factory
/// failed.
pub fn host(
    specs: Vec<AgentSpec>,
    registry: &AgentRegistry,
) -> Result<Vec<HostedAgent>, (String, AgentError)> {
    specs
        .into_iter()
        .map(|spec| {
            let name = spec.name.clone();
            registry
                .factory(&spec.kind)
                .and_then(|factory| HostedAgent::new(spec, factory))
                .map_err(|error| (name, error))
        })
        .collect()
}

/// The whole engine, driven in place (`gamesa sim`, tests, replay).
pub fn engine(config: &Config, registry: &AgentRegistry) -> Result<TickEngine, Invalid> {
    let agents = hosted_agents(config, registry)
        .map_err(|(agent, error)| (format!("agents.{agent}"), error.to_string()))?;
    Ok(TickEngine::new(
        tick_settings(config),
        LocalCores {
            guardian: guardian_core(config, registry)?,
            exchange: exchange_core(config),
            scheduler: scheduler_core(),
            agents,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;

    fn gpu_config(params: &str) -> Result<Config, crate::ConfigError> {
        let mut registry = AgentRegistry::new();
        gamesa_agent_gpu::register(&mut registry).unwrap();
        let text = format!(
            r#"
            [guardian]
            components = ["gpu0"]
            [[agents]]
            kind = "gpu"
            id = "graphics"
            effects = ["order:power_budget_mw"]
            params = {{ {params} }}
            "#
        );
        Config::from_toml_str(&text, Path::new("test.toml"), std::iter::empty(), &registry)
    }

    #[test]
    fn an_agent_without_a_component_key_powers_what_its_kind_declares() {
        let mut registry = AgentRegistry::new();
        gamesa_agent_gpu::register(&mut registry).unwrap();
        let config = gpu_config("").unwrap();
        assert_eq!(
            power_holders(&config, &registry).unwrap(),
            BTreeMap::from([("gpu0".to_owned(), vec![AgentId(1)])])
        );
    }

    #[test]
    fn a_bad_component_is_a_config_error_naming_the_agent() {
        let error = gpu_config(r#"component = "GPU 0""#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("agents[0].params"), "{error}");
        assert!(error.contains("GPU 0"), "{error}");
    }
}
