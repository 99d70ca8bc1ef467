//! The guardian actor: owns the guardian core (effects, contracts, ledger, gate) and
//! the supervisor. It is the central bank, and it decides every fill, actuation,
//! restart and isolation.

use std::{collections::BTreeMap, sync::Arc};

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_agent::Intent;
use gamesa_guardian::{Guardian, LedgerError, MintReport, Reason, Verdict};
use gamesa_market::{MarketEvent, Submission};
use gamesa_proto::{
    Actuation, AgentId, Credits, Effect, EffectAction, Fill, LeaseId, OrderId, OrderRequest,
    Quantity, Resource, Side, Signal, TelemetryFrame, Tick,
};

use crate::{
    safety::safe_limits_for,
    supervision::{SupervisionDecision, Supervisor},
};

#[derive(Debug)]
pub struct GuardianActor {
    guardian: Guardian,
    supervisor: Supervisor,
    /// Every agent's weight, for minting; isolated agents are left out.
    weights: BTreeMap<AgentId, u64>,
    safe_limits_mw: BTreeMap<String, u64>,
    /// Which agents' power leases raise which component's limit.
    power_holders: BTreeMap<String, Vec<AgentId>>,
    /// Allowed actuations the device refused, since start.
    actuation_failures: u64,
}

impl GuardianActor {
    pub fn new(
        guardian: Guardian,
        supervisor: Supervisor,
        weights: BTreeMap<AgentId, u64>,
        safe_limits_mw: BTreeMap<String, u64>,
        power_holders: BTreeMap<String, Vec<AgentId>>,
    ) -> GuardianActor {
        GuardianActor {
            guardian,
            supervisor,
            weights,
            safe_limits_mw,
            power_holders,
            actuation_failures: 0,
        }
    }
}

impl Actor for GuardianActor {
    type Context = Context<Self>;
}

/// Start a tick: take in the frame, mint the epoch's allowance when one begins, and
/// report every agent's spendable balance.
#[derive(Debug, Message)]
#[rtype(result = "TickOpening")]
pub struct OpenTick {
    pub tick: Tick,
    pub frame: Arc<TelemetryFrame>,
    /// The limits applied so far (dry-run or real), component → mW.
    pub planned_limits_mw: BTreeMap<String, u64>,
    /// `Some(epoch)` when this tick starts a new epoch.
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct TickOpening {
    pub balances: BTreeMap<AgentId, Credits>,
    pub mint: Option<Result<MintReport, LedgerError>>,
}

impl Handler<OpenTick> for GuardianActor {
    type Result = MessageResult<OpenTick>;

    fn handle(&mut self, message: OpenTick, _: &mut Context<Self>) -> Self::Result {
        // The audit trail and the journal grow until drained: keep them to one tick.
        self.guardian.effects_mut().drain_audit();
        self.guardian.ledger_mut().drain_postings();
        self.guardian
            .observe(&message.frame, &message.planned_limits_mw);
        let mint = message.epoch.map(|epoch| {
            let weights: Vec<(AgentId, u64)> = self
                .weights
                .iter()
                .filter(|(agent, _)| !self.supervisor.is_isolated(**agent))
                .map(|(agent, weight)| (*agent, *weight))
                .collect();
            self.guardian.ledger_mut().mint_epoch(epoch, &weights)
        });
        let balances = self
            .guardian
            .ledger()
            .accounts()
            .map(|(agent, account)| (agent, account.available))
            .collect();
        MessageResult(TickOpening { balances, mint })
    }
}

/// One intent, stamped with who sent it and its place among that agent's intents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampedIntent {
    pub agent: AgentId,
    pub sequence: u64,
    pub intent: Intent,
}

/// Admit the tick's intents: effects for every one, affordability for bids.
#[derive(Debug, Message)]
#[rtype(result = "Admission")]
pub struct Admit {
    pub tick: Tick,
    /// In canonical order (agent, sequence).
    pub intents: Vec<StampedIntent>,
}

/// What passed admission, sorted by phase, and what did not, with why.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    pub submissions: Vec<Submission>,
    pub capacities: Vec<(AgentId, Resource, Quantity)>,
    pub signals: Vec<Signal>,
    pub actuations: Vec<(AgentId, Actuation)>,
    pub denied: Vec<(StampedIntent, Reason)>,
}

impl Handler<Admit> for GuardianActor {
    type Result = MessageResult<Admit>;

