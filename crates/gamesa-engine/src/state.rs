//! What the tick sequence keeps from one tick to the next ([`TickState`]): the tick
//! counter, the agents' seats, the fills waiting for their next turn, the limits written
//! so far (dry-run ones shown in later frames), who changed each target, the writes the
//! device refused, and the workloads' progress counters.

use std::{collections::BTreeMap, sync::Arc};

use gamesa_hw::Applied;
use gamesa_proto::{Actuation, AgentId, Credits, Fill, Signal, TelemetryFrame, Tick};

use crate::{
    Turn,
    cores::{FailedActuation, Snapshot},
    output::TickOutput,
    progress::ProgressCounters,
};

/// How ticks are numbered and epochs counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSettings {
    pub epoch_ticks: u64,
    /// Seeds the correlation ids.
    pub seed: u64,
}

/// One configured agent as the tick sequence tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub id: AgentId,
    pub isolated: bool,
}

/// What the sequence keeps from one tick to the next.
#[derive(Debug, Clone)]
pub struct TickState {
    pub(crate) settings: TickSettings,
    pub(crate) next_tick: Tick,
    /// In id order.
    pub(crate) seats: Vec<Seat>,
    /// Fills each agent took part in, delivered at its next observation.
    pub(crate) pending_fills: BTreeMap<AgentId, Vec<Fill>>,
    /// The power limit last applied to each component (dry-run or real), in mW.
    pub(crate) applied_limits_mw: BTreeMap<String, u64>,
    /// Limits applied only in dry-run: the hardware still reports its own, so frames
    /// are read with these instead, and decisions play out as they would for real.
    pub(crate) dry_run_limits_mw: BTreeMap<String, u64>,
    /// Who last changed each target: isolation restores exactly these.
    pub(crate) owners: BTreeMap<String, AgentId>,
    /// Allowed actuations the device refused, for the guardian at the next tick.
    pub(crate) failed_actuations: Vec<FailedActuation>,
    pub(crate) progress: ProgressCounters,
    /// Participants a reload removed, retired at the next tick as an isolation
    /// retires an agent.
    pub(crate) retiring: Vec<AgentId>,
}

impl TickState {
    /// `agents` in any order; they are asked in id order.
    pub fn new(settings: TickSettings, agents: impl IntoIterator<Item = AgentId>) -> TickState {
        let mut seats: Vec<Seat> = agents
            .into_iter()
            .map(|id| Seat {
                id,
                isolated: false,
            })
            .collect();
        seats.sort_by_key(|seat| seat.id);
        TickState {
            settings,
            next_tick: Tick(0),
            seats,
            pending_fills: BTreeMap::new(),
            applied_limits_mw: BTreeMap::new(),
            dry_run_limits_mw: BTreeMap::new(),
            owners: BTreeMap::new(),
            failed_actuations: Vec::new(),
            progress: ProgressCounters::default(),
            retiring: Vec::new(),
        }
    }

    /// A reload's change of participants: `added` agents get a seat; `retired` agents
    /// lose theirs, so they are never asked again (and never read as isolated), and
    /// the next tick withdraws their orders and held leases and those of retired
    /// clients, drops their signals and restores the targets they set.
    pub fn reseat(&mut self, added: &[AgentId], retired: &[AgentId]) {
        for id in added {
            if !self.seats.iter().any(|seat| seat.id == *id) {
                self.seats.push(Seat {
                    id: *id,
                    isolated: false,
                });
            }
        }
        // A retired agent loses its seat (it is not isolated: it is gone).
        self.seats.retain(|seat| !retired.contains(&seat.id));
        self.seats.sort_by_key(|seat| seat.id);
        self.retiring.extend_from_slice(retired);
    }

    pub fn settings(&self) -> TickSettings {
        self.settings
    }

    pub fn next_tick(&self) -> Tick {
        self.next_tick
    }

    pub fn seats(&self) -> &[Seat] {
        &self.seats
    }

    pub(crate) fn live_agents(&self) -> Vec<AgentId> {
        self.seats
            .iter()
            .filter(|seat| !seat.isolated)
            .map(|seat| seat.id)
            .collect()
    }

