//! A config reload while the daemon runs: which changes apply live (contracts, gate
//! limits, constants, safe limits, components, allowance; agents added, removed or
//! re-parameterized, their weights and effects; clients added, removed, their tokens,
//! effects and weights) and which need a restart, and the guardian and agent specs the
//! new config gives.
//!
//! # Invariants
//! - a kept participant (same name, and for an agent the same kind) keeps its id, so
//!   its balance, leases and open orders stay its own
//! - a new participant's id was never used before in the run, so it inherits no
//!   account, order or lease of a gone one
//! - a plan is built with the same code as a start (validation, each new or changed
//!   agent built once by its factory), so a reload fails where a start would

use std::collections::{BTreeMap, BTreeSet};

use gamesa_agent::{AgentRegistry, AgentSpec};
use gamesa_engine::GuardianCore;
use gamesa_proto::AgentId;
use thiserror::Error;

use crate::{AgentConfig, ClientConfig, Config, assemble};

/// What a reload applies.
#[derive(Debug)]
pub struct ReloadPlan {
    /// The new config with every agent and client numbered (`participant` set): kept
    /// names keep their ids, new ones get ids never used before in the run.
    pub config: Config,
    /// The new policy; the running guardian adopts it and keeps its ledger and history.
    pub guardian: GuardianCore,
    /// Agents whose `params` changed, with their new spec: rebuilt from their factory,
    /// keeping their id, account, orders and leases.
    pub respecced: Vec<AgentSpec>,
    /// Agents that are new (or of a new kind): built from their factory.
    pub added: Vec<AgentSpec>,
    /// Agents and clients that are gone: at the next tick they are retired as an
    /// isolation retires an agent (orders cancelled, leases revoked, signals dropped,
    /// the targets they set restored), and never asked again.
    pub retired: Vec<AgentId>,
    /// The highest participant id the run has used, these new ones included.
    pub highest: u32,
    /// What changed, for the log: `guardian`, `clients`, `clients[0].token`,
    /// `agents[1].params`, `agents[1].weight`, `agents[1].effects`,
    /// `agent added: NAME`, `agent removed: NAME`, `client added: NAME`,
    /// `client removed: NAME`.
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
const RESTART_ONLY: [&str; 10] = [
    "runtime",
    "fleet",
    "supervision",
    "sensors",
    "actuators",
    "ingress",
    "http",
    "telemetry",
    "journal",
    "guardian.cap_mw",
];

/// The highest participant id `config` numbers: where a run's new ids start.
pub fn highest_id(config: &Config) -> u32 {
    assemble::agent_specs(config)
        .iter()
        .map(|spec| spec.id.0)
        .chain(assemble::client_ids(config).iter().map(|(id, _)| id.0))
        .max()
        .unwrap_or(0)
}

/// Compares the running config with a new, validated one and builds what the reload
/// applies, or says which change needs a restart. `highest` is the highest participant
/// id the run has used ([`highest_id`] at start, then each plan's `highest`), so that
/// no new participant inherits a gone one's account.
pub fn plan(
    running: &Config,
    next: &Config,
    highest: u32,
    registry: &AgentRegistry,
) -> Result<ReloadPlan, ReloadError> {
    let old = section_values(running)?;
    let new = section_values(next)?;
    for key in RESTART_ONLY {
        if old.get(key) != new.get(key) {
            return Err(restart(key, "it is read once, at start"));
        }
    }
    let (numbered, highest) = number(running, next, highest);
    crate::validate(&numbered, registry)
        .map_err(|(key, message)| ReloadError::Invalid { key, message })?;
    let old_specs = assemble::agent_specs(running);
    let old_agents: BTreeMap<AgentId, (&AgentSpec, &AgentConfig)> = old_specs
        .iter()
        .zip(&running.agents)
        .map(|(spec, agent)| (spec.id, (spec, agent)))
        .collect();
    let old_clients: BTreeMap<AgentId, &ClientConfig> =
        assemble::client_ids(running).into_iter().collect();
    let new_specs = assemble::agent_specs(&numbered);
    let new_clients = assemble::client_ids(&numbered);

    let mut changed = Vec::new();
    for key in ["guardian", "clients"] {
        if old.get(key) != new.get(key) {
            changed.push(key.to_owned());
        }
    }
    let mut respecced = Vec::new();
    let mut added = Vec::new();
    for (index, (spec, agent)) in new_specs.iter().zip(&numbered.agents).enumerate() {
        let Some((_, old_agent)) = old_agents.get(&spec.id) else {
            build_once(registry, spec, index)?;
            changed.push(format!("agent added: {}", spec.name));
            added.push(spec.clone());
            continue;
        };
        let code = |agent: &AgentConfig| {
            (
                agent.module.clone(),
                agent.module_xxh3.clone(),
                agent.fuel,
                agent.memory_mib,
            )
        };
        if old_agent.params != agent.params || code(old_agent) != code(agent) {
            build_once(registry, spec, index)?;
            let key = if code(old_agent) != code(agent) {
                "module"
            } else {
                "params"
            };
            changed.push(format!("agents[{index}].{key}"));
            respecced.push(spec.clone());
        }
        if old_agent.weight != agent.weight {
            changed.push(format!("agents[{index}].weight"));
        }
        if old_agent.client != agent.client {
            // Its process answers through the new client from the next `attach` on.
            changed.push(format!("agents[{index}].client"));
        }
        if old_agent.effects != agent.effects {
            changed.push(format!("agents[{index}].effects"));
        }
    }
    for (index, (id, client)) in new_clients.iter().enumerate() {
        match old_clients.get(id) {
            None => changed.push(format!("client added: {}", client.name)),
            // Tokens are redacted in the compared TOML.
            Some(old_client)
                if old_client.token != client.token || old_client.token_env != client.token_env =>
            {
                changed.push(format!("clients[{index}].token"));
            }
            Some(_) => {}
        }
    }
    let kept: BTreeSet<AgentId> = new_specs
        .iter()
        .map(|spec| spec.id)
        .chain(new_clients.iter().map(|(id, _)| *id))
        .collect();
    let mut retired = Vec::new();
    for (id, (spec, _)) in &old_agents {
        if !kept.contains(id) {
            changed.push(format!("agent removed: {}", spec.name));
            retired.push(*id);
        }
    }
    for (id, client) in &old_clients {
        if !kept.contains(id) {
            changed.push(format!("client removed: {}", client.name));
            retired.push(*id);
        }
    }
    retired.sort();
    let guardian = assemble::guardian_core(&numbered, registry)
        .map_err(|(key, message)| ReloadError::Invalid { key, message })?;
    Ok(ReloadPlan {
        config: numbered,
        guardian,
        respecced,
        added,
        retired,
        highest,
        changed,
    })
}

/// `next` with every participant numbered: an agent of the same name and kind, or a
/// client of the same name, keeps its running id; any other gets the next id above
/// `highest`, in config order.
fn number(running: &Config, next: &Config, mut highest: u32) -> (Config, u32) {
    let agents: BTreeMap<(&str, &str), AgentId> = assemble::agent_specs(running)
        .into_iter()
        .zip(&running.agents)
        .map(|(spec, agent)| ((agent.id.as_str(), agent.kind.as_str()), spec.id))
        .collect();
    let clients: BTreeMap<&str, AgentId> = assemble::client_ids(running)
        .into_iter()
        .map(|(id, client)| (client.name.as_str(), id))
        .collect();
    let mut fresh = || {
        highest += 1;
        highest
    };
    let mut numbered = next.clone();
    for agent in &mut numbered.agents {
        let kept = agents.get(&(agent.id.as_str(), agent.kind.as_str()));
        agent.participant = Some(kept.map_or_else(&mut fresh, |id| id.0));
    }
    for client in &mut numbered.clients {
        let kept = clients.get(client.name.as_str());
        client.participant = Some(kept.map_or_else(&mut fresh, |id| id.0));
    }
    (numbered, highest)
}

/// Builds an agent once, as a start would: params its factory refuses are an invalid
/// config, not an agent left without its plugin.
fn build_once(registry: &AgentRegistry, spec: &AgentSpec, index: usize) -> Result<(), ReloadError> {
    registry
        .factory(&spec.kind)
        .and_then(|factory| factory(spec))
        .map(drop)
        .map_err(|error| ReloadError::Invalid {
            key: format!("agents[{index}]"),
            message: error.to_string(),
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
        let plan = plan(&running, &next, highest_id(&running), &registry()).unwrap();
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
    fn a_module_rebuilt_in_place_rebuilds_its_agent_alone() {
        use gamesa_agent::{Agent, AgentError, ModuleSpec};

        struct Idle;
        impl Agent for Idle {
            fn observe(
                &mut self,
                _: &gamesa_agent::Observation<'_>,
            ) -> Result<Vec<gamesa_agent::Intent>, AgentError> {
                Ok(Vec::new())
            }
        }
        let mut registry = registry();
        registry
            .register(ModuleSpec::KIND, |_| Ok(Box::new(Idle) as Box<dyn Agent>))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("agent.wasm");
        let text = format!(
            "{BASE}\n[[agents]]\nkind = \"wasm\"\nid = \"w\"\nmodule = \"{}\"\n",
            module.display()
        );
        let load = || {
            Config::from_toml_str(&text, std::path::Path::new("test.toml"), [], &registry).unwrap()
        };
        std::fs::write(&module, b"first build").unwrap();
        let running = load();
        let same = load();
        let unchanged = plan(&running, &same, highest_id(&running), &registry).unwrap();
        assert!(unchanged.changed.is_empty(), "{:?}", unchanged.changed);

        std::fs::write(&module, b"second build").unwrap();
        let rebuilt = load();
        assert_ne!(
            rebuilt.agents[1].module_xxh3, running.agents[1].module_xxh3,
            "the digest follows the file"
        );
        let plan = plan(&running, &rebuilt, highest_id(&running), &registry).unwrap();
        assert_eq!(plan.changed, ["agents[1].module"]);
        assert_eq!(
            plan.respecced
                .iter()
                .map(|spec| spec.name.as_str())
                .collect::<Vec<_>>(),
            ["w"]
        );
    }

    #[test]
    fn params_the_factory_refuses_are_an_invalid_reload() {
        let running = config(BASE);
        let mut next = running.clone();
        next.agents[0]
            .params
            .insert("step_mw".into(), toml::Value::Integer(0));
        match plan(&running, &next, highest_id(&running), &registry()) {
            Err(ReloadError::Invalid { key, .. }) => assert_eq!(key, "agents[0].params"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_changed_token_is_reported() {
        let running = config(BASE);
        let next = config(&BASE.replace("game-token-0001", "game-token-0002"));
        let plan = plan(&running, &next, highest_id(&running), &registry()).unwrap();
        assert_eq!(plan.changed, ["clients[0].token"]);
    }

    #[test]
    fn an_unchanged_config_changes_nothing() {
        let running = config(BASE);
        let plan = plan(
            &running,
            &running.clone(),
            highest_id(&running),
            &registry(),
        )
        .unwrap();
        assert!(plan.changed.is_empty());
        assert!(plan.respecced.is_empty());
    }

    #[test]
    fn agents_and_clients_come_and_go_with_ids_never_used_before() {
        let running = config(BASE);
        // gpu0 is 1, the client 2. A renamed client is a removal and an addition.
        let next = config(
            &BASE.replace("name = \"game\"", "name = \"other\"").replace(
                "[[clients]]",
                "[[agents]]\nkind = \"gpu\"\nid = \"gpu1\"\n\
                 params = { component = \"gpu0\" }\n[[clients]]",
            ),
        );
        let plan = plan(&running, &next, highest_id(&running), &registry()).unwrap();
        let ids: Vec<_> = plan
            .config
            .agents
            .iter()
            .map(|agent| (agent.id.as_str(), agent.participant))
            .chain(
                plan.config
                    .clients
                    .iter()
                    .map(|client| (client.name.as_str(), client.participant)),
            )
            .collect();
        assert_eq!(
            ids,
            [("gpu0", Some(1)), ("gpu1", Some(3)), ("other", Some(4))]
        );
        assert_eq!(plan.retired, [AgentId(2)]);
        assert_eq!(plan.added.len(), 1);
        assert_eq!(plan.highest, 4);
        assert!(plan.changed.contains(&"agent added: gpu1".to_owned()));
        assert!(plan.changed.contains(&"client removed: game".to_owned()));
        // Back to the first config: gpu1 and other go, game comes back with a new id.
        let back = super::plan(&plan.config, &running, plan.highest, &registry()).unwrap();
        assert_eq!(back.retired, [AgentId(3), AgentId(4)]);
        assert_eq!(back.config.clients[0].participant, Some(5));
        // And gpu1 again: never its old id.
        let again = super::plan(&back.config, &next, back.highest, &registry()).unwrap();
        assert_eq!(again.config.agents[1].participant, Some(6));
    }

    #[test]
    fn what_is_read_once_needs_a_restart() {
        let running = config(BASE);
        for (from, to, key) in [
            ("cap_mw = 300000", "cap_mw = 200000", "guardian.cap_mw"),
            (
                "[guardian]",
                "[runtime]\ntick_hz = 20\n[guardian]",
                "runtime",
            ),
        ] {
            let next = config(&BASE.replace(from, to));
            match plan(&running, &next, highest_id(&running), &registry()) {
                Err(ReloadError::NeedsRestart { key: found, .. }) => {
                    assert_eq!(found, key, "{from} -> {to}")
                }
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
    }
}
