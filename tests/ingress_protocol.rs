//! The ingress protocol against the real runtime on the twin, over both sockets:
//! hello and authentication, every request type, an injected performance signal that
//! raises the next tick's bids, a workload order that fills and shows up in
//! `allocations`, a subscriber that sees the fill with the order's correlation id, and
//! the decision log that says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use gamesa_market::MarketEvent;
use gamesa_proto::{Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_wire::{
    AccountResult, AgentsResult, AllocationsResult, BookResult, CancelRequest, CancelResult,
    DecisionsResult, ErrorCode, FillEvent, HealthResult, OrderKind, OrderRequestBody, OrderResult,
    QueryName, QueryRequest, Request, Role, SignalEvent, SignalRequest, SignalResult,
    SubscribeResult, TelemetryResult, Topic, TopicRequest, UnsubscribeResult,
};
use ingress_support::*;

fn query(name: QueryName, resource: Option<Resource>) -> Request {
    Request::Query(QueryRequest {
        resource,
        ..QueryRequest::new(name)
    })
}

fn performance_signal(strength: f64) -> Request {
    Request::Signal(SignalRequest {
        kind: SignalKind::new("game_started").unwrap(),
        domain: Domain::Performance,
        strength: Strength::try_from(strength).unwrap(),
        ttl_ticks: Some(50),
        hold: false,
    })
}

fn gpu_memory_bid(quantity: u64, price: u64) -> Request {
    Request::Order(OrderRequestBody {
        resource: Resource::GpuMemoryMb,
        side: Side::Bid,
        price: Price(price),
        quantity: Quantity(quantity),
        time_in_force: OrderKind::Limit,
        expires_after_ticks: Some(5),
    })
}

#[actix::test]
async fn hello_authenticates_over_tcp_and_unix() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);

    let mut tcp = daemon.tcp();
    let hello = tcp.hello(GAME.0, GAME.1).unwrap();
    assert_eq!(hello.client, "game");
    assert_eq!(hello.protocol_version, gamesa_wire::PROTOCOL_VERSION);
    assert_eq!(
        hello.agent.0 as usize,
        config.agents.len() + 1,
        "clients are numbered after the agents"
    );
    assert!(hello.effects.contains(&"signal:performance".to_owned()));
    assert_eq!(hello.limits.max_frame_bytes, 65_536);

    // The workload's token comes from the environment (`token_env`).
    let mut unix = daemon.unix();
    let hello = unix.hello(WORKLOAD.0, WORKLOAD.1).unwrap();
    assert_eq!(hello.agent.0 as usize, config.agents.len() + 2);

    let mut wrong = daemon.unix();
    let error = wrong.hello(GAME.0, WORKLOAD.1).unwrap_err();
    assert_eq!(error.server_error().unwrap().code, ErrorCode::Unauthorized);

    let socket = daemon.ingress.unix_socket().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[actix::test]
