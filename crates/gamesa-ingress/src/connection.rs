//! One client connection: a task that reads frames, answers each request in order
//! (through its [`Session`] and the hub), and writes replies and subscription events in
//! batches, until the client goes, idles past its timeout, or the server stops.
//!
//! # Invariants
//! - every request read gets exactly one reply; a connection that must close (a frame
//!   over the size cap, too many failed `hello`s, idle timeout) first answers every
//!   request it read, including those waiting for a tick
//! - a connection stops reading while `max_in_flight` of its requests wait for a tick
//!   or while its unsent output is over [`OUTPUT_HIGH_WATER`]: a client that does not
//!   read slows only itself
//! - nothing is allocated for a frame before its length is checked against the cap

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use gamesa_wire::{
    ErrorBody, ErrorCode, FrameError, HelloResult, IntentsResult, ReplyFrame, Request,
    SubscribeResult, UnsubscribeResult, decode_body, decode_head, encode_frame, split_frame,
};
use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, watch},
    time::Instant,
};

use super::{
    dispatch::{self, Carried},
    hub::{Deferred, IngressHub},
    query,
    respond::Respond,
    session::Session,
    subscriptions::EventQueue,
};

/// Unsent output past which a connection stops reading requests and draining events.
pub const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// How long a stopping server tries to deliver a connection's last replies.
pub(super) const FAREWELL: Duration = Duration::from_secs(1);
/// After its farewell, a connection reads what its client already sent until the client
/// has been silent this long (or until [`FAREWELL`] is up), so that closing it does
/// not reset the connection before the client has read the notice.
const DRAIN_IDLE: Duration = Duration::from_millis(50);
/// One connection's state between reads.
pub(super) struct Connection {
    hub: Arc<IngressHub>,
    number: u64,
    queue: Arc<EventQueue>,
    session: Session,
    /// Replies to orders and cancels come back here after their tick.
    deferred_sender: mpsc::UnboundedSender<Deferred>,
    deferred: mpsc::UnboundedReceiver<Deferred>,
    /// Requests read whose reply waits for a tick.
    waiting: usize,
    /// Read nothing more; close once every reply is written.
    closing: bool,
    output: Vec<u8>,
    written: usize,
    /// The roster generation this connection's session was last checked against.
    roster_seen: u64,
    /// Signals sent with `hold`, by kind, with the client that sent them (a reload may
    /// end the session before the connection): let go when the connection ends (the
    /// hub releases a signal when its last holder goes), and while there are any the
    /// connection never idles out.
    held: std::collections::BTreeMap<
        gamesa_proto::SignalKind,
        (Arc<crate::clients::ClientEntry>, gamesa_wire::SignalRequest),
    >,
}

impl Connection {
    pub(super) fn new(hub: Arc<IngressHub>) -> Connection {
        let (number, queue) = hub.open_connection();
        let settings = hub.settings();
        let session = Session::new(
            settings.rate_limit_per_s,
            settings.rate_burst,
            std::time::Instant::now(),
        );
        let (deferred_sender, deferred) = mpsc::unbounded_channel();
        Connection {
            hub,
            number,
            queue,
            session,
            deferred_sender,
            deferred,
            waiting: 0,
            closing: false,
            output: Vec::with_capacity(16 * 1024),
            written: 0,
            roster_seen: 0,
            held: std::collections::BTreeMap::new(),
        }
    }

    fn unsent(&self) -> usize {
        self.output.len() - self.written
    }

