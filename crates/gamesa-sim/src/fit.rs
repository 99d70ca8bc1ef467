//! Fits a runtime config (by default `config/sim.toml`) to a scenario and a policy.
//!
//! - The guardian manages exactly the scenario's components. A component the config
//!   does not know is modelled on a configured component of the same kind: its agent,
//!   constants (`gpu0.r_th`), contracts scoped to its limit and gate limits are copied
//!   with the name changed (`gpu0` → `gpu1`). Entries of configured components the
//!   scenario lacks are removed.
//! - **The scenario's machine.** The guardian's device bounds
//!   (`guardian.limits."power.limit:X"` `min`/`max`) are the scenario's `min_w`/`max_w`
//!   and each safe limit (`safe_limits_mw`) is the component's `min_w`, for any
//!   components, so a laptop's 20–115 W GPU is not pinned at a server GPU's 100 W. The
//!   config says nothing about one particular machine; a bound or safe limit it does set
//!   that the scenario contradicts (a `min`/`max` other than `min_w`/`max_w`, a safe
//!   limit outside `[min_w, max_w]`) is [`SimError::ContradictsScenario`].
//! - **The step limit scales with the component.** Each limit's `max_step` is
//!   [`MAX_STEP_PER_S`] of the component's range per second of scenario time (a tenth of
//!   the range per 100 ms tick), at most the config's `max_step` where it sets one. A
//!   fixed 25 W would be a twentieth of a 500 W GPU's range but a quarter of a laptop
//!   GPU's; a fraction of the range gives every component the same responsiveness (any
//!   limit can cross its whole range in one second, as the suite's 100–350 W GPU did
//!   with 25 W per tick) and the same bound on what one tick can do before the next
//!   telemetry shows its effect: a tenth of the range, whose heat the guardian's thermal
//!   contracts and the thermal agent see coming, whatever the component's size. The
//!   config's `max_step` stays a generic ceiling (no tick moves any limit by more).
//! - `runtime.tick_hz` follows the scenario's step, and `runtime.seed` the run's seed.
//! - A baseline replaces the decision agents by its single policy agent, granted
//!   `power.set_limit:*`, and keeps the config's safety agents (those with the
//!   `signal:safety` effect: `thermal` and `power`), whose safety signals send the
//!   guardian to the safe limits, exactly as under the market. The `none` baseline keeps
//!   no other agent and also drops every contract on `node.cap_mw`: it is the policy
//!   without software limits.
//!
//! Nothing here gives an agent the scenario's physics: the market's agents get the
//! config's params and limits, never the twin's idle power, TDP or thermal resistance;
//! the guardian gets the device bounds a datasheet gives.

use std::path::Path;

use gamesa_agent::AgentRegistry;
use gamesa_config::{AgentConfig, Config, SensorSource};
use gamesa_hw::twin::{ComponentSpec, Scenario};
use gamesa_proto::{ComponentKind, Effect, EffectAction};

use crate::{Policy, SimError};

/// The share of a component's limit range its limit may move per second of scenario
/// time (the gate's `max_step`, per tick, is this times the tick's length).
pub const MAX_STEP_PER_S: f64 = 1.0;

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
    check_device_bounds(&config, scenario, scenario_path)?;
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
    for spec in scenario.components() {
        set_device_bounds(&mut config, spec, scenario.step_ms());
    }
    weigh_agents(&mut config, scenario);

    if let Some(kind) = policy.agent_kind() {
        if policy == Policy::None {
            config.agents.clear();
        } else {
            config.agents.retain(raises_safety_signals);
        }
        config.agents.push(AgentConfig {
            kind,
            id: "policy".into(),
            weight: 1,
            effects: vec![Effect {
                action: EffectAction::SetPowerLimit,
                scope: Effect::WILDCARD.into(),
            }],
            params: toml::Table::new(),
            module: None,
            module_xxh3: None,
            fuel: None,
            memory_mib: None,
            client: None,
            participant: None,
        });
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
    gamesa_config::validate(config, registry)
        .map_err(|(key, message)| SimError::Config(format!("`{key}`: {message}")))
}

/// Whether an agent may raise safety signals (`signal:safety`): the thermal and power
/// agents, whose signals make the guardian apply the safe limits at once.
fn raises_safety_signals(agent: &AgentConfig) -> bool {
    agent
        .effects
        .iter()
        .any(|effect| effect.action == EffectAction::Signal && effect.scope == "safety")
}

