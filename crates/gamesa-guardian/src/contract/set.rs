//! The contracts config declares: named pre-conditions (checked against the current
//! state), post-conditions (checked against the proposed state) and invariants (both),
//! each scoped to the fills or actuations it guards.
//!
//! # Invariants
//! - contract names are unique within a set
//! - contracts are checked in the order they were added, so the first failure reported
//!   is deterministic

use std::{fmt, str::FromStr};

use gamesa_proto::Resource;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{ClauseOutcome, ClauseReport, Contract, ContractError, ContractReport, Env, Schema};

/// When a contract is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractPhase {
    /// Against the current state, before a change is allowed.
    Pre,
    /// Against the proposed state, with the change applied.
    Post,
    /// Against both.
    Invariant,
}

impl ContractPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ContractPhase::Pre => "pre-condition",
            ContractPhase::Post => "post-condition",
            ContractPhase::Invariant => "invariant",
        }
    }
}

impl fmt::Display for ContractPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which checks a contract takes part in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ContractScope {
    /// Every fill and every actuation (`*`).
    All,
    /// Fills of one resource (`power_budget_mw`).
    Resource(Resource),
    /// Actuations of one target (`power.limit:gpu0`), as [`gamesa_proto::Actuation::target`]
    /// names it.
    Target(String),
}

impl ContractScope {
    pub fn covers(&self, subject: Subject<'_>) -> bool {
        match (self, subject) {
            (ContractScope::All, _) => true,
            (ContractScope::Resource(resource), Subject::Fill(filled)) => *resource == filled,
            (ContractScope::Target(target), Subject::Actuation(actuated)) => target == actuated,
            _ => false,
        }
    }
}

impl fmt::Display for ContractScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractScope::All => f.write_str("*"),
            ContractScope::Resource(resource) => resource.fmt(f),
            ContractScope::Target(target) => f.write_str(target),
        }
    }
}

impl FromStr for ContractScope {
    type Err = ContractSetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "*" {
            Ok(ContractScope::All)
        } else if let Ok(resource) = text.parse::<Resource>() {
            Ok(ContractScope::Resource(resource))
        } else if text.split_once(':').is_some_and(|(kind, target)| {
            !kind.is_empty() && !target.is_empty() && !target.contains(':')
        }) {
            Ok(ContractScope::Target(text.to_owned()))
        } else {
            Err(ContractSetError::InvalidScope(text.to_owned()))
        }
    }
}

impl TryFrom<String> for ContractScope {
    type Error = ContractSetError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ContractScope> for String {
    fn from(scope: ContractScope) -> String {
        scope.to_string()
    }
}

/// What is being checked: a fill of a resource, or an actuation of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Fill(Resource),
    Actuation(&'a str),
}

/// What to make of a clause whose value is missing (a sensor that could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingValuePolicy {
    /// Fail closed: a clause that cannot be decided denies. The default.
    #[default]
    Deny,
    /// Skip the clause, as if it held.
    Skip,
}

/// A contract clause that did not hold: which contract, in which phase, which clause,
/// and what came of it (violated by how much, or which value was missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractFailure {
    pub contract: String,
    pub phase: ContractPhase,
    pub clause: String,
    pub outcome: ClauseOutcome,
}

impl ContractFailure {
    fn new(contract: &Contract, phase: ContractPhase, report: ClauseReport) -> ContractFailure {
        ContractFailure {
            contract: contract.name().to_owned(),
            phase,
            clause: report.clause,
            outcome: report.outcome,
        }
    }
}

impl fmt::Display for ContractFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: clause `{}` {}",
            self.phase, self.contract, self.clause, self.outcome
        )
    }
}

/// A contract config could not load.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractSetError {
    #[error("contract `{name}`: {error}\n{excerpt}")]
    Invalid {
        name: String,
        error: ContractError,
        /// The source line with a caret under the mistake.
        excerpt: String,
    },
    #[error("contract `{0}` is defined twice")]
    DuplicateName(String),
    #[error(
        "invalid contract scope `{0}` (expected `*`, a resource such as `power_budget_mw`, \
         or an actuation target such as `power.limit:gpu0`)"
    )]
    InvalidScope(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    phase: ContractPhase,
    scope: ContractScope,
    contract: Contract,
}

