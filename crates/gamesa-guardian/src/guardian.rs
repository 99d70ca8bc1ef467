//! The guardian facade the runtime's actor owns: effects, contracts, ledger and gate
//! behind a few calls per tick phase, each returning a [`Verdict`] with its reason.
//!
//! A tick goes: [`Guardian::observe`] the frame, [`Guardian::admit`] the intents,
//! [`Guardian::settle`] what the exchange reported (which checks each fill with
//! [`Guardian::check_fill`]), then [`Guardian::check_actuation`] for each actuation
//! request, in canonical order. Drain [`EffectTable::drain_audit`] and
//! [`Ledger::drain_postings`] once per tick.
//!
//! # Invariants
//! - the proposed state starts each tick as the frame (plus planned limits) and only
//!   moves by what was allowed: an allowed power fill raises its buyer's component
//!   limit, an allowed power actuation sets it; a denied one leaves it as it was
//! - a denied fill leaves the ledger as if the fill's quantity had been cancelled: the
//!   buyer's escrow for it is refunded, nothing is paid

use std::collections::BTreeMap;

use gamesa_proto::{
    Actuation, AgentId, Effect, EffectAction, Fill, Resource, TelemetryFrame, Tick,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod admit;
mod settle;

pub use admit::{Admission, StampedIntent};
pub use settle::Settlement;

use crate::{
    ClauseOutcome, ContractPhase, ContractScope, ContractSet, ContractSetError, EffectTable, Gate,
    GateError, GateRule, GateVerdict, Ledger, LedgerConfig, LedgerError, MissingValuePolicy,
    Reason, Schema, Subject, TelemetryEnv, Urgency, Verdict,
};

/// How the guardian is set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianConfig {
    pub ledger: LedgerConfig,
    /// What a contract clause with a missing value does: deny (the default) or skip.
    pub missing_values: MissingValuePolicy,
}

