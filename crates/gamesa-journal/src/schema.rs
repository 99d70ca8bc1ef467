//! The journal's SQLite schema, its version, and opening a file for writing (created
//! when missing) or for reading (never created, never changed). `docs/journal.md`
//! describes every table and column.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::JournalError;

/// Bumped whenever a table, a column or the encoding of a blob changes. A journal of
/// another version is refused with both versions named, never read half-way, except
/// those this version knows how to read ([`READS_VERSION_1`]).
pub const SCHEMA_VERSION: u32 = 2;

/// Version 1 is version 2 without `modules`: read as it is (replay then reads WASM
/// modules from their paths), and upgraded by adding the table when opened to write.
const READS_VERSION_1: &str = "1";

/// What version 2 added to version 1.
const MODULES_TABLE: &str = "
-- The WASM modules runs loaded, one row per digest: replay runs these bytes.
CREATE TABLE modules (
    digest TEXT PRIMARY KEY,  -- XXH3-64 in hex, as config's `module_xxh3`
    bytes  BLOB NOT NULL
);
";

/// Every table of version [`SCHEMA_VERSION`].
const TABLES: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per `gamesa run` (or test runtime): the config it ran under.
CREATE TABLE runs (
    run            INTEGER PRIMARY KEY,
    started_ms     INTEGER NOT NULL,
    ended_ms       INTEGER,
    gamesa_version TEXT    NOT NULL,
    seed           INTEGER NOT NULL,
    tick_hz        INTEGER NOT NULL,
    config         TEXT    NOT NULL,  -- the effective config, TOML
    participants   TEXT    NOT NULL,  -- JSON [[id, name], ...]: agents, then clients
    resumed_from   INTEGER,           -- the snapshot it resumed, if any
    resumed        TEXT,              -- JSON [[id, credits], ...]: what it credited
    warmed         TEXT               -- JSON [[id, [experience, ...]], ...]: agents' pasts
);
-- What every agent held at each epoch's start and at shutdown; the next run resumes
-- the latest (docs/journal.md, Snapshots).
CREATE TABLE snapshots (
    snapshot INTEGER PRIMARY KEY,
    run      INTEGER NOT NULL,
    tick     INTEGER NOT NULL,
    at_ms    INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    body     TEXT    NOT NULL,  -- JSON {version, tick, holdings: [[name, credits], ...]}
    rejected TEXT               -- why a start refused it (it is never loaded then)
);
-- Ticks, a batch per commit: zstd-compressed blobs with every tick's inputs
-- (MessagePack) and decisions (a digest of all, JSON of the kept), which replay and
-- `gamesa why` decode.
CREATE TABLE batches (
    batch      INTEGER PRIMARY KEY,
    run        INTEGER NOT NULL REFERENCES runs(run),
    first_tick INTEGER NOT NULL,
    last_tick  INTEGER NOT NULL,
    first_ms   INTEGER NOT NULL,
    last_ms    INTEGER NOT NULL,
    inputs     BLOB    NOT NULL,
    decisions  BLOB    NOT NULL
);
CREATE INDEX batches_by_run_tick ON batches(run, first_tick);
CREATE INDEX batches_by_time ON batches(last_ms);
-- Every actuation the guardian checked, one row each.
CREATE TABLE actuations (
    batch     INTEGER NOT NULL,
    run       INTEGER NOT NULL,
    tick      INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    requester TEXT    NOT NULL,  -- an agent's name, or `guardian` for a safety action
    target    TEXT    NOT NULL,  -- `power.limit:gpu0`
    requested INTEGER,           -- the value asked for (mW for power limits)
    verdict   TEXT    NOT NULL,  -- allow, clamp or deny
    applied   INTEGER,           -- the value written (clamped or asked); NULL if denied
    reason    TEXT    NOT NULL,
    outcome   TEXT               -- written, unchanged, dry_run, or `error: ...`
);
CREATE INDEX actuations_by_target ON actuations(target, run, tick);
CREATE INDEX actuations_by_batch ON actuations(batch);
-- Fills, summed per batch, buyer, seller, resource and verdict (each fill, with its
-- verdict's reason, is in the batch's decisions).
CREATE TABLE trades (
    batch      INTEGER NOT NULL,
    run        INTEGER NOT NULL,
    first_tick INTEGER NOT NULL,
    last_tick  INTEGER NOT NULL,
    buyer      TEXT    NOT NULL,
    seller     TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    verdict    TEXT    NOT NULL,  -- allow, clamp or deny
    fills      INTEGER NOT NULL,
    quantity   INTEGER NOT NULL,
    mean_price REAL    NOT NULL,  -- weighted by quantity
    min_price  INTEGER NOT NULL,
    max_price  INTEGER NOT NULL,
    reason     TEXT               -- why, for fills not allowed (the first)
);
CREATE INDEX trades_by_batch ON trades(batch);
-- Each power-buying agent's epochs: the state it saw, the power it held and bought,
-- and the work that came of it (gamesa_agent::Experience). The next run warms the
-- agent with its latest.
CREATE TABLE experiences (
    batch                INTEGER NOT NULL,
    run                  INTEGER NOT NULL,
    agent                TEXT    NOT NULL,
    component            TEXT    NOT NULL,
    first_tick           INTEGER NOT NULL,
    ticks                INTEGER NOT NULL,
    at_ms                INTEGER NOT NULL,  -- when its first tick ran
    utilization_permille INTEGER NOT NULL,  -- mean
    power_mw             INTEGER,           -- mean draw
    temp_mc              INTEGER,           -- hottest
    limit_mw             INTEGER,           -- mean limit in force
    progress_micro       INTEGER,           -- work done, when reported
    bought_mw            INTEGER NOT NULL,  -- power budget bought (allowed fills)
    mean_price           REAL               -- per unit, weighted by quantity
);
CREATE INDEX experiences_by_agent ON experiences(agent, run, first_tick);
CREATE INDEX experiences_by_batch ON experiences(batch);
-- Everything else worth a query: agent failures, safety holds, denied intents,
-- refused signals, market errors, and ticks the journal could not keep.
CREATE TABLE events (
    batch   INTEGER NOT NULL,
    run     INTEGER NOT NULL,
    tick    INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    kind    TEXT    NOT NULL,  -- failure, hold, denied, refused_signal, market_error, gap
    subject TEXT    NOT NULL,  -- the agent or component concerned
    detail  TEXT    NOT NULL
);
CREATE INDEX events_by_batch ON events(batch);
CREATE INDEX events_by_kind ON events(kind, run, tick);
";