    /// The frame as it would read had the dry-run limits been written, with the
    /// reported progress where the sensors gave none, and the node's cap lowered to
    /// what its fleet grants (`fleet_cap_mw`).
    pub(crate) fn prepare(
        &self,
        mut frame: TelemetryFrame,
        fleet_cap_mw: Option<u64>,
    ) -> TelemetryFrame {
        for component in &mut frame.components {
            if let Some(limit_mw) = self.dry_run_limits_mw.get(&component.id) {
                component.limit_mw = Some(*limit_mw);
            }
        }
        self.progress.fill(&mut frame);
        if let Some(granted) = fleet_cap_mw {
            frame.node.cap_mw = Some(frame.node.cap_mw.map_or(granted, |own| own.min(granted)));
        }
        frame
    }

    pub(crate) fn turns(
        &mut self,
        tick: Tick,
        frame: &Arc<TelemetryFrame>,
        signals: Vec<Signal>,
        snapshot: Snapshot,
        balances: &BTreeMap<AgentId, Credits>,
    ) -> Vec<Turn> {
        let Snapshot {
            view,
            mut open_orders,
            mut leases,
        } = snapshot;
        let market = Arc::new(view);
        let signals: Arc<[Signal]> = signals.into();
        let live = self.live_agents();
        live.into_iter()
            .map(|agent| Turn {
                tick,
                agent,
                epoch_ticks: self.settings.epoch_ticks,
                frame: Arc::clone(frame),
                signals: Arc::clone(&signals),
                market: Arc::clone(&market),
                fills: self.pending_fills.remove(&agent).unwrap_or_default(),
                leases: leases.remove(&agent).unwrap_or_default(),
                open_orders: open_orders.remove(&agent).unwrap_or_default(),
                balance: balances.get(&agent).copied().unwrap_or_default(),
            })
            .collect()
    }

    /// Isolation on the sequence's side: the agent is never asked again, its fills are
    /// dropped, and the targets it changed are to be restored.
    pub(crate) fn isolate(&mut self, agent: AgentId, restore: &mut Vec<String>) {
        if let Some(seat) = self.seats.iter_mut().find(|seat| seat.id == agent) {
            seat.isolated = true;
        }
        self.pending_fills.remove(&agent);
        let targets: Vec<String> = self
            .owners
            .iter()
            .filter(|(_, owner)| **owner == agent)
            .map(|(target, _)| target.clone())
            .collect();
        for target in targets {
            self.owners.remove(&target);
            restore.push(target);
        }
    }

    /// Takes in what the shell's actuator did with [`TickOutput::to_apply`], one
    /// result per entry in order: the outcomes go into `output`, written limits are
    /// remembered (dry-run ones for the next frames), and refused ones are reported to
    /// the guardian at the next tick.
    pub fn applied(&mut self, output: &mut TickOutput, results: Vec<Result<Applied, String>>) {
        let mut results = results.into_iter();
        for record in &mut output.actuations {
            let Some(actuation) = record.to_apply().cloned() else {
                continue;
            };
            let result = results
                .next()
                .unwrap_or_else(|| Err("the actuator returned no result".to_owned()));
            match (&actuation, &result) {
                (_, Ok(done)) => {
                    if let Actuation::PowerLimit {
                        component,
                        limit_mw,
                    } = &actuation
                    {
                        if done.dry_run {
                            self.dry_run_limits_mw.insert(component.clone(), *limit_mw);
                        } else {
                            self.dry_run_limits_mw.remove(component);
                        }
                        self.applied_limits_mw.insert(component.clone(), *limit_mw);
                    }
                    match record.requester {
                        Some(agent) => self.owners.insert(actuation.target(), agent),
                        None => self.owners.remove(&actuation.target()),
                    };
                }
                (Actuation::PowerLimit { component, .. }, Err(_)) => {
                    let device_now = output
                        .frame
                        .component(component)
                        .and_then(|telemetry| telemetry.limit_mw)
                        .map(|limit_mw| Actuation::PowerLimit {
                            component: component.clone(),
                            limit_mw,
                        });
                    self.failed_actuations.push(FailedActuation {
                        actuation: actuation.clone(),
                        device_now,
                    });
                }
                (_, Err(_)) => self.failed_actuations.push(FailedActuation {
                    actuation: actuation.clone(),
                    device_now: None,
                }),
            }
            record.outcome = Some(result);
        }
    }
}