    fn handle(&mut self, message: Admit, _: &mut Context<Self>) -> Self::Result {
        let tick = message.tick;
        let mut admission = Admission::default();
        // What each agent's bids of this tick will escrow, so that together they never
        // exceed its balance; the escrow itself is taken when the exchange accepts.
        let mut committed: BTreeMap<AgentId, u64> = BTreeMap::new();
        for stamped in message.intents {
            let agent = stamped.agent;
            let verdict = match &stamped.intent {
                Intent::Place(order) => {
                    let request = OrderRequest {
                        owner: agent,
                        resource: order.resource,
                        side: order.side,
                        price: order.price,
                        quantity: order.quantity,
                        time_in_force: order.time_in_force,
                    };
                    self.effect(tick, agent, EffectAction::Order, order.resource.as_str())
                        .and_then(|()| self.affordable(agent, &request, &mut committed))
                        .map(|()| {
                            admission
                                .submissions
                                .push(Submission::place(stamped.sequence, request))
                        })
                }
                Intent::Cancel(order) => {
                    admission
                        .submissions
                        .push(Submission::cancel(stamped.sequence, agent, *order));
                    Ok(())
                }
                Intent::SetCapacity { resource, quantity } => self
                    .effect(tick, agent, EffectAction::Order, resource.as_str())
                    .map(|()| admission.capacities.push((agent, *resource, *quantity))),
                Intent::Raise(raised) => self
                    .effect(tick, agent, EffectAction::Signal, raised.domain.as_str())
                    .map(|()| {
                        admission.signals.push(Signal {
                            kind: raised.kind.clone(),
                            domain: raised.domain,
                            strength: raised.strength,
                            source: agent,
                            ttl_ticks: raised.ttl_ticks,
                            correlation: None,
                        })
                    }),
                // Checked in full (effects, contracts, gate) in the guard phase.
                Intent::Actuate(actuation) => {
                    admission.actuations.push((agent, actuation.clone()));
                    Ok(())
                }
            };
            if let Err(reason) = verdict {
                admission.denied.push((stamped, reason));
            }
        }
        MessageResult(admission)
    }
}

impl GuardianActor {
    fn effect(
        &mut self,
        tick: Tick,
        agent: AgentId,
        action: EffectAction,
        scope: &str,
    ) -> Result<(), Reason> {
        let effect = Effect {
            action,
            scope: scope.to_owned(),
        };
        if self.guardian.effects_mut().check(tick, agent, &effect) {
            Ok(())
        } else {
            Err(Reason::EffectDenied {
                principal: agent,
                effect,
            })
        }
    }

    fn affordable(
        &self,
        agent: AgentId,
        request: &OrderRequest,
        committed: &mut BTreeMap<AgentId, u64>,
    ) -> Result<(), Reason> {
        if request.side != Side::Bid {
            return Ok(());
        }
        let available = self
            .guardian
            .ledger()
            .account(agent)
            .unwrap_or_default()
            .available;
        let already = committed.entry(agent).or_default();
        let needed = already.saturating_add(request.notional().0);
        if needed > available.0 {
            return Err(Reason::Ledger {
                error: LedgerError::InsufficientBalance {
                    agent,
                    needed: Credits(needed),
                    available,
                },
            });
        }
        *already = needed;
        Ok(())
    }
}

/// Settle what the exchange reported: escrow accepted bids, check and settle fills,
/// refund cancelled bids, and release expired power leases from the proposed state.
#[derive(Debug, Message)]
#[rtype(result = "Settlement")]
pub struct Settle {
    pub tick: Tick,
    pub events: Vec<MarketEvent>,
}

#[derive(Debug, Clone, Default)]
pub struct Settlement {
    pub fills: Vec<(Fill, Verdict)>,
    /// Leases behind denied fills: the exchange must revoke them.
    pub revoke: Vec<LeaseId>,
    /// Accepted bids whose escrow failed: the exchange must cancel them.
    pub cancel: Vec<(AgentId, OrderId)>,
}

impl Handler<Settle> for GuardianActor {
    type Result = MessageResult<Settle>;

    fn handle(&mut self, message: Settle, _: &mut Context<Self>) -> Self::Result {
        let mut settlement = Settlement::default();
        let mut revoke_next_lease = false;
        for event in &message.events {
            match event {
                MarketEvent::Accepted { order, request, .. } if request.side == Side::Bid => {
                    let escrowed = self.guardian.ledger_mut().escrow(
                        *order,
                        request.owner,
                        request.price,
                        request.quantity,
                    );
                    if escrowed.is_err() {
                        settlement.cancel.push((request.owner, *order));
                    }
                }
                MarketEvent::Filled { fill, .. } => {
                    let verdict = self.guardian.check_fill(message.tick, fill);
                    revoke_next_lease = matches!(verdict, Verdict::Deny { .. });
                    settlement.fills.push((*fill, verdict));
                }
                MarketEvent::LeaseGranted { lease, .. } => {
                    // The exchange reports each fill's lease right after the fill.
                    let fill_denied = std::mem::take(&mut revoke_next_lease);
                    if fill_denied {
                        settlement.revoke.push(lease.id);
                    }
                }
                MarketEvent::Cancelled(cancellation) if cancellation.side == Side::Bid => {
                    // A bid whose escrow failed has nothing to refund.
                    let _ = self
                        .guardian
                        .ledger_mut()
                        .refund(cancellation.order, cancellation.remaining);
                }
                MarketEvent::LeaseExpired { lease } | MarketEvent::LeaseRevoked { lease, .. }
                    if lease.resource == Resource::PowerBudgetMw =>
                {
                    self.guardian.release_power(lease.holder, lease.quantity.0);
                }
                MarketEvent::LeaseResized {
                    lease, previous, ..
                } if lease.resource == Resource::PowerBudgetMw => {
                    self.guardian
                        .release_power(lease.holder, previous.0.saturating_sub(lease.quantity.0));
                }
                _ => {}
            }
        }
        MessageResult(settlement)
    }
}