    pub(super) async fn run<R, W>(
        mut self,
        mut reader: R,
        mut writer: W,
        mut shutdown: watch::Receiver<bool>,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let settings = self.hub.settings().clone();
        let max_frame = settings.max_frame_bytes;
        let idle = Duration::from_secs_f64(settings.idle_timeout_s);
        let max_in_flight = settings.max_in_flight as usize;
        let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
        let mut read_closed = false;
        let mut last_heard = Instant::now();
        loop {
            if self.unsent() == 0 {
                self.output.clear();
                self.written = 0;
            }
            // Answer every complete frame, as long as output and waiting allow.
            let mut consumed = 0;
            while !self.closing && self.waiting < max_in_flight && self.unsent() < OUTPUT_HIGH_WATER
            {
                match split_frame(&input[consumed..], max_frame) {
                    Ok(Some(total)) => {
                        let now = std::time::Instant::now();
                        let body = &input[consumed + 4..consumed + total];
                        self.handle_frame(body, now);
                        consumed += total;
                    }
                    Ok(None) => break,
                    Err(FrameError::TooLarge { length, max }) => {
                        self.reply_error(
                            None,
                            ErrorBody::new(
                                ErrorCode::FrameTooLarge,
                                format!("a frame of {length} bytes is over the {max}-byte limit; closing"),
                            ),
                        );
                        self.closing = true;
                        consumed = input.len();
                    }
                    Err(_) => break,
                }
            }
            input.drain(..consumed);
            if read_closed && !self.closing {
                if !input.is_empty() {
                    self.reply_error(
                        None,
                        ErrorBody::new(
                            ErrorCode::MalformedFrame,
                            "the stream ended inside a frame",
                        ),
                    );
                    input.clear();
                }
                self.closing = true;
            }
            // The budget counts unsent bytes only: what was written is no backlog.
            if self.queue.is_subscribed()
                && self.unsent() < OUTPUT_HIGH_WATER
                && let Err(error) = self
                    .queue
                    .drain_into(&mut self.output, self.written + OUTPUT_HIGH_WATER)
            {
                tracing::error!(%error, "cannot encode an event");
            }
            if self.closing && self.waiting == 0 && self.unsent() == 0 {
                break;
            }
            let want_read = !self.closing
                && !read_closed
                && self.waiting < max_in_flight
                && self.unsent() < OUTPUT_HIGH_WATER;
            if want_read {
                // Room for the frame being read (its length is already checked), or a
                // chunk; never more than the cap.
                let wanted = match split_frame(&input, max_frame) {
                    Ok(None) if input.len() >= 4 => {
                        let length = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);
                        (length as usize + 4).saturating_sub(input.len()).max(4096)
                    }
                    _ => 16 * 1024,
                };
                input.reserve(wanted);
            }
            let may_idle = !self.closing
                && self.waiting == 0
                && !self.queue.is_subscribed()
                && self.held.is_empty();
            let wants_events = self.queue.is_subscribed() && self.unsent() < OUTPUT_HIGH_WATER;
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    self.farewell(&mut reader, &mut writer).await;
                    break;
                }
                Some(reply) = self.deferred.recv(), if self.waiting > 0 => {
                    self.write_deferred(reply);
                    self.waiting -= 1;
                    while self.waiting > 0 {
                        let Ok(reply) = self.deferred.try_recv() else { break };
                        self.write_deferred(reply);
                        self.waiting -= 1;
                    }
                }
                written = writer.write(&self.output[self.written..]), if self.unsent() > 0 => {
                    match written {
                        Ok(0) | Err(_) => break,
                        Ok(count) => self.written += count,
                    }
                }
                read = reader.read_buf(&mut input), if want_read => {
                    match read {
                        Ok(0) => read_closed = true,
                        Ok(_) => last_heard = Instant::now(),
                        Err(_) => break,
                    }
                }
                _ = self.queue.ready.notified(), if wants_events => {}
                _ = tokio::time::sleep_until(last_heard + idle), if may_idle => {
                    self.reply_error(
                        None,
                        ErrorBody::new(
                            ErrorCode::IdleTimeout,
                            format!("nothing received for {:.1} s; closing", idle.as_secs_f64()),
                        ),
                    );
                    self.closing = true;
                }
            }
        }
        let _ = writer.shutdown().await;
        for (client, held) in self.held.values() {
            self.hub.unhold_signal(client, held, true);
        }
        self.hub.close_connection(self.number);
        self.hub.counters.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// The server is stopping: deliver what is already answered, say so, and go.
    async fn farewell<R, W>(&mut self, reader: &mut R, writer: &mut W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        while let Ok(reply) = self.deferred.try_recv() {
            self.write_deferred(reply);
        }
        self.reply_error(
            None,
            ErrorBody::new(ErrorCode::ShuttingDown, "the server is stopping"),
        );
        let deadline = Instant::now() + FAREWELL;
        let unsent = &self.output[self.written..];
        if tokio::time::timeout_at(deadline, writer.write_all(unsent))
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::time::timeout_at(deadline, writer.shutdown()).await;
        // A TCP socket closed with unread input resets the connection, and a reset
        // discards what the peer has not yet received: the notice itself. Read what the
        // client already sent (requests no one will answer) before closing.
        let mut discard = vec![0u8; 16 * 1024];
        loop {
            let silent_until = (Instant::now() + DRAIN_IDLE).min(deadline);
            match tokio::time::timeout_at(silent_until, reader.read(&mut discard)).await {
                Ok(Ok(read)) if read > 0 => {}
                // The end of the stream, an error, or silence.
                _ => break,
            }
        }
    }

    /// Encodes what became of an order or cancel after its tick.
    fn write_deferred(&mut self, (id, settled): Deferred) {
        match settled {
            Ok(settled) => self.reply_ok(id, &settled),
            Err(error) => self.reply_error(Some(id), error),
        }
    }

    fn reply_ok<T: Serialize>(&mut self, id: u64, result: &T) {
        if let Err(error) = encode_frame(&ReplyFrame::ok(id, result), &mut self.output) {
            self.reply_error(
                Some(id),
                ErrorBody::new(ErrorCode::Internal, error.to_string()),
            );
        }
    }

    fn reply_error(&mut self, id: Option<u64>, error: ErrorBody) {
        if encode_frame(&ReplyFrame::error(id, &error), &mut self.output).is_err() {
            tracing::error!(%error, "cannot encode an error reply");
        }
    }

    /// Answers one request (or queues it for the next tick); never fails the
    /// connection except by setting `closing`.
    fn handle_frame(&mut self, body: &[u8], now: std::time::Instant) {
        let hub = Arc::clone(&self.hub);
        hub.counters.requests.fetch_add(1, Ordering::Relaxed);
        if !self.session.admit_rate(now) {
            let id = gamesa_wire::request_id(body);
            let settings = hub.settings();
            return self.reply_error(
                id,
                ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "over {} requests per second (burst {})",
                        settings.rate_limit_per_s, settings.rate_burst
                    ),
                ),
            );
        }
        let head = match decode_head(body) {
            Ok(head) => head,
            Err(error) => return self.reply_error(error.id, error.error),
        };
        let id = head.id;
        if !self.session.may_precede_hello(head.kind) {
            return self.reply_error(
                Some(id),
                ErrorBody::new(
                    ErrorCode::NotAuthenticated,
                    "say hello first: only hello and the health query come before it",
                ),
            );
        }
        let request = match decode_body(head, body) {
            Ok(request) => request,
            Err(error) => {
                if head.kind == gamesa_wire::RequestType::Intents {
                    // An attached agent's answer that is not intents fails its turn.
                    hub.external.garbage(self.number, &error.error.message);
                }
                return self.reply_error(error.id, error.error);
            }
        };
        if let Request::Hello(hello) = &request {
            return match self.session.hello(hello, &hub.roster().directory) {
                Ok(authenticated) => {
                    let client = Arc::clone(&authenticated.client);
                    tracing::info!(client = %client.name, agent = %client.agent, "ingress client said hello");
                    self.reply_ok(
                        id,
                        &HelloResult {
                            protocol_version: gamesa_wire::PROTOCOL_VERSION,
                            server: query::server_name(),
                            client: client.name.clone(),
                            agent: client.agent,
                            effects: client.effects.iter().map(ToString::to_string).collect(),
                            limits: hub.limits(),
                        },
                    );
                }
                Err(refused) => {
                    hub.counters.denied.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "gamesa::audit", client = %hello.client, code = %refused.error.code, "ingress hello refused");
                    self.reply_error(Some(id), refused.error);
                    if refused.close {
                        self.closing = true;
                    }
                }
            };
        }
        let client =
            match dispatch::authorize(&hub, &mut self.session, &mut self.roster_seen, &request) {
                Ok(client) => client,
                Err(error) => return self.reply_error(Some(id), error),
            };
        // A held signal is the connection's to let go of; the queue keeps one signal
        // per kind and client, so a later one of the same kind replaces a held one,
        // which is then no longer held.
        if let (Request::Signal(signal), Some(client)) = (&request, &client) {
            if signal.hold {
                let kind = signal.kind.clone();
                if self
                    .held
                    .insert(kind.clone(), (Arc::clone(client), signal.clone()))
                    .is_none()
                {
                    hub.hold_signal(client, &kind);
                }
            } else if let Some((holder, held)) = self.held.remove(&signal.kind) {
                hub.unhold_signal(&holder, &held, false);
            }
        }
        let mut respond = FrameReply {
            id,
            out: &mut self.output,
        };
        match dispatch::carry_out(
            &hub,
            client.as_ref(),
            (id, request),
            &self.deferred_sender,
            &mut respond,
        ) {
            Carried::Answered => {}
            Carried::AfterTick => self.waiting += 1,
            Carried::Door(Request::Subscribe(topic)) => {
                self.queue.subscribe(topic.topic);
                self.reply_ok(
                    id,
                    &SubscribeResult {
                        topic: topic.topic,
                        queue: hub.settings().subscription_queue,
                    },
                );
            }
            Carried::Door(Request::Unsubscribe(topic)) => {
                let lost = self.queue.unsubscribe(topic.topic);
                self.reply_ok(
                    id,
                    &UnsubscribeResult {
                        topic: topic.topic,
                        lost,
                    },
                );
            }
            Carried::Door(Request::Attach(attach)) => {
                let Some(client) = &client else { return };
                let deadline_ms = hub.roster().agent_deadline_ms;
                match hub.external.attach(
                    self.number,
                    &self.queue,
                    &client.name,
                    &attach.agent,
                    deadline_ms,
                ) {
                    Ok(result) => {
                        tracing::info!(client = %client.name, agent = %result.agent, "external agent attached");
                        self.reply_ok(id, &result);
                    }
                    Err(error) => self.reply_error(Some(id), error),
                }
            }
            Carried::Door(Request::Intents(answer)) => {
                match hub.external.answer(self.number, answer) {
                    Ok((agent, tick, intents)) => self.reply_ok(
                        id,
                        &IntentsResult {
                            agent,
                            tick,
                            intents: u32::try_from(intents).unwrap_or(u32::MAX),
                        },
                    ),
                    Err(error) => self.reply_error(Some(id), error),
                }
            }
            // Hello was answered above, and the rest needs a client, which the
            // authorization above made sure of.
            Carried::Door(_) => {}
        }
    }
}

