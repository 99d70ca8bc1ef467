//! Fits a runtime config (by default `config/sim.toml`) to a scenario and a policy.
//!
//! - The guardian manages exactly the scenario's components. A component the config
//!   does not know is modelled on a configured component of the same kind: its agent,
//!   constants (`gpu0.r_th`), contracts scoped to its limit, gate limits and safe limit
//!   are copied with the name changed (`gpu0` → `gpu1`). Entries of configured
//!   components the scenario lacks are removed.
//! - `runtime.tick_hz` follows the scenario's step, and `runtime.seed` the run's seed.
//! - A baseline replaces every agent by its single policy agent, granted
//!   `power.set_limit:*`. The `none` baseline also drops every contract on `node.cap_mw`:
//!   it is the policy without software limits.
//!
//! Nothing here reads the scenario's physics: the market's agents get the config's
//! params and limits, never the twin's idle power, TDP or thermal resistance.

use std::path::Path;

use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::Scenario;
use gamesa_proto::{ComponentKind, Effect, EffectAction};
use gamesa_runtime::{
    Config,
    config::{AgentConfig, SensorSource},
};

use crate::{Policy, SimError};

/// The config for running `policy` on `scenario` (whose file is `scenario_path`).
pub fn fit(
    template: &Config,
    scenario: &Scenario,
    scenario_path: &Path,
    policy: Policy,
    seed: u64,
) -> Result<Config, SimError> {
    let mut config = template.clone();
    config.sensors.source = SensorSource::Twin;
    config.sensors.scenario = Some(scenario_path.to_owned());
    config.guardian.cap_mw = None;
    let tick_hz = (1000.0 / scenario.step_ms() as f64).round();
    config.runtime.tick_hz = tick_hz.clamp(1.0, 1000.0) as u32;
    config.runtime.seed = seed;

    let wanted: Vec<&str> = scenario
        .components()
        .iter()
        .map(|spec| spec.name.as_str())
        .collect();
    let known = config.guardian.components.clone();
    for spec in scenario.components() {
        if known.contains(&spec.name) {
            continue;
        }
        let template =
            template_component(&config, spec.kind).ok_or_else(|| SimError::NoTemplate {
                component: spec.name.clone(),
                kind: kind_name(spec.kind).to_owned(),
            })?;
        copy_component(&mut config, &template, &spec.name);
    }
    for component in &known {
        if !wanted.contains(&component.as_str()) {
            remove_component(&mut config, component);
        }
    }
    config.guardian.components = wanted.iter().map(|name| (*name).to_owned()).collect();

    if let Some(kind) = policy.agent_kind() {
        config.agents = vec![AgentConfig {
            kind,
            id: "policy".into(),
            weight: 1,
            effects: vec![Effect {
                action: EffectAction::SetPowerLimit,
                scope: Effect::WILDCARD.into(),
            }],
            params: toml::Table::new(),
        }];
    }
    if policy == Policy::None {
        config
            .guardian
            .contracts
            .retain(|contract| !contract.expr.contains("node.cap_mw"));
    }
    Ok(config)
}

/// Checks a fitted config the way `Runtime::start` will, so that a bad template is
/// reported before a run starts.
pub fn validate(config: &Config, registry: &AgentRegistry) -> Result<(), SimError> {
    gamesa_runtime::config::validate(config, registry)
        .map_err(|(key, message)| SimError::Config(format!("`{key}`: {message}")))
}

fn kind_name(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Cpu => "cpu",
        ComponentKind::Gpu => "gpu",
    }
}

/// The component an agent speaks for (`params.component`).
fn component_of(agent: &AgentConfig) -> Option<&str> {
    agent.params.get("component").and_then(toml::Value::as_str)
}

/// A configured component whose agent is of `kind` (`cpu`, `gpu`).
fn template_component(config: &Config, kind: ComponentKind) -> Option<String> {
    config
        .agents
        .iter()
        .filter(|agent| agent.kind == kind_name(kind))
        .find_map(|agent| {
            let component = component_of(agent)?;
            config
                .guardian
                .components
                .iter()
                .any(|known| known == component)
                .then(|| component.to_owned())
        })
}

