//! One connection's session, as a pure state machine: `hello` and authentication, the
//! rule of what may come before it, the per-connection rate limit, and the capability
//! check of every request against the client's effects.
//!
//! Time comes in as an argument; nothing here reads a clock or does I/O.
//!
//! # Invariants
//! - before a successful `hello`, only `hello` and the `health` query are admitted
//! - every capability check goes through the guardian's [`EffectTable`] and is audited:
//!   the records of the check are returned to the caller, denied or not
//! - at most `burst + rate × elapsed` requests are admitted in any stretch of time

use std::{sync::Arc, time::Instant};

use gamesa_guardian::{AuditRecord, EffectTable};
use gamesa_proto::{Effect, EffectAction, Tick};
use gamesa_wire::{ErrorBody, ErrorCode, Hello, PROTOCOL_VERSION, QueryName, Request, RequestType};

use super::clients::{ClientDirectory, ClientEntry};

/// Failed `hello`s after which the connection is closed.
pub const MAX_FAILED_HELLOS: u32 = 3;

/// A token bucket: `burst` requests at once, refilled at `rate_per_s`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_s: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed_s = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed_s * self.rate_per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An authenticated client, with its own copy of the guardian's capability table.
#[derive(Debug)]
pub struct Authenticated {
    pub client: Arc<ClientEntry>,
    effects: EffectTable,
}

/// Why a `hello` failed, and whether the connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloRefused {
    pub error: ErrorBody,
    pub close: bool,
}

/// A connection's session.
#[derive(Debug)]
pub struct Session {
    authenticated: Option<Authenticated>,
    failed_hellos: u32,
    bucket: TokenBucket,
}

impl Session {
    pub fn new(rate_per_s: u32, burst: u32, now: Instant) -> Session {
        Session {
            authenticated: None,
            failed_hellos: 0,
            bucket: TokenBucket::new(rate_per_s, burst, now),
        }
    }

    /// Counts one request against the rate limit; `false` means refuse it.
    pub fn admit_rate(&mut self, now: Instant) -> bool {
        self.bucket.try_take(now)
    }

    pub fn client(&self) -> Option<&Arc<ClientEntry>> {
        self.authenticated.as_ref().map(|session| &session.client)
    }

    /// Whether a request of this type may be read before `hello` (`query` may: its
    /// body decides, see [`Session::authorize`]).
    pub fn may_precede_hello(&self, kind: RequestType) -> bool {
        self.authenticated.is_some() || matches!(kind, RequestType::Hello | RequestType::Query)
    }

