//! The messages of the ingress protocol, version [`PROTOCOL_VERSION`]: requests, the one
//! reply each gets, subscription events, and the stable error codes.
//!
//! Every frame body is a MessagePack map with named fields. A request names its kind in
//! `type` and carries a client-chosen `id`; fields a message does not define are ignored,
//! so a client may send optional fields a later version adds. A reply is
//! `{ id, ok: true, result }` or `{ id, ok: false, error: { code, message } }`; an event
//! is `{ topic, seq, tick, lost, data }` and has no `id`.
//!
//! Decoding runs in three steps, each with its own error code: the structure check
//! ([`crate::check_structure`]), the head (`id` and `type`), then the fields of that type.
//!
//! One file each: `request` has the requests and their decoding, `reply` the reply frame,
//! each request's result and the client's decoding of server frames, `event` the topics,
//! the event frame and each topic's data, `error` the error codes and the errors of
//! decoding, and `names` the macro that writes each enum's wire names once.

mod error;
mod event;
mod names;
mod reply;
mod request;

pub use error::*;
pub use event::*;
pub use reply::*;
pub use request::*;

/// The protocol version this crate speaks; `hello` must name it.
pub const PROTOCOL_VERSION: u32 = 1;
/// The default frame-size cap, in bytes of body.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 * 1024;
/// How deep containers may nest in a request.
pub const MAX_DEPTH: usize = 16;