fn watts_to_mw(watts: f64) -> u64 {
    (watts * 1000.0).round().max(0.0) as u64
}

/// Every device bound and safe limit the config sets for a scenario component must agree
/// with the scenario: the bounds equal `min_w`/`max_w`, a safe limit lies within them.
fn check_device_bounds(
    config: &Config,
    scenario: &Scenario,
    scenario_path: &Path,
) -> Result<(), SimError> {
    for spec in scenario.components() {
        let target = limit_target(&spec.name);
        let contradiction =
            |setting: String, config_mw: u64, scenario: String| SimError::ContradictsScenario {
                component: spec.name.clone(),
                setting,
                config_mw,
                scenario,
                scenario_path: scenario_path.to_owned(),
            };
        if let Some(limit) = config.guardian.limits.get(&target) {
            let bounds = [
                ("min", limit.min, "min_w", spec.min_w),
                ("max", limit.max, "max_w", spec.max_w),
            ];
            for (key, configured, field, scenario_w) in bounds {
                if let Some(configured_mw) = configured
                    && configured_mw != watts_to_mw(scenario_w)
                {
                    return Err(contradiction(
                        format!("guardian.limits.\"{target}\".{key}"),
                        configured_mw,
                        format!("{field} = {scenario_w} W"),
                    ));
                }
            }
        }
        if let Some(&safe_mw) = config.guardian.safe_limits_mw.get(&spec.name)
            && !(watts_to_mw(spec.min_w)..=watts_to_mw(spec.max_w)).contains(&safe_mw)
        {
            return Err(contradiction(
                format!("guardian.safe_limits_mw.{}", spec.name),
                safe_mw,
                format!("min_w = {} W and max_w = {} W", spec.min_w, spec.max_w),
            ));
        }
    }
    Ok(())
}

/// The scenario's bounds for `spec`'s limit, its safe limit (`min_w` unless the config
/// chose one within the bounds) and a step limit scaled to its range.
fn set_device_bounds(config: &mut Config, spec: &ComponentSpec, step_ms: u64) {
    let guardian = &mut config.guardian;
    let min_mw = watts_to_mw(spec.min_w);
    let max_mw = watts_to_mw(spec.max_w);
    let limit = guardian.limits.entry(limit_target(&spec.name)).or_default();
    limit.min = Some(min_mw);
    limit.max = Some(max_mw);
    limit.max_step = Some(max_step_mw(min_mw, max_mw, step_ms, limit.max_step));
    guardian
        .safe_limits_mw
        .entry(spec.name.clone())
        .or_insert(min_mw);
}

/// [`MAX_STEP_PER_S`] of the range per second, for one tick of `step_ms`, at most
/// `configured_mw`, and at least 1 W so that a limit can always move.
pub fn max_step_mw(min_mw: u64, max_mw: u64, step_ms: u64, configured_mw: Option<u64>) -> u64 {
    let range_mw = max_mw.saturating_sub(min_mw) as f64;
    let scaled_mw = (range_mw * MAX_STEP_PER_S * step_ms as f64 / 1000.0).ceil() as u64;
    scaled_mw.min(configured_mw.unwrap_or(u64::MAX)).max(1_000)
}

/// An agent weight per unit of a component's scenario `weight`: agent weights are whole
/// numbers, so a weight of 1.5 becomes 15.
pub const WEIGHT_RESOLUTION: f64 = 10.0;

/// A component's `weight` says how much its work counts: the operator's valuation, not
/// physics, and what an operator sets as the agent's weight in config. Each agent that
/// speaks for a component gets `WEIGHT_RESOLUTION · weight` times its configured weight.
fn weigh_agents(config: &mut Config, scenario: &Scenario) {
    for agent in &mut config.agents {
        let Some(spec) = component_of(agent)
            .and_then(|name| scenario.components().iter().find(|spec| spec.name == name))
        else {
            continue;
        };
        let weighted = (f64::from(agent.weight) * WEIGHT_RESOLUTION * spec.weight).round();
        // The scenario checks weight > 0, so this is at least 1 but for absurdly small
        // weights; `as` saturates huge ones.
        agent.weight = (weighted as u32).max(1);
    }
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
