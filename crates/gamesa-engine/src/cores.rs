//! The three cores a tick runs over, each with one method per phase it takes part in.
//!
//! In `gamesa run` each core is owned by an actor whose handlers call exactly these
//! methods; in [`crate::TickEngine`] they are called in place. Either way the phase
//! sequence is [`crate::tick::run`], so both take the same decisions.
//!
//! - [`GuardianCore`]: the guardian and central bank: effects, contracts, ledger and
//!   gate ([`Guardian`]), the supervisor, the safety policy and the minting weights;
//! - [`ExchangeCore`]: the order books and leases;
//! - [`SchedulerCore`]: the domain-ranked signal queue.

use std::{collections::BTreeMap, sync::Arc};

use gamesa_agent::MarketView;
use gamesa_guardian::{
    AccountBalance, Admission, AuditRecord, Guardian, LedgerError, MintReport, Posting,
    SafetyPolicy, SafetyResponse, Settlement, StampedIntent, SupervisionDecision, Supervisor,
    Verdict,
};
use gamesa_market::{ActiveLease, BookDepth, Exchange, MarketError, MarketEvent, Submission};
use gamesa_proto::{
    Actuation, AgentId, Credits, Lease, LeaseId, OrderId, OrderRequest, Price, Quantity, Resource,
    Signal, TelemetryFrame, Tick, TimeInForce,
};
use gamesa_signals::{SignalError, SignalQueue};

/// What the guardian is told as a tick opens.
#[derive(Debug, Clone)]
pub struct Opening {
    pub tick: Tick,
    pub frame: Arc<TelemetryFrame>,
    /// The limits applied so far (dry-run or real), component → mW.
    pub planned_limits_mw: BTreeMap<String, u64>,
    /// `Some(epoch)` when this tick starts a new epoch.
    pub epoch: Option<u64>,
    /// Allowed actuations the device refused since the last tick.
    pub failed_actuations: Vec<FailedActuation>,
}

/// An allowed actuation that did not take effect on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedActuation {
    pub actuation: Actuation,
    /// What the device still has, from the tick's frame, when known.
    pub device_now: Option<Actuation>,
}

/// The guardian's answer as a tick opens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opened {
    /// Every account's spendable balance.
    pub balances: BTreeMap<AgentId, Credits>,
    /// The epoch's mint, when this tick began one.
    pub mint: Option<Result<MintReport, LedgerError>>,
    /// When this tick began an epoch: what each account holds after the mint,
    /// available and escrowed (the journal's snapshot).
    pub holdings: Option<Vec<(AgentId, Credits)>>,
}

/// Admission, and the supervisor's decision on each agent that failed its turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    pub admission: Admission,
    /// In the order the failures were reported.
    pub supervision: Vec<(AgentId, SupervisionDecision)>,
}

/// The last guardian phase of a tick: verdicts on the agents' actuations, and the
/// guardian's audit trail and ledger postings of the whole tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guarded {
    /// One per request, in order.
    pub verdicts: Vec<Verdict>,
    pub audit: Vec<AuditRecord>,
    pub postings: Vec<Posting>,
}

/// The guardian and central bank.
#[derive(Debug)]
pub struct GuardianCore {
    guardian: Guardian,
    supervisor: Supervisor,
    safety: SafetyPolicy,
    /// Every agent's and client's minting weight; isolated agents are left out.
    weights: BTreeMap<AgentId, u64>,
    /// Allowed actuations the device refused, since start.
    actuation_failures: u64,
}

impl GuardianCore {
    pub fn new(
        guardian: Guardian,
        supervisor: Supervisor,
        safety: SafetyPolicy,
        weights: BTreeMap<AgentId, u64>,
    ) -> GuardianCore {
        GuardianCore {
            guardian,
            supervisor,
            safety,
            weights,
            actuation_failures: 0,
        }
    }

    pub fn guardian(&self) -> &Guardian {
        &self.guardian
    }

