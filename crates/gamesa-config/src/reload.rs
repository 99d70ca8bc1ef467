//! A config reload while the daemon runs: which changes apply live (contracts, gate
//! limits, constants, safe limits, components, allowance, agents' parameters, weights
//! and effects, clients' tokens, effects and weights) and which need a restart, and
//! the guardian and agent specs the new config gives.
//!
//! # Invariants
//! - a plan exists only when every participant keeps its name, kind and id, so
//!   balances, leases and open orders stay with their owners
//! - a plan is built from a validated config with the same code as a start, so a
//!   reload can fail only where a start would

use gamesa_agent::{AgentRegistry, AgentSpec};
use gamesa_engine::GuardianCore;
use thiserror::Error;

use crate::{Config, assemble};

/// What a reload applies.
#[derive(Debug)]
pub struct ReloadPlan {
    /// The new policy; the running guardian adopts it and keeps its ledger and history.
    pub guardian: GuardianCore,
    /// Agents whose `params` changed, with their new spec: rebuilt from their factory,
    /// keeping their id, account, orders and leases.
    pub respecced: Vec<AgentSpec>,
    /// What changed, for the log: `guardian`, `clients`, `clients[0].token`,
    /// `agents[1].params`, `agents[1].weight`, `agents[1].effects`.
    pub changed: Vec<String>,
}

/// Why a config cannot be reloaded; the running config stays.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReloadError {
    #[error("`{key}` changed: {why}; the running config stays (restart to apply it)")]
    NeedsRestart { key: String, why: String },
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// The sections a running daemon cannot change: its tick, its sensors and actuators,
/// its listeners, its telemetry and journal, and the node's cap (read by the sensors).
const RESTART_ONLY: [&str; 8] = [
    "runtime",
    "supervision",
    "sensors",
    "actuators",
    "ingress",
    "telemetry",
    "journal",
    "guardian.cap_mw",
];

/// Compares the running config with a new, validated one and builds what the reload
/// applies, or says which change needs a restart.
pub fn plan(
    running: &Config,
    next: &Config,
    registry: &AgentRegistry,
) -> Result<ReloadPlan, ReloadError> {
    let old = section_values(running)?;
    let new = section_values(next)?;
    for key in RESTART_ONLY {
        if old.get(key) != new.get(key) {
            return Err(restart(key, "it is read once, at start"));
        }
    }
    let same_agents = running.agents.len() == next.agents.len()
        && running
            .agents
            .iter()
            .zip(&next.agents)
            .all(|(old, new)| old.id == new.id && old.kind == new.kind);
    if !same_agents {
        return Err(restart(
            "agents",
            "agents were added, removed, renamed, reordered or changed kind",
        ));
    }
    let same_clients = running.clients.len() == next.clients.len()
        && running
            .clients
            .iter()
            .zip(&next.clients)
            .all(|(old, new)| old.name == new.name);
    if !same_clients {
        return Err(restart(
            "clients",
            "clients were added, removed, renamed or reordered",
        ));
    }
    let mut changed = Vec::new();
    for key in ["guardian", "clients"] {
        if old.get(key) != new.get(key) {
            changed.push(key.to_owned());
        }
    }
    for (index, (old_client, new_client)) in running.clients.iter().zip(&next.clients).enumerate() {
        // Tokens are redacted in the compared TOML.
        if old_client.token != new_client.token || old_client.token_env != new_client.token_env {
            changed.push(format!("clients[{index}].token"));
        }
    }
    let mut respecced = Vec::new();
    let specs = assemble::agent_specs(next);
    for (index, ((old_agent, new_agent), spec)) in running
        .agents
        .iter()
        .zip(&next.agents)
        .zip(specs)
        .enumerate()
    {
        if old_agent.params != new_agent.params {
            // Built once here, as a start would: params its factory refuses are an
            // invalid config, not an agent left without its plugin.
            registry
                .factory(&spec.kind)
                .and_then(|factory| factory(&spec))
                .map_err(|error| ReloadError::Invalid {
                    key: format!("agents[{index}].params"),
                    message: error.to_string(),
                })?;
            changed.push(format!("agents[{index}].params"));
            respecced.push(spec);
        }
        if old_agent.weight != new_agent.weight {
            changed.push(format!("agents[{index}].weight"));
        }
        if old_agent.effects != new_agent.effects {
            changed.push(format!("agents[{index}].effects"));
        }
    }
    let guardian = assemble::guardian_core(next, registry)
        .map_err(|(key, message)| ReloadError::Invalid { key, message })?;
    Ok(ReloadPlan {
        guardian,
        respecced,
        changed,
    })
}