    /// Authenticates the connection: the version must match, the client must exist and
    /// the token must be its own.
    pub fn hello(
        &mut self,
        hello: &Hello,
        directory: &ClientDirectory,
    ) -> Result<&Authenticated, HelloRefused> {
        if self.authenticated.is_some() {
            return Err(HelloRefused {
                error: ErrorBody::new(
                    ErrorCode::AlreadyAuthenticated,
                    "this connection already said hello",
                ),
                close: false,
            });
        }
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(HelloRefused {
                error: ErrorBody::new(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "the client speaks protocol version {}, this server speaks version {}",
                        hello.protocol_version, PROTOCOL_VERSION
                    ),
                ),
                close: false,
            });
        }
        let Some(client) = directory
            .get(&hello.client)
            .filter(|client| client.token_matches(&hello.token))
        else {
            self.failed_hellos += 1;
            return Err(HelloRefused {
                error: ErrorBody::new(ErrorCode::Unauthorized, "unknown client or wrong token"),
                close: self.failed_hellos >= MAX_FAILED_HELLOS,
            });
        };
        let mut effects = EffectTable::new();
        effects.grant_all(client.agent, client.effects.iter().cloned());
        Ok(self.authenticated.insert(Authenticated {
            client: Arc::clone(client),
            effects,
        }))
    }

    /// Takes the directory's current entry for the authenticated client when a reload
    /// replaced it: its effects apply from this request on. When its token changed (a
    /// leaked one rotated), the connection is no longer authenticated and must say
    /// hello with the new one.
    pub fn refresh(&mut self, directory: &ClientDirectory) {
        let Some(authenticated) = self.authenticated.as_mut() else {
            return;
        };
        let current = directory.get(&authenticated.client.name);
        if current.is_none_or(|current| !current.same_token(&authenticated.client)) {
            self.authenticated = None;
            return;
        }
        let Some(current) = current else {
            return;
        };
        if !Arc::ptr_eq(current, &authenticated.client) {
            let mut effects = EffectTable::new();
            effects.grant_all(current.agent, current.effects.iter().cloned());
            *authenticated = Authenticated {
                client: Arc::clone(current),
                effects,
            };
        }
    }

    /// The effect `request` needs: `None` for those anyone may send (`hello`, the
    /// `health` query, `unsubscribe`) and for an external agent's `attach` and
    /// `intents`, which config grants by naming the client on the agent. A `cancel` needs `order:<resource>` of the
    /// order, which the caller looked up; a `progress` report `progress:<component>`.
    pub fn required_effect(
        request: &Request,
        cancel_resource: Option<gamesa_proto::Resource>,
    ) -> Option<Effect> {
        let effect = |action, scope: &str| {
            Some(Effect {
                action,
                scope: scope.to_owned(),
            })
        };
        match request {
            Request::Hello(_)
            | Request::Unsubscribe(_)
            | Request::Attach(_)
            | Request::Intents(_) => None,
            Request::Query(query) if query.query == QueryName::Health => None,
            Request::Query(query) => effect(EffectAction::Query, query.query.as_str()),
            Request::Signal(signal) => effect(EffectAction::Signal, signal.domain.as_str()),
            Request::Order(order) => effect(EffectAction::Order, order.resource.as_str()),
            Request::Cancel(_) => effect(
                EffectAction::Order,
                cancel_resource.map_or("*", |resource| resource.as_str()),
            ),
            Request::Subscribe(topic) => effect(EffectAction::Subscribe, topic.topic.as_str()),
            Request::Progress(report) => effect(EffectAction::Progress, report.component.as_str()),
        }
    }

    /// Checks `request` against the session: authenticated (except `health`), and
    /// holding the effect it needs. Returns the audit records of the check with the
    /// verdict, so the caller can log them.
    pub fn authorize(
        &mut self,
        tick: Tick,
        request: &Request,
        cancel_resource: Option<gamesa_proto::Resource>,
    ) -> (Result<(), ErrorBody>, Vec<AuditRecord>) {
        let needed = Session::required_effect(request, cancel_resource);
        let Some(session) = self.authenticated.as_mut() else {
            let verdict = match (request, &needed) {
                (Request::Hello(_), _) | (Request::Query(_), None) => Ok(()),
                _ => Err(ErrorBody::new(
                    ErrorCode::NotAuthenticated,
                    "say hello first: only hello and the health query come before it",
                )),
            };
            return (verdict, Vec::new());
        };
        let Some(effect) = needed else {
            return (Ok(()), Vec::new());
        };
        let allowed = session.effects.check(tick, session.client.agent, &effect);
        let audit = session.effects.drain_audit().collect();
        let verdict = if allowed {
            Ok(())
        } else {
            Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!(
                    "client `{}` lacks the effect `{effect}`",
                    session.client.name
                ),
            ))
        };
        (verdict, audit)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gamesa_agent::AgentRegistry;
    use gamesa_proto::{Domain, SignalKind, Strength};
    use gamesa_wire::{SignalRequest, Topic, TopicRequest};

    use super::*;
    use gamesa_config::Config;

    fn directory() -> ClientDirectory {
        let text = r#"
            [guardian]
            [[clients]]
            name = "game"
            token = "game-token-1"
            effects = ["signal:performance", "query:book", "subscribe:*", "progress:gpu0"]
        "#;
        let config = Config::from_toml_str(
            text,
            std::path::Path::new("test.toml"),
            std::iter::empty(),
            &AgentRegistry::new(),
        )
        .unwrap();
        ClientDirectory::from_config(&config, &mut |_| None).unwrap()
    }

    fn hello(client: &str, token: &str, version: u32) -> Hello {
        Hello {
            protocol_version: version,
            client: client.into(),
            token: token.into(),
        }
    }

    fn signal(domain: Domain) -> Request {
        Request::Signal(SignalRequest {
            kind: SignalKind::new("game_started").unwrap(),
            domain,
            strength: Strength::MAX,
            ttl_ticks: None,
            hold: false,
        })
    }

    #[test]
    fn only_hello_and_health_come_before_hello() {
        let mut session = Session::new(100, 100, Instant::now());
        let health = Request::query(QueryName::Health);
        assert_eq!(session.authorize(Tick(0), &health, None).0, Ok(()));
        let book = Request::query(QueryName::Book);
        for request in [book, signal(Domain::Performance)] {
            let (verdict, _) = session.authorize(Tick(0), &request, None);
            assert_eq!(verdict.unwrap_err().code, ErrorCode::NotAuthenticated);
        }
    }

    #[test]
    fn hello_checks_version_then_name_and_token() {
        let directory = directory();
        let mut session = Session::new(100, 100, Instant::now());
        let error = session
            .hello(&hello("game", "game-token-1", 99), &directory)
            .unwrap_err();
        assert_eq!(error.error.code, ErrorCode::UnsupportedVersion);
        assert!(error.error.message.contains("99") && error.error.message.contains('1'));
        for _ in 1..MAX_FAILED_HELLOS {
            let refused = session
                .hello(&hello("game", "wrong-token", 1), &directory)
                .unwrap_err();
            assert_eq!(refused.error.code, ErrorCode::Unauthorized);
            assert!(!refused.close);
        }
        let refused = session
            .hello(&hello("nobody", "game-token-1", 1), &directory)
            .unwrap_err();
        assert!(refused.close, "the third failure closes the connection");
        let mut session = Session::new(100, 100, Instant::now());
        let authenticated = session
            .hello(&hello("game", "game-token-1", 1), &directory)
            .unwrap();
        assert_eq!(authenticated.client.name, "game");
        assert_eq!(
            session
                .hello(&hello("game", "game-token-1", 1), &directory)
                .unwrap_err()
                .error
                .code,
            ErrorCode::AlreadyAuthenticated
        );
    }

    #[test]
    fn every_request_is_checked_against_the_effects_and_audited() {
        let directory = directory();
        let mut session = Session::new(100, 100, Instant::now());
        session
            .hello(&hello("game", "game-token-1", 1), &directory)
            .unwrap();
        let (verdict, audit) = session.authorize(Tick(3), &signal(Domain::Performance), None);
        assert_eq!(verdict, Ok(()));
        assert_eq!(audit.len(), 1);
        assert!(audit[0].allowed);
        let (verdict, audit) = session.authorize(Tick(3), &signal(Domain::Safety), None);
        let error = verdict.unwrap_err();
        assert_eq!(error.code, ErrorCode::Forbidden);
        assert!(error.message.contains("signal:safety"), "{error}");
        assert_eq!(audit.len(), 1);
        assert!(!audit[0].allowed);
        let subscribe = Request::Subscribe(TopicRequest {
            topic: Topic::Vetoes,
        });
        assert_eq!(session.authorize(Tick(3), &subscribe, None).0, Ok(()));
    }

    #[test]
    fn a_progress_report_needs_progress_of_its_component() {
        let directory = directory();
        let mut session = Session::new(100, 100, Instant::now());
        session
            .hello(&hello("game", "game-token-1", 1), &directory)
            .unwrap();
        let report = |component: &str| {
            Request::Progress(gamesa_wire::ProgressRequest {
                component: gamesa_wire::ComponentName::new(component).unwrap(),
                amount: gamesa_wire::ProgressAmount::try_from(1.0).unwrap(),
                left: None,
            })
        };
        let (verdict, audit) = session.authorize(Tick(4), &report("gpu0"), None);
        assert_eq!(verdict, Ok(()));
        assert!(audit[0].allowed);
        let (verdict, audit) = session.authorize(Tick(4), &report("cpu"), None);
        let error = verdict.unwrap_err();
        assert_eq!(error.code, ErrorCode::Forbidden);
        assert!(error.message.contains("progress:cpu"), "{error}");
        assert!(!audit[0].allowed);
    }

    #[test]
    fn the_rate_limit_is_a_token_bucket() {
        let start = Instant::now();
        let mut session = Session::new(10, 5, start);
        let admitted = (0..20).filter(|_| session.admit_rate(start)).count();
        assert_eq!(admitted, 5, "the burst");
        assert!(!session.admit_rate(start));
        let later = start + Duration::from_millis(350);
        let admitted = (0..20).filter(|_| session.admit_rate(later)).count();
        assert_eq!(admitted, 3, "10 per second for 0.35 s");
    }
}