async fn every_request_type_gets_its_reply() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    let mut game = daemon.unix_as(GAME);
    let mut workload = daemon.tcp_as(WORKLOAD);
    daemon.ticks(3).await;

    let health: HealthResult = game.call_as(&query(QueryName::Health, None)).unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.tick.map(|tick| tick.0), Some(2));
    assert_eq!(health.connections, 2);

    let telemetry: TelemetryResult = game.call_as(&query(QueryName::Telemetry, None)).unwrap();
    let frame = telemetry.frame.unwrap();
    assert!(frame.component("gpu0").is_some());

    let book: BookResult = game
        .call_as(&query(QueryName::Book, Some(Resource::PowerBudgetMw)))
        .unwrap();
    assert_eq!(book.resource, Resource::PowerBudgetMw);

    let agents: AgentsResult = game.call_as(&query(QueryName::Agents, None)).unwrap();
    let names: Vec<(&str, Role)> = agents
        .agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent.role))
        .collect();
    assert!(names.contains(&("gpu0", Role::Agent)));
    assert!(names.contains(&("workload", Role::Client)));

    let account: AccountResult = workload.call_as(&query(QueryName::Account, None)).unwrap();
    assert_eq!(account.name, "workload");
    assert!(
        account.available.0 > 0,
        "the workload was minted an allowance"
    );

    let allocations: AllocationsResult =
        game.call_as(&query(QueryName::Allocations, None)).unwrap();
    assert_eq!(allocations.tick.map(|tick| tick.0), Some(2));

    let signal: SignalResult = game.call_as(&performance_signal(0.9)).unwrap();
    assert_eq!(signal.tick.0, 3, "taken in at the next tick");

    let subscribed: SubscribeResult = game
        .call_as(&Request::Subscribe(TopicRequest {
            topic: Topic::Signals,
        }))
        .unwrap();
    assert_eq!(subscribed.topic, Topic::Signals);

    // An order and its cancel each get their reply after the tick that takes them in.
    let order_id = workload.send(&gpu_memory_bid(256, 1)).unwrap();
    barrier(&mut workload);
    daemon.ticks(1).await;
    let order: OrderResult = workload
        .wait_reply(order_id)
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(order.filled, 0, "a bid at 1 credit is below every ask");
    assert_eq!(order.resting, 256);

    // The signal went live in that tick, with its correlation id.
    let (_, live) = find_event(&mut game, Topic::Signals, |signal: &SignalEvent| {
        signal.kind.as_str() == "game_started"
    });
    assert_eq!(live.source_name, "game");
    assert_eq!(live.correlation, Some(signal.correlation));

    let cancel_id = workload
        .send(&Request::Cancel(CancelRequest { order: order.order }))
        .unwrap();
    barrier(&mut workload);
    daemon.ticks(1).await;
    let cancelled: CancelResult = workload
        .wait_reply(cancel_id)
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!((cancelled.order, cancelled.cancelled), (order.order, 256));

    let unknown = workload
        .call(&Request::Cancel(CancelRequest {
            order: OrderId(9999),
        }))
        .unwrap();
    assert_eq!(unknown.outcome.unwrap_err().code, ErrorCode::UnknownOrder);

    let unsubscribed: UnsubscribeResult = game
        .call_as(&Request::Unsubscribe(TopicRequest {
            topic: Topic::Signals,
        }))
        .unwrap();
    assert_eq!(unsubscribed.lost, 0);
}

/// The GPU agent's power bids of one tick: (price, quantity) of each accepted bid.
fn gpu_power_bids(report: &gamesa_runtime::TickOutput, gpu: gamesa_proto::AgentId) -> Vec<u64> {
    report
        .market_events
        .iter()
        .filter_map(|event| match event {
            MarketEvent::Accepted { request, .. }
                if request.owner == gpu
                    && request.resource == Resource::PowerBudgetMw
                    && request.side == Side::Bid =>
            {
                Some(request.price.0)
            }
            _ => None,
        })
        .collect()
}

#[actix::test]
async fn an_injected_performance_signal_raises_the_next_ticks_bids() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let control_config = ingress_config(other.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    let mut control = Daemon::start(&control_config);
    let gpu = gamesa_proto::AgentId(2);
    daemon.ticks(20).await;
    control.ticks(20).await;

    let mut game = daemon.tcp_as(GAME);
    let queued: SignalResult = game.call_as(&performance_signal(1.0)).unwrap();
    // The tick that takes the signal in ranks it after the agents decided; the next
    // tick's observation carries it.
    let taken_in = daemon.ticks(1).await.pop().unwrap();
    control.ticks(1).await;
    assert_eq!(taken_in.tick, queued.tick);
    let live = taken_in
        .signals
        .iter()
        .find(|signal| signal.kind.as_str() == "game_started")
        .expect("the injected signal is live");
    assert_eq!(live.correlation, Some(queued.correlation));

    let boosted = daemon.ticks(1).await.pop().unwrap();
    let plain = control.ticks(1).await.pop().unwrap();
    let (boosted, plain) = (gpu_power_bids(&boosted, gpu), gpu_power_bids(&plain, gpu));
    assert!(!plain.is_empty(), "the saturated GPU bids for power");
    assert!(
        boosted.iter().max() > plain.iter().max(),
        "bids with the signal {boosted:?} vs without {plain:?}"
    );
}

