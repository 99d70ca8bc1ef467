//! Effects: the capabilities config grants to agents and clients, such as
//! `power.set_limit:gpu0`, `signal:performance` or `order:gpu_memory_mb`.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{Domain, ProtoError, Resource};

/// What an effect allows. The scope after the `:` narrows it to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EffectAction {
    /// Set a component's power limit; scope: component id.
    SetPowerLimit,
    /// Write a cgroup's `cpu.max`; scope: cgroup name.
    SetCpuMax,
    /// Write a cgroup's `cpuset.cpus`; scope: cgroup name.
    SetCpuset,
    /// Write cpufreq `scaling_max_freq`; scope: cpu number.
    SetCpufreqMax,
    /// Write cpufreq `energy_performance_preference`; scope: cpu number.
    SetEnergyPreference,
    /// Raise a signal; scope: domain.
    Signal,
    /// Place and cancel orders; scope: resource.
    Order,
    /// Read state over ingress; scope: query name.
    Query,
    /// Subscribe to a stream over ingress; scope: topic.
    Subscribe,
    /// Report a workload's progress over ingress; scope: component id.
    Progress,
}

impl EffectAction {
    pub const ALL: [EffectAction; 10] = [
        EffectAction::SetPowerLimit,
        EffectAction::SetCpuMax,
        EffectAction::SetCpuset,
        EffectAction::SetCpufreqMax,
        EffectAction::SetEnergyPreference,
        EffectAction::Signal,
        EffectAction::Order,
        EffectAction::Query,
        EffectAction::Subscribe,
        EffectAction::Progress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EffectAction::SetPowerLimit => "power.set_limit",
            EffectAction::SetCpuMax => "cgroup.set_cpu_max",
            EffectAction::SetCpuset => "cgroup.set_cpuset",
            EffectAction::SetCpufreqMax => "cpufreq.set_max",
            EffectAction::SetEnergyPreference => "cpufreq.set_epp",
            EffectAction::Signal => "signal",
            EffectAction::Order => "order",
            EffectAction::Query => "query",
            EffectAction::Subscribe => "subscribe",
            EffectAction::Progress => "progress",
        }
    }
}

/// The scopes that [`EffectAction::Query`] and [`EffectAction::Subscribe`] accept.
pub const QUERY_SCOPES: [&str; 10] = [
    "health",
    "telemetry",
    "book",
    "allocations",
    "account",
    "agents",
    "decisions",
    "experiences",
    "why",
    "fleet",
];
pub const SUBSCRIBE_SCOPES: [&str; 4] = ["fills", "prices", "signals", "vetoes"];

/// One capability: an action and the scope it applies to (`*` for every scope).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Effect {
    pub action: EffectAction,
    pub scope: String,
}

impl Effect {
    pub const WILDCARD: &'static str = "*";

    /// Builds an effect, checking that the scope makes sense for the action.
    pub fn new(action: EffectAction, scope: impl Into<String>) -> Result<Effect, ProtoError> {
        let scope = scope.into();
        let effect = Effect { action, scope };
        effect.check_scope()?;
        Ok(effect)
    }

    fn check_scope(&self) -> Result<(), ProtoError> {
        let fail = |reason: String| {
            Err(ProtoError::InvalidEffect {
                effect: self.to_string(),
                reason,
            })
        };
        let scope = self.scope.as_str();
        if scope.is_empty() {
            return fail("the scope after `:` is empty".into());
        }
        if scope == Effect::WILDCARD {
            return Ok(());
        }
        match self.action {
            EffectAction::Signal => scope.parse::<Domain>().map(drop),
            EffectAction::Order => scope.parse::<Resource>().map(drop),
            EffectAction::Query if !QUERY_SCOPES.contains(&scope) => {
                fail(format!("unknown query `{scope}`"))
            }
            EffectAction::Subscribe if !SUBSCRIBE_SCOPES.contains(&scope) => {
                fail(format!("unknown topic `{scope}`"))
            }
            EffectAction::SetCpufreqMax | EffectAction::SetEnergyPreference
                if scope.parse::<u32>().is_err() =>
            {
                fail(format!("`{scope}` is not a cpu number"))
            }
            _ if !scope
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b)) =>
            {
                fail(format!(
                    "`{scope}` contains characters outside [A-Za-z0-9_.-/]"
                ))
            }
            _ => Ok(()),
        }
        .map_err(|err| match err {
            ProtoError::InvalidEffect { .. } => err,
            other => ProtoError::InvalidEffect {
                effect: self.to_string(),
                reason: other.to_string(),
            },
        })
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.action.as_str(), self.scope)
    }
}

impl FromStr for Effect {
    type Err = ProtoError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ProtoError::InvalidEffect {
            effect: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (action, scope) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected `action:scope`"))?;
        let action = EffectAction::ALL
            .into_iter()
            .find(|known| known.as_str() == action)
            .ok_or_else(|| {
                invalid(
                    "unknown action (expected power.set_limit, cgroup.set_cpu_max, \
                     cgroup.set_cpuset, cpufreq.set_max, cpufreq.set_epp, signal, order, \
                     query, subscribe or progress)",
                )
            })?;
        Effect::new(action, scope)
    }
}

impl TryFrom<String> for Effect {
    type Error = ProtoError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Effect> for String {
    fn from(effect: Effect) -> String {
        effect.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_parse_and_print() {
        for text in [
            "power.set_limit:gpu0",
            "signal:performance",
            "order:gpu_memory_mb",
            "query:*",
            "subscribe:fills",
            "progress:gpu0",
            "progress:*",
            "cpufreq.set_max:3",
            "cgroup.set_cpu_max:games.slice/steam",
        ] {
            let effect: Effect = text.parse().unwrap();
            assert_eq!(effect.to_string(), text);
        }
    }

    #[test]
    fn bad_effects_name_the_problem() {
        for text in [
            "power",
            "teleport:gpu0",
            "signal:loud",
            "order:bitcoin",
            "query:secrets",
            "cpufreq.set_max:all",
            "power.set_limit:",
            "power.set_limit:gpu 0",
            "progress:gpu 0",
        ] {
            let err = text.parse::<Effect>().unwrap_err();
            assert!(
                matches!(&err, ProtoError::InvalidEffect { effect, .. } if effect == text),
                "{text}: {err}"
            );
        }
    }
}
