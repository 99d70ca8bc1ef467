//! Where a door writes an answer: a MessagePack frame with the request's id (the
//! socket), or an HTTP response with a JSON body (`gamesa-http`). Queries and
//! [`dispatch`](super::dispatch) answer through it without knowing which.

use gamesa_wire::ErrorBody;
use serde::Serialize;

/// A door's way of answering one request.
pub trait Respond {
    fn ok<T: Serialize>(&mut self, result: &T);
    fn error(&mut self, error: ErrorBody);
}
