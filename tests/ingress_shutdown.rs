//! Stopping the daemon says `shutting_down` to every connection before closing it: the
//! stop waits for each connection's farewell, however many there are and however much
//! they still have to write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::time::Duration;

use gamesa_wire::{
    Client, ClientError, ErrorCode, QueryName, Request, ServerFrame, Topic, TopicRequest,
    client::Duplex,
};
use ingress_support::*;

const SUBSCRIBERS: usize = 16;
/// Telemetry queries each subscriber sends without reading: far more reply bytes than
/// the kernel's socket buffers and the server's unsent-output limit hold together.
const BACKLOG: u64 = 3_000;

/// Reads `client`'s frames to the end: whether the last was a `shutting_down` notice
/// (id nil), and how many replies came before it.
fn told_shutting_down<S: Duplex>(client: &mut Client<S>) -> Result<u64, String> {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut replies = 0;
    loop {
        match client.next_frame() {
            Ok(ServerFrame::Event(_)) => {}
            Ok(ServerFrame::Reply(reply)) => match reply.outcome {
                Ok(_) => replies += 1,
                Err(error) if error.code == ErrorCode::ShuttingDown && reply.id.is_none() => {
                    return match client.next_frame() {
                        Err(ClientError::Closed) => Ok(replies),
                        other => Err(format!("not closed after the notice: {other:?}")),
                    };
                }
                Err(error) => return Err(format!("unexpected error {error}")),
            },
            Err(error) => {
                return Err(format!(
                    "the connection ended without the notice after {replies} replies: {error}"
                ));
            }
        }
    }
}

#[actix::test]
async fn every_one_of_sixteen_subscribers_is_told_shutting_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["ingress"]
            .as_table_mut()
            .unwrap()
            .insert("threads".into(), 2.into());
    });
    let mut daemon = Daemon::start(&config);
    daemon.ticks(3).await;
    let mut subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|index| {
            let mut client = daemon.connect_as(TRANSPORTS[index % 2], GAME);
            for topic in [Topic::Prices, Topic::Signals, Topic::Fills, Topic::Vetoes] {
                client
                    .call(&Request::Subscribe(TopicRequest { topic }))
                    .unwrap()
                    .outcome
                    .unwrap();
            }
            client
        })
        .collect();
    daemon.ticks(3).await;
    // Each subscriber has more to read than the kernel holds when the stop comes.
    let writers: Vec<_> = subscribers
        .iter()
        .map(|client| {
            pipeline_without_reading(
                client.stream(),
                &Request::query(QueryName::Telemetry),
                1_000,
                BACKLOG,
            )
        })
        .collect();
    let read = wait_until_reading_stops(daemon.ingress.hub());
    assert!(
        read < SUBSCRIBERS as u64 * BACKLOG,
        "the server read every request ({read}) without anyone reading a reply"
    );

    let readers: Vec<_> = subscribers
        .drain(..)
        .map(|mut client| std::thread::spawn(move || told_shutting_down(&mut client)))
        .collect();
    // As `gamesa run` stops: the runtime first, then the listeners.
    let Daemon {
        runtime, ingress, ..
    } = daemon;
    let stopped = runtime.shutdown().await;
    assert!(stopped.cancel_failed.is_none(), "{stopped:?}");
    ingress.stop();

    let missing: Vec<String> = readers
        .into_iter()
        .enumerate()
        .filter_map(|(index, reader)| {
            reader
                .join()
                .unwrap()
                .err()
                .map(|why| format!("subscriber {index}: {why}"))
        })
        .collect();
    assert!(missing.is_empty(), "{missing:#?}");
    for writer in writers {
        writer.join().unwrap();
    }
}

#[actix::test]
async fn a_client_with_unread_requests_and_unsent_replies_still_gets_the_notice() {
    // Replies past what the kernel's buffers hold on either socket, so that when the
    // stop comes the server has both unsent replies and requests it has not read.
    const REQUESTS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(2).await;
    let clients: Vec<_> = TRANSPORTS
        .iter()
        .map(|transport| daemon.connect_as(*transport, GAME))
        .collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|client| {
            pipeline_without_reading(
                client.stream(),
                &Request::query(QueryName::Telemetry),
                1,
                REQUESTS,
            )
        })
        .collect();
    let read = wait_until_reading_stops(daemon.ingress.hub());
    assert!(read < 2 * REQUESTS, "the server read every request");

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| std::thread::spawn(move || told_shutting_down(&mut client)))
        .collect();
    let Daemon {
        runtime, ingress, ..
    } = daemon;
    let _ = runtime.shutdown().await;
    ingress.stop();
    for (reader, transport) in readers.into_iter().zip(TRANSPORTS) {
        let replies = reader.join().unwrap();
        assert!(replies.is_ok(), "{transport:?}: {replies:?}");
    }
    for writer in writers {
        writer.join().unwrap();
    }
}
