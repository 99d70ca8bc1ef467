//! Effects as capabilities: which principal (agent or client) is granted which effect,
//! with default deny and an audit record for every check.
//!
//! # Invariants
//! - a principal holds an effect only if it was granted exactly, or its action was
//!   granted with the wildcard scope `*`; anything else is denied
//! - every call to [`EffectTable::check`] appends exactly one [`AuditRecord`], allowed
//!   or denied, in call order, until [`EffectTable::drain_audit`] takes them

use std::collections::{BTreeMap, BTreeSet};

use gamesa_proto::{AgentId, Effect, EffectAction, Tick};
use serde::{Deserialize, Serialize};

/// One audited capability check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tick: Tick,
    pub principal: AgentId,
    pub effect: Effect,
    pub allowed: bool,
}

/// What one principal was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grants {
    /// Bit `action as u16` is set when the action was granted with scope `*`; checked
    /// first, so wildcard grants cost no lookup.
    wildcard_actions: u16,
    scoped: BTreeSet<Effect>,
}

fn action_bit(action: EffectAction) -> u16 {
    // `EffectAction` has 9 field-less variants, so the shift stays below 16.
    1u16 << (action as u16)
}

impl Grants {
    fn allows(&self, effect: &Effect) -> bool {
        self.wildcard_actions & action_bit(effect.action) != 0 || self.scoped.contains(effect)
    }
}

/// The capability table: default deny, wildcard scopes, and an audit trail.
#[derive(Debug, Clone, Default)]
pub struct EffectTable {
    grants: BTreeMap<AgentId, Grants>,
    audit: Vec<AuditRecord>,
}

impl EffectTable {
    pub fn new() -> EffectTable {
        EffectTable::default()
    }

    /// Grants `effect` to `principal`. Scope `*` grants every scope of the action.
    pub fn grant(&mut self, principal: AgentId, effect: Effect) {
        let grants = self.grants.entry(principal).or_default();
        if effect.scope == Effect::WILDCARD {
            grants.wildcard_actions |= action_bit(effect.action);
        } else {
            grants.scoped.insert(effect);
        }
    }

    /// Grants every effect of `effects` to `principal`.
    pub fn grant_all(&mut self, principal: AgentId, effects: impl IntoIterator<Item = Effect>) {
        for effect in effects {
            self.grant(principal, effect);
        }
    }

    /// Takes back one grant, exactly as it was given (revoking `order:*` does not touch
    /// `order:cpu_cores`). Returns whether it was held.
    pub fn revoke(&mut self, principal: AgentId, effect: &Effect) -> bool {
        let Some(grants) = self.grants.get_mut(&principal) else {
            return false;
        };
        if effect.scope == Effect::WILDCARD {
            let bit = action_bit(effect.action);
            let held = grants.wildcard_actions & bit != 0;
            grants.wildcard_actions &= !bit;
            held
        } else {
            grants.scoped.remove(effect)
        }
    }

    /// Takes back everything `principal` holds (for example when it is isolated).
    pub fn revoke_all(&mut self, principal: AgentId) {
        self.grants.remove(&principal);
    }

    /// Checks whether `principal` may perform `effect`, and audits the check. Default
    /// deny: an unknown principal, or one lacking the grant, is refused.
    pub fn check(&mut self, tick: Tick, principal: AgentId, effect: &Effect) -> bool {
        let allowed = self
            .grants
            .get(&principal)
            .is_some_and(|grants| grants.allows(effect));
        self.audit.push(AuditRecord {
            tick,
            principal,
            effect: effect.clone(),
            allowed,
        });
        allowed
    }

