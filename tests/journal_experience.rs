//! The experience store: each power-buying agent's epochs (the state it saw, the power
//! it held and bought, the work done) are journaled and queryable in SQL; the next run
//! hands each agent its latest, an agent that learns takes them in `warm`, and replay
//! warms it the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, AgentSpec, Experience, Intent, Observation, SignalIntent,
};
use gamesa_proto::{Domain, SignalKind, Strength};
use gamesa_runtime::{
    Config,
    journal::{
        JournalReader, JournalWriter, RunInfo, WriterSettings, experience,
        replay::{self, TickRange},
    },
};
use support::*;

/// The GPU agent, which also says at its first turn how many past epochs it was
/// handed: its decisions depend on its warm start, as a learned model's would.
struct Learner {
    inner: Box<dyn Agent>,
    past: usize,
    warmed: Arc<AtomicUsize>,
    told: bool,
}

impl Agent for Learner {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut intents = self.inner.observe(observation)?;
        if !self.told {
            self.told = true;
            intents.push(Intent::Raise(SignalIntent {
                kind: SignalKind::new(format!("warmed_with_{}", self.past)).unwrap(),
                domain: Domain::Efficiency,
                strength: Strength::MAX,
                ttl_ticks: 1,
            }));
        }
        Ok(intents)
    }

    fn warm(&mut self, past: &[Experience]) {
        assert!(past.iter().all(|epoch| epoch.component == "gpu0"));
        self.past = past.len();
        self.warmed.store(past.len(), Ordering::SeqCst);
    }
}

/// The built-in kinds, and `learner`: the GPU agent with a warm start.
fn registry(warmed: &Arc<AtomicUsize>) -> AgentRegistry {
    let mut registry = builtin();
    let gpu = registry.factory("gpu").unwrap();
    let component = {
        let registry = builtin();
        move |spec: &AgentSpec| {
            registry.powered_component(&AgentSpec {
                kind: "gpu".into(),
                ..spec.clone()
            })
        }
    };
    let warmed = Arc::clone(warmed);
    registry
        .register_powering(
            "learner",
            move |spec| {
                Ok(Box::new(Learner {
                    inner: gpu(spec)?,
                    past: 0,
                    warmed: Arc::clone(&warmed),
                    told: false,
                }) as Box<dyn Agent>)
            },
            component,
        )
        .unwrap();
    registry
}

/// `config/sim.toml` with the GPU agent a `learner` that may raise efficiency signals.
fn config(registry: &AgentRegistry) -> Config {
    sim_config(&scenario("gpu_bottleneck.toml"), registry, |table| {
        for agent in table["agents"].as_array_mut().unwrap() {
            if agent["id"].as_str() == Some("gpu0") {
                agent["kind"] = toml::Value::String("learner".into());
                agent["effects"]
                    .as_array_mut()
                    .unwrap()
                    .push(toml::Value::String("signal:efficiency".into()));
            }
        }
    })
}

async fn journaled_run(
    config: &Config,
    registry: &AgentRegistry,
    path: &std::path::Path,
    ticks: usize,
) -> i64 {
    let settings = WriterSettings {
        queue_ticks: 1 << 20,
        ..WriterSettings::from(&config.journal)
    };
    let journal =
        JournalWriter::open(path, settings, &RunInfo::of(config, registry, 0).unwrap()).unwrap();
    let run = journal.run();
    let (mut runtime, _twin) = start_on_twin(config, &scenario("gpu_bottleneck.toml"), registry);
    if let Some(resumed) = journal.resumed() {
        runtime
            .resume(resumed.holdings.clone())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(runtime.warm(journal.pasts()).await.unwrap(), Vec::new());
    runtime.attach_journal(journal);
    let outputs = run_ticks(&mut runtime, ticks).await;
    let _ = runtime.shutdown().await;
    // What the learner said at its first turn is in the tick's live signals.
    assert!(
        outputs[0]
            .signals
            .iter()
            .any(|signal| signal.kind.as_str().starts_with("warmed_with_")),
        "{:?}",
        outputs[0].signals
    );
    run
}

#[actix::test]
async fn each_power_buyers_epochs_are_kept_and_warm_it_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let warmed = Arc::new(AtomicUsize::new(usize::MAX));
    let registry = registry(&warmed);
    let config = config(&registry);

    journaled_run(&config, &registry, &path, 35).await;
    assert_eq!(
        warmed.load(Ordering::SeqCst),
        usize::MAX,
        "nothing to warm with yet"
    );
    let reader = JournalReader::open(&path).unwrap();
    // Epochs of ticks 0-9, 10-19, 20-29 and the run's last five, for both buyers.
    let rows: Vec<(String, i64, i64)> = reader
        .connection()
        .prepare("SELECT agent, first_tick, ticks FROM experiences ORDER BY agent, first_tick")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(String, i64, i64)> = ["cpu", "gpu0"]
        .into_iter()
        .flat_map(|agent| {
            [(0, 10), (10, 10), (20, 10), (30, 5)]
                .map(|(first, ticks)| (agent.to_owned(), first, ticks))
        })
        .collect();
    assert_eq!(rows, expected);
    let gpu = experience::latest(reader.connection(), Some("gpu0"), 10).unwrap();
    assert_eq!(gpu.len(), 4);
    assert_eq!(gpu[0].experience.first_tick.0, 30, "newest first");
    assert!(gpu.iter().all(|epoch| epoch.experience.power_mw.is_some()));
    assert!(gpu.iter().all(|epoch| epoch.experience.limit_mw.is_some()));
    assert!(
        gpu.iter()
            .any(|epoch| epoch.experience.bought_mw > 0 && epoch.experience.mean_price.is_some()),
        "{gpu:?}"
    );
    drop(reader);

    // The next start hands the learner its four epochs, and replay does the same.
    let run = journaled_run(&config, &registry, &path, 20).await;
    assert_eq!(warmed.load(Ordering::SeqCst), 4);
    let reader = JournalReader::open(&path).unwrap();
    let record = reader.run(Some(run)).unwrap();
    let warmed_agents: Vec<_> = record
        .warmed
        .iter()
        .map(|(agent, past)| (*agent, past.len()))
        .collect();
    assert_eq!(
        warmed_agents.len(),
        2,
        "cpu and the learner: {warmed_agents:?}"
    );
    assert!(warmed_agents.iter().all(|(_, epochs)| *epochs == 4));
    let report = replay::replay(&reader, &registry, Some(run), TickRange::default()).unwrap();
    assert_eq!(report.divergence, None, "{report}");
    assert_eq!(
        warmed.load(Ordering::SeqCst),
        4,
        "replay warmed it the same way"
    );
}
