//! [`TickEngine`]: the cores and the agents driven in place, one tick per call, with
//! no actors, threads or clock in the way. `gamesa sim`, the tests and replay run it.
//!
//! Agents are asked one after another in id order. There is no deadline here: a tick
//! in virtual time waits for every agent (the shell's deadlines are wall-clock).

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Instant,
};

use gamesa_guardian::{SafetyResponse, Settlement, StampedIntent};
use gamesa_hw::{Actuator, RestoreReport, Sensors};
use gamesa_market::MarketEvent;
use gamesa_proto::{Actuation, AgentId, LeaseId, OrderId, Signal, TelemetryFrame, Tick};

use crate::{
    AgentFailure, HostedAgent, TickOutput, TickSettings, TickState, Turn,
    cores::{
        Admitted, ExchangeCore, Guarded, GuardianCore, MatchRequest, Matched, Opened, Opening,
        Ranked, SchedulerCore, Snapshot,
    },
    output::{Phase, PhaseTiming},
    tick::{self, Cores, Intake, Observed},
};

/// The cores and agents, owned and called in place.
#[derive(Debug)]
pub struct LocalCores {
    pub guardian: GuardianCore,
    pub exchange: ExchangeCore,
    pub scheduler: SchedulerCore,
    /// In id order.
    pub agents: Vec<HostedAgent>,
}

impl LocalCores {
    fn agent_mut(&mut self, id: AgentId) -> Option<&mut HostedAgent> {
        self.agents.iter_mut().find(|agent| agent.spec().id == id)
    }
}

/// Nothing in place can fail to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {}

impl Cores for LocalCores {
    type Error = Never;

    async fn open(
        &mut self,
        opening: Opening,
        agents: Vec<AgentId>,
    ) -> Result<(Opened, Snapshot, Ranked), Never> {
        let opened = self.guardian.open(&opening);
        let snapshot = self.exchange.snapshot(&agents);
        let ranked = self.scheduler.rank(opening.tick);
        Ok((opened, snapshot, ranked))
    }

    async fn observe(&mut self, turns: Vec<Turn>) -> Result<Vec<Observed>, Never> {
        Ok(turns
            .into_iter()
            .map(|turn| {
                let started = Instant::now();
                let (intents, external) = match self.agent_mut(turn.agent) {
                    Some(agent) => (agent.observe(&turn), agent.is_external()),
                    None => (
                        Err(AgentFailure::Panicked(format!(
                            "no agent {} is hosted",
                            turn.agent
                        ))),
                        false,
                    ),
                };
                Observed {
                    agent: turn.agent,
                    intents,
                    took: started.elapsed(),
                    external,
                }
            })
            .collect())
    }

    async fn admit(
        &mut self,
        tick: Tick,
        intents: Vec<StampedIntent>,
        failed: Vec<AgentId>,
    ) -> Result<Admitted, Never> {
        Ok(self.guardian.admit(tick, intents, &failed))
    }

    async fn restart(
        &mut self,
        agents: Vec<AgentId>,
    ) -> Result<Vec<(AgentId, AgentFailure)>, Never> {
        Ok(agents
            .into_iter()
            .filter_map(|id| {
                let error = self.agent_mut(id)?.rebuild().err()?;
                Some((id, error))
            })
            .collect())
    }

    async fn take_signals(
        &mut self,
        tick: Tick,
        signals: Vec<Signal>,
        isolated: Vec<AgentId>,
    ) -> Result<Ranked, Never> {
        Ok(self.scheduler.take(tick, signals, &isolated))
    }

    async fn safety(
        &mut self,
        tick: Tick,
        preempting: &[Signal],
        frame: Arc<TelemetryFrame>,
    ) -> Result<SafetyResponse, Never> {
        Ok(self.guardian.safety(tick, preempting, &frame))
    }

    async fn run_match(&mut self, request: MatchRequest) -> Result<Matched, Never> {
        Ok(self.exchange.run_match(request))
    }

    async fn settle(&mut self, tick: Tick, events: &[MarketEvent]) -> Result<Settlement, Never> {
        Ok(self.guardian.settle(tick, events))
    }

    async fn followup(
        &mut self,
        tick: Tick,
        revoke: &[LeaseId],
        cancel: &[(AgentId, OrderId)],
    ) -> Result<Matched, Never> {
        Ok(self.exchange.followup(tick, revoke, cancel))
    }

    async fn guard(
        &mut self,
        tick: Tick,
        followups: &[MarketEvent],
        requests: &[(AgentId, Actuation)],
    ) -> Result<Guarded, Never> {
        Ok(self.guardian.guard(tick, followups, requests))
    }
}

/// The tick engine, driven in place.
#[derive(Debug)]
pub struct TickEngine {
    state: TickState,
    cores: LocalCores,
}

impl TickEngine {
    pub fn new(settings: TickSettings, cores: LocalCores) -> TickEngine {
        let state = TickState::new(settings, cores.agents.iter().map(|agent| agent.spec().id));
        TickEngine { state, cores }
    }

    pub fn state(&self) -> &TickState {
        &self.state
    }