#[actix::test]
async fn a_workload_order_fills_shows_in_allocations_and_reaches_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(2).await;

    let mut watcher = daemon.unix_as(GAME);
    let _: SubscribeResult = watcher
        .call_as(&Request::Subscribe(TopicRequest {
            topic: Topic::Fills,
        }))
        .unwrap();
    let mut workload = daemon.tcp_as(WORKLOAD);
    let order_id = workload.send(&gpu_memory_bid(1024, 500)).unwrap();
    barrier(&mut workload);
    let report = daemon.ticks(1).await.pop().unwrap();

    let order: OrderResult = workload
        .wait_reply(order_id)
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(order.tick, report.tick);
    assert_eq!(order.filled + order.resting, 1024, "{order:?}");
    if order.resting > 0 {
        // The GPU re-quotes its memory every other tick: the bid rests until it does.
        daemon.ticks(1).await;
    }

    let allocations: AllocationsResult = workload
        .call_as(&query(QueryName::Allocations, Some(Resource::GpuMemoryMb)))
        .unwrap();
    let lease = allocations
        .leases
        .iter()
        .find(|lease| lease.holder_name == "workload")
        .expect("the workload holds a lease of GPU memory");
    assert_eq!(lease.quantity, Quantity(1024));
    assert_eq!(lease.seller_name, "gpu0");

    let (_, fill) = find_event(&mut watcher, Topic::Fills, |fill: &FillEvent| {
        fill.buyer_name == "workload"
    });
    assert_eq!(fill.resource, Resource::GpuMemoryMb);
    assert_eq!(fill.quantity, Quantity(1024));
    assert_eq!(
        fill.correlation,
        Some(order.correlation),
        "the fill carries the order's correlation id"
    );

    let account: AccountResult = workload.call_as(&query(QueryName::Account, None)).unwrap();
    assert!(account.available.0 > 0);
}

#[actix::test]
async fn an_order_beyond_the_clients_credits_is_refused_by_the_guardian() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(1).await;
    let mut workload = daemon.tcp_as(WORKLOAD);
    let order_id = workload
        .send(&gpu_memory_bid(1_000_000, 1_000_000))
        .unwrap();
    barrier(&mut workload);
    daemon.ticks(1).await;
    let reply = workload.wait_reply(order_id).unwrap();
    assert_eq!(
        reply.outcome.unwrap_err().code,
        ErrorCode::InsufficientCredits
    );
}

#[actix::test]
async fn a_subscriber_that_does_not_read_loses_its_oldest_events_and_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["ingress"]
            .as_table_mut()
            .unwrap()
            .insert("subscription_queue".into(), 8.into());
    });
    let mut daemon = Daemon::start(&config);
    let mut slow = daemon.unix_as(GAME);
    let _: SubscribeResult = slow
        .call_as(&Request::Subscribe(TopicRequest {
            topic: Topic::Prices,
        }))
        .unwrap();
    // The subscriber reads nothing while the runtime ticks on: once the socket and the
    // server's output buffer are full, its queue drops the oldest events. Every tick
    // still completes.
    const TICKS: u64 = 1_500;
    let last = daemon.ticks(TICKS as usize).await.pop().unwrap().tick;

    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let (mut accounted, mut lost, mut previous_seq) = (0u64, 0u64, 0u64);
    loop {
        let event = slow.next_event().unwrap();
        assert_eq!(
            event.seq,
            previous_seq + event.lost + 1,
            "seq gaps equal losses"
        );
        previous_seq = event.seq;
        accounted += 1 + event.lost;
        lost += event.lost;
        if event.tick == last {
            break;
        }
    }
    assert_eq!(
        accounted, TICKS,
        "every event was delivered or counted as lost"
    );
    assert!(lost > 0, "a subscriber that never read lost nothing");
    let unsubscribed: UnsubscribeResult = slow
        .call_as(&Request::Unsubscribe(TopicRequest {
            topic: Topic::Prices,
        }))
        .unwrap();
    assert_eq!(unsubscribed.lost, lost);
}