/// Setting up the guardian failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardianError {
    #[error(transparent)]
    Contract(#[from] ContractSetError),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Effects, contracts, the central bank and the action gate.
#[derive(Debug, Clone)]
pub struct Guardian {
    config: GuardianConfig,
    schema: Schema,
    effects: EffectTable,
    contracts: ContractSet,
    ledger: Ledger,
    gate: Gate,
    /// Kept from tick to tick and updated in place (it also keeps the config constants).
    env: TelemetryEnv,
    /// The component whose limit a power-budget buyer's purchases raise.
    power_components: BTreeMap<AgentId, String>,
    /// `order:<resource>` for each resource, built once so a fill check allocates no
    /// effect to look up.
    order_effects: [Effect; 7],
}

impl Guardian {
    /// A guardian whose contracts may use the names of `schema` (see
    /// [`crate::schema_for_components`]).
    pub fn new(config: GuardianConfig, schema: Schema) -> Guardian {
        Guardian {
            config,
            schema,
            effects: EffectTable::new(),
            contracts: ContractSet::new(),
            ledger: Ledger::new(config.ledger),
            gate: Gate::new(),
            env: TelemetryEnv::default(),
            power_components: BTreeMap::new(),
            order_effects: Resource::ALL.map(|resource| Effect {
                action: EffectAction::Order,
                scope: resource.as_str().to_owned(),
            }),
        }
    }

    // ----- set-up (config load) -----

    /// Declares a constant contracts may use (such as `gpu0.r_th`) and sets its value.
    pub fn set_constant(&mut self, name: &str, value: f64) {
        self.schema.add_scalar(name);
        self.env.set_constant(name, value);
    }

    /// Parses and adds a contract against the guardian's schema.
    pub fn add_contract(
        &mut self,
        phase: ContractPhase,
        scope: ContractScope,
        name: &str,
        text: &str,
    ) -> Result<(), GuardianError> {
        Ok(self.contracts.add(phase, scope, name, text, &self.schema)?)
    }

    /// Sets the gate rule of an actuation target such as `power.limit:gpu0`.
    pub fn set_gate_rule(&mut self, target: &str, rule: GateRule) -> Result<(), GuardianError> {
        Ok(self.gate.set_rule(target, rule)?)
    }

    /// Says which component's power limit `agent`'s power-budget purchases raise.
    pub fn bind_power_component(&mut self, agent: AgentId, component: impl Into<String>) {
        self.power_components.insert(agent, component.into());
    }

    /// A config reload: takes `next`'s policy — schema, constants, contracts, gate
    /// rules, effects, power bindings, allowance — and keeps this guardian's history:
    /// the ledger's balances and escrows (new participants get empty accounts), and
    /// the gate's last values and changes.
    /// The telemetry environment is `next`'s (with its constants); the next tick's
    /// frame fills it.
    pub fn adopt_policy(&mut self, next: Guardian) {
        // New participants' accounts; a gone one's stays, as it was.
        for (agent, _) in next.ledger.accounts() {
            self.ledger.open_account(agent);
        }
        self.config = next.config;
        self.ledger.set_config(next.config.ledger);
        self.schema = next.schema;
        self.effects = next.effects;
        self.contracts = next.contracts;
        self.gate.adopt_rules(next.gate);
        self.env = next.env;
        self.power_components = next.power_components;
    }

    pub fn config(&self) -> GuardianConfig {
        self.config
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn effects(&self) -> &EffectTable {
        &self.effects
    }

    pub fn effects_mut(&mut self) -> &mut EffectTable {
        &mut self.effects
    }

    pub fn contracts(&self) -> &ContractSet {
        &self.contracts
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, for minting epochs, refunding cancels and expiries, and draining.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn gate_mut(&mut self) -> &mut Gate {
        &mut self.gate
    }

    /// The current and proposed state contracts see.
    pub fn env(&self) -> &TelemetryEnv {
        &self.env
    }

    // ----- per tick -----

    /// Starts a tick: the current state becomes `frame`, and the proposed state `frame`
    /// with `planned_limits_mw` (component id → mW) applied. A component limit the gate
    /// has no value for yet becomes its baseline.
    pub fn observe(&mut self, frame: &TelemetryFrame, planned_limits_mw: &BTreeMap<String, u64>) {
        self.env.update(frame, planned_limits_mw);
        for component in &frame.components {
            if let Some(limit_mw) = component.limit_mw {
                let device = Actuation::PowerLimit {
                    component: component.id.clone(),
                    limit_mw,
                };
                if !self.gate.knows(&device.target()) {
                    self.gate.observe(&device);
                }
            }
        }
    }

    /// `order:<resource>`. `order_effects` is built from `Resource::ALL`, so it is
    /// indexed by `Resource::index`.
    fn order_effect(order_effects: &[Effect; 7], resource: Resource) -> &Effect {
        &order_effects[resource.index()]
    }

    /// Checks a fill: both parties need `order:<resource>`; pre-conditions and
    /// invariants hold on the current state; post-conditions and invariants hold on the
    /// proposed state with the fill applied (a power-budget fill raises the buyer's bound
    /// component limit by its quantity in mW); then the ledger settles it. A denied fill
    /// refunds the buyer's escrow for its quantity.
    pub fn check_fill(&mut self, tick: Tick, fill: &Fill) -> Verdict {
        match self.try_fill(tick, fill) {
            Ok(reason) => Verdict::Allow { reason },
            Err(reason) => {
                if !matches!(reason, Reason::Ledger { .. }) {
                    // The exchange consumed this quantity from the bid; give it back. An
                    // error here means there was no such escrow, so nothing to return.
                    let _ = self.ledger.refund(fill.buy_order, fill.quantity);
                }
                Verdict::Deny { reason }
            }
        }
    }

    fn try_fill(&mut self, tick: Tick, fill: &Fill) -> Result<Reason, Reason> {
        let effect = Guardian::order_effect(&self.order_effects, fill.resource);
        require(&mut self.effects, tick, fill.buyer, effect)?;
        require(&mut self.effects, tick, fill.seller, effect)?;
        let subject = Subject::Fill(fill.resource);
        let missing = self.config.missing_values;
        let before = self
            .contracts
            .check_current(subject, self.env.current(), missing)
            .map_err(|failure| Reason::Contract { failure })?;

        let raised = match fill.resource {
            Resource::PowerBudgetMw => self.raise_power(fill.buyer, fill.quantity.0 as f64),
            _ => None,
        };
        let after = self
            .contracts
            .check_proposed(subject, self.env.proposed(), missing)
            .map_err(|failure| Reason::Contract { failure });
        let settled = after.and_then(|after| {
            self.ledger
                .settle_fill(fill)
                .map(|settlement| (after, settlement))
                .map_err(|error| Reason::Ledger { error })
        });
        match settled {
            Ok((after, settlement)) => Ok(Reason::Settled {
                paid: settlement.paid,
                refunded: settlement.refunded,
                tightest_margin: tightest(before, after),
            }),
            Err(reason) => {
                if let Some((component, previous)) = raised {
                    self.env.set_proposed_limit(&component, previous);
                }
                Err(reason)
            }
        }
    }

    /// Adds `delta_mw` to the proposed limit of `agent`'s bound component. Returns the
    /// component and its previous proposed limit, to undo it.
    fn raise_power(&mut self, agent: AgentId, delta_mw: f64) -> Option<(String, Option<f64>)> {
        let component = self.power_components.get(&agent)?;
        let previous = self.env.proposed_limit_mw(component);
        let raised = previous.map(|limit| limit + delta_mw);
        self.env.set_proposed_limit(component, raised);
        Some((component.clone(), previous))
    }

    /// A power lease of `agent` ended or was revoked within the tick: lowers its bound
    /// component's proposed limit by `quantity_mw` (not below zero).
    pub fn release_power(&mut self, agent: AgentId, quantity_mw: u64) {
        let Some(component) = self.power_components.get(&agent) else {
            return;
        };
        if let Some(limit) = self.env.proposed_limit_mw(component) {
            let lowered = (limit - quantity_mw as f64).max(0.0);
            self.env.set_proposed_limit(component, Some(lowered));
        }
    }

    /// Whether the proposed state (with `component`'s new limit already in it) breaks no
    /// post-condition or invariant that held without the change, and leaves every clause
    /// it breaks no worse than it was. Such a change moves the machine toward compliance
    /// (say, lowering a limit while the node is over its cap) and is allowed, so a state
    /// that starts out of contract can be brought back into it.
    fn moves_toward_compliance(
        &mut self,
        subject: Subject<'_>,
        component: &str,
        previous: Option<f64>,
    ) -> bool {
        let with_change = self
            .contracts
            .evaluate(subject, self.env.current(), self.env.proposed());
        let changed = self.env.proposed_limit_mw(component);
        self.env.set_proposed_limit(component, previous);
        let without_change =
            self.contracts
                .evaluate(subject, self.env.current(), self.env.proposed());
        self.env.set_proposed_limit(component, changed);
        with_change
            .iter()
            .zip(&without_change)
            .filter(|((phase, _), _)| *phase != ContractPhase::Pre)
            .flat_map(|((_, with), (_, without))| with.clauses.iter().zip(&without.clauses))
            .all(|(with, without)| match (&with.outcome, &without.outcome) {
                (ClauseOutcome::Holds { .. }, _) => true,
                (
                    ClauseOutcome::Violated { margin: after },
                    ClauseOutcome::Violated { margin: before },
                ) => after >= before,
                _ => false,
            })
    }

    /// An allowed actuation could not be applied. The gate and the proposed state go
    /// back to what the device still has (`device_now`, when the caller knows it), so
    /// later checks are not made against a value that never took effect.
    pub fn actuation_failed(&mut self, device_now: Option<&Actuation>) {
        let Some(device_now) = device_now else {
            return;
        };
        self.gate.observe(device_now);
        if let Actuation::PowerLimit {
            component,
            limit_mw,
        } = device_now
        {
            self.env
                .set_proposed_limit(component, Some(*limit_mw as f64));
        }
    }

    /// Checks an actuation request from `agent`: it must be well-formed; `agent` needs
    /// [`Actuation::required_effect`]; pre-conditions and invariants covering its target
    /// hold now; the gate allows or clamps it; post-conditions and invariants hold with
    /// the (clamped) value applied. An allowed or clamped actuation is recorded by the
    /// gate and, for a power limit, becomes the proposed limit.
    pub fn check_actuation(
        &mut self,
        tick: Tick,
        agent: AgentId,
        actuation: &Actuation,
    ) -> Verdict {
        if let Err(error) = actuation.validate() {
            return Verdict::Deny {
                reason: Reason::Invalid {
                    detail: error.to_string(),
                },
            };
        }
        let effect = actuation.required_effect();
        if let Err(reason) = require(&mut self.effects, tick, agent, &effect) {
            return Verdict::Deny { reason };
        }
        self.decide_actuation(tick, actuation, Urgency::Normal)
    }

    /// The guardian's own safety action (a safety signal bypassing the market): no
    /// effect or contract check, and the gate only enforces device bounds. Recorded like
    /// any applied actuation.
    pub fn check_safety_actuation(&mut self, tick: Tick, actuation: &Actuation) -> Verdict {
        if let Err(error) = actuation.validate() {
            return Verdict::Deny {
                reason: Reason::Invalid {
                    detail: error.to_string(),
                },
            };
        }
        self.decide_actuation(tick, actuation, Urgency::Safety)
    }

    fn decide_actuation(&mut self, tick: Tick, actuation: &Actuation, urgency: Urgency) -> Verdict {
        let target = actuation.target();
        let subject = Subject::Actuation(&target);
        let missing = self.config.missing_values;
        let checks_contracts = urgency == Urgency::Normal;
        let before = if checks_contracts {
            match self
                .contracts
                .check_current(subject, self.env.current(), missing)
            {
                Ok(margin) => margin,
                Err(failure) => {
                    return Verdict::Deny {
                        reason: Reason::Contract { failure },
                    };
                }
            }
        } else {
            None
        };
        let (applied, clamp_reason) = match self.gate.evaluate(tick, &target, actuation, urgency) {
            GateVerdict::Deny { reason } => {
                return Verdict::Deny {
                    reason: Reason::Gate { reason },
                };
            }
            GateVerdict::Allow { .. } => (actuation.clone(), None),
            GateVerdict::Clamp { to, reason } => (to, Some(reason)),
        };
        let mut undo = None;
        if let Actuation::PowerLimit {
            component,
            limit_mw,
        } = &applied
        {
            let previous = self.env.proposed_limit_mw(component);
            if self
                .env
                .set_proposed_limit(component, Some(*limit_mw as f64))
            {
                undo = Some((component.clone(), previous));
            }
        }
        let after = if checks_contracts {
            self.contracts
                .check_proposed(subject, self.env.proposed(), missing)
        } else {
            Ok(None)
        };
        match after {
            Err(failure)
                if undo.as_ref().is_some_and(|(component, previous)| {
                    self.moves_toward_compliance(subject, component, *previous)
                }) =>
            {
                self.gate.record(tick, &target, &applied);
                let reason = Reason::Improves { failure };
                match clamp_reason {
                    Some(_) => Verdict::Clamp {
                        to: applied,
                        reason,
                    },
                    None => Verdict::Allow { reason },
                }
            }
            Err(failure) => {
                if let Some((component, previous)) = undo {
                    self.env.set_proposed_limit(&component, previous);
                }
                Verdict::Deny {
                    reason: Reason::Contract { failure },
                }
            }
            Ok(after) => {
                self.gate.record(tick, &target, &applied);
                match clamp_reason {
                    Some(reason) => Verdict::Clamp {
                        to: applied,
                        reason: Reason::Gate { reason },
                    },
                    None => Verdict::Allow {
                        reason: Reason::Passed {
                            tightest_margin: tightest(before, after),
                        },
                    },
                }
            }
        }
    }
}

/// Checks (and audits) one effect; the denial reason names it.
fn require(
    effects: &mut EffectTable,
    tick: Tick,
    principal: AgentId,
    effect: &Effect,
) -> Result<(), Reason> {
    if effects.check(tick, principal, effect) {
        Ok(())
    } else {
        Err(Reason::EffectDenied {
            principal,
            effect: effect.clone(),
        })
    }
}

fn tightest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{
        ComponentKind, ComponentTelemetry, Credits, NodeTelemetry, OrderId, OrderRequest, Price,
        Quantity, Side,
    };

    use super::*;
    use crate::{
        ClauseOutcome, ContractFailure, GateReason, RateLimit, ledger::LedgerError,
        schema_for_components,
    };

    const GPU_AGENT: AgentId = AgentId(1);
    const POWER_AGENT: AgentId = AgentId(9);
    const STRANGER: AgentId = AgentId(42);

    fn frame(gpu_temp_mc: i32) -> TelemetryFrame {
        let component = |id: &str, kind, temp_mc, limit_mw| ComponentTelemetry {
            id: id.into(),
            kind,
            utilization_permille: 900,
            power_mw: Some(limit_mw - 10_000),
            temp_mc: Some(temp_mc),
            t_max_mc: Some(95_000),
            limit_mw: Some(limit_mw),
            limit_min_mw: Some(50_000),
            limit_max_mw: Some(300_000),
            progress_micro: None,
            work_left_micro: None,
        };
        TelemetryFrame {
            tick: Tick(1),
            components: vec![
                component("cpu", ComponentKind::Cpu, 60_000, 100_000),
                component("gpu0", ComponentKind::Gpu, gpu_temp_mc, 200_000),
            ],
            node: NodeTelemetry {
                draw_mw: Some(280_000),
                cap_mw: Some(350_000),
            },
            ..TelemetryFrame::default()
        }
    }

    fn effect(text: &str) -> Effect {
        text.parse().unwrap()
    }

    fn guardian(gpu_temp_mc: i32) -> Guardian {
        guardian_with(GuardianConfig::default(), gpu_temp_mc)
    }

    fn guardian_with(config: GuardianConfig, gpu_temp_mc: i32) -> Guardian {
        let mut guardian = Guardian::new(config, schema_for_components(["cpu", "gpu0"]));
        guardian.set_constant("gpu0.r_th", 0.25);
        guardian
            .add_contract(
                ContractPhase::Invariant,
                ContractScope::All,
                "power_cap",
                "sum(power.limit_mw) <= node.cap_mw",
            )
            .unwrap();
        guardian
            .add_contract(
                ContractPhase::Pre,
                "power.limit:gpu0".parse().unwrap(),
                "gpu_cool",
                "gpu0.temp_c < 85",
            )
            .unwrap();
        guardian
            .add_contract(
                ContractPhase::Post,
                "power.limit:gpu0".parse().unwrap(),
                "gpu_headroom",
                "gpu0.temp_c + gpu0.r_th * gpu0.delta_power_w < gpu0.t_max_c - 5",
            )
            .unwrap();
        guardian
            .set_gate_rule(
                "power.limit:gpu0",
                GateRule {
                    min: Some(50_000),
                    max: Some(300_000),
                    max_step: None,
                    deadband: 1_000,
                    rate: Some(RateLimit {
                        max_changes: 1,
                        window_ticks: 10,
                    }),
                },
            )
            .unwrap();
        guardian.bind_power_component(GPU_AGENT, "gpu0");
        guardian.effects_mut().grant_all(
            GPU_AGENT,
            [
                effect("order:power_budget_mw"),
                effect("power.set_limit:gpu0"),
            ],
        );
        guardian.effects_mut().grant(POWER_AGENT, effect("order:*"));
        guardian
            .ledger_mut()
            .mint_epoch(1, &[(GPU_AGENT, 1)])
            .unwrap();
        guardian.observe(&frame(gpu_temp_mc), &BTreeMap::new());
        guardian
    }

    #[test]
    fn a_change_toward_a_violated_post_condition_is_allowed_and_one_away_is_not() {
        let mut guardian = Guardian::new(
            GuardianConfig::default(),
            schema_for_components(["cpu", "gpu0"]),
        );
        guardian
            .add_contract(
                ContractPhase::Post,
                ContractScope::All,
                "node_cap",
                "sum(power.limit_mw) <= node.cap_mw",
            )
            .unwrap();
        let rule = GateRule {
            min: Some(50_000),
            max: Some(300_000),
            ..GateRule::default()
        };
        guardian.set_gate_rule("power.limit:gpu0", rule).unwrap();
        guardian
            .effects_mut()
            .grant(GPU_AGENT, effect("power.set_limit:gpu0"));
        // Limits sum to 300 W against a 250 W cap: out of contract from the start.
        let mut over_cap = frame(60_000);
        over_cap.node.cap_mw = Some(250_000);
        guardian.observe(&over_cap, &BTreeMap::new());

        let lower = Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw: 180_000,
        };
        let verdict = guardian.check_actuation(Tick(1), GPU_AGENT, &lower);
        let Verdict::Allow {
            reason: Reason::Improves { failure },
        } = &verdict
        else {
            panic!("lowering toward the cap was not allowed: {verdict}");
        };
        assert_eq!(failure.contract, "node_cap");
        assert!(
            verdict.to_string().contains("toward compliance"),
            "{verdict}"
        );

        let raise = Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw: 200_000,
        };
        let verdict = guardian.check_actuation(Tick(2), GPU_AGENT, &raise);
        assert!(
            matches!(
                verdict,
                Verdict::Deny {
                    reason: Reason::Contract { .. }
                }
            ),
            "{verdict}"
        );
    }

    fn bid(guardian: &mut Guardian, order: u64, price: u64, quantity: u64) {
        let request = OrderRequest::limit(
            GPU_AGENT,
            Resource::PowerBudgetMw,
            Side::Bid,
            Price(price),
            Quantity(quantity),
            None,
        );
        guardian
            .ledger_mut()
            .escrow(
                OrderId(order),
                request.owner,
                request.price,
                request.quantity,
            )
            .unwrap();
    }

    fn power_fill(order: u64, price: u64, quantity: u64) -> Fill {
        Fill {
            tick: Tick(1),
            resource: Resource::PowerBudgetMw,
            buyer: GPU_AGENT,
            seller: POWER_AGENT,
            buy_order: OrderId(order),
            sell_order: OrderId(100 + order),
            price: Price(price),
            quantity: Quantity(quantity),
            aggressor: Side::Bid,
        }
    }

    fn set_limit(limit_mw: u64) -> Actuation {
        Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw,
        }
    }

    fn available(guardian: &Guardian, agent: AgentId) -> u64 {
        guardian
            .ledger()
            .account(agent)
            .unwrap_or_default()
            .available
            .0
    }

    #[test]
    fn an_allowed_fill_settles_and_raises_the_proposed_limit() {
        let mut guardian = guardian(70_000);
        bid(&mut guardian, 1, 5, 30_000);
        let verdict = guardian.check_fill(Tick(1), &power_fill(1, 4, 30_000));
        assert_eq!(
            verdict,
            Verdict::Allow {
                reason: Reason::Settled {
                    paid: Credits(120_000),
                    refunded: Credits(30_000),
                    tightest_margin: Some(20_000.0),
                }
            }
        );
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(230_000.0));
        assert_eq!(available(&guardian, POWER_AGENT), 120_000);
        assert_eq!(available(&guardian, GPU_AGENT), 1_000_000 - 120_000);
        let audit: Vec<_> = guardian.effects_mut().drain_audit().collect();
        assert_eq!(audit.len(), 2, "the buyer and the seller of the fill");
        assert!(audit.iter().all(|record| record.allowed));
        assert!(guardian.ledger().is_conserved());
    }

    #[test]
    fn a_fill_over_the_cap_is_denied_naming_the_clause_and_margin() {
        let mut guardian = guardian(70_000);
        bid(&mut guardian, 1, 5, 30_000);
        bid(&mut guardian, 2, 5, 30_000);
        assert!(
            guardian
                .check_fill(Tick(1), &power_fill(1, 5, 30_000))
                .is_allowed()
        );
        let verdict = guardian.check_fill(Tick(1), &power_fill(2, 5, 30_000));
        assert_eq!(
            verdict,
            Verdict::Deny {
                reason: Reason::Contract {
                    failure: ContractFailure {
                        contract: "power_cap".into(),
                        phase: ContractPhase::Invariant,
                        clause: "sum(power.limit_mw) <= node.cap_mw".into(),
                        outcome: ClauseOutcome::Violated { margin: -10_000.0 },
                    }
                }
            }
        );
        assert_eq!(
            verdict.to_string(),
            "deny: invariant `power_cap`: clause `sum(power.limit_mw) <= node.cap_mw` \
             violated by 10000 (margin -10000)"
        );
        // The denied fill changed neither the proposed state nor what the buyer holds.
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(230_000.0));
        assert!(guardian.ledger().escrow_for(OrderId(2)).is_none());
        assert_eq!(available(&guardian, GPU_AGENT), 1_000_000 - 150_000);
        assert!(guardian.ledger().is_conserved());
    }

    #[test]
    fn a_fill_with_an_unauthorised_party_is_denied_and_refunded() {
        let mut guardian = guardian(70_000);
        bid(&mut guardian, 1, 5, 1_000);
        let fill = Fill {
            seller: STRANGER,
            ..power_fill(1, 5, 1_000)
        };
        assert_eq!(
            guardian.check_fill(Tick(2), &fill),
            Verdict::Deny {
                reason: Reason::EffectDenied {
                    principal: STRANGER,
                    effect: effect("order:power_budget_mw"),
                }
            }
        );
        assert_eq!(available(&guardian, GPU_AGENT), 1_000_000);
        let last = guardian.effects().audit().last().unwrap().clone();
        assert_eq!((last.principal, last.allowed), (STRANGER, false));
    }

    #[test]
    fn admission_needs_the_effect_and_bids_the_balance() {
        use gamesa_proto::{Intent, OrderIntent, TimeInForce};

        let mut guardian = guardian(70_000);
        let place = |agent, sequence, resource, side, quantity| StampedIntent {
            agent,
            sequence,
            intent: Intent::Place(OrderIntent {
                resource,
                side,
                price: Price(10),
                quantity: Quantity(quantity),
                time_in_force: TimeInForce::Limit { expires_at: None },
            }),
        };
        let admission = guardian.admit(
            Tick(1),
            vec![
                place(GPU_AGENT, 0, Resource::CpuCores, Side::Bid, 1),
                place(GPU_AGENT, 1, Resource::PowerBudgetMw, Side::Bid, 60_000),
                // Together with the bid before it, more than the balance.
                place(GPU_AGENT, 2, Resource::PowerBudgetMw, Side::Bid, 60_000),
                // An ask escrows nothing.
                place(POWER_AGENT, 0, Resource::PowerBudgetMw, Side::Ask, 200_000),
            ],
        );
        let denied: Vec<(u64, Reason)> = admission
            .denied
            .iter()
            .map(|(stamped, reason)| (stamped.sequence, reason.clone()))
            .collect();
        assert_eq!(
            denied,
            vec![
                (
                    0,
                    Reason::EffectDenied {
                        principal: GPU_AGENT,
                        effect: effect("order:cpu_cores"),
                    }
                ),
                (
                    2,
                    Reason::Ledger {
                        error: LedgerError::InsufficientBalance {
                            agent: GPU_AGENT,
                            needed: Credits(1_200_000),
                            available: Credits(1_000_000),
                        }
                    }
                ),
            ]
        );
        let placed: Vec<(AgentId, u64)> = admission
            .submissions
            .iter()
            .map(|submission| match submission.command {
                gamesa_market::Command::Place(request) => (request.owner, submission.sequence),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(placed, vec![(GPU_AGENT, 1), (POWER_AGENT, 0)]);
        // Admission escrows nothing: the exchange has not numbered the orders yet.
        assert_eq!(available(&guardian, GPU_AGENT), 1_000_000);
    }

    #[test]
    fn released_power_lowers_the_proposed_limit() {
        let mut guardian = guardian(70_000);
        bid(&mut guardian, 1, 5, 30_000);
        assert!(
            guardian
                .check_fill(Tick(1), &power_fill(1, 5, 30_000))
                .is_allowed()
        );
        guardian.release_power(GPU_AGENT, 30_000);
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(200_000.0));
        assert_eq!(
            guardian.env().proposed().scalar("gpu0.delta_power_w"),
            Some(0.0)
        );
    }

    #[test]
    fn a_fill_without_escrow_is_denied_by_the_ledger() {
        let mut guardian = guardian(70_000);
        assert_eq!(
            guardian.check_fill(Tick(1), &power_fill(5, 5, 10)),
            Verdict::Deny {
                reason: Reason::Ledger {
                    error: LedgerError::UnknownEscrow { order: OrderId(5) }
                }
            }
        );
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(200_000.0));
    }

    #[test]
    fn an_actuation_within_everything_is_allowed_then_rate_limited() {
        let mut guardian = guardian(70_000);
        let verdict = guardian.check_actuation(Tick(1), GPU_AGENT, &set_limit(220_000));
        // Margins: power_cap 30000 mW, gpu_headroom 95 - 5 - (70 + 0.25 * 20) = 15 °C.
        assert_eq!(
            verdict,
            Verdict::Allow {
                reason: Reason::Passed {
                    tightest_margin: Some(15.0)
                }
            }
        );
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(220_000.0));
        assert_eq!(
            guardian.check_actuation(Tick(2), GPU_AGENT, &set_limit(210_000)),
            Verdict::Deny {
                reason: Reason::Gate {
                    reason: GateReason::RateLimited {
                        changes: 1,
                        window_ticks: 10
                    }
                }
            }
        );
    }

    #[test]
    fn an_actuation_beyond_the_device_is_clamped_with_its_reason() {
        let mut guardian = guardian(70_000);
        guardian.set_constant("gpu0.r_th", 0.0);
        let verdict = guardian.check_actuation(Tick(1), GPU_AGENT, &set_limit(20_000));
        assert_eq!(
            verdict,
            Verdict::Clamp {
                to: set_limit(50_000),
                reason: Reason::Gate {
                    reason: GateReason::BelowMinimum {
                        requested: 20_000,
                        min: 50_000
                    }
                }
            }
        );
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(50_000.0));
    }

    #[test]
    fn actuations_are_denied_by_effects_pre_and_post_conditions() {
        let mut guardian = guardian(70_000);
        assert!(matches!(
            guardian.check_actuation(Tick(1), POWER_AGENT, &set_limit(210_000)),
            Verdict::Deny {
                reason: Reason::EffectDenied {
                    principal: POWER_AGENT,
                    ..
                }
            }
        ));
        // With 1 °C per W: 70 + 1 * (240 - 200) = 110 °C is 20 °C over 95 - 5.
        guardian.set_constant("gpu0.r_th", 1.0);
        let verdict = guardian.check_actuation(Tick(1), GPU_AGENT, &set_limit(240_000));
        let Verdict::Deny {
            reason: Reason::Contract { failure },
        } = verdict
        else {
            panic!("{verdict}");
        };
        assert_eq!(failure.contract, "gpu_headroom");
        assert_eq!(failure.outcome, ClauseOutcome::Violated { margin: -20.0 });
        assert_eq!(guardian.env().proposed_limit_mw("gpu0"), Some(200_000.0));
        // A denied actuation did not use the rate budget.
        assert!(
            guardian
                .check_actuation(Tick(1), GPU_AGENT, &set_limit(210_000))
                .is_allowed()
        );

        let mut hot = guardian_hot();
        let verdict = hot.check_actuation(Tick(1), GPU_AGENT, &set_limit(210_000));
        assert!(matches!(
            verdict,
            Verdict::Deny {
                reason: Reason::Contract {
                    failure: ContractFailure {
                        phase: ContractPhase::Pre,
                        ..
                    }
                }
            }
        ));
        assert!(matches!(
            hot.check_actuation(Tick(1), GPU_AGENT, &set_limit(0)),
            Verdict::Deny {
                reason: Reason::Invalid { .. }
            }
        ));
    }

    fn guardian_hot() -> Guardian {
        guardian(88_000)
    }

    #[test]
    fn the_safety_path_skips_effects_contracts_and_rate_but_not_bounds() {
        let mut guardian = guardian_hot();
        assert!(
            guardian
                .check_safety_actuation(Tick(1), &set_limit(100_000))
                .is_allowed()
        );
        assert_eq!(
            guardian.check_safety_actuation(Tick(2), &set_limit(10_000)),
            Verdict::Clamp {
                to: set_limit(50_000),
                reason: Reason::Gate {
                    reason: GateReason::BelowMinimum {
                        requested: 10_000,
                        min: 50_000
                    }
                }
            }
        );
    }

    #[test]
    fn missing_readings_deny_unless_configured_to_skip() {
        let mut frame = frame(70_000);
        frame.node.cap_mw = None;
        let mut guardian = guardian(70_000);
        guardian.observe(&frame, &BTreeMap::new());
        let verdict = guardian.check_actuation(Tick(1), GPU_AGENT, &set_limit(210_000));
        let Verdict::Deny {
            reason: Reason::Contract { failure },
        } = verdict
        else {
            panic!("{verdict}");
        };
        assert_eq!(
            failure.outcome,
            ClauseOutcome::Missing {
                variable: "node.cap_mw".into()
            }
        );

        let skip = GuardianConfig {
            missing_values: MissingValuePolicy::Skip,
            ..GuardianConfig::default()
        };
        let mut guardian = guardian_with(skip, 70_000);
        guardian.observe(&frame, &BTreeMap::new());
        assert!(
            guardian
                .check_actuation(Tick(1), GPU_AGENT, &set_limit(210_000))
                .is_allowed()
        );
    }

    #[test]
    fn verdicts_serialize_with_their_reasons() {
        let verdict = Verdict::Deny {
            reason: Reason::Ledger {
                error: LedgerError::UnknownEscrow { order: OrderId(5) },
            },
        };
        let json = serde_json::to_string(&verdict).unwrap();
        assert_eq!(
            json,
            r#"{"decision":"deny","reason":{"kind":"ledger","error":{"error":"unknown_escrow","order":5}}}"#
        );
        let back: Verdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back, verdict);
        let clamp = Verdict::Clamp {
            to: set_limit(50_000),
            reason: Reason::Gate {
                reason: GateReason::Unchanged,
            },
        };
        let back: Verdict = serde_json::from_str(&serde_json::to_string(&clamp).unwrap()).unwrap();
        assert_eq!(back, clamp);
    }
}
