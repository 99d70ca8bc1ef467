//! Bearer tokens to client sessions: `Authorization: Bearer <token>` names the one
//! `[[clients]]` entry with that token, and each client has one protocol
//! [`Session`] for all its HTTP connections, which says `hello` for it. Its effects,
//! audit and rate limit are then exactly the socket's.
//!
//! As on the socket, the third failed authentication on one connection closes it.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Instant,
};

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use gamesa_ingress::{
    IngressHub, dispatch,
    session::{HelloRefused, MAX_FAILED_HELLOS, Session},
};
use gamesa_wire::{ErrorBody, ErrorCode, Hello, PROTOCOL_VERSION};

use super::reply::failure;

/// One TCP connection's failed authentications.
#[derive(Debug, Default)]
pub struct ConnectionState {
    failures: AtomicU32,
}

/// A client's protocol session, and the roster generation it last saw.
#[derive(Debug)]
pub struct ClientSession {
    pub session: Session,
    pub roster_seen: u64,
}

/// Every client's session, by client name.
#[derive(Debug, Default)]
pub struct Sessions {
    by_client: Mutex<BTreeMap<String, Arc<Mutex<ClientSession>>>>,
}

impl Sessions {
    /// The session of the client `headers` authenticate as; the error is the reply.
    pub fn authenticate(
        &self,
        hub: &IngressHub,
        connection: &ConnectionState,
        headers: &HeaderMap,
    ) -> Result<Arc<Mutex<ClientSession>>, HelloRefused> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(HelloRefused {
                error: ErrorBody::new(
                    ErrorCode::NotAuthenticated,
                    "this route needs `Authorization: Bearer <token>` with a client's token",
                ),
                close: false,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let roster = hub.roster();
        let Some(client) = token.and_then(|token| roster.directory.by_token(token)) else {
            return Err(refuse(hub, connection));
        };
        let token = token.unwrap_or_default();
        let entry = {
            let mut sessions = self
                .by_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(sessions.entry(client.name.clone()).or_insert_with(|| {
                let settings = hub.settings();
                Arc::new(Mutex::new(ClientSession {
                    session: Session::new(
                        settings.rate_limit_per_s,
                        settings.rate_burst,
                        Instant::now(),
                    ),
                    roster_seen: hub.roster_generation(),
                }))
            }))
        };
        {
            let mut guard = entry.lock().unwrap_or_else(PoisonError::into_inner);
            let ClientSession {
                session,
                roster_seen,
            } = &mut *guard;
            // A reload that changed the client's token ends its session; the token
            // presented matched the new roster, so it says hello again with it.
            dispatch::refresh(hub, session, roster_seen);
            if session.client().is_none() {
                let hello = Hello {
                    protocol_version: PROTOCOL_VERSION,
                    client: client.name.clone(),
                    token: token.to_owned(),
                };
                session.hello(&hello, &roster.directory)?;
            }
        }
        Ok(entry)
    }
}

/// A missing scheme or a token no one client has: audited and counted as the
/// socket counts a failed `hello`; the third on a connection closes it.
fn refuse(hub: &IngressHub, connection: &ConnectionState) -> HelloRefused {
    hub.counters.denied.fetch_add(1, Ordering::Relaxed);
    let failures = connection.failures.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(target: "gamesa::audit", failures, "http request with a bad bearer token refused");
    HelloRefused {
        error: ErrorBody::new(
            ErrorCode::Unauthorized,
            "unknown token: send `Authorization: Bearer <token>` with one client's token",
        ),
        close: failures >= MAX_FAILED_HELLOS,
    }
}

/// The reply to a refused authentication; one that ends the connection says so.
pub fn refused(refused: HelloRefused) -> Response {
    let mut response = failure(refused.error);
    if refused.close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