/// The guard phase for actuations: effects, contracts and the gate, in order.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Verdict>")]
pub struct CheckActuations {
    pub tick: Tick,
    pub requests: Vec<(AgentId, Actuation)>,
}

impl Handler<CheckActuations> for GuardianActor {
    type Result = MessageResult<CheckActuations>;

    fn handle(&mut self, message: CheckActuations, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            message
                .requests
                .iter()
                .map(|(agent, actuation)| {
                    self.guardian
                        .check_actuation(message.tick, *agent, actuation)
                })
                .collect(),
        )
    }
}

/// Pre-emption: the live safety signals, answered at once with safe limits.
#[derive(Debug, Message)]
#[rtype(result = "SafetyResponse")]
pub struct RespondToSafety {
    pub tick: Tick,
    pub signals: Vec<Signal>,
    pub frame: Arc<TelemetryFrame>,
}

#[derive(Debug, Clone, Default)]
pub struct SafetyResponse {
    /// Safe-limit actuations with the guardian's verdict (device bounds only).
    pub actions: Vec<(Actuation, Verdict)>,
    /// Agents whose power leases are revoked because their component is held safe.
    pub revoke_power_of: Vec<AgentId>,
    /// Components under a safety hold: agents' own actuations of them are pre-empted.
    pub held: Vec<String>,
    /// Components with no known safe limit.
    pub unknown: Vec<String>,
}

impl Handler<RespondToSafety> for GuardianActor {
    type Result = MessageResult<RespondToSafety>;

    fn handle(&mut self, message: RespondToSafety, _: &mut Context<Self>) -> Self::Result {
        let (actuations, unknown) =
            safe_limits_for(&message.signals, &message.frame, &self.safe_limits_mw);
        let mut response = SafetyResponse {
            unknown,
            ..SafetyResponse::default()
        };
        for actuation in actuations {
            if let Actuation::PowerLimit { component, .. } = &actuation {
                response.held.push(component.clone());
                if let Some(holders) = self.power_holders.get(component) {
                    response.revoke_power_of.extend(holders.iter().copied());
                }
            }
            let verdict = self
                .guardian
                .check_safety_actuation(message.tick, &actuation);
            response.actions.push((actuation, verdict));
        }
        response.revoke_power_of.sort();
        response.revoke_power_of.dedup();
        MessageResult(response)
    }
}

/// An allowed actuation failed on the device: the guardian forgets the value it
/// expected, and counts the failure.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ActuationFailed {
    pub actuation: Actuation,
    /// What the device still has, from the tick's frame, when known.
    pub device_now: Option<Actuation>,
}

impl Handler<ActuationFailed> for GuardianActor {
    type Result = ();

    fn handle(&mut self, message: ActuationFailed, _: &mut Context<Self>) {
        tracing::warn!(actuation = %message.actuation, "guardian informed: actuation failed");
        self.actuation_failures += 1;
        self.guardian.actuation_failed(message.device_now.as_ref());
    }
}

/// An agent failed its turn; the supervisor decides between restart and isolation.
#[derive(Debug, Message)]
#[rtype(result = "SupervisionDecision")]
pub struct ReportFailure {
    pub agent: AgentId,
    pub tick: Tick,
}

impl Handler<ReportFailure> for GuardianActor {
    type Result = MessageResult<ReportFailure>;

    fn handle(&mut self, message: ReportFailure, _: &mut Context<Self>) -> Self::Result {
        let decision = self.supervisor.on_failure(message.agent, message.tick);
        if matches!(decision, SupervisionDecision::Isolate { .. }) {
            // An isolated agent may do nothing any more.
            self.guardian.effects_mut().revoke_all(message.agent);
        }
        MessageResult(decision)
    }
}

/// Every account's balances, for queries and status.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(AgentId, gamesa_guardian::AccountBalance)>")]
pub struct Accounts;

impl Handler<Accounts> for GuardianActor {
    type Result = MessageResult<Accounts>;

    fn handle(&mut self, _: Accounts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.guardian.ledger().accounts().collect())
    }
}

/// Checks credit conservation (tests and the shutdown report).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct IsConserved;

impl Handler<IsConserved> for GuardianActor {
    type Result = bool;

    fn handle(&mut self, _: IsConserved, _: &mut Context<Self>) -> bool {
        self.guardian.ledger().is_conserved()
    }
}
