//! The journal as a store: retention holds it under `max_mb` and drops ticks older than
//! `keep_days`; a write error turns it off without touching the ticks; a full queue
//! drops ticks and leaves a gap that replay reports; a file that is not a journal of
//! this version is refused with a message that says so; the WASM module copies do not
//! count toward `max_mb`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use gamesa_engine::Intake;
use gamesa_hw::{
    Actuator, Sensors,
    twin::{Scenario, SharedTwin, Twin},
};
use gamesa_runtime::{
    Config, assemble,
    journal::{
        Entry, JournalError, JournalReader, JournalWriter, RunInfo, WriterSettings,
        replay::{self, ReplayError, TickRange},
        writer,
    },
};
use support::*;

const DAY_MS: u64 = 86_400_000;

/// `ticks` ticks of the in-place engine on the twin, as the shell would journal them,
/// the tick `t` stamped `at_ms(t)`.
fn entries(config: &Config, ticks: u64, at_ms: impl Fn(u64) -> u64) -> Vec<Entry> {
    let registry = builtin();
    let scenario_path = scenario("mixed.toml");
    let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario_path).unwrap()));
    let (mut sensors, mut actuator) = (twin.sensors(), twin.actuator());
    let mut engine = assemble::engine(config, &registry).unwrap();
    (0..ticks)
        .map(|tick| {
            let frame = sensors.sample(engine.state().next_tick()).frame;
            let mut output = engine.tick(frame, Intake::default());
            let results = output
                .to_apply()
                .iter()
                .map(|(_, actuation)| actuator.apply(actuation).map_err(|e| e.to_string()))
                .collect();
            engine.applied(&mut output, results);
            Entry {
                at_ms: at_ms(tick),
                intake: Intake::default(),
                output,
                reloads: Vec::new(),
            }
        })
        .collect()
}

fn config() -> Config {
    sim_config(&scenario("mixed.toml"), &builtin(), |_| {})
}

fn writer(path: &Path, config: &Config, edit: impl FnOnce(&mut WriterSettings)) -> JournalWriter {
    let mut settings = WriterSettings {
        queue_ticks: 1 << 20,
        ..WriterSettings::from(&config.journal)
    };
    edit(&mut settings);
    JournalWriter::open(path, settings, &RunInfo::of(config, &builtin(), 0).unwrap()).unwrap()
}

fn count(reader: &JournalReader, sql: &str) -> i64 {
    reader
        .connection()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[test]
fn retention_keeps_the_journal_under_max_mb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    let ticks = 12_000;
    let journal = writer(&path, &config, |settings| settings.max_mb = 1);
    for entry in entries(&config, ticks, |tick| tick * 100) {
        journal.record(entry);
    }
    let stats = journal.close();
    assert_eq!(
        (stats.committed, stats.dropped, stats.off),
        (ticks, 0, None)
    );

    let reader = JournalReader::open(&path).unwrap();
    let pages = count(&reader, "PRAGMA page_count") - count(&reader, "PRAGMA freelist_count");
    let used = pages * count(&reader, "PRAGMA page_size");
    // Retention runs after each commit: at most one batch over the limit.
    assert!(used <= (1 << 20) + (256 << 10), "{used} bytes in use");
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(
        file <= (1 << 20) + (512 << 10),
        "the file holds {file} bytes"
    );
    let (first, last) = reader.tick_range(1).unwrap().unwrap();
    assert_eq!(last.0, ticks - 1);
    assert!(
        first.0 > 0,
        "nothing was deleted: the test wrote too little"
    );
    // The rows of deleted batches went with them.
    assert_eq!(
        count(
            &reader,
            "SELECT count(*) FROM actuations WHERE batch NOT IN (SELECT batch FROM batches)"
        ),
        0
    );
    // A run whose start is gone cannot be replayed, and says why.
    let error = replay::replay(&reader, &builtin(), None, TickRange::default()).unwrap_err();
    assert_eq!(
        error,
        ReplayError::Truncated {
            run: 1,
            first: first.0
        }
    );
}

#[test]
fn module_copies_do_not_count_toward_max_mb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    writer(&path, &config, |_| {}).close();
    // Copies of WASM modules larger than the whole limit, as a long life of rebuilt
    // modules would leave: retention never removes them.
    let copies = rusqlite::Connection::open(&path).unwrap();
    for digest in ["00000000000000a1", "00000000000000a2"] {
        copies
            .execute(
                "INSERT INTO modules (digest, bytes) VALUES (?1, zeroblob(?2))",
                rusqlite::params![digest, 1 << 20],
            )
            .unwrap();
    }
    drop(copies);
    let ticks = 3_000;
    let journal = writer(&path, &config, |settings| settings.max_mb = 1);
    for entry in entries(&config, ticks, |tick| tick * 100) {
        journal.record(entry);
    }
    journal.close();
    let reader = JournalReader::open(&path).unwrap();
    // Had the copies counted, retention would have cut the new run down to one batch.
    let (first, last) = reader.tick_range(2).unwrap().unwrap();
    assert_eq!(
        (first.0, last.0),
        (0, ticks - 1),
        "ticks of the new run were deleted"
    );
    assert_eq!(count(&reader, "SELECT COUNT(*) FROM modules"), 2);
}

