//! The tick engine: one GAMESA tick as phase functions over the pure cores, written
//! once ([`tick::run`]) and driven either in place ([`TickEngine`]: `gamesa sim`, the
//! tests, replay) or through actors (the runtime's shell), with the same outcome.
//!
//! No actix, no tokio, no I/O: a tick is `tick(frame, intake) -> TickOutput`, the
//! caller actuates what the output asks for, and hands the results back with
//! [`TickEngine::applied`] (in the spirit of raft-rs's `RawNode`/`Ready`).
//!
//! - [`cores`]: the guardian (and central bank), the exchange and the scheduler, each
//!   with one method per phase it takes part in: what an actor's handler calls;
//! - [`host`]: an agent plugin hosted for its turns: panics caught, rebuilt on restart;
//! - [`tick`]: the phase sequence over any [`Cores`];
//! - [`state`]: what the sequence keeps from one tick to the next ([`TickState`]);
//! - [`output`]: what a tick decided ([`TickOutput`]) and what became of its actuations;
//! - [`outcome`]: what became of each order and cancel, by `(participant, sequence)`;
//! - [`engine`]: [`TickEngine`], the cores and the agents driven in place;
//! - [`progress`]: workloads' progress counters, written into the frame.

pub mod cores;
pub mod engine;
pub mod host;
pub mod outcome;
pub mod output;
pub mod progress;
pub mod state;
pub mod tick;

pub use cores::{ExchangeCore, GuardianCore, SchedulerCore};
pub use engine::TickEngine;
pub use host::{AgentFailure, ExternalAnswer, HostedAgent, Turn};
pub use outcome::Outcome;
pub use output::{ActuationRecord, FailureRecord, Phase, PhaseTiming, TickOutput};
pub use state::{Seat, TickSettings, TickState};
pub use tick::{Cores, Intake};
