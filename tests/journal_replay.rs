//! Replay of journaled `gamesa run` ticks (the actor shell, agents on their own threads)
//! through the in-place tick engine gives 100 % identical decisions: on this machine's
//! real sensors, on the twin for ten minutes of ticks, with ingress clients sending
//! signals and orders at times the journal alone records, with an agent that panics
//! and is restarted, and with one that misses its deadline. A replay under a changed
//! agent stops at the first divergence and names it; a what-if under another config
//! reports what would have differed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{path::Path, time::Duration};

use gamesa_agent::{Agent, AgentError, AgentRegistry, Intent, Observation};
use gamesa_runtime::{
    Config, Runtime,
    journal::{
        JournalReader, JournalWriter, RunInfo, WriterSettings,
        replay::{self, TickRange},
    },
};
use support::*;

/// Ten minutes of ticks at 10 Hz.
const TEN_MINUTES: u64 = 6000;

/// A journal in `dir` that no test machine's writer falls behind of: the tests tick as
/// fast as they can, and a dropped tick would end the replay at a gap.
fn open_journal(dir: &Path, config: &Config, registry: &AgentRegistry) -> JournalWriter {
    let settings = WriterSettings {
        queue_ticks: 1 << 20,
        ..WriterSettings::from(&config.journal)
    };
    JournalWriter::open(
        &dir.join("journal.sqlite"),
        settings,
        &RunInfo::of(config, registry, 1_764_730_800_000).unwrap(),
    )
    .unwrap()
}

/// Ticks `runtime` `ticks` times, injecting a performance signal and a safety hold now
/// and then; shuts it down and checks that every tick was committed.
async fn run_journaled(mut runtime: Runtime, ticks: u64) {
    for tick in 0..ticks {
        match tick % 500 {
            10 => runtime.inject(performance_signal()),
            300 => runtime.inject(hold_gpu()),
            _ => {}
        }
        runtime.tick().await.unwrap();
    }
    let shutdown = runtime.shutdown().await;
    let journal = shutdown.journal.unwrap();
    assert_eq!(journal.off, None);
    assert_eq!((journal.committed, journal.dropped), (ticks, 0));
}

fn assert_identical(dir: &Path, registry: &AgentRegistry, ticks: u64) -> JournalReader {
    let reader = JournalReader::open(&dir.join("journal.sqlite")).unwrap();
    let report = replay::replay(&reader, registry, None, TickRange::default()).unwrap();
    assert_eq!(report.divergence, None, "{report}");
    assert_eq!((report.executed, report.compared), (ticks, ticks));
    reader
}

#[actix::test]
async fn ten_minutes_on_the_twin_replay_identically() {
    let dir = tempfile::tempdir().unwrap();
    let registry = builtin();
    let scenario_path = scenario("mixed.toml");
    let config = sim_config(&scenario_path, &registry, |_| {});
    let (mut runtime, _twin) = start_on_twin(&config, &scenario_path, &registry);
    runtime.attach_journal(open_journal(dir.path(), &config, &registry));
    run_journaled(runtime, TEN_MINUTES).await;

    let reader = assert_identical(dir.path(), &registry, TEN_MINUTES);
    // The run traded, wrote limits and held the GPU: the comparison saw all of it.
    let count = |sql: &str| -> i64 {
        reader
            .connection()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    };
    assert!(count("SELECT count(*) FROM trades WHERE verdict = 'allow'") > 0);
    assert!(count("SELECT count(*) FROM actuations WHERE outcome = 'written'") > 0);
    assert!(count("SELECT count(*) FROM events WHERE kind = 'hold'") > 0);
}

#[actix::test]
async fn a_run_on_this_machines_sensors_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let registry = builtin();
    let state_file = dir.path().join("actuator-state.json");
    // The shipped defaults: real sensors, dry-run actuators, agents under their
    // default deadline of half a tick (a loaded machine may make one late; the journal
    // records that and replay answers the same).
    let config = Config::load(
        &repo_root().join("config/default.toml"),
        [(
            "GAMESA__ACTUATORS__STATE_FILE".to_owned(),
            state_file.display().to_string(),
        )],
        &registry,
    )
    .unwrap();
    let hardware =
        gamesa_runtime::hardware::hardware_for(&config, &repo_root().join("config")).unwrap();
    let mut runtime =
        Runtime::start(&config, &registry, hardware.sensors, hardware.actuator).unwrap();
    runtime.attach_journal(open_journal(dir.path(), &config, &registry));
    run_journaled(runtime, TEN_MINUTES).await;
    assert_identical(dir.path(), &registry, TEN_MINUTES);
}

/// Panics in `observe` at ticks 20 and 40; a restart rebuilds it.
struct Flaky;

