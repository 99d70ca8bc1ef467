//! Every kind of bad input gets the documented error reply, or closes only the
//! connection that sent it; the server keeps serving everyone else, and nothing it had
//! already accepted is lost. Each case runs over the Unix socket and over TCP; so do the
//! limits: the idle timeout, and the 256 KiB of unsent output past which a client that
//! does not read stops being read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::{io::Read, time::Duration};

use gamesa_proto::{Domain, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_wire::{
    Client, ClientError, ErrorCode, Hello, OrderKind, OrderRequestBody, OrderResult, QueryName,
    Reply, Request, ServerFrame, SignalRequest, client::Duplex,
};
use ingress_support::*;

/// One frame around raw body bytes.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// A MessagePack map from pairs.
fn map(pairs: &[(&str, rmpv::Value)]) -> Vec<u8> {
    let value = rmpv::Value::Map(
        pairs
            .iter()
            .map(|(key, value)| (rmpv::Value::from(*key), value.clone()))
            .collect(),
    );
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    bytes
}

/// The next reply on `client` (events are not expected here).
fn next_reply<S: Duplex>(client: &mut Client<S>) -> Reply {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match client.next_frame().unwrap() {
        ServerFrame::Reply(reply) => reply,
        ServerFrame::Event(event) => panic!("unexpected event {event:?}"),
    }
}

fn error_code(reply: &Reply) -> ErrorCode {
    reply.outcome.as_ref().unwrap_err().code
}

/// The server has closed `client`'s connection: the next read ends the stream.
fn assert_closed<S: Duplex>(client: &mut Client<S>) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(matches!(client.next_frame(), Err(ClientError::Closed)));
}

/// Someone else is still served.
fn assert_serving(daemon: &Daemon) {
    let mut bystander = daemon.tcp_as(GAME);
    barrier(&mut bystander);
}

#[actix::test]
async fn frames_over_the_cap_close_only_that_connection_after_answering_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(1).await;
    let mut bystander = daemon.unix_as(GAME);

    for (length, transport) in [65_537u32, u32::MAX]
        .into_iter()
        .flat_map(|length| TRANSPORTS.map(|transport| (length, transport)))
    {
        let mut victim = daemon.connect_as(transport, WORKLOAD);
        // An order waits for the next tick; the oversized frame right after it must not
        // cost it its reply.
        let order_id = victim
            .send(&Request::Order(OrderRequestBody {
                resource: Resource::GpuMemoryMb,
                side: Side::Bid,
                price: Price(1),
                quantity: Quantity(8),
                time_in_force: OrderKind::Ioc,
                expires_after_ticks: None,
            }))
            .unwrap();
        let health_id = victim.queue(&Request::query(QueryName::Health)).unwrap();
        victim.send_raw(&length.to_be_bytes()).unwrap();
        let health = victim.wait_reply(health_id).unwrap();
        assert!(health.outcome.is_ok());
        let too_large = next_reply(&mut victim);
        assert_eq!(too_large.id, None, "{transport:?}");
        assert_eq!(error_code(&too_large), ErrorCode::FrameTooLarge);
        assert!(
            too_large
                .outcome
                .unwrap_err()
                .message
                .contains(&length.to_string()),
            "the message names the length"
        );
        barrier(&mut bystander);
        daemon.ticks(1).await;
        let order: OrderResult = victim.wait_reply(order_id).unwrap().into_result().unwrap();
        assert_eq!(
            order.filled + order.resting,
            0,
            "an ioc at 1 trades nothing"
        );
        assert_closed(&mut victim);
    }
    assert_serving(&daemon);
}