/// The named contracts of a guardian, in the order config declared them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractSet {
    entries: Vec<Entry>,
}

impl ContractSet {
    pub fn new() -> ContractSet {
        ContractSet::default()
    }

    /// Parses and adds a contract. On error nothing is added.
    pub fn add(
        &mut self,
        phase: ContractPhase,
        scope: ContractScope,
        name: &str,
        text: &str,
        schema: &Schema,
    ) -> Result<(), ContractSetError> {
        let contract =
            Contract::parse(name, text, schema).map_err(|error| ContractSetError::Invalid {
                name: name.to_owned(),
                excerpt: error.excerpt(text),
                error,
            })?;
        self.insert(phase, scope, contract)
    }

    /// Adds an already parsed contract.
    pub fn insert(
        &mut self,
        phase: ContractPhase,
        scope: ContractScope,
        contract: Contract,
    ) -> Result<(), ContractSetError> {
        if self.get(contract.name()).is_some() {
            return Err(ContractSetError::DuplicateName(contract.name().to_owned()));
        }
        self.entries.push(Entry {
            phase,
            scope,
            contract,
        });
        Ok(())
    }

    /// Removes a contract by name; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.contract.name() != name);
        self.entries.len() != before
    }

    pub fn get(&self, name: &str) -> Option<&Contract> {
        self.entries
            .iter()
            .map(|entry| &entry.contract)
            .find(|contract| contract.name() == name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every contract with its phase and scope, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (ContractPhase, &ContractScope, &Contract)> {
        self.entries
            .iter()
            .map(|entry| (entry.phase, &entry.scope, &entry.contract))
    }

    fn applicable<'s>(
        &'s self,
        proposed: bool,
        subject: Subject<'s>,
    ) -> impl Iterator<Item = &'s Entry> + 's {
        self.entries.iter().filter(move |entry| {
            let phase_applies = match entry.phase {
                ContractPhase::Pre => !proposed,
                ContractPhase::Post => proposed,
                ContractPhase::Invariant => true,
            };
            phase_applies && entry.scope.covers(subject)
        })
    }

    fn check(
        &self,
        proposed: bool,
        subject: Subject<'_>,
        env: &Env,
        missing: MissingValuePolicy,
    ) -> Result<Option<f64>, ContractFailure> {
        let mut tightest: Option<f64> = None;
        for entry in self.applicable(proposed, subject) {
            let margin = entry
                .contract
                .check_with(env, missing)
                .map_err(|report| ContractFailure::new(&entry.contract, entry.phase, report))?;
            if margin.is_finite() {
                tightest = Some(tightest.map_or(margin, |t| t.min(margin)));
            }
        }
        Ok(tightest)
    }

    /// Checks the pre-conditions and invariants covering `subject` against the current
    /// state. `Ok` carries the smallest margin seen (`None` when nothing was checked).
    pub fn check_current(
        &self,
        subject: Subject<'_>,
        current: &Env,
        missing: MissingValuePolicy,
    ) -> Result<Option<f64>, ContractFailure> {
        self.check(false, subject, current, missing)
    }

    /// Checks the post-conditions and invariants covering `subject` against the proposed
    /// state.
    pub fn check_proposed(
        &self,
        subject: Subject<'_>,
        proposed: &Env,
        missing: MissingValuePolicy,
    ) -> Result<Option<f64>, ContractFailure> {
        self.check(true, subject, proposed, missing)
    }

    /// Every clause of every contract covering `subject`: pre-conditions and invariants
    /// against `current`, then post-conditions and invariants against `proposed`. For
    /// diagnostics (`gamesa check-config`, traces); the hot path uses the `check_*` calls.
    pub fn evaluate(
        &self,
        subject: Subject<'_>,
        current: &Env,
        proposed: &Env,
    ) -> Vec<(ContractPhase, ContractReport)> {
        let before = self
            .applicable(false, subject)
            .map(|entry| (entry.phase, entry.contract.evaluate(current)));
        let after = self
            .applicable(true, subject)
            .map(|entry| (entry.phase, entry.contract.evaluate(proposed)));
        before.chain(after).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema_for_components;

    fn set() -> ContractSet {
        let schema = schema_for_components(["cpu", "gpu0"]);
        let mut set = ContractSet::new();
        set.add(
            ContractPhase::Pre,
            "power.limit:gpu0".parse().unwrap(),
            "gpu_cool",
            "gpu0.temp_c < 85",
            &schema,
        )
        .unwrap();
        set.add(
            ContractPhase::Invariant,
            ContractScope::All,
            "power_cap",
            "sum(power.limit_mw) <= node.cap_mw",
            &schema,
        )
        .unwrap();
        set.add(
            ContractPhase::Post,
            ContractScope::Resource(Resource::PowerBudgetMw),
            "cpu_limit",
            "cpu.limit_mw <= 100",
            &schema,
        )
        .unwrap();
        set
    }

    fn env(gpu_temp: f64, cpu_limit: f64) -> Env {
        let mut env = Env::new();
        env.set_scalar("gpu0.temp_c", gpu_temp);
        env.set_scalar("cpu.limit_mw", cpu_limit);
        env.set_scalar("node.cap_mw", 300.0);
        env.set_list_item("power.limit_mw", "cpu", Some(cpu_limit));
        env.set_list_item("power.limit_mw", "gpu0", Some(150.0));
        env
    }

    #[test]
    fn phases_and_scopes_pick_the_contracts_checked() {
        let set = set();
        let deny = MissingValuePolicy::Deny;
        let hot = env(90.0, 50.0);
        // The GPU pre-condition only guards actuations of its target.
        let failure = set
            .check_current(Subject::Actuation("power.limit:gpu0"), &hot, deny)
            .unwrap_err();
        assert_eq!(failure.contract, "gpu_cool");
        assert_eq!(failure.phase, ContractPhase::Pre);
        assert_eq!(failure.outcome, ClauseOutcome::Violated { margin: -5.0 });
        assert_eq!(
            set.check_current(Subject::Actuation("power.limit:cpu"), &hot, deny),
            Ok(Some(100.0))
        );
        // Post-conditions only see the proposed state.
        let proposed = env(70.0, 120.0);
        assert_eq!(
            set.check_current(Subject::Fill(Resource::PowerBudgetMw), &proposed, deny),
            Ok(Some(30.0))
        );
        let failure = set
            .check_proposed(Subject::Fill(Resource::PowerBudgetMw), &proposed, deny)
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "post-condition `cpu_limit`: clause `cpu.limit_mw <= 100` violated by 20 (margin -20)"
        );
        let reports = set.evaluate(Subject::Fill(Resource::PowerBudgetMw), &hot, &proposed);
        let names: Vec<_> = reports
            .iter()
            .map(|(phase, report)| (*phase, report.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (ContractPhase::Invariant, "power_cap"),
                (ContractPhase::Invariant, "power_cap"),
                (ContractPhase::Post, "cpu_limit"),
            ]
        );
    }

    #[test]
    fn invalid_contract_reports_name_position_and_caret() {
        let mut set = set();
        let err = set
            .add(
                ContractPhase::Pre,
                ContractScope::All,
                "typo",
                "gpu0.temp < 85",
                &schema_for_components(["gpu0"]),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "contract `typo`: unknown variable `gpu0.temp` at column 1\n  gpu0.temp < 85\n  ^^^^^^^^^"
        );
        assert_eq!(set.len(), 3);
        let err = set
            .add(
                ContractPhase::Pre,
                ContractScope::All,
                "gpu_cool",
                "1 < 2",
                &Schema::new(),
            )
            .unwrap_err();
        assert_eq!(err, ContractSetError::DuplicateName("gpu_cool".into()));
    }

    #[test]
    fn scopes_parse_from_config_text() {
        assert_eq!("*".parse(), Ok(ContractScope::All));
        assert_eq!(
            "gpu_memory_mb".parse(),
            Ok(ContractScope::Resource(Resource::GpuMemoryMb))
        );
        assert_eq!(
            "cpufreq.max:3".parse(),
            Ok(ContractScope::Target("cpufreq.max:3".into()))
        );
        assert_eq!(
            "bitcoin".parse::<ContractScope>(),
            Err(ContractSetError::InvalidScope("bitcoin".into()))
        );
    }
}
