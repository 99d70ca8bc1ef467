//! The GAMESA ingress protocol, shared by the server and every Rust client: frames (a
//! 4-byte big-endian length, then one MessagePack map), the MessagePack structure check
//! that runs before any decoding, the request/reply/event messages with their stable
//! error codes, and a small blocking client.
//!
//! No async runtime and no I/O of its own beyond `std::io` traits: the server wraps the
//! pure parts in tokio, and `gamesa send`, the examples and the tests use [`Client`].
//! `docs/protocol.md` is the written specification.

pub mod client;
pub mod frame;
pub mod message;
pub mod structure;

pub use client::{Client, ClientError};
pub use frame::{FrameError, encode_frame, split_frame};
pub use message::*;
pub use structure::{StructureError, check_structure};
