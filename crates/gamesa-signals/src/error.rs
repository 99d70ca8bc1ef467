//! The error type of the signal scheduler: every way a push or a ranking can be refused.

use gamesa_proto::{Domain, ProtoError, Tick};
use thiserror::Error;

/// Why the scheduler refused an input. A refused input leaves the queue unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize)]
pub enum SignalError {
    /// The signal failed [`gamesa_proto::Signal::validate`] (for example a zero ttl).
    #[error("invalid signal: {0}")]
    InvalidSignal(#[from] ProtoError),
    /// A push arrived with a tick earlier than one the queue has already seen.
    #[error("tick {now} is earlier than tick {latest}, which the queue has already seen")]
    StaleTick { now: Tick, latest: Tick },
    /// A domain ranking listed the same domain twice.
    #[error("domain `{domain}` appears more than once in the ranking")]
    DuplicateDomain { domain: Domain },
    /// A domain ranking left a domain out.
    #[error("domain `{domain}` is missing from the ranking")]
    MissingDomain { domain: Domain },
    /// The queue has handed out every sequence number (2^64 pushes); it cannot order
    /// another one by age.
    #[error("signal sequence numbers are exhausted")]
    SequenceExhausted,
}
