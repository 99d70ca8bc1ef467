//! Identifiers: agents, orders, leases and the correlation id that follows a request.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A participant of the market: an agent or an external client. Dense and assigned by
/// the runtime in config order, so it is cheap to compare and deterministic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AgentId(pub u32);

/// An order, numbered by the exchange in the order it accepted them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct OrderId(pub u64);

/// A lease created by a fill, numbered by the pool that granted it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

/// Follows one injected message, or one tick, through every decision it causes.
/// In the twin it is derived from the seed, so runs stay reproducible.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CorrelationId(pub Uuid);

impl CorrelationId {
    /// A deterministic id from two numbers (for example a seed and a tick sequence).
    pub fn from_parts(high: u64, low: u64) -> CorrelationId {
        CorrelationId(Uuid::from_u64_pair(high, low))
    }
}

impl std::str::FromStr for CorrelationId {
    type Err = uuid::Error;

    /// Parses the UUID text it is displayed as.
    fn from_str(text: &str) -> Result<CorrelationId, uuid::Error> {
        Uuid::parse_str(text).map(CorrelationId)
    }
}

macro_rules! display_with_prefix {
    ($name:ident, $prefix:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

display_with_prefix!(AgentId, "agent#");
display_with_prefix!(OrderId, "order#");
display_with_prefix!(LeaseId, "lease#");
display_with_prefix!(CorrelationId, "");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlation_id_parses_back_from_its_text_and_bad_text_is_an_error() {
        let id = CorrelationId::from_parts(7, 42);
        assert_eq!(id.to_string().parse::<CorrelationId>(), Ok(id));
        assert!("not-a-uuid".parse::<CorrelationId>().is_err());
    }
}
