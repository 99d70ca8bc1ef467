//! Restart intensity: the OTP rule "at most N restarts within T", counted in tick time.
//!
//! Time is the tick's virtual timestamp (`tick / tick_hz`), never the wall clock, so
//! `gamesa run` and `gamesa sim` take the same decisions for the same failures.
//!
//! # Invariants
//! - an agent is restarted at most `max_restarts` times within any window of
//!   `window_ticks` ticks; the next failure within the window isolates it
//! - an isolated agent stays isolated

use std::collections::{BTreeMap, VecDeque};

use gamesa_proto::{AgentId, Tick};
use serde::Serialize;

/// What the supervisor decided about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum SupervisionDecision {
    /// Rebuild the agent from its factory; `restarts` counts those in the window.
    Restart { restarts: u32 },
    /// Past the intensity limit: cancel, revoke, restore, and stop calling it.
    Isolate { restarts: u32 },
    /// The agent was already isolated.
    AlreadyIsolated,
}

#[derive(Debug, Clone)]
pub struct Supervisor {
    max_restarts: u32,
    window_ticks: u64,
    restarts: BTreeMap<AgentId, VecDeque<Tick>>,
    isolated: BTreeMap<AgentId, Tick>,
}

impl Supervisor {
    /// `window_ticks` is the intensity window converted to ticks (at least 1).
    pub fn new(max_restarts: u32, window_ticks: u64) -> Supervisor {
        Supervisor {
            max_restarts,
            window_ticks: window_ticks.max(1),
            restarts: BTreeMap::new(),
            isolated: BTreeMap::new(),
        }
    }

    /// Records a failure of `agent` at `tick` and decides what happens to it.
    pub fn on_failure(&mut self, agent: AgentId, tick: Tick) -> SupervisionDecision {
        if self.isolated.contains_key(&agent) {
            return SupervisionDecision::AlreadyIsolated;
        }
        let window_start = tick.0.saturating_sub(self.window_ticks - 1);
        let history = self.restarts.entry(agent).or_default();
        while history.front().is_some_and(|at| at.0 < window_start) {
            history.pop_front();
        }
        let restarts = u32::try_from(history.len()).unwrap_or(u32::MAX);
        if restarts >= self.max_restarts {
            self.isolated.insert(agent, tick);
            SupervisionDecision::Isolate { restarts }
        } else {
            history.push_back(tick);
            SupervisionDecision::Restart {
                restarts: restarts + 1,
            }
        }
    }

    pub fn is_isolated(&self, agent: AgentId) -> bool {
        self.isolated.contains_key(&agent)
    }

    /// Restarts recorded so far, over all agents (for status and metrics).
    pub fn total_restarts(&self) -> usize {
        self.restarts.values().map(VecDeque::len).sum()
    }

    /// Isolated agents with the tick they were isolated at, in id order.
    pub fn isolated(&self) -> impl Iterator<Item = (AgentId, Tick)> + '_ {
        self.isolated.iter().map(|(agent, tick)| (*agent, *tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_restarts_then_isolation() {
        let mut supervisor = Supervisor::new(3, 50);
        let agent = AgentId(4);
        for (tick, expected) in [(1, 1), (2, 2), (3, 3)] {
            assert_eq!(
                supervisor.on_failure(agent, Tick(tick)),
                SupervisionDecision::Restart { restarts: expected }
            );
        }
        assert_eq!(
            supervisor.on_failure(agent, Tick(4)),
            SupervisionDecision::Isolate { restarts: 3 }
        );
        assert!(supervisor.is_isolated(agent));
        assert_eq!(
            supervisor.on_failure(agent, Tick(5)),
            SupervisionDecision::AlreadyIsolated
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_keep_restarting() {
        let mut supervisor = Supervisor::new(3, 50);
        let agent = AgentId(1);
        for tick in (0..10).map(|n| Tick(n * 20)) {
            assert!(matches!(
                supervisor.on_failure(agent, tick),
                SupervisionDecision::Restart { .. }
            ));
        }
        assert!(!supervisor.is_isolated(agent));
    }

    #[test]
    fn agents_are_supervised_independently() {
        let mut supervisor = Supervisor::new(1, 10);
        assert!(matches!(
            supervisor.on_failure(AgentId(1), Tick(1)),
            SupervisionDecision::Restart { .. }
        ));
        assert!(matches!(
            supervisor.on_failure(AgentId(2), Tick(1)),
            SupervisionDecision::Restart { .. }
        ));
        assert!(matches!(
            supervisor.on_failure(AgentId(1), Tick(2)),
            SupervisionDecision::Isolate { .. }
        ));
        assert!(!supervisor.is_isolated(AgentId(2)));
    }
}