fn restart(key: &str, why: &str) -> ReloadError {
    ReloadError::NeedsRestart {
        key: key.to_owned(),
        why: why.to_owned(),
    }
}

/// Each top-level section, and `guardian.cap_mw`, as a TOML value to compare.
fn section_values(config: &Config) -> Result<toml::Table, ReloadError> {
    let mut table = toml::Table::try_from(config).map_err(|error| ReloadError::Invalid {
        key: String::new(),
        message: error.to_string(),
    })?;
    let cap = table
        .get("guardian")
        .and_then(|guardian| guardian.get("cap_mw"))
        .cloned();
    if let Some(cap) = cap {
        table.insert("guardian.cap_mw".into(), cap);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn registry() -> AgentRegistry {
        let mut registry = AgentRegistry::new();
        gamesa_agent_gpu::register(&mut registry).unwrap();
        registry
    }

    const BASE: &str = r#"
        [guardian]
        cap_mw = 300000
        components = ["gpu0"]
        [guardian.limits."power.limit:gpu0"]
        min = 100000
        max = 300000
        [[guardian.contracts]]
        name = "cap"
        phase = "post"
        expr = "sum(power.limit_mw) <= node.cap_mw"
        [[agents]]
        kind = "gpu"
        id = "gpu0"
        effects = ["order:power_budget_mw", "power.set_limit:gpu0"]
        params = { component = "gpu0" }
        [[clients]]
        name = "game"
        token = "game-token-0001"
        effects = ["signal:performance"]
    "#;

    fn config(text: &str) -> Config {
        Config::from_toml_str(
            text,
            std::path::Path::new("test.toml"),
            Vec::new(),
            &registry(),
        )
        .unwrap()
    }

    #[test]
    fn contracts_limits_params_and_client_effects_apply_live() {
        let running = config(BASE);
        let next = config(
            &BASE
                .replace("max = 300000", "max = 250000")
                .replace("<= node.cap_mw", "<= node.cap_mw - 1000")
                .replace(
                    "params = { component = \"gpu0\" }",
                    "params = { component = \"gpu0\", step_mw = 2000 }",
                )
                .replace(
                    "effects = [\"signal:performance\"]",
                    "effects = [\"signal:performance\", \"query:*\"]",
                ),
        );
        let plan = plan(&running, &next, &registry()).unwrap();
        assert_eq!(plan.changed, ["guardian", "clients", "agents[0].params"]);
        assert_eq!(plan.respecced.len(), 1);
        assert_eq!(plan.respecced[0].name, "gpu0");
        assert_eq!(
            plan.guardian
                .guardian()
                .gate()
                .rule("power.limit:gpu0")
                .unwrap()
                .max,
            Some(250_000)
        );
    }

    #[test]
    fn params_the_factory_refuses_are_an_invalid_reload() {
        let running = config(BASE);
        let mut next = running.clone();
        next.agents[0]
            .params
            .insert("step_mw".into(), toml::Value::Integer(0));
        match plan(&running, &next, &registry()) {
            Err(ReloadError::Invalid { key, .. }) => assert_eq!(key, "agents[0].params"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_changed_token_is_reported() {
        let running = config(BASE);
        let next = config(&BASE.replace("game-token-0001", "game-token-0002"));
        let plan = plan(&running, &next, &registry()).unwrap();
        assert_eq!(plan.changed, ["clients[0].token"]);
    }

    #[test]
    fn an_unchanged_config_changes_nothing() {
        let running = config(BASE);
        let plan = plan(&running, &running.clone(), &registry()).unwrap();
        assert!(plan.changed.is_empty());
        assert!(plan.respecced.is_empty());
    }

    #[test]
    fn what_is_read_once_or_renumbers_participants_needs_a_restart() {
        let running = config(BASE);
        for (from, to, key) in [
            ("cap_mw = 300000", "cap_mw = 200000", "guardian.cap_mw"),
            (
                "[guardian]",
                "[runtime]\ntick_hz = 20\n[guardian]",
                "runtime",
            ),
            ("id = \"gpu0\"", "id = \"gpu1\"", "agents"),
            ("name = \"game\"", "name = \"other\"", "clients"),
        ] {
            let next = config(&BASE.replace(from, to));
            match plan(&running, &next, &registry()) {
                Err(ReloadError::NeedsRestart { key: found, .. }) => {
                    assert_eq!(found, key, "{from} -> {to}")
                }
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
    }
}