#[test]
fn ticks_older_than_keep_days_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    let journal = writer(&path, &config, |settings| settings.keep_days = 7);
    // 200 ticks a day apart from tick 100 on: day 0, then days 1..=100.
    for entry in entries(&config, 200, |tick| tick.saturating_sub(99) * DAY_MS) {
        journal.record(entry);
    }
    journal.close();
    let reader = JournalReader::open(&path).unwrap();
    let newest: i64 = count(&reader, "SELECT max(last_ms) FROM batches");
    assert_eq!(newest as u64, 100 * DAY_MS);
    // Whole batches of 50 go once their last tick is more than 7 days old: only the
    // last (ticks 150 to 199, days 51 to 100) has one within the week.
    assert_eq!(
        reader.tick_range(1).unwrap().unwrap(),
        (gamesa_proto::Tick(150), gamesa_proto::Tick(199))
    );
}

/// Waits until the writer has committed `ticks` ticks.
fn await_committed(journal: &JournalWriter, ticks: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.stats().committed < ticks {
        assert!(Instant::now() < deadline, "{:?}", journal.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_write_error_turns_the_journal_off_and_the_ticks_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    let journal = writer(&path, &config, |settings| settings.batch_ticks = 10);
    let mut entries = entries(&config, 40, |tick| tick * 100).into_iter();
    for entry in entries.by_ref().take(10) {
        journal.record(entry);
    }
    await_committed(&journal, 10);
    // The table the next batch writes to disappears under the writer.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE trades")
        .unwrap();
    for entry in entries {
        journal.record(entry);
    }
    let stats = journal.close();
    assert_eq!((stats.committed, stats.dropped), (10, 30));
    let off = stats.off.expect("the journal says why it stopped");
    assert!(off.contains("trades"), "{off}");
}

#[test]
fn a_full_queue_drops_ticks_and_replay_stops_at_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let config = config();
    let entries = entries(&config, 3000, |tick| tick * 100);
    let journal = writer(&path, &config, |settings| {
        settings.queue_ticks = 1;
        settings.batch_ticks = 1;
    });
    // Ticks far faster than the writer looks for them, with a pause now and then in
    // which it takes the one the queue holds.
    for (tick, entry) in entries.into_iter().enumerate() {
        journal.record(entry);
        if tick % 500 == 0 {
            std::thread::sleep(writer::POLL * 3);
        }
    }
    let stats = journal.close();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.committed + stats.dropped, 3000);
    let reader = JournalReader::open(&path).unwrap();
    assert!(count(&reader, "SELECT count(*) FROM events WHERE kind = 'gap'") > 0);
    let error = replay::replay(&reader, &builtin(), None, TickRange::default()).unwrap_err();
    assert!(matches!(error, ReplayError::Gap { run: 1, .. }), "{error}");
}

#[test]
fn a_file_that_is_not_a_journal_of_this_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"this is not a database, but long enough to be read as one",
    )
    .unwrap();
    let error = JournalReader::open(&garbage).unwrap_err().to_string();
    assert!(error.contains("garbage.sqlite"), "{error}");

    let empty = dir.path().join("empty.sqlite");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let error = JournalReader::open(&empty).unwrap_err().to_string();
    assert!(error.contains("not a GAMESA journal"), "{error}");

    let missing = JournalReader::open(&dir.path().join("missing.sqlite")).unwrap_err();
    assert!(missing.to_string().contains("no such file"), "{missing}");

    let future = dir.path().join("future.sqlite");
    let config = config();
    writer(&future, &config, |_| {}).close();
    rusqlite::Connection::open(&future)
        .unwrap()
        .execute_batch("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        .unwrap();
    let expected = JournalError::Version {
        path: future.clone(),
        found: "999".to_owned(),
        expected: 2,
    };
    assert_eq!(JournalReader::open(&future).unwrap_err(), expected);
    // Nor is it written to.
    let refused = JournalWriter::open(
        &future,
        WriterSettings::from(&config.journal),
        &RunInfo::of(&config, &builtin(), 0).unwrap(),
    )
    .unwrap_err();
    assert_eq!(refused, expected);
    assert!(
        refused
            .to_string()
            .contains("schema version 999, but this gamesa reads version 2")
    );
}

#[test]
fn a_version_1_journal_is_read_as_it_is_and_upgraded_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    let config = config();
    let journal = writer(&path, &config, |_| {});
    for entry in entries(&config, 5, |tick| tick * 100) {
        journal.record(entry);
    }
    journal.close();
    // Version 1 is version 2 without the table of WASM modules.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE modules;
             UPDATE meta SET value = '1' WHERE key = 'schema_version';",
        )
        .unwrap();
    let reader = JournalReader::open(&path).unwrap();
    assert!(count(&reader, "SELECT COUNT(*) FROM batches WHERE run = 1") > 0);
    drop(reader);
    writer(&path, &config, |_| {}).close();
    let reader = JournalReader::open(&path).unwrap();
    assert_eq!(
        count(
            &reader,
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version'"
        ),
        2
    );
    assert_eq!(count(&reader, "SELECT COUNT(*) FROM modules"), 0);
    assert_eq!(
        count(&reader, "SELECT COUNT(*) FROM runs"),
        2,
        "the old run is kept"
    );
}