    /// Everything `principal` was granted, in canonical order (wildcards as `action:*`).
    pub fn effects_of(&self, principal: AgentId) -> Vec<Effect> {
        let Some(grants) = self.grants.get(&principal) else {
            return Vec::new();
        };
        let mut effects: Vec<Effect> = EffectAction::ALL
            .into_iter()
            .filter(|action| grants.wildcard_actions & action_bit(*action) != 0)
            .map(|action| Effect {
                action,
                scope: Effect::WILDCARD.to_owned(),
            })
            .chain(grants.scoped.iter().cloned())
            .collect();
        effects.sort();
        effects
    }

    /// The audit records not yet drained, oldest first.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// Takes the audit records, oldest first. The runtime drains once per tick; the
    /// trail keeps its capacity, so a steady tick does not allocate for it.
    pub fn drain_audit(&mut self) -> std::vec::Drain<'_, AuditRecord> {
        self.audit.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(text: &str) -> Effect {
        text.parse().unwrap()
    }

    #[test]
    fn default_deny_for_unknown_principal_and_missing_grant() {
        let mut table = EffectTable::new();
        assert!(!table.check(Tick(1), AgentId(7), &effect("order:cpu_cores")));
        table.grant(AgentId(1), effect("order:cpu_cores"));
        assert!(table.check(Tick(1), AgentId(1), &effect("order:cpu_cores")));
        assert!(!table.check(Tick(1), AgentId(1), &effect("order:gpu_memory_mb")));
        assert!(!table.check(Tick(1), AgentId(1), &effect("power.set_limit:cpu")));
    }

    #[test]
    fn wildcard_grants_every_scope_of_its_action_only() {
        let mut table = EffectTable::new();
        table.grant(AgentId(2), effect("power.set_limit:*"));
        assert!(table.check(Tick(0), AgentId(2), &effect("power.set_limit:gpu0")));
        assert!(table.check(Tick(0), AgentId(2), &effect("power.set_limit:cpu")));
        assert!(table.check(Tick(0), AgentId(2), &effect("power.set_limit:*")));
        assert!(!table.check(Tick(0), AgentId(2), &effect("order:power_budget_mw")));
    }

    #[test]
    fn a_scoped_grant_does_not_cover_the_wildcard() {
        let mut table = EffectTable::new();
        table.grant(AgentId(2), effect("query:health"));
        assert!(!table.check(Tick(0), AgentId(2), &effect("query:*")));
    }

    #[test]
    fn every_check_is_audited_in_order_and_drained() {
        let mut table = EffectTable::new();
        table.grant(AgentId(1), effect("signal:performance"));
        table.check(Tick(4), AgentId(1), &effect("signal:performance"));
        table.check(Tick(5), AgentId(1), &effect("signal:safety"));
        let trail: Vec<AuditRecord> = table.drain_audit().collect();
        assert_eq!(
            trail,
            vec![
                AuditRecord {
                    tick: Tick(4),
                    principal: AgentId(1),
                    effect: effect("signal:performance"),
                    allowed: true,
                },
                AuditRecord {
                    tick: Tick(5),
                    principal: AgentId(1),
                    effect: effect("signal:safety"),
                    allowed: false,
                },
            ]
        );
        assert!(table.audit().is_empty());
    }

    #[test]
    fn revoke_takes_back_exact_grants() {
        let mut table = EffectTable::new();
        table.grant_all(
            AgentId(3),
            [effect("order:*"), effect("power.set_limit:gpu0")],
        );
        assert_eq!(
            table.effects_of(AgentId(3)),
            vec![effect("power.set_limit:gpu0"), effect("order:*")]
        );
        assert!(table.revoke(AgentId(3), &effect("order:*")));
        assert!(!table.revoke(AgentId(3), &effect("order:*")));
        assert!(!table.check(Tick(0), AgentId(3), &effect("order:cpu_cores")));
        assert!(table.check(Tick(0), AgentId(3), &effect("power.set_limit:gpu0")));
        table.revoke_all(AgentId(3));
        assert!(!table.check(Tick(0), AgentId(3), &effect("power.set_limit:gpu0")));
        assert!(table.effects_of(AgentId(3)).is_empty());
    }
}
