//! The HTTP API (`docs/http.md`): Kubernetes-style health probes, Prometheus
//! `/metrics`, and the ingress protocol's queries, signals and orders as JSON.
//!
//! It is a second door into the same [`IngressHub`](gamesa_ingress::IngressHub): a
//! bearer token names one of the `[[clients]]`, and every request goes through the
//! socket's own session, effect check, audit and rate limit
//! ([`gamesa_ingress::dispatch`]). It runs on a tokio runtime of its own thread, so
//! HTTP traffic never runs on the tick's thread.
//!
//! - `server.rs`: the listener, one hyper connection per client with its header-read
//!   timeout, and the stop;
//! - `routes.rs`: the route table and the handlers;
//! - `auth.rs`: bearer tokens to client sessions;
//! - `reply.rs`: JSON bodies and errors, with the protocol's codes and HTTP statuses.

mod auth;
mod reply;
pub mod routes;
mod server;

pub use routes::{OPENAPI, routes};
pub use server::{HttpError, HttpServer};