#[actix::test]
async fn truncated_frames_wait_for_their_bytes_or_end_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);
    let mut bytes = Vec::new();
    Request::query(QueryName::Health)
        .encode(77, &mut bytes)
        .unwrap();

    for transport in TRANSPORTS {
        // A frame that arrives in pieces is answered once whole.
        let mut slow = daemon.connect_as(transport, GAME);
        slow.send_raw(&bytes[..3]).unwrap();
        assert_serving(&daemon);
        slow.send_raw(&bytes[3..9]).unwrap();
        assert_serving(&daemon);
        slow.send_raw(&bytes[9..]).unwrap();
        assert_eq!(next_reply(&mut slow).id, Some(77), "{transport:?}");

        // A stream that ends inside a frame is told so and closed.
        let mut cut = daemon.connect_as(transport, GAME);
        cut.send_raw(&bytes[..bytes.len() - 2]).unwrap();
        cut.stream().shutdown_write().unwrap();
        let reply = next_reply(&mut cut);
        assert_eq!(
            error_code(&reply),
            ErrorCode::MalformedFrame,
            "{transport:?}"
        );
        assert_closed(&mut cut);

        // A header cut short, then a vanished client.
        let mut raw = daemon.raw(transport);
        std::io::Write::write_all(&mut raw, &[0, 0]).unwrap();
        drop(raw);
        assert_serving(&daemon);
    }
}

#[actix::test]
async fn malformed_deep_mistyped_and_unknown_requests_get_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);
    for transport in TRANSPORTS {
        malformed_deep_mistyped_and_unknown(&daemon, transport);
    }
}

fn malformed_deep_mistyped_and_unknown(daemon: &Daemon, transport: Transport) {
    let mut client = daemon.connect_as(transport, GAME);

    // Not MessagePack: 0xc1 is never used; a lone string header that lies about length.
    for body in [&[0xc1][..], &[0xdb, 0xff, 0xff, 0xff, 0xff, b'x'], b""] {
        client.send_raw(&frame(body)).unwrap();
        let reply = next_reply(&mut client);
        assert_eq!(
            (reply.id, error_code(&reply)),
            (None, ErrorCode::MalformedFrame)
        );
    }
    // Ten thousand nested arrays, well under the size cap.
    let mut deep = vec![0x91u8; 10_000];
    deep.push(0);
    client.send_raw(&frame(&deep)).unwrap();
    assert_eq!(error_code(&next_reply(&mut client)), ErrorCode::TooDeep);

    // Not a map, and a map without an id.
    client.send_raw(&frame(&[0x93, 1, 2, 3])).unwrap();
    assert_eq!(
        error_code(&next_reply(&mut client)),
        ErrorCode::InvalidRequest
    );
    client
        .send_raw(&frame(&map(&[
            ("type", "query".into()),
            ("query", "health".into()),
        ])))
        .unwrap();
    let reply = next_reply(&mut client);
    assert_eq!(
        (reply.id, error_code(&reply)),
        (None, ErrorCode::InvalidRequest)
    );

    // A wrong type in a field: the reply carries the id and names the field.
    client
        .send_raw(&frame(&map(&[
            ("id", 41.into()),
            ("type", "signal".into()),
            ("kind", "game_started".into()),
            ("domain", "performance".into()),
            ("strength", "very strong".into()),
        ])))
        .unwrap();
    let reply = next_reply(&mut client);
    assert_eq!(reply.id, Some(41));
    let error = reply.outcome.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(error.message.contains("strength"), "{error}");
    // ... and an id of the wrong type.
    client
        .send_raw(&frame(&map(&[
            ("id", "seven".into()),
            ("type", "query".into()),
        ])))
        .unwrap();
    assert_eq!(
        error_code(&next_reply(&mut client)),
        ErrorCode::InvalidRequest
    );

    // An unknown message type.
    client
        .send_raw(&frame(&map(&[
            ("id", 42.into()),
            ("type", "teleport".into()),
        ])))
        .unwrap();
    let reply = next_reply(&mut client);
    assert_eq!(
        (reply.id, error_code(&reply)),
        (Some(42), ErrorCode::UnknownType)
    );

    // After all that, the same connection still works.
    barrier(&mut client);
    assert_serving(daemon);
}

