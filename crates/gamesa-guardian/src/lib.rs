//! The guardian core: capabilities ("effects"), safety contracts, the central-bank
//! ledger and the action gate, behind one [`Guardian`] facade.
//!
//! Everything here is pure, synchronous and deterministic: no clock, no randomness, no
//! I/O. Ticks, epochs and telemetry come in as arguments, and every map whose order can
//! reach an output is a `BTreeMap`. The runtime's guardian actor owns one [`Guardian`],
//! calls it, and forwards what it returns.
//!
//! - [`effects`]: who may do what; default deny; every check is audited.
//! - [`contract`]: a small expression language for pre-conditions, post-conditions and
//!   invariants, checked against a schema when config loads.
//! - [`ledger`]: the double-entry credit ledger; credits are conserved by construction.
//! - [`gate`]: device bounds, rate limits and hysteresis per actuation target.
//! - [`verdict`]: allow, clamp or deny, always with a reason.
//! - [`Guardian::admit`] and [`Guardian::settle`]: the guardian's side of a tick's
//!   phases, over intents and market events.
//! - [`safety`]: the answer to a pre-empting signal: safe limits at once.
//! - [`supervision`]: restart or isolate a failing agent, counted in tick time.

pub mod contract;
pub mod effects;
pub mod gate;
mod guardian;
pub mod ledger;
pub mod safety;
pub mod supervision;
pub mod verdict;

pub use contract::{
    ClauseOutcome, ClauseReport, Contract, ContractError, ContractFailure, ContractPhase,
    ContractReport, ContractScope, ContractSet, ContractSetError, Env, MissingValuePolicy, Schema,
    Subject, TelemetryEnv, env_from_telemetry, schema_for_components,
};
pub use effects::{AuditRecord, EffectTable};
pub use gate::{Gate, GateError, GateReason, GateRule, GateVerdict, RateLimit, Urgency};
pub use guardian::{Admission, Guardian, GuardianConfig, GuardianError, Settlement, StampedIntent};
pub use ledger::{
    AccountBalance, AccountRef, Escrow, FillSettlement, Ledger, LedgerConfig, LedgerError,
    MintReport, Posting,
};
pub use safety::{SafetyPolicy, SafetyResponse};
pub use supervision::{SupervisionDecision, Supervisor};
pub use verdict::{Reason, Verdict};