/// Opens (creating it when missing) the journal at `path` for writing: WAL mode, and
/// pages freed by retention are given back to the file system.
pub fn open_for_writing(path: &Path) -> Result<Connection, JournalError> {
    let error = |error: rusqlite::Error| JournalError::open(path, error);
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|io| JournalError::Open {
            path: path.to_owned(),
            reason: format!("cannot create {}: {io}", parent.display()),
        })?;
    }
    let connection = Connection::open(path).map_err(error)?;
    // `auto_vacuum` only takes effect before the first table exists.
    connection
        .execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;",
        )
        .map_err(error)?;
    match version(&connection).map_err(error)? {
        None => {
            connection
                .execute_batch(&format!(
                    "BEGIN;
                     {TABLES}
                     {MODULES_TABLE}
                     INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
                     COMMIT;"
                ))
                .map_err(error)?;
            Ok(connection)
        }
        Some(found) if found == READS_VERSION_1 => {
            connection
                .execute_batch(&format!(
                    "BEGIN;
                     {MODULES_TABLE}
                     UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';
                     COMMIT;"
                ))
                .map_err(error)?;
            Ok(connection)
        }
        Some(found) => check_version(path, found).map(|()| connection),
    }
}

/// Opens an existing journal read-only; a missing file or another schema version is
/// an error.
pub fn open_for_reading(path: &Path) -> Result<Connection, JournalError> {
    let error = |error: rusqlite::Error| JournalError::open(path, error);
    if !path.exists() {
        return Err(JournalError::Open {
            path: path.to_owned(),
            reason: "no such file".to_owned(),
        });
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    match version(&connection).map_err(error)? {
        None => Err(JournalError::Open {
            path: path.to_owned(),
            reason: "not a GAMESA journal (no schema version)".to_owned(),
        }),
        Some(found) if found == READS_VERSION_1 => Ok(connection),
        Some(found) => check_version(path, found).map(|()| connection),
    }
}

/// Whether the database has a table named `name`.
pub(crate) fn has_table(connection: &Connection, name: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |row| row.get(0),
    )
}

/// The schema version recorded in `meta`, `None` in an empty database.
fn version(connection: &Connection) -> rusqlite::Result<Option<String>> {
    if !has_table(connection, "meta")? {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
}

fn check_version(path: &Path, found: String) -> Result<(), JournalError> {
    if found == SCHEMA_VERSION.to_string() {
        Ok(())
    } else {
        Err(JournalError::Version {
            path: path.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        })
    }
}