#[actix::test]
async fn sessions_refuse_requests_before_hello_bad_tokens_and_missing_effects() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);
    for transport in TRANSPORTS {
        sessions_refuse(&daemon, transport);
    }
}

fn sessions_refuse(daemon: &Daemon, transport: Transport) {
    let mut stranger = daemon.connect(transport);
    barrier(&mut stranger); // health needs no hello
    let signal = Request::Signal(SignalRequest {
        kind: SignalKind::new("game_started").unwrap(),
        domain: Domain::Safety,
        strength: Strength::MAX,
        ttl_ticks: None,
        hold: false,
    });
    let reply = stranger.call(&signal).unwrap();
    assert_eq!(error_code(&reply), ErrorCode::NotAuthenticated);
    let reply = stranger
        .call(&Request::Query(gamesa_wire::QueryRequest {
            resource: Some(Resource::CpuCores),
            ..gamesa_wire::QueryRequest::new(QueryName::Book)
        }))
        .unwrap();
    assert_eq!(error_code(&reply), ErrorCode::NotAuthenticated);

    // A version mismatch names both versions and leaves the connection open.
    let reply = stranger
        .call(&Request::Hello(Hello {
            protocol_version: 7,
            client: GAME.0.into(),
            token: GAME.1.into(),
        }))
        .unwrap();
    let error = reply.outcome.unwrap_err();
    assert_eq!(error.code, ErrorCode::UnsupportedVersion);
    assert!(
        error.message.contains('7') && error.message.contains('1'),
        "{error}"
    );

    // Bad tokens: refused, and the third failure closes the connection.
    for _ in 0..3 {
        let error = stranger.hello(GAME.0, "not-the-token").unwrap_err();
        assert_eq!(error.server_error().unwrap().code, ErrorCode::Unauthorized);
    }
    assert_closed(&mut stranger);

    // A missing effect: refused, audited (counted), and the connection stays usable.
    let denied_before = daemon
        .ingress
        .hub()
        .counters
        .denied
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut game = daemon.connect_as(transport, GAME);
    let reply = game.call(&signal).unwrap();
    let error = reply.outcome.unwrap_err();
    assert_eq!(error.code, ErrorCode::Forbidden);
    assert!(error.message.contains("signal:safety"), "{error}");
    let mut reader = daemon.connect_as(transport, READER);
    let reply = reader.call(&Request::query(QueryName::Telemetry)).unwrap();
    assert_eq!(error_code(&reply), ErrorCode::Forbidden);
    let denied_after = daemon
        .ingress
        .hub()
        .counters
        .denied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(denied_after >= denied_before + 2);
    barrier(&mut game);
    barrier(&mut reader);
}

#[actix::test]
async fn a_flood_past_the_rate_limit_gets_rate_limited_replies_and_slows_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        let ingress = table["ingress"].as_table_mut().unwrap();
        ingress.insert("rate_limit_per_s".into(), 20.into());
        ingress.insert("rate_burst".into(), 50.into());
    });
    let daemon = Daemon::start(&config);
    for transport in TRANSPORTS {
        flood(&daemon, transport);
    }
}

fn flood(daemon: &Daemon, transport: Transport) {
    let mut flooder = daemon.connect_as(transport, GAME);
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for _ in 0..2_000 {
        ids.push(flooder.queue(&Request::query(QueryName::Health)).unwrap());
    }
    flooder.flush().unwrap();
    let (mut answered, mut limited) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for _ in &ids {
        let reply = next_reply(&mut flooder);
        assert!(seen.insert(reply.id.unwrap()), "one reply per request");
        match reply.outcome {
            Ok(_) => answered += 1,
            Err(error) => {
                assert_eq!(error.code, ErrorCode::RateLimited);
                limited += 1;
            }
        }
    }
    assert_eq!(seen.len(), ids.len());
    // The burst, plus what the refill allowed while the flood lasted (hello took one).
    let allowed = 50 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        (49..=allowed).contains(&answered),
        "{answered} answered, at most {allowed} allowed"
    );
    assert_eq!(answered + limited, 2_000);

    // Another connection has its own budget.
    let mut other = daemon.unix_as(WORKLOAD);
    barrier(&mut other);
}