    /// A config reload: `next`'s guardian policy, safety policy and weights; this
    /// core's ledger, gate history, supervisor (restarts and isolations) and counters.
    pub fn adopt(&mut self, next: GuardianCore) {
        self.guardian.adopt_policy(next.guardian);
        self.safety = next.safety;
        self.weights = next.weights;
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Allowed actuations the device refused, since start.
    pub fn actuation_failures(&self) -> u64 {
        self.actuation_failures
    }

    /// Every account's balances, for queries and status.
    pub fn accounts(&self) -> Vec<(AgentId, AccountBalance)> {
        self.guardian.ledger().accounts().collect()
    }

    /// Opens a tick: forgets the values of actuations that failed, takes in the frame,
    /// mints the epoch's allowance when one begins, and reports every balance.
    pub fn open(&mut self, opening: &Opening) -> Opened {
        for failed in &opening.failed_actuations {
            self.actuation_failures += 1;
            self.guardian.actuation_failed(failed.device_now.as_ref());
        }
        self.guardian
            .observe(&opening.frame, &opening.planned_limits_mw);
        let mint = opening.epoch.map(|epoch| {
            let weights: Vec<(AgentId, u64)> = self
                .weights
                .iter()
                .filter(|(agent, _)| !self.supervisor.is_isolated(**agent))
                .map(|(agent, weight)| (*agent, *weight))
                .collect();
            self.guardian.ledger_mut().mint_epoch(epoch, &weights)
        });
        let ledger = self.guardian.ledger();
        let balances = ledger
            .accounts()
            .map(|(agent, account)| (agent, account.available))
            .collect();
        let holdings = mint.is_some().then(|| {
            ledger
                .accounts()
                .map(|(agent, account)| (agent, Credits(account.available.0 + account.escrowed.0)))
                .collect()
        });
        Opened {
            balances,
            mint,
            holdings,
        }
    }

    /// Credits agents with what a previous run left them, before the first tick
    /// (`Ledger::resume`); the ledger must still balance after it.
    pub fn resume(&mut self, holdings: &[(AgentId, Credits)]) -> Result<Credits, LedgerError> {
        let ledger = self.guardian.ledger_mut();
        let total = ledger.resume(holdings)?;
        debug_assert!(ledger.is_conserved());
        Ok(total)
    }

    /// Decides about each agent that failed its turn (an isolated agent loses every
    /// effect), then admits the tick's intents ([`Guardian::admit`]).
    pub fn admit(
        &mut self,
        tick: Tick,
        intents: Vec<StampedIntent>,
        failed: &[AgentId],
    ) -> Admitted {
        let supervision = failed
            .iter()
            .map(|&agent| {
                let decision = self.supervisor.on_failure(agent, tick);
                if matches!(decision, SupervisionDecision::Isolate { .. }) {
                    self.guardian.effects_mut().revoke_all(agent);
                }
                (agent, decision)
            })
            .collect();
        Admitted {
            admission: self.guardian.admit(tick, intents),
            supervision,
        }
    }

    /// The answer to the live pre-empting signals: safe limits at once.
    pub fn safety(
        &mut self,
        tick: Tick,
        preempting: &[Signal],
        frame: &TelemetryFrame,
    ) -> SafetyResponse {
        self.safety
            .respond(&mut self.guardian, tick, preempting, frame)
    }

    /// Settles what the exchange reported ([`Guardian::settle`]).
    pub fn settle(&mut self, tick: Tick, events: &[MarketEvent]) -> Settlement {
        self.guardian.settle(tick, events)
    }

    /// Settles the exchange's follow-up events (revocations and cancels only release),
    /// checks the agents' actuations in full, and hands over the tick's audit trail and
    /// postings.
    pub fn guard(
        &mut self,
        tick: Tick,
        followups: &[MarketEvent],
        requests: &[(AgentId, Actuation)],
    ) -> Guarded {
        if !followups.is_empty() {
            self.guardian.settle(tick, followups);
        }
        let verdicts = requests
            .iter()
            .map(|(agent, actuation)| self.guardian.check_actuation(tick, *agent, actuation))
            .collect();
        Guarded {
            verdicts,
            audit: self.guardian.effects_mut().drain_audit().collect(),
            postings: self.guardian.ledger_mut().drain_postings().collect(),
        }
    }

    /// Settles events outside any tick's match (the cancels of a shutdown).
    pub fn settle_release(&mut self, tick: Tick, events: &[MarketEvent]) {
        self.guardian.settle(tick, events);
    }

    /// Whether credits are conserved (tests and the shutdown report).
    pub fn is_conserved(&self) -> bool {
        self.guardian.ledger().is_conserved()
    }
}

/// What the agents see of the market as a tick opens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub view: MarketView,
    /// Each asked agent's resting orders.
    pub open_orders: BTreeMap<AgentId, Vec<(OrderId, OrderRequest)>>,
    /// Each asked agent's live leases, held or granted.
    pub leases: BTreeMap<AgentId, Vec<Lease>>,
}