/// Writes an answer as one reply frame with the request's id.
struct FrameReply<'a> {
    id: u64,
    out: &'a mut Vec<u8>,
}

impl Respond for FrameReply<'_> {
    fn ok<T: Serialize>(&mut self, result: &T) {
        if let Err(error) = encode_frame(&ReplyFrame::ok(self.id, result), self.out) {
            self.error(ErrorBody::new(ErrorCode::Internal, error.to_string()));
        }
    }

    fn error(&mut self, error: ErrorBody) {
        if encode_frame(&ReplyFrame::error(Some(self.id), &error), self.out).is_err() {
            tracing::error!(%error, "cannot encode an error reply");
        }
    }
}

#[cfg(test)]
mod tests {
    //! A connection's life at its ends, in virtual time (paused tokio clock) with mock
    //! I/O: the writer is a `tokio_test` mock that fails the test on any byte it was not
    //! told to expect; the reader is one half of an in-memory pipe the test holds.
    #![allow(clippy::unwrap_used)]

    use tokio_test::{assert_pending, assert_ready, io::Builder, task};

    use super::*;

    fn hub() -> Arc<IngressHub> {
        let config = gamesa_config::Config::from_toml_str(
            "[guardian]",
            std::path::Path::new("test.toml"),
            std::iter::empty(),
            &gamesa_agent::AgentRegistry::new(),
        )
        .unwrap();
        Arc::new(IngressHub::new(&config, &mut |_| None).unwrap())
    }

