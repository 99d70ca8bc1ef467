//! The one error type of the proto crate: every way a value can fail validation.

use thiserror::Error;

use crate::{Price, Quantity, Tick};

/// A value that failed validation. Each variant carries what was wrong, so a test can
/// `assert_eq!` on it and an edge (config loader, socket) can turn it into a message.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize)]
pub enum ProtoError {
    #[error("unknown resource `{name}` (expected one of {expected})")]
    UnknownResource {
        name: String,
        expected: &'static str,
    },
    #[error("unknown domain `{name}` (expected one of {expected})")]
    UnknownDomain {
        name: String,
        expected: &'static str,
    },
    #[error("quantity must be between 1 and {max}, got {quantity}")]
    QuantityOutOfRange { quantity: Quantity, max: Quantity },
    #[error("price must be between {min} and {max}, got {price}")]
    PriceOutOfRange {
        price: Price,
        min: Price,
        max: Price,
    },
    #[error("expiry tick {expires_at} is not after the current tick {now}")]
    ExpiryInPast { expires_at: Tick, now: Tick },
    #[error("an immediate-or-cancel order cannot carry an expiry")]
    IocWithExpiry,
    #[error("signal strength must be a finite number in [0, 1], got {0}")]
    StrengthOutOfRange(String),
    #[error("signal kind must be 1 to 64 characters of [a-z0-9_.-], got `{0}`")]
    InvalidSignalKind(String),
    #[error("signal ttl must be at least one tick")]
    ZeroTtl,
    #[error("invalid effect `{effect}`: {reason}")]
    InvalidEffect { effect: String, reason: String },
    #[error("invalid actuation: {0}")]
    InvalidActuation(String),
}