    pub fn cores(&self) -> &LocalCores {
        &self.cores
    }

    /// Runs one tick on `frame`. Write what the output asks for (restore, then
    /// [`TickOutput::to_apply`]) and hand the results to [`TickEngine::applied`].
    pub fn tick(&mut self, frame: TelemetryFrame, intake: Intake) -> TickOutput {
        let Self { state, cores } = self;
        match now_or_never(tick::run(state, cores, frame, intake)) {
            Some(Ok(output)) => output,
            Some(Err(never)) => match never {},
            // Invariant: every `LocalCores` phase is an `async fn` with no `.await` inside,
            // and `tick::run` awaits nothing but those phases, so the first poll
            // completes the tick. No input can make it wait.
            None => unreachable!("an in-place tick waited on nothing"),
        }
    }

    /// What the actuator did with [`TickOutput::to_apply`], one result per entry.
    pub fn applied(
        &mut self,
        output: &mut TickOutput,
        results: Vec<Result<gamesa_hw::Applied, String>>,
    ) {
        self.state.applied(output, results);
    }

    /// A whole tick against real (or twin) hardware: sample `sensors`, tick, restore
    /// what isolated agents changed, write the actuations and take the results in.
    pub fn step(
        &mut self,
        sensors: &mut dyn Sensors,
        actuator: &mut dyn Actuator,
        mut intake: Intake,
    ) -> TickOutput {
        let started = Instant::now();
        let sample = sensors.sample(self.state.next_tick());
        intake
            .sample_errors
            .extend(sample.errors.iter().map(ToString::to_string));
        let sampled = Instant::now();
        let mut output = self.tick(sample.frame, intake);
        output.timings.insert(
            0,
            PhaseTiming {
                phase: Phase::Sample,
                agent: None,
                start: started,
                end: sampled,
            },
        );
        let actuate_start = Instant::now();
        for target in &output.restore {
            let report: RestoreReport = actuator.restore_target(target);
            output.restore_failed.extend(
                report
                    .failed
                    .into_iter()
                    .map(|(target, error)| (target, error.to_string())),
            );
        }
        let results = output
            .to_apply()
            .iter()
            .map(|(_, actuation)| actuator.apply(actuation).map_err(|error| error.to_string()))
            .collect();
        self.applied(&mut output, results);
        output.timings.push(PhaseTiming {
            phase: Phase::Actuate,
            agent: None,
            start: actuate_start,
            end: Instant::now(),
        });
        output
    }

    /// Credits agents with what a previous run left them, before the first tick, as
    /// `gamesa run` resumes a journal's snapshot (replay does the same).
    pub fn resume(
        &mut self,
        holdings: &[(AgentId, gamesa_proto::Credits)],
    ) -> Result<gamesa_proto::Credits, gamesa_guardian::LedgerError> {
        self.cores.guardian.resume(holdings)
    }

    /// Hands `agent` its past epochs before the first tick, as `gamesa run` does from
    /// the journal (replay does the same).
    pub fn warm(
        &mut self,
        agent: AgentId,
        past: Arc<[gamesa_agent::Experience]>,
    ) -> Result<(), AgentFailure> {
        match self.cores.agent_mut(agent) {
            Some(hosted) => hosted.warm(past),
            None => Ok(()),
        }
    }

    /// A config reload between ticks: the guardian adopts `guardian`'s policy (keeping
    /// its ledger and history), each agent of `respecced` is rebuilt with its new spec,
    /// `added` agents take a seat, and `retired` participants are never asked again
    /// and retired at the next tick (`TickState::reseat`). Returns the agents whose
    /// rebuild failed: they fail their turns, as after a failed restart, until the
    /// supervisor restarts them.
    pub fn reload(
        &mut self,
        guardian: GuardianCore,
        respecced: Vec<gamesa_agent::AgentSpec>,
        added: Vec<HostedAgent>,
        retired: &[AgentId],
    ) -> Vec<(AgentId, AgentFailure)> {
        self.cores.guardian.adopt(guardian);
        let failed = respecced
            .into_iter()
            .filter_map(|spec| {
                let id = spec.id;
                let hosted = self.cores.agent_mut(id)?;
                hosted.respec(spec).err().map(|failure| (id, failure))
            })
            .collect();
        let added_ids: Vec<AgentId> = added.iter().map(|agent| agent.spec().id).collect();
        self.cores
            .agents
            .retain(|agent| !retired.contains(&agent.spec().id));
        self.cores.agents.extend(added);
        self.cores.agents.sort_by_key(|agent| agent.spec().id);
        self.state.reseat(&added_ids, retired);
        failed
    }

    /// Every open order of `participants` cancelled and the bids refunded, as a
    /// graceful stop does; how many orders were cancelled.
    pub fn withdraw(&mut self, participants: &[AgentId]) -> usize {
        let events = self.cores.exchange.withdraw(participants, false);
        let tick = self.state.next_tick();
        self.cores.guardian.settle_release(tick, &events);
        events.len()
    }
}

/// Polls `future` once. A future that waits on nothing is ready at once.
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