impl Agent for Flaky {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        if matches!(observation.tick.0, 20 | 40) {
            panic!("flaky agent panics at tick {}", observation.tick.0);
        }
        Ok(Vec::new())
    }
}

/// Misses a 100 ms deadline at tick 15, once.
struct Slow;

impl Agent for Slow {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        if observation.tick.0 == 15 {
            std::thread::sleep(Duration::from_millis(400));
        }
        Ok(Vec::new())
    }
}

fn registry_with(kind: &'static str, build: fn() -> Box<dyn Agent>) -> AgentRegistry {
    let mut registry = builtin();
    registry.register(kind, move |_| Ok(build())).unwrap();
    registry
}

/// `config/sim.toml` with one more agent of `kind` after the others.
fn config_with(registry: &AgentRegistry, kind: &str, deadline_ms: i64) -> Config {
    sim_config(&scenario("gpu_bottleneck.toml"), registry, |table| {
        table["runtime"].as_table_mut().unwrap().insert(
            "agent_deadline_ms".into(),
            toml::Value::Integer(deadline_ms),
        );
        let agent: toml::Table = format!("kind = \"{kind}\"\nid = \"{kind}\"\neffects = []")
            .parse()
            .unwrap();
        table["agents"]
            .as_array_mut()
            .unwrap()
            .push(toml::Value::Table(agent));
    })
}

#[actix::test]
async fn a_run_in_which_an_agent_panicked_and_was_restarted_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with("flaky", || Box::new(Flaky));
    let config = config_with(&registry, "flaky", 10_000);
    let scenario_path = scenario("gpu_bottleneck.toml");
    let (mut runtime, _twin) = start_on_twin(&config, &scenario_path, &registry);
    runtime.attach_journal(open_journal(dir.path(), &config, &registry));
    run_journaled(runtime, 100).await;
    let reader = assert_identical(dir.path(), &registry, 100);
    let failures: i64 = reader
        .connection()
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'failure' AND subject = 'flaky'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(failures, 2);

    // The same inputs through an agent that no longer panics: the replay stops at the
    // first tick that differs and says what differs.
    let fixed = registry_with("flaky", || Box::new(Slow));
    let report = replay::replay(&reader, &fixed, None, TickRange::default()).unwrap();
    let divergence = report
        .divergence
        .expect("a fixed agent decides differently");
    assert_eq!(divergence.tick.0, 20);
    assert_eq!(report.compared, 20);
    assert_eq!(divergence.path, "failures[0]", "{divergence}");
    assert!(
        divergence.recorded.contains("panics at tick 20"),
        "{divergence}"
    );
}

#[actix::test]
async fn a_run_in_which_an_agent_missed_its_deadline_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with("slow", || Box::new(Slow));
    let config = config_with(&registry, "slow", 100);
    let scenario_path = scenario("gpu_bottleneck.toml");
    let (mut runtime, _twin) = start_on_twin(&config, &scenario_path, &registry);
    runtime.attach_journal(open_journal(dir.path(), &config, &registry));
    run_journaled(runtime, 60).await;
    let reader = assert_identical(dir.path(), &registry, 60);
    let late: String = reader
        .connection()
        .query_row(
            "SELECT detail FROM events WHERE kind = 'failure' AND subject = 'slow'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(late.contains("missed its 100 ms deadline"), "{late}");
}

#[actix::test]
async fn a_what_if_reports_what_another_config_would_have_decided() {
    let dir = tempfile::tempdir().unwrap();
    let registry = builtin();
    let scenario_path = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario_path, &registry, |_| {});
    let (mut runtime, _twin) = start_on_twin(&config, &scenario_path, &registry);
    runtime.attach_journal(open_journal(dir.path(), &config, &registry));
    run_journaled(runtime, 300).await;
    let reader = JournalReader::open(&dir.path().join("journal.sqlite")).unwrap();

    let same = replay::what_if(&reader, &registry, None, TickRange::default(), &config).unwrap();
    assert_eq!(same.ticks, 300);
    assert_eq!(
        same.changes,
        Vec::new(),
        "the recorded config changes nothing"
    );

    // A GPU limit that may move 2 W a tick instead of 25: the gate clamps more.
    let slower = sim_config(&scenario_path, &registry, |table| {
        table["guardian"]["limits"]["power.limit:gpu0"]["max_step"] = toml::Value::Integer(2_000);
    });
    let other = replay::what_if(&reader, &registry, None, TickRange::default(), &slower).unwrap();
    assert!(!other.changes.is_empty());
    assert!(
        other.changes.iter().any(|change| !change.limits.is_empty()),
        "{}",
        other.display(5)
    );
    let text = other.display(5).to_string();
    assert!(text.contains("would have gone differently"), "{text}");
}