#[actix::test]
async fn past_max_connections_a_client_is_told_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["ingress"]
            .as_table_mut()
            .unwrap()
            .insert("max_connections".into(), 2.into());
    });
    let daemon = Daemon::start(&config);
    let mut first = daemon.tcp_as(GAME);
    let mut second = daemon.unix_as(WORKLOAD);
    for transport in TRANSPORTS {
        let mut third = daemon.connect(transport);
        let reply = next_reply(&mut third);
        assert_eq!(
            error_code(&reply),
            ErrorCode::TooManyConnections,
            "{transport:?}"
        );
        assert_closed(&mut third);
    }
    barrier(&mut first);
    barrier(&mut second);
}

#[actix::test]
async fn an_idle_connection_is_closed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["ingress"]
            .as_table_mut()
            .unwrap()
            .insert("idle_timeout_s".into(), 0.2.into());
    });
    let daemon = Daemon::start(&config);
    for transport in TRANSPORTS {
        let mut idle = daemon.connect_as(transport, GAME);
        let reply = next_reply(&mut idle);
        assert_eq!(reply.id, None);
        assert_eq!(error_code(&reply), ErrorCode::IdleTimeout, "{transport:?}");
        assert_closed(&mut idle);
        let mut raw = daemon.raw(transport);
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).unwrap();
        assert!(
            !rest.is_empty(),
            "even a silent client is told before it is closed ({transport:?})"
        );
    }
}

#[actix::test]
async fn a_book_query_with_levels_outside_1_to_100_is_invalid_and_names_levels() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(2).await;
    let book = |levels| {
        Request::Query(gamesa_wire::QueryRequest {
            resource: Some(Resource::PowerBudgetMw),
            levels: Some(levels),
            ..gamesa_wire::QueryRequest::new(QueryName::Book)
        })
    };
    for transport in TRANSPORTS {
        let mut client = daemon.connect_as(transport, READER);
        for levels in [0, 101, u32::MAX] {
            let error = client.call(&book(levels)).unwrap().outcome.unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{levels}");
            assert!(error.message.contains("`levels`"), "{error}");
        }
        for levels in [1, 100] {
            let result: gamesa_wire::BookResult = client.call_as(&book(levels)).unwrap();
            assert!(result.bids.len() <= levels as usize);
            assert!(result.asks.len() <= levels as usize);
        }
    }
}

#[actix::test]
async fn an_error_reply_keeps_an_id_that_could_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);
    let mut deep = rmpv::Value::from(0);
    for _ in 0..20 {
        deep = rmpv::Value::Array(vec![deep]);
    }
    // Too deep after the id, and before it.
    let deep_after = map(&[
        ("id", 51.into()),
        ("type", "query".into()),
        ("query", "health".into()),
        ("extra", deep.clone()),
    ]);
    let deep_before = map(&[("extra", deep), ("id", 52.into()), ("type", "query".into())]);
    // A marker MessagePack never uses, after the id.
    let mut bad_marker = map(&[("id", 53.into()), ("type", "query".into())]);
    bad_marker[0] += 1;
    bad_marker.extend([0xa1, b'x', 0xc1]);
    // A byte after the map.
    let mut trailing = map(&[
        ("id", 54.into()),
        ("type", "query".into()),
        ("query", "health".into()),
    ]);
    trailing.push(0x01);
    // A string that claims more bytes than the body has, after the id.
    let mut truncated = map(&[("id", 55.into()), ("type", "query".into())]);
    truncated[0] += 1;
    truncated.extend([0xa1, b'x', 0xdb, 0x00, 0x00, 0x10, 0x00, b'y']);
    // `type` of the wrong type.
    let mistyped = map(&[("id", 56.into()), ("type", 3.into())]);
    let cases = [
        (deep_after, 51, ErrorCode::TooDeep),
        (deep_before, 52, ErrorCode::TooDeep),
        (bad_marker, 53, ErrorCode::MalformedFrame),
        (trailing, 54, ErrorCode::MalformedFrame),
        (truncated, 55, ErrorCode::MalformedFrame),
        (mistyped, 56, ErrorCode::InvalidRequest),
    ];
    for transport in TRANSPORTS {
        let mut client = daemon.connect_as(transport, GAME);
        for (body, id, code) in &cases {
            client.send_raw(&frame(body)).unwrap();
            let reply = next_reply(&mut client);
            assert_eq!(
                (reply.id, error_code(&reply)),
                (Some(*id), *code),
                "{transport:?}"
            );
        }
        barrier(&mut client);
    }
}

