//! Semantic checks that serde cannot express: ranges, uniqueness, known kinds, and
//! contracts that parse. Each failure names the key it concerns.

use std::collections::BTreeSet;

use gamesa_agent::{AgentError, AgentRegistry, ModuleSpec, external::EXTERNAL_KIND};

use super::{Config, Invalid, SensorSource};

pub const TICK_HZ_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

/// An external agent's `client`: required, naming a `[[clients]]` entry, with a socket
/// listener for its process to connect to; refused on every other kind.
fn check_client(config: &Config, index: usize) -> Result<(), Invalid> {
    let agent = &config.agents[index];
    let key = format!("agents[{index}].client");
    let external = agent.kind == EXTERNAL_KIND;
    match (&agent.client, external) {
        (None, false) => Ok(()),
        (Some(_), false) => Err((
            key,
            format!(
                "only for kind = \"{EXTERNAL_KIND}\" (this agent is a `{}`)",
                agent.kind
            ),
        )),
        (None, true) => Err((key, format!("required for kind = \"{EXTERNAL_KIND}\""))),
        (Some(client), true) => {
            if !config.clients.iter().any(|entry| entry.name == *client) {
                let known: Vec<&str> = config.clients.iter().map(|c| c.name.as_str()).collect();
                return Err((
                    key,
                    format!(
                        "`{client}` is not a [[clients]] entry (configured: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            if !config.ingress.enabled() {
                return Err((
                    key,
                    "an external agent answers over the ingress protocol: enable \
                     ingress.unix_enabled or ingress.tcp_enabled"
                        .into(),
                ));
            }
            Ok(())
        }
    }
}

/// Checks `config` against the ranges the runtime supports and the agent kinds
/// `registry` knows.
pub fn validate(config: &Config, registry: &AgentRegistry) -> Result<(), Invalid> {
    let invalid = |key: &str, message: String| Err((key.to_owned(), message));
    if !TICK_HZ_RANGE.contains(&config.runtime.tick_hz) {
        return invalid(
            "runtime.tick_hz",
            format!(
                "{} is out of range ({}..={})",
                config.runtime.tick_hz,
                TICK_HZ_RANGE.start(),
                TICK_HZ_RANGE.end()
            ),
        );
    }
    if config.runtime.epoch_ticks == 0 {
        return invalid("runtime.epoch_ticks", "must be at least 1".into());
    }
    if config.runtime.agent_deadline_ms == Some(0) {
        return invalid(
            "runtime.agent_deadline_ms",
            "must be at least 1 (leave it unset for half a tick period)".into(),
        );
    }
    if config.supervision.max_restarts == 0 {
        return invalid("supervision.max_restarts", "must be at least 1".into());
    }
    if !(config.supervision.window_s.is_finite() && config.supervision.window_s > 0.0) {
        return invalid(
            "supervision.window_s",
            format!(
                "{} is not a positive number of seconds",
                config.supervision.window_s
            ),
        );
    }
    if config.sensors.source == SensorSource::Twin && config.sensors.scenario.is_none() {
        return invalid(
            "sensors.scenario",
            "required when sensors.source = \"twin\"".into(),
        );
    }
    if config.guardian.balance_cap_epochs == 0 {
        return invalid("guardian.balance_cap_epochs", "must be at least 1".into());
    }
    let mut names = BTreeSet::new();
    for (index, agent) in config.agents.iter().enumerate() {
        if !names.insert(agent.id.as_str()) {
            return invalid(
                &format!("agents[{index}].id"),
                format!("`{}` is used by another agent", agent.id),
            );
        }
        if !registry.contains(&agent.kind) {
            return invalid(
                &format!("agents[{index}].kind"),
                format!(
                    "unknown agent kind `{}` (registered: {})",
                    agent.kind,
                    registry.kinds().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if agent.weight == 0 {
            return invalid(
                &format!("agents[{index}].weight"),
                "must be at least 1".into(),
            );
        }
        let loads_module = agent.kind == ModuleSpec::KIND;
        if loads_module && agent.module.is_none() {
            return invalid(
                &format!("agents[{index}].module"),
                format!("required for kind = \"{}\"", ModuleSpec::KIND),
            );
        }
        for (key, set) in [
            ("module", agent.module.is_some()),
            ("module_xxh3", agent.module_xxh3.is_some()),
            ("fuel", agent.fuel.is_some()),
            ("memory_mib", agent.memory_mib.is_some()),
        ] {
            if set && !loads_module {
                return invalid(
                    &format!("agents[{index}].{key}"),
                    format!(
                        "only for kind = \"{}\" (this agent is a `{}`)",
                        ModuleSpec::KIND,
                        agent.kind
                    ),
                );
            }
        }
        check_client(config, index)?;
        if agent.fuel == Some(0) || agent.memory_mib == Some(0) {
            let key = if agent.fuel == Some(0) {
                "fuel"
            } else {
                "memory_mib"
            };
            return invalid(
                &format!("agents[{index}].{key}"),
                "must be at least 1".into(),
            );
        }
    }
    if !config.actuators.real.is_empty() && config.actuators.state_file.is_relative() {
        return invalid(
            "actuators.state_file",
            format!(
                "{} is relative and there is no state directory for it: set \
                 STATE_DIRECTORY, XDG_STATE_HOME or HOME, or make the path absolute",
                config.actuators.state_file.display()
            ),
        );
    }
    let mut ids = BTreeSet::new();
    let numbered = crate::assemble::agent_specs(config)
        .into_iter()
        .map(|spec| spec.id)
        .enumerate()
        .map(|(index, id)| (format!("agents[{index}].participant"), id))
        .chain(
            crate::assemble::client_ids(config)
                .into_iter()
                .enumerate()
                .map(|(index, (id, _))| (format!("clients[{index}].participant"), id)),
        );
    for (key, id) in numbered {
        if id.0 == 0 {
            return invalid(&key, "participant ids start at 1".into());
        }
        if !ids.insert(id) {
            return invalid(&key, format!("participant id {} is used twice", id.0));
        }
    }
    for (index, target) in config.actuators.real.iter().enumerate() {
        if !target.contains(':') {
            return invalid(
                &format!("actuators.real[{index}]"),
                format!("`{target}` is not a target such as `power.limit:gpu0`"),
            );
        }
    }
    // A module is compiled and its `init` run now, so that a module that cannot load, or
    // refuses its params, fails here and not at start (or at a reload); an external
    // agent's stand-in refuses any params.
    for (index, spec) in crate::assemble::agent_specs(config).iter().enumerate() {
        if spec.kind != ModuleSpec::KIND && spec.kind != EXTERNAL_KIND {
            continue;
        }
        match registry.create(spec) {
            Ok(_) => {}
            Err(error @ AgentError::InvalidModule { .. }) => {
                return invalid(&format!("agents[{index}].module"), error.to_string());
            }
            Err(error) => return invalid(&format!("agents[{index}].params"), error.to_string()),
        }
    }
    super::telemetry::validate_telemetry(&config.telemetry)?;
    super::journal::validate_journal(&config.journal)?;
    super::http::validate_http(&config.http)?;
    super::fleet::validate_fleet(
        &config.fleet,
        1_000_u64.div_ceil(u64::from(config.runtime.tick_hz.max(1))),
    )?;
    super::ingress::validate_ingress(config)?;
    crate::assemble::build_guardian(config, registry).map(drop)
}
