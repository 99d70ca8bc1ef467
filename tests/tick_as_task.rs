//! `Runtime::tick_as_task`, how `gamesa run` ticks: the same ticks as `Runtime::tick`,
//! and a tick whose future is dropped still ends, and the runtime takes it back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_proto::Tick;
use support::*;

#[actix::test]
async fn ticks_as_tasks_are_the_ticks_in_place() {
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |_| {});
    let (mut in_place, _) = start_on_twin(&config, &scenario, &registry);
    let (mut as_task, _) = start_on_twin(&config, &scenario, &registry);
    let mut fills = 0;
    for tick in 0..300 {
        if tick % 50 == 0 {
            in_place.inject(performance_signal());
            as_task.inject(performance_signal());
        }
        let expected = untimed(in_place.tick().await.unwrap());
        let report = untimed(as_task.tick_as_task().await.unwrap());
        fills += report.fills.len();
        assert_eq!(report, expected, "tick {tick}");
    }
    assert!(fills > 0, "nothing traded: the comparison saw no market");
}

#[actix::test]
async fn a_tick_whose_future_is_dropped_still_ends_and_gives_the_conductor_back() {
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |_| {});
    let (mut reference, _) = start_on_twin(&config, &scenario, &registry);
    let (mut runtime, _) = start_on_twin(&config, &scenario, &registry);
    reference.tick().await.unwrap();
    reference.inject(performance_signal());
    let expected = untimed(reference.tick().await.unwrap());

    // Polled once, the tick has started as a task; then its future is dropped.
    tokio::select! {
        biased;
        _ = runtime.tick_as_task() => panic!("a tick cannot end before the arbiter runs it"),
        () = std::future::ready(()) => {}
    }
    runtime.inject(performance_signal());
    let report = untimed(runtime.tick().await.unwrap());

    assert_eq!(report.tick, Tick(1));
    assert!(
        report
            .signals
            .iter()
            .any(|signal| signal.kind.as_str() == "game_started"),
        "the signal injected while the tick ran was lost"
    );
    assert_eq!(report, expected);
    assert_eq!(runtime.conductor().next_tick(), Tick(2));
    assert_eq!(runtime.conductor().agents().len(), config.agents.len());
}
