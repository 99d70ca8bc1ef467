//! A workload's `progress` reports over ingress become the `progress_micro` of its
//! component in the next tick's frame, the frame the agents observe: reports of several
//! clients add up, the work a job has `left` is the newest report's, a client without
//! `progress:<component>` is refused, and a sensor that counts progress itself (the
//! twin) is not overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use gamesa_hw::{Sample, Sensors};
use gamesa_proto::{TelemetryFrame, Tick};
use gamesa_runtime::Config;
use gamesa_wire::{
    ComponentName, ErrorCode, ProgressAmount, ProgressRequest, ProgressResult, QueryName, Request,
    TelemetryResult,
};
use ingress_support::*;

const BENCH: (&str, &str) = ("bench", "bench-token-0001");
const TRAINER: (&str, &str) = ("trainer", "trainer-token-01");

/// The test config's clients, plus two workloads that may report progress.
fn progress_config(dir: &std::path::Path) -> Config {
    ingress_config(dir, "gpu_bottleneck.toml", |table| {
        let workloads: toml::Table = r#"
            [[clients]]
            name = "bench"
            token = "bench-token-0001"
            effects = ["progress:gpu0", "query:telemetry"]

            [[clients]]
            name = "trainer"
            token = "trainer-token-01"
            effects = ["progress:*"]
            "#
        .parse()
        .unwrap();
        let clients = table["clients"].as_array_mut().unwrap();
        clients.extend(workloads["clients"].as_array().unwrap().iter().cloned());
    })
}

/// The twin's telemetry without the twin's own progress counter: what a machine whose
/// sensors count no progress reports.
struct NoProgressSensors<S>(S);

impl<S: Sensors> Sensors for NoProgressSensors<S> {
    fn sample(&mut self, tick: Tick) -> Sample {
        let mut sample = self.0.sample(tick);
        for component in &mut sample.frame.components {
            component.progress_micro = None;
            component.work_left_micro = None;
        }
        sample
    }
}

/// A runtime whose sensors count no progress, with the ingress server attached.
fn start_without_progress(config: &Config) -> Daemon {
    Daemon::start_with(config, |twin| Box::new(NoProgressSensors(twin.sensors())))
}

fn progress(component: &str, amount: f64) -> Request {
    Request::Progress(ProgressRequest {
        component: ComponentName::new(component).unwrap(),
        amount: ProgressAmount::try_from(amount).unwrap(),
        left: None,
    })
}

fn progress_with_left(component: &str, amount: f64, left: f64) -> Request {
    Request::Progress(ProgressRequest {
        component: ComponentName::new(component).unwrap(),
        amount: ProgressAmount::try_from(amount).unwrap(),
        left: Some(ProgressAmount::try_from(left).unwrap()),
    })
}

fn left_of(frame: &TelemetryFrame, component: &str) -> Option<u64> {
    frame.component(component).unwrap().work_left_micro
}

fn progress_of(frame: &TelemetryFrame, component: &str) -> Option<u64> {
    frame.component(component).unwrap().progress_micro
}

#[actix::test]
async fn reports_of_two_clients_add_up_in_the_next_frame_the_agents_see() {
    let dir = tempfile::tempdir().unwrap();
    let config = progress_config(dir.path());
    let mut daemon = start_without_progress(&config);
    let first = daemon.ticks(1).await.remove(0);
    assert_eq!(
        progress_of(&first.frame, "gpu0"),
        None,
        "nobody reported yet"
    );

    let mut bench = daemon.unix_as(BENCH);
    let mut trainer = daemon.tcp_as(TRAINER);
    let reported: ProgressResult = bench.call_as(&progress("gpu0", 12.5)).unwrap();
    assert_eq!(reported.micro, 12_500_000);
    assert_eq!(reported.tick, Tick(1), "taken in at the next tick");
    let reported: ProgressResult = trainer.call_as(&progress("gpu0", 2.5)).unwrap();
    assert_eq!(
        (reported.component.as_str(), reported.micro),
        ("gpu0", 2_500_000)
    );
    let _: ProgressResult = trainer.call_as(&progress("gpu0", 1.0)).unwrap();

    // The frame the agents observe at tick 1 carries the sum; the CPU, which no one
    // reported for, keeps none, so its agent falls back on its utilization prior.
    let tick = daemon.ticks(1).await.remove(0);
    assert_eq!(tick.tick, Tick(1));
    assert_eq!(progress_of(&tick.frame, "gpu0"), Some(16_000_000));
    assert_eq!(progress_of(&tick.frame, "cpu"), None);
    let telemetry: TelemetryResult = bench
        .call_as(&Request::query(QueryName::Telemetry))
        .unwrap();
    assert_eq!(telemetry.tick, Some(Tick(1)));
    assert_eq!(
        progress_of(&telemetry.frame.unwrap(), "gpu0"),
        Some(16_000_000)
    );

    // A counter: it holds while no one reports, and grows with the next report.
    let quiet = daemon.ticks(1).await.remove(0);
    assert_eq!(progress_of(&quiet.frame, "gpu0"), Some(16_000_000));
    let _: ProgressResult = bench.call_as(&progress("gpu0", 0.000_001)).unwrap();
    let _: ProgressResult = trainer.call_as(&progress("cpu", 3.0)).unwrap();
    let later = daemon.ticks(1).await.remove(0);
    assert_eq!(progress_of(&later.frame, "gpu0"), Some(16_000_001));
    assert_eq!(progress_of(&later.frame, "cpu"), Some(3_000_000));
}

