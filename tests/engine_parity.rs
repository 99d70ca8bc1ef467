//! The actor shell (`gamesa run`'s tick: core actors, agents on their own threads under
//! a deadline) and the synchronous tick engine (`gamesa sim`'s, in place) take the same
//! decisions: over the same scenario and inputs, their `TickOutput`s are identical,
//! tick by tick. Safety holds, market trades and epoch mints are all exercised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_engine::Intake;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_proto::Signal;
use gamesa_runtime::assemble;
use support::*;

const TICKS: u64 = 400;

/// What is injected at `tick`, into both.
fn injected(tick: u64) -> Vec<Signal> {
    match tick % 100 {
        10 => vec![performance_signal()],
        60 => vec![hold_gpu()],
        _ => Vec::new(),
    }
}

#[actix::test]
async fn the_shell_and_the_engine_give_the_same_outputs_tick_by_tick() {
    let registry = builtin();
    let scenario_path = scenario("mixed.toml");
    // `sim_config` gives agents a deadline no test machine misses: the comparison is
    // about decisions, and a missed deadline is the one thing the engine cannot have.
    let config = sim_config(&scenario_path, &registry, |_| {});
    let (mut shell, _) = start_on_twin(&config, &scenario_path, &registry);

    let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario_path).unwrap()));
    let mut engine = assemble::engine(&config, &registry).unwrap();
    let (mut sensors, mut actuator) = (twin.sensors(), twin.actuator());

    let (mut fills, mut safety_ticks, mut mints) = (0, 0, 0);
    for tick in 0..TICKS {
        for signal in injected(tick) {
            shell.inject(signal);
        }
        let intake = Intake {
            signals: injected(tick),
            ..Intake::default()
        };
        let expected = untimed(engine.step(&mut sensors, &mut actuator, intake));
        let output = untimed(shell.tick().await.unwrap());
        assert_eq!(output, expected, "tick {tick}");
        fills += output.fills.len();
        safety_ticks += usize::from(!output.held.is_empty());
        mints += usize::from(output.mint.is_some());
    }
    assert!(fills > 0, "nothing traded: the comparison saw no market");
    assert!(
        safety_ticks > 0,
        "no safety hold: the comparison saw no pre-emption"
    );
    assert!(mints > 1, "no epoch began: the comparison saw no mint");
    let _ = shell.shutdown().await;
}