/// `text` with every name rooted at `from` (`gpu0.temp_c`, `gpu0`) rooted at `to`.
/// Names are runs of `[A-Za-z0-9_.]`; only a whole first part matches.
pub fn rename_component(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut name = String::new();
    let flush = |name: &mut String, out: &mut String| {
        let root = name.split('.').next().unwrap_or_default();
        if root == from {
            out.push_str(to);
            out.push_str(&name[from.len()..]);
        } else {
            out.push_str(name);
        }
        name.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            name.push(c);
        } else {
            flush(&mut name, &mut out);
            out.push(c);
        }
    }
    flush(&mut name, &mut out);
    out
}

fn limit_target(component: &str) -> String {
    format!("power.limit:{component}")
}

fn mentions(text: &str, component: &str) -> bool {
    rename_component(text, component, "\u{0}") != text
}

fn copy_component(config: &mut Config, from: &str, to: &str) {
    let guardian = &mut config.guardian;
    let prefix = format!("{from}.");
    let constants: Vec<(String, f64)> = guardian
        .constants
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(&prefix)?;
            Some((format!("{to}.{rest}"), *value))
        })
        .collect();
    guardian.constants.extend(constants);
    let contracts: Vec<_> = guardian
        .contracts
        .iter()
        .filter(|contract| contract.scope == limit_target(from))
        .map(|contract| {
            let mut copy = contract.clone();
            copy.name = contract.name.replace(from, to);
            copy.scope = limit_target(to);
            copy.expr = rename_component(&contract.expr, from, to);
            copy
        })
        .collect();
    guardian.contracts.extend(contracts);
    if let Some(limit) = guardian.limits.get(&limit_target(from)).cloned() {
        guardian.limits.insert(limit_target(to), limit);
    }
    if let Some(safe) = guardian.safe_limits_mw.get(from).copied() {
        guardian.safe_limits_mw.insert(to.to_owned(), safe);
    }
    let agents: Vec<AgentConfig> = config
        .agents
        .iter()
        .filter(|agent| component_of(agent) == Some(from))
        .map(|agent| {
            let mut copy = agent.clone();
            copy.id = if agent.id == from {
                to.to_owned()
            } else {
                format!("{}-{to}", agent.id)
            };
            copy.params
                .insert("component".into(), toml::Value::String(to.to_owned()));
            for effect in &mut copy.effects {
                if effect.scope == from {
                    effect.scope = to.to_owned();
                }
            }
            copy
        })
        .collect();
    config.agents.extend(agents);
}

fn remove_component(config: &mut Config, component: &str) {
    let guardian = &mut config.guardian;
    let prefix = format!("{component}.");
    guardian
        .constants
        .retain(|name, _| !name.starts_with(&prefix));
    guardian.contracts.retain(|contract| {
        contract.scope != limit_target(component) && !mentions(&contract.expr, component)
    });
    guardian.limits.remove(&limit_target(component));
    guardian.safe_limits_mw.remove(component);
    config
        .agents
        .retain(|agent| component_of(agent) != Some(component));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_renamed_only_at_their_root() {
        assert_eq!(
            rename_component(
                "gpu0.temp_c + gpu0.r_th * gpu0.delta_power_w < gpu0.t_max_c - 2",
                "gpu0",
                "gpu1"
            ),
            "gpu1.temp_c + gpu1.r_th * gpu1.delta_power_w < gpu1.t_max_c - 2"
        );
        assert_eq!(
            rename_component(
                "sum(power.limit_mw) <= node.cap_mw or xgpu0.a < gpu00.b",
                "gpu0",
                "g"
            ),
            "sum(power.limit_mw) <= node.cap_mw or xgpu0.a < gpu00.b"
        );
        assert!(mentions("cpu.delta_power_w <= 0", "cpu"));
        assert!(!mentions("sum(power.limit_mw) <= node.cap_mw", "cpu"));
    }
}