#[actix::test]
async fn the_work_left_is_the_newest_reports_and_stands_until_another_says() {
    let dir = tempfile::tempdir().unwrap();
    let config = progress_config(dir.path());
    let mut daemon = start_without_progress(&config);
    daemon.ticks(1).await;
    let mut trainer = daemon.tcp_as(TRAINER);
    let _: ProgressResult = trainer
        .call_as(&progress_with_left("gpu0", 1.0, 500.0))
        .unwrap();
    let _: ProgressResult = trainer
        .call_as(&progress_with_left("gpu0", 1.0, 499.0))
        .unwrap();
    let tick = daemon.ticks(1).await.remove(0);
    assert_eq!(progress_of(&tick.frame, "gpu0"), Some(2_000_000));
    assert_eq!(left_of(&tick.frame, "gpu0"), Some(499_000_000));
    assert_eq!(left_of(&tick.frame, "cpu"), None, "no one said for the CPU");
    // A report that does not say leaves what was said.
    let _: ProgressResult = trainer.call_as(&progress("gpu0", 1.0)).unwrap();
    let tick = daemon.ticks(1).await.remove(0);
    assert_eq!(left_of(&tick.frame, "gpu0"), Some(499_000_000));
    let _: ProgressResult = trainer
        .call_as(&progress_with_left("gpu0", 1.0, 0.0))
        .unwrap();
    let tick = daemon.ticks(1).await.remove(0);
    assert_eq!(left_of(&tick.frame, "gpu0"), Some(0));
}

#[actix::test]
async fn a_client_without_the_effect_is_forbidden_and_nothing_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = progress_config(dir.path());
    let mut daemon = start_without_progress(&config);
    daemon.ticks(1).await;
    let denied_before = daemon
        .ingress
        .hub()
        .counters
        .denied
        .load(std::sync::atomic::Ordering::Relaxed);
    for transport in TRANSPORTS {
        // `game` holds no progress effect; `bench` holds it for gpu0 only.
        let mut game = daemon.connect_as(transport, GAME);
        let error = game
            .call(&progress("gpu0", 5.0))
            .unwrap()
            .outcome
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::Forbidden, "{transport:?}");
        assert!(error.message.contains("progress:gpu0"), "{error}");
        let mut bench = daemon.connect_as(transport, BENCH);
        let error = bench
            .call(&progress("cpu", 5.0))
            .unwrap()
            .outcome
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::Forbidden, "{transport:?}");
        assert!(error.message.contains("progress:cpu"), "{error}");
        barrier(&mut game);
    }
    let denied_after = daemon
        .ingress
        .hub()
        .counters
        .denied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(denied_after, denied_before + 4, "every denial is counted");
    let tick = daemon.ticks(1).await.remove(0);
    assert_eq!(progress_of(&tick.frame, "gpu0"), None);
    assert_eq!(progress_of(&tick.frame, "cpu"), None);
}

#[actix::test]
async fn the_twins_own_counter_wins_over_client_reports() {
    let dir = tempfile::tempdir().unwrap();
    let config = progress_config(dir.path());
    let mut daemon = Daemon::start(&config);
    let before = daemon.ticks(1).await.remove(0);
    let twin_before = progress_of(&before.frame, "gpu0").expect("the twin counts progress");
    let mut trainer = daemon.tcp_as(TRAINER);
    let _: ProgressResult = trainer.call_as(&progress("gpu0", 1e12)).unwrap();
    let after = daemon.ticks(1).await.remove(0);
    let twin_after = progress_of(&after.frame, "gpu0").unwrap();
    assert!(
        twin_after >= twin_before && twin_after - twin_before < 1_000_000_000_000_000,
        "the twin's counter ({twin_before} then {twin_after}) was overwritten"
    );
}