/// The exchange's work of one tick, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchRequest {
    pub tick: Tick,
    /// Isolated agents: every order cancelled, every lease revoked.
    pub withdraw: Vec<AgentId>,
    /// Agents whose power leases a safety hold revokes.
    pub revoke_power_of: Vec<AgentId>,
    pub capacities: Vec<(AgentId, Resource, Quantity)>,
    pub submissions: Vec<Submission>,
}

/// What the exchange did, and how the market stands after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched {
    pub events: Vec<MarketEvent>,
    /// Capacity changes the market refused.
    pub refused_capacities: Vec<(AgentId, Resource, MarketError)>,
    /// Set when the tick itself was refused (the clock went backwards).
    pub error: Option<MarketError>,
    pub view: MarketView,
}

/// Each resource's book and last trade, and every live lease: what queries read.
#[derive(Debug, Clone, Default)]
pub struct MarketOverview {
    /// One entry per resource, in `Resource::ALL` order.
    pub books: Vec<(Resource, BookDepth, Option<Price>)>,
    /// Every live lease with the part of its pool it holds (a `cpu_cores` lease's
    /// core indices).
    pub leases: Vec<ActiveLease>,
    /// The resting orders of the owners asked for, in owner and id order.
    pub orders: Vec<(OrderId, OrderRequest)>,
}

/// The exchange.
#[derive(Debug)]
pub struct ExchangeCore {
    exchange: Exchange,
}

impl ExchangeCore {
    pub fn new(exchange: Exchange) -> ExchangeCore {
        ExchangeCore { exchange }
    }

    pub fn exchange(&self) -> &Exchange {
        &self.exchange
    }

    /// The best prices and last trades.
    pub fn view(&self) -> MarketView {
        let mut view = MarketView::default();
        for resource in Resource::ALL {
            let index = resource.index();
            view.last_price[index] = self.exchange.last_trade_price(resource);
            view.best_bid[index] = self.exchange.best_bid(resource);
            view.best_ask[index] = self.exchange.best_ask(resource);
        }
        view
    }

    /// The market as `agents` see it as a tick opens.
    pub fn snapshot(&self, agents: &[AgentId]) -> Snapshot {
        let exchange = &self.exchange;
        let mut snapshot = Snapshot {
            view: self.view(),
            ..Snapshot::default()
        };
        for &agent in agents {
            let mut orders = Vec::new();
            for resource in Resource::ALL {
                let book = exchange.book(resource);
                for id in book.orders_of(agent, None) {
                    if let Some(order) = book.order(id) {
                        orders.push((
                            id,
                            OrderRequest {
                                owner: order.owner,
                                resource,
                                side: order.side,
                                price: order.price,
                                quantity: order.remaining,
                                time_in_force: TimeInForce::Limit {
                                    expires_at: order.expires_at,
                                },
                            },
                        ));
                    }
                }
            }
            snapshot.open_orders.insert(agent, orders);
            snapshot.leases.insert(
                agent,
                exchange
                    .leases()
                    .iter()
                    .filter(|active| active.lease.holder == agent || active.lease.seller == agent)
                    .map(|active| active.lease.clone())
                    .collect(),
            );
        }
        snapshot
    }

    /// The match phase: withdraw isolated agents, revoke the power leases a safety hold
    /// takes, advance the clock (expiring orders and leases), release the leases in
    /// their last tick, apply capacity changes, then the submissions in canonical order.
    pub fn run_match(&mut self, request: MatchRequest) -> Matched {
        let mut matched = Matched::default();
        self.withdraw_into(&request.withdraw, true, &mut matched.events);
        if !request.revoke_power_of.is_empty() {
            let ids: Vec<LeaseId> = self
                .exchange
                .leases()
                .iter()
                .filter(|active| {
                    active.lease.resource == Resource::PowerBudgetMw
                        && request.revoke_power_of.contains(&active.lease.holder)
                })
                .map(|active| active.lease.id)
                .collect();
            self.revoke_into(&ids, &mut matched.events);
        }
        self.process(
            request.tick,
            request.capacities,
            request.submissions,
            &mut matched,
        );
        matched.view = self.view();
        matched
    }