#[actix::test]
async fn the_decision_log_says_why_a_workload_got_its_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    let mut reports = daemon.ticks(2).await;
    let mut workload = daemon.tcp_as(WORKLOAD);
    let order_id = workload.send(&gpu_memory_bid(1024, 500)).unwrap();
    barrier(&mut workload);
    reports.extend(daemon.ticks(3).await);
    let order: OrderResult = workload
        .wait_reply(order_id)
        .unwrap()
        .into_result()
        .unwrap();

    // Every fill and actuation of every tick is in the log, in the guardian's order.
    let decisions = |request: QueryRequest, client: &mut gamesa_wire::Client<_>| {
        client
            .call_as::<DecisionsResult>(&Request::Query(request))
            .unwrap()
    };
    let all = decisions(
        QueryRequest {
            limit: Some(1000),
            ..QueryRequest::new(QueryName::Decisions)
        },
        &mut workload,
    );
    let expected: usize = reports
        .iter()
        .map(|report| report.fills.len() + report.actuations.len())
        .sum();
    assert_eq!(all.decisions.len(), expected);
    assert_eq!(all.oldest_tick, Some(reports[0].tick));
    assert_eq!(all.newest_tick, Some(reports[4].tick));

    // The workload's fill: who sold, at what price, against which book, and why it was
    // allowed.
    let mine = decisions(
        QueryRequest {
            resource: Some(Resource::GpuMemoryMb),
            since_tick: Some(order.tick),
            ..QueryRequest::new(QueryName::Decisions)
        },
        &mut workload,
    );
    let allocation = mine
        .decisions
        .iter()
        .find(|decision| {
            decision
                .allocation
                .as_ref()
                .is_some_and(|allocation| allocation.buy_order == order.order)
        })
        .expect("the workload's fill is in the log");
    let fill = reports
        .iter()
        .flat_map(|report| &report.fills)
        .map(|(fill, _)| fill)
        .find(|fill| fill.buy_order == order.order)
        .unwrap();
    let recorded = allocation.allocation.as_ref().unwrap();
    assert_eq!(allocation.verdict, "allow");
    assert_eq!(allocation.tick, fill.tick);
    assert_eq!(
        (recorded.seller, recorded.quantity, recorded.clearing_price),
        (fill.seller, fill.quantity, fill.price)
    );
    assert!(
        recorded
            .orders
            .iter()
            .any(|considered| considered.order == order.order && considered.side == Side::Bid),
        "the book considered includes the workload's bid: {:?}",
        recorded.orders
    );
    assert!(!allocation.reason.is_empty());

    // By a tick's correlation id: exactly that tick's decisions.
    let last = &reports[4];
    let of_tick = decisions(
        QueryRequest {
            correlation: Some(last.correlation),
            ..QueryRequest::new(QueryName::Decisions)
        },
        &mut workload,
    );
    assert_eq!(
        of_tick.decisions.len(),
        last.fills.len() + last.actuations.len()
    );
    assert!(
        of_tick
            .decisions
            .iter()
            .all(|decision| decision.tick == last.tick)
    );

    // Only vetoes: exactly the denials and clamps of the reports.
    let vetoes = decisions(
        QueryRequest {
            vetoes_only: Some(true),
            limit: Some(1000),
            ..QueryRequest::new(QueryName::Decisions)
        },
        &mut workload,
    );
    let denied_or_clamped = reports
        .iter()
        .flat_map(|report| {
            report
                .fills
                .iter()
                .map(|(_, verdict)| verdict)
                .chain(report.actuations.iter().map(|record| &record.verdict))
        })
        .filter(|verdict| verdict.decision() != "allow")
        .count();
    assert_eq!(vetoes.decisions.len(), denied_or_clamped);

    // A limit out of range is a clear error; a client without `query:decisions` is denied.
    let reply = workload
        .call(&Request::Query(QueryRequest {
            limit: Some(0),
            ..QueryRequest::new(QueryName::Decisions)
        }))
        .unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::InvalidRequest);
    let mut reader = daemon.unix_as(READER);
    let reply = reader.call(&Request::query(QueryName::Decisions)).unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::Forbidden);
}
