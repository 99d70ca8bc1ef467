//! Snapshots: every epoch and at shutdown the journal keeps what each agent holds; the
//! next run takes the latest back, credits it before its first tick with the ledger
//! still balanced, and replays identically; a snapshot that does not decode, or is of
//! another version, is moved aside and the run starts fresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use gamesa_proto::{AgentId, Credits};
use gamesa_runtime::{
    Config, Runtime,
    actors::guardian::{Accounts, IsConserved},
    journal::{
        JournalReader, JournalWriter, RunInfo, WriterSettings,
        replay::{self, TickRange},
    },
};
use support::*;

fn config() -> Config {
    sim_config(&scenario("gpu_bottleneck.toml"), &builtin(), |_| {})
}

fn open_journal(path: &Path, config: &Config) -> JournalWriter {
    let settings = WriterSettings {
        queue_ticks: 1 << 20,
        ..WriterSettings::from(&config.journal)
    };
    JournalWriter::open(path, settings, &RunInfo::of(config, &builtin(), 0).unwrap()).unwrap()
}

fn start(config: &Config) -> Runtime {
    start_on_twin(config, &scenario("gpu_bottleneck.toml"), &builtin()).0
}

/// A journaled run of `ticks` ticks that resumes what `journal` offers, shut down.
async fn journaled_run(config: &Config, journal: JournalWriter, ticks: usize) {
    let mut runtime = start(config);
    if let Some(resumed) = journal.resumed() {
        runtime
            .resume(resumed.holdings.clone())
            .await
            .unwrap()
            .unwrap();
    }
    runtime.attach_journal(journal);
    run_ticks(&mut runtime, ticks).await;
    let shutdown = runtime.shutdown().await;
    assert_eq!(shutdown.journal.unwrap().dropped, 0);
}

fn holdings_by_name(reader: &JournalReader, snapshot: i64) -> Vec<(String, u64)> {
    let body: String = reader
        .connection()
        .query_row(
            "SELECT body FROM snapshots WHERE snapshot = ?1",
            [snapshot],
            |row| row.get(0),
        )
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_u64().unwrap(),
            )
        })
        .collect()
}

#[actix::test]
async fn a_restart_resumes_every_agents_credits_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();

    let first = open_journal(&path, &config);
    assert_eq!(
        first.resumed(),
        None,
        "an empty journal has nothing to resume"
    );
    journaled_run(&config, first, 35).await;
    let reader = JournalReader::open(&path).unwrap();
    // Ticks 0, 10, 20 and 30 began epochs; the shutdown took the last.
    let snapshots: i64 = reader
        .connection()
        .query_row("SELECT count(*) FROM snapshots WHERE run = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(snapshots, 5);
    let last: i64 = reader
        .connection()
        .query_row("SELECT max(snapshot) FROM snapshots", [], |row| row.get(0))
        .unwrap();
    let held = holdings_by_name(&reader, last);
    assert!(
        held.iter().any(|(_, credits)| *credits > 0),
        "nobody held anything: {held:?}"
    );

    // The next run takes it back under its own ids, before its first tick.
    let second = open_journal(&path, &config);
    let resumed = second.resumed().unwrap().clone();
    assert_eq!(resumed.snapshot, last);
    assert_eq!(resumed.unknown, Vec::<String>::new());
    let names = gamesa_runtime::assemble::participants(&config);
    let expected: Vec<(AgentId, Credits)> = held
        .iter()
        .map(|(name, credits)| {
            let id = names.iter().find(|(_, known)| known == name).unwrap().0;
            (id, Credits(*credits))
        })
        .collect();
    assert_eq!(resumed.holdings, expected);
    let mut runtime = start(&config);
    let total = runtime
        .resume(resumed.holdings.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        total.0,
        held.iter().map(|(_, credits)| credits).sum::<u64>()
    );
    assert!(runtime.guardian().send(IsConserved).await.unwrap());
    let accounts = runtime.guardian().send(Accounts).await.unwrap();
    for (agent, credits) in &expected {
        let account = accounts.iter().find(|(id, _)| id == agent).unwrap().1;
        assert_eq!(account.available, *credits, "{agent}");
    }
    runtime.attach_journal(second);
    run_ticks(&mut runtime, 30).await;
    assert!(runtime.guardian().send(IsConserved).await.unwrap());
    let _ = runtime.shutdown().await;

    // Both runs replay identically, the second from what it resumed.
    let reader = JournalReader::open(&path).unwrap();
    assert_eq!(reader.run(Some(2)).unwrap().resumed, expected);
    for run in [1, 2] {
        let report = replay::replay(&reader, &builtin(), Some(run), TickRange::default()).unwrap();
        assert_eq!(report.divergence, None, "{report}");
    }
}

#[actix::test]
async fn a_snapshot_that_does_not_decode_or_is_of_another_version_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    journaled_run(&config, open_journal(&path, &config), 12).await;

    for (damage, expected) in [
        (
            "UPDATE snapshots SET body = substr(body, 1, 20) WHERE snapshot = (SELECT max(snapshot) FROM snapshots)",
            "does not decode",
        ),
        (
            "UPDATE snapshots SET version = 99 WHERE snapshot = (SELECT max(snapshot) FROM snapshots WHERE rejected IS NULL)",
            "version 99",
        ),
    ] {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(damage)
            .unwrap();
        let journal = open_journal(&path, &config);
        assert_eq!(journal.resumed(), None, "never loaded half-way");
        let rejected = journal.rejected_snapshot().unwrap().to_owned();
        assert!(rejected.contains(expected), "{rejected}");
        let run = journal.run();
        journaled_run(&config, journal, 12).await;
        let reader = JournalReader::open(&path).unwrap();
        // Kept, marked, and the run started fresh.
        let marked: i64 = reader
            .connection()
            .query_row(
                "SELECT count(*) FROM snapshots WHERE rejected = ?1",
                [&rejected],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(marked, 1);
        assert_eq!(reader.run(Some(run)).unwrap().resumed, Vec::new());
        let report = replay::replay(&reader, &builtin(), Some(run), TickRange::default()).unwrap();
        assert_eq!(report.divergence, None, "{report}");
    }
}
