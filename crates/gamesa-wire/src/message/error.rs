//! The errors: the stable [`ErrorCode`]s, the [`ErrorBody`] of an error reply, and what
//! decoding a request ([`RequestError`]) or a server frame ([`DecodeError`]) fails with.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::wire_names;

wire_names! {
    /// Why a request failed: stable, lowercase, and part of the protocol.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorCode {
        /// The length prefix is over the cap; the server closes the connection after it.
        FrameTooLarge = "frame_too_large",
        /// The body is not exactly one well-formed MessagePack value.
        MalformedFrame = "malformed_frame",
        /// Containers nest deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
        TooDeep = "too_deep",
        /// Not a map, or a field is missing, of the wrong type, or out of range.
        InvalidRequest = "invalid_request",
        /// `type` names no request of this version.
        UnknownType = "unknown_type",
        /// `hello` named a protocol version the server does not speak.
        UnsupportedVersion = "unsupported_version",
        /// Anything but `hello` and the `health` query before `hello`.
        NotAuthenticated = "not_authenticated",
        /// `hello` with an unknown client or a wrong token.
        Unauthorized = "unauthorized",
        /// A second `hello` on an authenticated connection.
        AlreadyAuthenticated = "already_authenticated",
        /// The client lacks the effect the request needs; the denial is audited.
        Forbidden = "forbidden",
        /// Over the connection's request rate.
        RateLimited = "rate_limited",
        /// `cancel` named an order that is not one of this client's resting orders.
        UnknownOrder = "unknown_order",
        /// `progress` named a component the runtime does not manage.
        UnknownComponent = "unknown_component",
        /// The guardian's ledger refused the bid: not enough credits.
        InsufficientCredits = "insufficient_credits",
        /// The exchange refused the order or cancel.
        Rejected = "rejected",
        /// The server has as many connections as it allows; it closes this one.
        TooManyConnections = "too_many_connections",
        /// Nothing was received for the idle timeout; the server closes the connection.
        IdleTimeout = "idle_timeout",
        /// The runtime is stopping; requests still waiting for a tick get this.
        ShuttingDown = "shutting_down",
        /// A fault of the server itself.
        Internal = "internal",
        /// What the request reads is not kept on this node (`query experiences` with
        /// the journal off).
        Unavailable = "unavailable",
        /// `attach` named an agent that is not an external agent of the session's
        /// client, or one another connection has attached.
        NotYours = "not_yours",
        /// `intents` for a turn that is not open: its deadline passed, it was answered,
        /// or the connection attached no agent.
        NoTurn = "no_turn",
        /// A code this version of the crate does not know (sent by a newer server).
        #[serde(other)]
        Unknown = "unknown",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` of a failed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A request that could not be decoded: the error reply to send, with the request's id
/// when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub id: Option<u64>,
    pub error: ErrorBody,
}

/// A server frame or result a client could not make sense of, or an error reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("server frame: {0}")]
    Malformed(String),
    #[error("server error {0}")]
    Server(ErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::reply::from_value;

    #[test]
    fn error_codes_are_stable_strings() {
        let bytes = rmp_serde::to_vec_named(&ErrorCode::RateLimited).unwrap();
        assert_eq!(bytes[1..], *b"rate_limited");
        let unknown: ErrorCode = from_value(rmpv::Value::from("brand_new")).unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