    /// The bytes of the error reply `code`, `message` that a connection writes.
    fn error_reply(code: ErrorCode, message: &str) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(
            &ReplyFrame::error(None, &ErrorBody::new(code, message)),
            &mut frame,
        )
        .unwrap();
        frame
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_told_and_closed_after_exactly_the_idle_timeout() {
        let hub = hub();
        let idle = Duration::from_secs_f64(hub.settings().idle_timeout_s);
        // The client keeps its end open and says nothing.
        let (_client, reader) = tokio::io::duplex(1024);
        let writer = Builder::new()
            .write(&error_reply(
                ErrorCode::IdleTimeout,
                &format!("nothing received for {:.1} s; closing", idle.as_secs_f64()),
            ))
            .build();
        let (_stop, shutdown) = watch::channel(false);
        let started = Instant::now();
        Connection::new(Arc::clone(&hub))
            .run(reader, writer, shutdown)
            .await;
        assert_eq!(started.elapsed(), idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_server_says_so_then_closes() {
        let (client, reader) = tokio::io::duplex(1024);
        let writer = Builder::new()
            .write(&error_reply(
                ErrorCode::ShuttingDown,
                "the server is stopping",
            ))
            .build();
        let (stop, shutdown) = watch::channel(false);
        let mut connection = task::spawn(Connection::new(hub()).run(reader, writer, shutdown));
        assert_pending!(connection.poll());
        stop.send(true).unwrap();
        // The client hangs up: the farewell's read of what it had sent ends there.
        drop(client);
        assert_ready!(connection.poll());
    }
}