    /// Undoes what the guardian refused: revokes the leases of denied fills, then
    /// cancels the bids whose escrow failed.
    pub fn followup(
        &mut self,
        tick: Tick,
        revoke: &[LeaseId],
        cancel: &[(AgentId, OrderId)],
    ) -> Matched {
        let mut matched = Matched::default();
        self.revoke_into(revoke, &mut matched.events);
        if !cancel.is_empty() {
            let submissions = cancel
                .iter()
                .enumerate()
                .map(|(sequence, (agent, order))| {
                    Submission::cancel(sequence as u64, *agent, *order)
                })
                .collect();
            self.process(tick, Vec::new(), submissions, &mut matched);
        }
        matched.view = self.view();
        matched
    }

    /// Cancels every order of `agents`, and revokes the leases they hold when asked
    /// (isolation revokes; shutdown only cancels).
    pub fn withdraw(&mut self, agents: &[AgentId], revoke_leases: bool) -> Vec<MarketEvent> {
        let mut events = Vec::new();
        self.withdraw_into(agents, revoke_leases, &mut events);
        events
    }

    /// Each resource's book `levels` deep and last trade, every live lease, and the
    /// resting orders of `owners`.
    pub fn overview(&self, levels: usize, owners: &[AgentId]) -> MarketOverview {
        let exchange = &self.exchange;
        MarketOverview {
            books: Resource::ALL
                .into_iter()
                .map(|resource| {
                    (
                        resource,
                        exchange.depth(resource, levels),
                        exchange.last_trade_price(resource),
                    )
                })
                .collect(),
            leases: exchange.leases().iter().cloned().collect(),
            orders: self
                .snapshot(owners)
                .open_orders
                .into_values()
                .flatten()
                .collect(),
        }
    }

    fn withdraw_into(
        &mut self,
        agents: &[AgentId],
        revoke_leases: bool,
        events: &mut Vec<MarketEvent>,
    ) {
        for &agent in agents {
            if revoke_leases {
                self.exchange.isolate(agent, events);
            } else {
                self.exchange.cancel_all_for(agent, events);
            }
        }
    }

    fn revoke_into(&mut self, leases: &[LeaseId], events: &mut Vec<MarketEvent>) {
        for &id in leases {
            // A lease that already ended has nothing left to revoke.
            let _ = self.exchange.revoke_lease(id, events);
        }
    }

    fn process(
        &mut self,
        tick: Tick,
        capacities: Vec<(AgentId, Resource, Quantity)>,
        submissions: Vec<Submission>,
        matched: &mut Matched,
    ) {
        if let Err(error) = self.exchange.advance_to(tick, &mut matched.events) {
            matched.error = Some(error);
            return;
        }
        self.exchange.release_leases_ending_now(&mut matched.events);
        for (seller, resource, quantity) in capacities {
            if let Err(error) =
                self.exchange
                    .set_capacity(seller, resource, quantity, &mut matched.events)
            {
                matched.refused_capacities.push((seller, resource, error));
            }
        }
        match self.exchange.process_tick(tick, submissions) {
            Ok(events) => matched.events.extend(events),
            Err(error) => matched.error = Some(error),
        }
    }
}

/// The live signals at a tick, highest-ranked first, with the pre-empting (safety) ones
/// split out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranked {
    pub all: Vec<Signal>,
    pub preempting: Vec<Signal>,
    /// Signals the queue refused as they were enqueued, with why.
    pub refused: Vec<(Signal, SignalError)>,
}

/// The scheduler: the domain-ranked signal queue.
#[derive(Debug)]
pub struct SchedulerCore {
    queue: SignalQueue,
}

impl SchedulerCore {
    pub fn new(queue: SignalQueue) -> SchedulerCore {
        SchedulerCore { queue }
    }

    /// The live signals at `tick`, after the expired ones are dropped.
    pub fn rank(&mut self, tick: Tick) -> Ranked {
        self.queue.expire(tick);
        let all = self.queue.ranked(tick);
        let preempting = all
            .iter()
            .filter(|signal| gamesa_signals::is_preempting(signal, self.queue.ranking()))
            .cloned()
            .collect();
        Ranked {
            all,
            preempting,
            refused: Vec::new(),
        }
    }

    /// Drops every signal the isolated agents raised, enqueues the tick's signals in
    /// canonical order, and ranks.
    pub fn take(&mut self, tick: Tick, signals: Vec<Signal>, isolated: &[AgentId]) -> Ranked {
        for &agent in isolated {
            self.queue.remove_from(agent);
        }
        let mut refused = Vec::new();
        for signal in signals {
            if let Err(error) = self.queue.push(signal.clone(), tick) {
                refused.push((signal, error));
            }
        }
        Ranked {
            refused,
            ..self.rank(tick)
        }
    }
}