#[actix::test]
async fn subscribed_connections_are_exempt_from_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["ingress"]
            .as_table_mut()
            .unwrap()
            .insert("idle_timeout_s".into(), 0.2.into());
    });
    let daemon = Daemon::start(&config);
    for transport in TRANSPORTS {
        let mut subscriber = daemon.connect(transport);
        let hello = subscriber.hello(GAME.0, GAME.1).unwrap();
        assert_eq!(hello.limits.idle_timeout_ms, 200);
        subscriber
            .call(&Request::Subscribe(gamesa_wire::TopicRequest {
                topic: gamesa_wire::Topic::Prices,
            }))
            .unwrap()
            .outcome
            .unwrap();
        // An idle connection opened at the same time is closed for it; the subscriber,
        // silent as long, is not.
        let mut idle = daemon.connect_as(transport, GAME);
        assert_eq!(error_code(&next_reply(&mut idle)), ErrorCode::IdleTimeout);
        assert_closed(&mut idle);
        std::thread::sleep(Duration::from_millis(400));
        barrier(&mut subscriber);
    }
}

#[actix::test]
async fn a_client_that_never_reads_stops_being_read_past_256_kib_of_unsent_output() {
    use gamesa_runtime::ingress::server::OUTPUT_HIGH_WATER;
    const REQUESTS: u64 = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(2).await;
    let hub = std::sync::Arc::clone(daemon.ingress.hub());
    for transport in TRANSPORTS {
        let client = daemon.connect_as(transport, GAME);
        let before = wait_until_reading_stops(&hub);
        // Replies of about 600 bytes each: 24 MB, past any socket buffers.
        let writer = pipeline_without_reading(
            client.stream(),
            &Request::query(QueryName::Telemetry),
            1,
            REQUESTS,
        );
        let read = wait_until_reading_stops(&hub) - before;
        assert!(
            read < REQUESTS,
            "{transport:?}: the server read all {REQUESTS} requests of a client that reads nothing"
        );
        // Everyone else is still served meanwhile.
        assert_serving(&daemon);

        // Once the client reads, every request gets its reply, once.
        let stream = client.stream().try_clone_stream().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, stream);
        let mut body = Vec::new();
        let (mut replies, mut bytes) = (0u64, 0usize);
        while replies < REQUESTS {
            assert!(gamesa_wire::frame::read_frame(&mut reader, 1 << 20, &mut body).unwrap());
            match gamesa_wire::decode_server_frame(&body).unwrap() {
                ServerFrame::Reply(reply) => {
                    replies += 1;
                    assert_eq!(reply.id, Some(replies));
                    assert!(reply.outcome.is_ok());
                    bytes += body.len() + 4;
                }
                ServerFrame::Event(event) => panic!("unexpected event {event:?}"),
            }
        }
        writer.join().unwrap();
        // What the server answered before it stopped reading was past the limit: the
        // limit, not `max_in_flight` or the kernel alone, stopped it.
        let answered_bytes = read as usize * (bytes / replies as usize);
        assert!(
            answered_bytes >= OUTPUT_HIGH_WATER,
            "{transport:?}: stopped after {answered_bytes} bytes of replies"
        );
    }
}

