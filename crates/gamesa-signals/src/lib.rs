//! Domain-ranked signal scheduler: a pure, deterministic queue that always hands out the
//! most important live signal first.
//!
//! Signals are ranked by [`DomainRanking`] (safety first by default), then by strength
//! (higher first), then by age (older first). Each signal lives for `ttl_ticks` ticks
//! from the tick it was pushed; a repeated `(kind, source)` replaces the queued one.
//! Nothing here reads a clock: every operation that depends on time takes `now`.
//!
//! ```
//! use gamesa_proto::{AgentId, Domain, Signal, SignalKind, Strength, Tick};
//! use gamesa_signals::{DomainRanking, SignalQueue};
//!
//! let signal = |kind: &str, domain| Signal {
//!     kind: SignalKind::new(kind).unwrap(),
//!     domain,
//!     strength: Strength::MAX,
//!     source: AgentId(1),
//!     ttl_ticks: 3,
//!     correlation: None,
//! };
//! let mut queue = SignalQueue::new(DomainRanking::default());
//! queue.push(signal("game_started", Domain::Performance), Tick(0)).unwrap();
//! queue.push(signal("thermal_critical", Domain::Safety), Tick(0)).unwrap();
//! assert_eq!(queue.pop(Tick(0)).unwrap().kind.as_str(), "thermal_critical");
//! // Pushed at tick 0 with a ttl of 3: live at ticks 0, 1 and 2, gone at tick 3.
//! assert_eq!(queue.pop(Tick(3)), None);
//! ```

mod error;
mod queue;
mod ranking;

pub use error::SignalError;
pub use queue::{PushOutcome, SignalQueue};
pub use ranking::{DomainRanking, is_preempting, split_preempting};
