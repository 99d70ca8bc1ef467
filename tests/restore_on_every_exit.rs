//! Every way the runtime can end puts every original back, on the twin: the tick loop
//! returning an error (a dead actor), a panic inside a tick, and a panic unwinding past
//! the runtime. (A dead exchange, guardian or actuator actor at shutdown is covered in
//! `gamesa-runtime`'s own tests, which can stop an actor.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_hw::{Actuator, Applied, HwError, RestoreReport, Sample, Sensors, twin::SharedTwin};
use gamesa_proto::{Actuation, Tick};
use gamesa_runtime::{Config, Runtime};
use support::*;

/// Ticks the loop runs before the fault.
const FAULT_AT: u64 = 40;

/// The twin's sensors, which panic from tick `FAULT_AT` on (their actor dies with them).
struct DyingSensors(Box<dyn Sensors>);

impl Sensors for DyingSensors {
    fn sample(&mut self, tick: Tick) -> Sample {
        assert!(tick.0 < FAULT_AT, "the sensors failed at {tick}");
        self.0.sample(tick)
    }
}

/// The twin's actuator, which panics on the first change it is asked for after it has
/// applied `changes` of them: a panic inside a tick's actuate phase.
struct PanickingActuator {
    inner: Box<dyn Actuator>,
    changes: usize,
}

impl Actuator for PanickingActuator {
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError> {
        assert!(
            self.changes > 0,
            "the actuator failed applying {actuation:?}"
        );
        let applied = self.inner.apply(actuation)?;
        if applied.changed {
            self.changes -= 1;
        }
        Ok(applied)
    }

    fn restore_target(&mut self, target: &str) -> RestoreReport {
        self.inner.restore_target(target)
    }

    fn restore_all(&mut self) -> RestoreReport {
        self.inner.restore_all()
    }
}

fn config() -> (Config, std::path::PathBuf) {
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &builtin(), |table| {
        table["runtime"]
            .as_table_mut()
            .unwrap()
            .insert("tick_hz".into(), 500.into());
    });
    (config, scenario)
}

fn twin_for(scenario: &std::path::Path) -> SharedTwin {
    SharedTwin::new(gamesa_hw::twin::Twin::new(
        gamesa_hw::twin::Scenario::load(scenario).unwrap(),
    ))
}

/// Every component's limit and the limit it started with, in W.
fn limits_w(twin: &SharedTwin) -> Vec<(f64, f64)> {
    twin.with(|twin| {
        (0..twin.component_names().count())
            .map(|index| {
                (
                    twin.limit_w(index).unwrap(),
                    twin.initial_limit_w(index).unwrap(),
                )
            })
            .collect()
    })
}

fn changed(twin: &SharedTwin) -> bool {
    limits_w(twin).iter().any(|(now, initial)| now != initial)
}

fn assert_restored(twin: &SharedTwin) {
    let limits = limits_w(twin);
    assert!(
        limits.iter().all(|(now, initial)| now == initial),
        "not restored: {limits:?} (limit, initial) W"
    );
}

#[actix::test]
async fn an_error_from_the_tick_loop_then_dropping_the_runtime_restores_the_originals() {
    let (config, scenario) = config();
    let twin = twin_for(&scenario);
    let mut runtime = Runtime::start(
        &config,
        &builtin(),
        Box::new(DyingSensors(Box::new(twin.sensors()))),
        Box::new(twin.actuator()),
    )
    .unwrap();
    let error = runtime
        .run_until(std::future::pending(), |_| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("sensor"), "{error}");
    assert!(
        changed(&twin),
        "the agents changed no limit: {:?}",
        limits_w(&twin)
    );
    // What `gamesa run` did with the error: return it, dropping the runtime.
    drop(runtime);
    assert_restored(&twin);
}

#[actix::test]
async fn an_error_from_the_tick_loop_then_shutdown_restores_the_originals() {
    let (config, scenario) = config();
    let twin = twin_for(&scenario);
    let mut runtime = Runtime::start(
        &config,
        &builtin(),
        Box::new(DyingSensors(Box::new(twin.sensors()))),
        Box::new(twin.actuator()),
    )
    .unwrap();
    runtime
        .run_until(std::future::pending(), |_| {})
        .await
        .unwrap_err();
    assert!(changed(&twin));
    // What `gamesa run` does now: shut down whatever ended the loop.
    let report = runtime.shutdown().await;
    assert!(report.cancel_failed.is_none(), "{report:?}");
    assert!(!report.restored.restored.is_empty(), "{report:?}");
    assert_restored(&twin);
}

#[actix::test]
async fn a_panic_inside_a_tick_restores_the_originals() {
    let (config, scenario) = config();
    let twin = twin_for(&scenario);
    let mut runtime = Runtime::start(
        &config,
        &builtin(),
        Box::new(twin.sensors()),
        Box::new(PanickingActuator {
            inner: Box::new(twin.actuator()),
            changes: 3,
        }),
    )
    .unwrap();
    // The panic kills the actuator actor mid-tick; the tick reports it gone.
    let error = runtime
        .run_until(std::future::pending(), |_| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("actuator"), "{error}");
    assert!(changed(&twin));
    let report = runtime.shutdown().await;
    assert!(!report.restored.restored.is_empty(), "{report:?}");
    assert_restored(&twin);
}

#[test]
fn a_panic_unwinding_past_the_runtime_restores_the_originals() {
    let (config, scenario) = config();
    let twin = twin_for(&scenario);
    let shared = twin.clone();
    let saw_a_change = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = std::sync::Arc::clone(&saw_a_change);
    let unwound = std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            let mut runtime = Runtime::start(
                &config,
                &builtin(),
                Box::new(shared.sensors()),
                Box::new(shared.actuator()),
            )
            .unwrap();
            let _ = runtime
                .run_until(std::future::pending(), |report| {
                    if changed(&shared) {
                        saw.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    assert!(report.tick.0 < FAULT_AT, "a fault while ticking");
                })
                .await;
        });
    })
    .join();
    assert!(unwound.is_err(), "the run did not panic");
    assert!(saw_a_change.load(std::sync::atomic::Ordering::SeqCst));
    assert_restored(&twin);
}