#[actix::test]
async fn bad_progress_reports_get_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        let trainer: toml::Table = r#"
            [[clients]]
            name = "trainer"
            token = "trainer-token-01"
            effects = ["progress:*"]
            "#
        .parse()
        .unwrap();
        table["clients"]
            .as_array_mut()
            .unwrap()
            .extend(trainer["clients"].as_array().unwrap().iter().cloned());
    });
    let mut daemon = Daemon::start(&config);
    daemon.ticks(1).await;
    let report = |id: u64, component: &str, amount: rmpv::Value| {
        frame(&map(&[
            ("id", id.into()),
            ("type", "progress".into()),
            ("component", component.into()),
            ("amount", amount),
        ]))
    };
    for transport in TRANSPORTS {
        let mut trainer = daemon.connect_as(transport, ("trainer", "trainer-token-01"));
        // Not a finite number from 0 to 10^12 units: invalid, naming `amount`.
        for (id, amount) in [
            (61, rmpv::Value::from(-0.5)),
            (62, rmpv::Value::from(-3)),
            (63, rmpv::Value::from(f64::NAN)),
            (64, rmpv::Value::from(f64::INFINITY)),
            (65, rmpv::Value::from(f64::NEG_INFINITY)),
            (66, rmpv::Value::from(1e13)),
            (67, rmpv::Value::from("12.5")),
        ] {
            trainer.send_raw(&report(id, "gpu0", amount)).unwrap();
            let reply = next_reply(&mut trainer);
            assert_eq!(reply.id, Some(id), "{transport:?}");
            let error = reply.outcome.unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{id}: {error}");
            assert!(error.message.contains("`amount`"), "{id}: {error}");
        }
        // The work left is held to the same rule, and named.
        for (id, left) in [
            (81, rmpv::Value::from(-1)),
            (82, rmpv::Value::from(f64::NAN)),
            (83, rmpv::Value::from("all of it")),
        ] {
            trainer
                .send_raw(&frame(&map(&[
                    ("id", id.into()),
                    ("type", "progress".into()),
                    ("component", "gpu0".into()),
                    ("amount", 1.into()),
                    ("left", left),
                ])))
                .unwrap();
            let reply = next_reply(&mut trainer);
            assert_eq!(reply.id, Some(id), "{transport:?}");
            let error = reply.outcome.unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{id}: {error}");
            assert!(error.message.contains("`left`"), "{id}: {error}");
        }
        // No amount at all, and a component id that is not one.
        trainer
            .send_raw(&frame(&map(&[
                ("id", 68.into()),
                ("type", "progress".into()),
                ("component", "gpu0".into()),
            ])))
            .unwrap();
        let error = next_reply(&mut trainer).outcome.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("amount"), "{error}");
        trainer.send_raw(&report(69, "gpu 0", 1.into())).unwrap();
        let error = next_reply(&mut trainer).outcome.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("`component`"), "{error}");
        // A component the runtime does not manage.
        trainer.send_raw(&report(70, "gpu7", 1.into())).unwrap();
        let reply = next_reply(&mut trainer);
        assert_eq!(
            (reply.id, error_code(&reply)),
            (Some(70), ErrorCode::UnknownComponent),
            "{transport:?}"
        );
        // A client without `progress:<component>`.
        let mut game = daemon.connect_as(transport, GAME);
        game.send_raw(&report(71, "gpu0", 1.into())).unwrap();
        let reply = next_reply(&mut game);
        assert_eq!(
            (reply.id, error_code(&reply)),
            (Some(71), ErrorCode::Forbidden),
            "{transport:?}"
        );
        barrier(&mut trainer);
        barrier(&mut game);
    }
    assert_serving(&daemon);
}
