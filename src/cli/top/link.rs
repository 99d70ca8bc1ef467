//! The connection `gamesa top` reads through, on threads of its own: connect, say
//! hello, subscribe, poll the daemon's state once per refresh, pass every reply and
//! event on as an [`Update`], and start over a second after the connection is lost.
//!
//! One thread reads the connection and blocks on it: a read timeout could split a
//! frame and lose the stream's framing. A second one writes the polls into a clone of
//! the stream, with ids of its own ([`PollQuery`]), and stops when the reader drops its
//! end of their channel.

use std::{
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread,
    time::Duration,
};

use gamesa_wire::{
    Client, ClientError, HealthResult, QueryName, Reply, Request, ServerFrame, SubscribeResult,
    Topic, TopicRequest, client::Duplex,
};

use super::model::Update;
use crate::cli::send::{ConnectArgs, Door};

/// How often telemetry and allocations are asked for.
pub const POLL: Duration = Duration::from_millis(250);
/// How long after a lost connection (or a failed attempt) the next attempt is made.
const RETRY: Duration = Duration::from_secs(1);
/// How long the hello, the health query and each subscription may take: a daemon that
/// accepts but does not answer is tried again.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// The topics top shows.
const TOPICS: [Topic; 3] = [Topic::Prices, Topic::Signals, Topic::Vetoes];

/// What a poll asks. Its requests' ids start at 2^32, far above the few the client
/// itself numbers (hello, health, subscriptions), so that a reply's id says which
/// query it answers: even for telemetry, odd for allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollQuery {
    Telemetry,
    Allocations,
}

impl PollQuery {
    const FIRST_ID: u64 = 1 << 32;

    fn id(self, round: u64) -> u64 {
        let offset = match self {
            PollQuery::Telemetry => 0,
            PollQuery::Allocations => 1,
        };
        Self::FIRST_ID
            .saturating_add(round.saturating_mul(2))
            .saturating_add(offset)
    }

    fn of_id(id: u64) -> Option<PollQuery> {
        if id < Self::FIRST_ID {
            return None;
        }
        Some(if id.is_multiple_of(2) {
            PollQuery::Telemetry
        } else {
            PollQuery::Allocations
        })
    }

    fn name(self) -> QueryName {
        match self {
            PollQuery::Telemetry => QueryName::Telemetry,
            PollQuery::Allocations => QueryName::Allocations,
        }
    }
}

/// Starts the connection's thread; it sends its updates to `updates` until that
/// channel's receiver is gone.
pub fn spawn(door: ConnectArgs, updates: Sender<Update>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("top-link".into())
        .spawn(move || reconnect_forever(&door, &updates))
        .map(drop)
}

fn reconnect_forever(door: &ConnectArgs, updates: &Sender<Update>) {
    loop {
        let reason = match door.open() {
            Ok(Door::Unix(client)) => serve(client, door, updates),
            Ok(Door::Tcp(client)) => serve(client, door, updates),
            Err(error) => format!("{error:#}"),
        };
        if updates.send(Update::Disconnected { reason }).is_err() {
            return;
        }
        thread::sleep(RETRY);
    }
}

/// Says hello, subscribes, then reads until the connection ends; returns why it did.
fn serve<S: Duplex + Send + 'static>(
    mut client: Client<S>,
    door: &ConnectArgs,
    updates: &Sender<Update>,
) -> String {
    if let Err(error) = client.set_read_timeout(Some(SETUP_TIMEOUT)) {
        return error.to_string();
    }
    match door.hello(&mut client) {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return format!("hello: {error}"),
        Err(error) => return format!("{error:#}"),
    }
    let server = match client.call_as::<HealthResult>(&Request::query(QueryName::Health)) {
        Ok(health) => Some(health.server),
        Err(error) if error.server_error().is_some() => None,
        Err(error) => return format!("query health: {error}"),
    };
    let mut refused = Vec::new();
    for topic in TOPICS {
        match client.call_as::<SubscribeResult>(&Request::Subscribe(TopicRequest { topic })) {
            Ok(_) => {}
            Err(error) if error.server_error().is_some() => refused.push(Update::Refused {
                what: format!("subscribe {}", topic.as_str()),
                message: error.to_string(),
            }),
            Err(error) => return format!("subscribe {}: {error}", topic.as_str()),
        }
    }
    if let Err(error) = client.set_read_timeout(None) {
        return error.to_string();
    }
    let writer = match client.stream().try_clone_stream() {
        Ok(writer) => writer,
        Err(error) => return error.to_string(),
    };
    let (stop_polling, stopped) = mpsc::channel::<()>();
    let poller = match thread::Builder::new()
        .name("top-poll".into())
        .spawn(move || poll(writer, &stopped))
    {
        Ok(poller) => poller,
        Err(error) => return error.to_string(),
    };
    let mut reason = String::new();
    for update in std::iter::once(Update::Connected { server }).chain(refused) {
        if updates.send(update).is_err() {
            reason = "top is quitting".into();
        }
    }
    while reason.is_empty() {
        let update = match client.next_frame() {
            Ok(ServerFrame::Event(event)) => Update::Event(event),
            Ok(ServerFrame::Reply(reply)) => poll_reply(reply),
            Err(ClientError::Closed) => {
                reason = "the daemon closed the connection".into();
                break;
            }
            Err(error) => {
                reason = error.to_string();
                break;
            }
        };
        if updates.send(update).is_err() {
            reason = "top is quitting".into();
        }
    }
    drop(stop_polling);
    // The poller's next write would fail anyway; this makes it fail now.
    let _ = client.stream().shutdown_write();
    let _ = poller.join();
    reason
}

/// Asks for telemetry and allocations every [`POLL`] until `stopped` says to stop (its
/// sender is dropped) or a write fails.
fn poll<S: Duplex>(mut stream: S, stopped: &mpsc::Receiver<()>) {
    let mut bytes = Vec::with_capacity(128);
    for round in 0u64.. {
        bytes.clear();
        for query in [PollQuery::Telemetry, PollQuery::Allocations] {
            if Request::query(query.name())
                .encode(query.id(round), &mut bytes)
                .is_err()
            {
                return;
            }
        }
        if stream
            .write_all(&bytes)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
        match stopped.recv_timeout(POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A reply to one of the poller's queries, as an update.
fn poll_reply(reply: Reply) -> Update {
    let query = reply.id.and_then(PollQuery::of_id);
    let refused = |what: &str, error: gamesa_wire::DecodeError| Update::Refused {
        what: what.into(),
        message: error.to_string(),
    };
    match query {
        Some(PollQuery::Telemetry) => reply.into_result().map_or_else(
            |error| refused("query telemetry", error),
            |result| Update::Telemetry(Box::new(result)),
        ),
        Some(PollQuery::Allocations) => reply.into_result().map_or_else(
            |error| refused("query allocations", error),
            Update::Allocations,
        ),
        None => match reply.outcome {
            Err(error) => Update::Refused {
                what: "the daemon".into(),
                message: format!("{}: {}", error.code, error.message),
            },
            Ok(_) => Update::Refused {
                what: "the daemon".into(),
                message: format!("a reply to no request of top's (id {:?})", reply.id),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polls_id_says_which_query_it_answers() {
        for round in [0, 1, 7, 1_000_000] {
            for query in [PollQuery::Telemetry, PollQuery::Allocations] {
                assert_eq!(PollQuery::of_id(query.id(round)), Some(query));
            }
        }
        assert_eq!(
            PollQuery::of_id(1),
            None,
            "the client's own ids are not polls"
        );
        assert_eq!(PollQuery::of_id(0), None);
    }
}
