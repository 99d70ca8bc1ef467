//! Domain and wire types shared by every GAMESA crate: validation only, no logic.
//!
//! Everything here is plain data with `serde` derives. Constructors and `validate`
//! methods reject bad values with a typed [`ProtoError`]; nothing in this crate reads
//! a clock, a random source or a file.

mod actuation;
mod effect;
mod error;
mod experience;
mod ids;
mod intent;
mod order;
mod resource;
mod signal;
mod telemetry;
mod units;

pub use actuation::{Actuation, ActuationKind};
pub use effect::{Effect, EffectAction, QUERY_SCOPES, SUBSCRIBE_SCOPES};
pub use error::ProtoError;
pub use experience::Experience;
pub use ids::{AgentId, CorrelationId, LeaseId, OrderId};
pub use intent::{Intent, OrderIntent, SignalIntent};
pub use order::{Fill, Lease, OrderRequest, Side, TimeInForce};
pub use resource::Resource;
pub use signal::{Domain, Signal, SignalKind, Strength};
pub use telemetry::{
    ComponentKind, ComponentTelemetry, CpuTelemetry, GpuTelemetry, MemoryTelemetry, NodeTelemetry,
    PowerDomainTelemetry, PressureTelemetry, SourceStatus, TelemetryFrame, TemperatureTelemetry,
};
pub use units::{Credits, Price, Quantity, Tick};
