//! [`JournalWriter`]: ticks handed over without waiting, and written by a thread of
//! its own in batches, one transaction each, with retention by age and size.
//!
//! # Invariants
//! - [`JournalWriter::record`] never blocks, never fails and never wakes a thread (the
//!   writer looks for ticks every [`POLL`]): a full queue or a journal
//!   that stopped writing drops the tick, counts it and logs it
//! - a write error turns the journal off for the rest of the run (counted, logged, and
//!   reported by [`JournalWriter::stats`]); the tick loop never sees it
//! - `kill -9` loses at most the batch being filled and the last [`POLL`] of queue:
//!   each batch is one transaction
//! - ticks that never reached the file leave a `gap` event, and replay stops there
//!
//! What each batch writes beside its blobs is in `rows.rs` (the queryable tables),
//! `experience.rs` and `snapshot.rs`.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use gamesa_agent::AgentRegistry;
use gamesa_config::{Config, JournalConfig, assemble};
use gamesa_engine::{Intake, TickOutput};
use gamesa_proto::{AgentId, Credits, Tick};
use rusqlite::{Connection, params};

use crate::{
    JournalError, TickInputs, batch,
    experience::{self, Epochs},
    record::{decisions_digest, decisions_json},
    rows::{Rows, Trades, name_of},
    schema::open_for_writing,
    snapshot::{self, Resumed, Resumption},
};

/// How often the writer thread looks for ticks: what a tick may wait in the queue
/// before it is in a batch (and what `kill -9` may lose beside the batch).
pub const POLL: Duration = Duration::from_millis(100);

/// How the writer batches and what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterSettings {
    pub keep_days: u32,
    pub max_mb: u64,
    pub batch_ticks: usize,
    pub queue_ticks: usize,
    /// The longest a tick waits in a batch before it is committed.
    pub flush_after: Duration,
    /// Take back, at open, the latest snapshot ([`JournalWriter::resumed`]) and each
    /// powered agent's latest epochs ([`JournalWriter::pasts`]).
    pub resume: bool,
}

impl From<&JournalConfig> for WriterSettings {
    fn from(config: &JournalConfig) -> WriterSettings {
        WriterSettings {
            keep_days: config.keep_days,
            max_mb: config.max_mb,
            batch_ticks: config.batch_ticks as usize,
            queue_ticks: config.queue_ticks,
            flush_after: Duration::from_secs(5),
            resume: config.resume,
        }
    }
}

/// What a run is, recorded once when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub started_ms: u64,
    pub seed: u64,
    pub tick_hz: u32,
    /// The effective config, as TOML: what replay runs the recorded inputs under.
    pub config: String,
    /// Agents, then ingress clients, with their names.
    pub participants: Vec<(AgentId, String)>,
    /// The agents that buy power, with the component each powers: their epochs are
    /// kept as experiences.
    pub powered: Vec<(AgentId, String)>,
}

impl RunInfo {
    /// A run of `config` (with `registry`'s agent kinds) starting at `started_ms` (ms
    /// since the Unix epoch).
    pub fn of(
        config: &Config,
        registry: &AgentRegistry,
        started_ms: u64,
    ) -> Result<RunInfo, JournalError> {
        let powered =
            assemble::powered_components(config, registry).map_err(|(key, message)| {
                JournalError::Encode {
                    what: "the config",
                    reason: format!("{key}: {message}"),
                }
            })?;
        let text = config_text(config)?;
        Ok(RunInfo {
            started_ms,
            seed: config.runtime.seed,
            tick_hz: config.runtime.tick_hz,
            config: text,
            participants: assemble::participants(config),
            powered,
        })
    }
}

/// A config as the journal keeps it, for a run or a reload: TOML, tokens redacted.
pub fn config_text(config: &Config) -> Result<String, JournalError> {
    toml::to_string(config).map_err(|error| JournalError::Encode {
        what: "the config",
        reason: error.to_string(),
    })
}

/// One tick for the journal: when it ran, what came from outside, and what it
/// decided. The rest of its inputs ([`TickInputs`]) is read from the output on the
/// writer's thread, not the tick's.
#[derive(Debug, Clone)]
pub struct Entry {
    /// ms since the Unix epoch.
    pub at_ms: u64,
    pub intake: Intake,
    pub output: TickOutput,
    /// The configs reloads applied just before this tick ([`TickInputs::reloads`]).
    pub reloads: Vec<String>,
}

/// What the writer thread is handed.
#[derive(Debug)]
enum Message {
    Tick(Box<Entry>),
    /// Every agent's holdings at `tick` (the shutdown's snapshot).
    Snapshot(Tick, Vec<(AgentId, Credits)>),
}

/// What the journal has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Ticks committed to the file.
    pub committed: u64,
    /// Ticks that never reached it: the queue was full, or the journal was off.
    pub dropped: u64,
    /// Why the journal stopped writing, once it has.
    pub off: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    committed: AtomicU64,
    dropped: AtomicU64,
    off: AtomicBool,
    /// Set while ticks are being dropped for a full queue, so that it is logged once
    /// per episode rather than once per tick.
    overflowing: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn turn_off(&self, error: &JournalError) {
        tracing::error!(%error, "the journal stopped writing; ticks are no longer journaled");
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert_with(|| error.to_string());
        }
        self.off.store(true, Ordering::SeqCst);
    }
}

/// The writing end of a journal file, for one run.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    run: i64,
    resumption: Resumption,
    sender: Option<SyncSender<Message>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl JournalWriter {
    /// Opens (or creates) the journal at `path`, records the run, and starts the
    /// writer thread. An error here is the only one a caller ever sees.
    pub fn open(
        path: &Path,
        settings: WriterSettings,
        run: &RunInfo,
    ) -> Result<JournalWriter, JournalError> {
        let connection = open_for_writing(path)?;
        let resumption = if settings.resume {
            snapshot::take_latest(&connection, &run.participants)
                .map_err(|error| JournalError::write(path, error))?
        } else {
            Resumption::default()
        };
        let powered: Vec<(AgentId, String, String)> = run
            .powered
            .iter()
            .map(|(agent, component)| {
                (
                    *agent,
                    name_of(&run.participants, *agent),
                    component.clone(),
                )
            })
            .collect();
        let mut resumption = resumption;
        if settings.resume {
            resumption.warm = experience::pasts(&connection, &powered)
                .map_err(|error| JournalError::write(path, error))?;
        }
        if let Some(reason) = &resumption.rejected {
            tracing::error!(%reason, "the latest snapshot was moved aside; starting with fresh balances");
        }
        let resumed = resumption
            .resumed
            .as_ref()
            .map(|resumed| serde_json::to_string(&resumed.holdings))
            .transpose()
            .map_err(|error| JournalError::Encode {
                what: "resumed holdings",
                reason: error.to_string(),
            })?;
        let warmed =
            serde_json::to_string(&resumption.warm).map_err(|error| JournalError::Encode {
                what: "agents' pasts",
                reason: error.to_string(),
            })?;
        let participants =
            serde_json::to_string(&run.participants).map_err(|error| JournalError::Encode {
                what: "participants",
                reason: error.to_string(),
            })?;
        connection
            .execute(
                "INSERT INTO runs (started_ms, gamesa_version, seed, tick_hz, config, participants,
                                   resumed_from, resumed, warmed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run.started_ms as i64,
                    env!("CARGO_PKG_VERSION"),
                    run.seed as i64,
                    run.tick_hz,
                    run.config,
                    participants,
                    resumption.resumed.as_ref().map(|resumed| resumed.snapshot),
                    resumed,
                    warmed
                ],
            )
            .map_err(|error| JournalError::write(path, error))?;
        let run_id = connection.last_insert_rowid();
        crate::modules::store(&connection, &run.config)
            .map_err(|error| JournalError::write(path, error))?;
        let (sender, receiver) = mpsc::sync_channel(settings.queue_ticks.max(1));
        let shared = Arc::new(Shared::default());
        let mut writer = Writer {
            path: path.to_owned(),
            connection,
            run: run_id,
            names: run.participants.clone(),
            settings,
            shared: Arc::clone(&shared),
            next_tick: None,
            decisions: Vec::new(),
            last_ms: run.started_ms,
            last_batch: None,
            epochs: Epochs::new(powered),
        };
        let thread = std::thread::Builder::new()
            .name("gamesa-journal".to_owned())
            .spawn(move || writer.run(&receiver))
            .map_err(|error| JournalError::Open {
                path: path.to_owned(),
                reason: format!("cannot start the writer thread: {error}"),
            })?;
        Ok(JournalWriter {
            path: path.to_owned(),
            run: run_id,
            resumption,
            sender: Some(sender),
            shared,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's number in the `runs` table.
    pub fn run(&self) -> i64 {
        self.run
    }

    /// The snapshot this run resumes, when `resume` was asked and one was taken: its
    /// holdings are to be credited before the first tick (`Runtime::resume`), as the
    /// run's row records and replay repeats.
    pub fn resumed(&self) -> Option<&Resumed> {
        self.resumption.resumed.as_ref()
    }

    /// Each powered agent's latest epochs from earlier runs, oldest first: to hand to
    /// it before the first tick (`Runtime::warm`), as the run's row records and replay
    /// repeats.
    pub fn pasts(&self) -> &[(AgentId, Vec<gamesa_agent::Experience>)] {
        &self.resumption.warm
    }

    /// Why the latest snapshot was moved aside, when it was.
    pub fn rejected_snapshot(&self) -> Option<&str> {
        self.resumption.rejected.as_deref()
    }

    /// Hands every agent's holdings at `tick` to the writer: the snapshot the next
    /// start resumes (taken at shutdown). Like [`JournalWriter::record`], never waits.
    pub fn snapshot(&self, tick: Tick, holdings: Vec<(AgentId, Credits)>) {
        if let Some(sender) = &self.sender
            && sender.try_send(Message::Snapshot(tick, holdings)).is_err()
        {
            tracing::warn!("the journal's queue is full: the shutdown's snapshot is lost");
        }
    }

    /// Hands a tick to the writer thread; never waits. A tick that cannot be taken is
    /// dropped and counted (and leaves a gap that replay reports).
    pub fn record(&self, entry: Entry) {
        let shared = &self.shared;
        if shared.off.load(Ordering::Relaxed) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(sender) = &self.sender else {
            return;
        };
        let tick = entry.output.tick;
        match sender.try_send(Message::Tick(Box::new(entry))) {
            Ok(()) => shared.overflowing.store(false, Ordering::Relaxed),
            Err(TrySendError::Full(_)) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                if !shared.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        tick = tick.0,
                        "the journal's queue is full (the disk is slow); dropping ticks"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            committed: self.shared.committed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            off: self
                .shared
                .error
                .lock()
                .ok()
                .and_then(|error| error.clone()),
        }
    }

    /// Commits what is queued, marks the run ended, and stops the thread.
    pub fn close(mut self) -> JournalStats {
        self.finish();
        self.stats()
    }

    fn finish(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            // It drains what is queued, commits it and exits without waiting its poll.
            thread.thread().unpark();
            self.join(thread);
        }
    }

    fn join(&self, thread: JoinHandle<()>) {
        if thread.join().is_err() {
            self.shared.turn_off(&JournalError::Write {
                path: self.path.clone(),
                reason: "the writer thread panicked".to_owned(),
            });
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    connection: Connection,
    run: i64,
    names: Vec<(AgentId, String)>,
    settings: WriterSettings,
    shared: Arc<Shared>,
    /// The tick expected next; another one means ticks were lost in between.
    next_tick: Option<Tick>,
    /// Reused for each tick's decisions.
    decisions: Vec<u8>,
    /// When the last committed tick ran: the shutdown's snapshot's time.
    last_ms: u64,
    /// The last committed batch: the run's last epochs go with it.
    last_batch: Option<i64>,
    /// The powered agents' epochs being summed.
    epochs: Epochs,
}

impl Writer {
    /// Drains the queue every [`POLL`], committing each full batch, and a partial one
    /// once its first tick has waited `flush_after`, until the writing end is closed.
    fn run(&mut self, receiver: &Receiver<Message>) {
        let batch_ticks = self.settings.batch_ticks.max(1);
        let mut pending: Vec<Entry> = Vec::with_capacity(batch_ticks);
        let mut opened = Instant::now();
        loop {
            let closed = loop {
                match receiver.try_recv() {
                    Ok(Message::Snapshot(tick, holdings)) => {
                        // After every tick before it.
                        self.commit_or_turn_off(std::mem::take(&mut pending));
                        self.write_snapshot(tick, &holdings);
                    }
                    Ok(Message::Tick(entry)) => {
                        let entry = *entry;
                        if pending.is_empty() {
                            opened = Instant::now();
                        }
                        pending.push(entry);
                        if pending.len() >= batch_ticks {
                            self.commit_or_turn_off(std::mem::take(&mut pending));
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if !pending.is_empty() && (closed || opened.elapsed() >= self.settings.flush_after) {
                self.commit_or_turn_off(std::mem::take(&mut pending));
            }
            if closed {
                break;
            }
            // The tick thread never wakes this one (a wake-up is a syscall, and on a VM
            // an interrupt to another CPU, on every tick): it looks for ticks itself.
            std::thread::park_timeout(POLL);
        }
        if !self.shared.off.load(Ordering::SeqCst) {
            self.close_epochs();
            let ended = self.connection.execute(
                "UPDATE runs SET ended_ms = (SELECT max(last_ms) FROM batches WHERE run = ?1)
                 WHERE run = ?1",
                params![self.run],
            );
            if let Err(error) = ended {
                self.shared
                    .turn_off(&JournalError::write(&self.path, error));
            }
        }
    }

    /// Writes the run's last, partial epochs with its last batch.
    fn close_epochs(&mut self) {
        let Some(batch) = self.last_batch else {
            return;
        };
        let (run, connection) = (self.run, &self.connection);
        let written = self
            .epochs
            .close()
            .into_iter()
            .try_for_each(|(agent, at_ms, experience)| {
                Epochs::write(connection, batch, run, &agent, at_ms, &experience)
            });
        if let Err(error) = written {
            self.shared
                .turn_off(&JournalError::write(&self.path, error));
        }
    }

    fn write_snapshot(&mut self, tick: Tick, holdings: &[(AgentId, Credits)]) {
        if self.shared.off.load(Ordering::SeqCst) {
            return;
        }
        let names = &self.names;
        let at_ms = self.last_ms;
        let written = snapshot::write(&self.connection, self.run, tick, at_ms, holdings, |agent| {
            name_of(names, agent)
        });
        if let Err(error) = written {
            self.shared
                .turn_off(&JournalError::write(&self.path, error));
        }
    }

    fn commit_or_turn_off(&mut self, batch: Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        let ticks = batch.len() as u64;
        if self.shared.off.load(Ordering::SeqCst) {
            self.shared.dropped.fetch_add(ticks, Ordering::Relaxed);
            return;
        }
        match self.commit(batch) {
            Ok(()) => {
                self.shared.committed.fetch_add(ticks, Ordering::Relaxed);
                if let Err(error) = self.retain() {
                    // Retention failing is not a lost tick, but the file would grow
                    // without bound: stop.
                    self.shared.turn_off(&error);
                }
            }
            Err(error) => {
                self.shared.dropped.fetch_add(ticks, Ordering::Relaxed);
                self.shared.turn_off(&error);
            }
        }
    }

    fn commit(&mut self, batch: Vec<Entry>) -> Result<(), JournalError> {
        let write = |error| JournalError::write(&self.path, error);
        let mut documents = Vec::with_capacity(batch.len());
        for entry in &batch {
            decisions_json(&entry.output, &mut self.decisions);
            documents.push((decisions_digest(&entry.output), self.decisions.clone()));
        }
        let decisions = batch::encode_decisions(
            documents
                .iter()
                .map(|(digest, document)| (*digest, document.as_slice())),
        )?;
        let (first, last) = match (batch.first(), batch.last()) {
            (Some(first), Some(last)) => (first, last),
            _ => return Ok(()),
        };
        let (first_tick, last_tick) = (first.output.tick, last.output.tick);
        let (first_ms, last_ms) = (first.at_ms, last.at_ms);
        let gap = self.next_tick.filter(|expected| *expected != first_tick);
        self.next_tick = Some(last_tick.next());
        let inputs: Vec<TickInputs> = batch
            .iter()
            .map(|entry| {
                TickInputs::new(
                    entry.at_ms,
                    entry.intake.clone(),
                    &entry.output,
                    entry.reloads.clone(),
                )
            })
            .collect();
        let inputs = batch::encode_inputs(&inputs)?;

        let transaction = self.connection.transaction().map_err(write)?;
        transaction
            .execute(
                "INSERT INTO batches (run, first_tick, last_tick, first_ms, last_ms, inputs, decisions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    self.run,
                    first_tick.0 as i64,
                    last_tick.0 as i64,
                    first_ms as i64,
                    last_ms as i64,
                    inputs,
                    decisions
                ],
            )
            .map_err(write)?;
        // Participants a reload added are named in the rows and snapshots from now on;
        // the names of those it removed stay, for the rows before it.
        let named = self.names.len();
        for text in batch.iter().flat_map(|entry| &entry.reloads) {
            crate::modules::store(&transaction, text).map_err(write)?;
            if let Ok(config) = toml::from_str::<Config>(text) {
                for (id, name) in assemble::participants(&config) {
                    if !self.names.iter().any(|(known, _)| *known == id) {
                        self.names.push((id, name));
                    }
                }
            }
        }
        if self.names.len() > named {
            let participants =
                serde_json::to_string(&self.names).map_err(|error| JournalError::Encode {
                    what: "participants",
                    reason: error.to_string(),
                })?;
            transaction
                .execute(
                    "UPDATE runs SET participants = ?1 WHERE run = ?2",
                    params![participants, self.run],
                )
                .map_err(write)?;
        }
        let rows = Rows {
            transaction: &transaction,
            batch: transaction.last_insert_rowid(),
            run: self.run,
            names: &self.names,
        };
        if let Some(expected) = gap {
            rows.event(
                first_tick,
                first_ms,
                "gap",
                "journal",
                &format!(
                    "ticks {} to {} were not journaled",
                    expected.0,
                    first_tick.0.saturating_sub(1)
                ),
            )
            .map_err(write)?;
        }
        let mut trades = Trades::default();
        for entry in &batch {
            for _ in &entry.reloads {
                // The config itself is in the tick's inputs, for replay.
                rows.event(
                    entry.output.tick,
                    entry.at_ms,
                    "reload",
                    "config",
                    "the config was reloaded before this tick",
                )
                .map_err(write)?;
            }
            rows.tick(&entry.output, entry.at_ms).map_err(write)?;
            trades.add(&entry.output);
        }
        rows.trades(trades).map_err(write)?;
        for entry in &batch {
            for (agent, at_ms, experience) in self.epochs.tick(&entry.output, entry.at_ms) {
                Epochs::write(
                    &transaction,
                    rows.batch,
                    self.run,
                    &agent,
                    at_ms,
                    &experience,
                )
                .map_err(write)?;
            }
            if let Some(holdings) = &entry.output.holdings {
                snapshot::write(
                    &transaction,
                    self.run,
                    entry.output.tick,
                    entry.at_ms,
                    holdings,
                    |agent| name_of(&self.names, agent),
                )
                .map_err(write)?;
            }
        }
        let batch_id = rows.batch;
        transaction.commit().map_err(write)?;
        self.last_ms = last_ms;
        self.last_batch = Some(batch_id);
        Ok(())
    }

    /// Deletes batches older than `keep_days` before the newest, then the oldest while
    /// the journal's pages hold more than `max_mb`. The WASM module copies do not count
    /// toward `max_mb`: retention never removes them, so counting them would only cost
    /// tick history.
    fn retain(&mut self) -> Result<(), JournalError> {
        let write = |error| JournalError::write(&self.path, error);
        let connection = &self.connection;
        let newest: i64 = connection
            .query_row("SELECT coalesce(max(last_ms), 0) FROM batches", [], |row| {
                row.get(0)
            })
            .map_err(write)?;
        let cutoff = newest - i64::from(self.settings.keep_days) * 86_400_000;
        let mut deleted = delete_batches(connection, "last_ms < ?1", cutoff).map_err(write)?;
        let limit = self.settings.max_mb.saturating_mul(1 << 20);
        while history_bytes(connection).map_err(write)? > limit {
            // The oldest eighth (at least one) of what is left, then measure again.
            let count: i64 = connection
                .query_row("SELECT count(*) FROM batches", [], |row| row.get(0))
                .map_err(write)?;
            if count <= 1 {
                break;
            }
            let oldest: i64 = connection
                .query_row(
                    "SELECT batch FROM batches ORDER BY batch LIMIT 1 OFFSET ?1",
                    [(count / 8).max(1) - 1],
                    |row| row.get(0),
                )
                .map_err(write)?;
            deleted += delete_batches(connection, "batch <= ?1", oldest).map_err(write)?;
        }
        if deleted > 0 {
            connection
                .execute_batch("PRAGMA incremental_vacuum;")
                .map_err(write)?;
        }
        Ok(())
    }
}

/// The bytes the journal's pages hold, free pages not counted.
pub(crate) fn used_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| -> rusqlite::Result<u64> {
        connection
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0))
            .map(|value| value.max(0) as u64)
    };
    Ok(pragma("page_count")?.saturating_sub(pragma("freelist_count")?) * pragma("page_size")?)
}

/// The bytes in use but for the WASM module copies (their blobs, which fill whole
/// overflow pages but for the last).
fn history_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let modules: i64 = connection.query_row(
        "SELECT coalesce(sum(length(bytes)), 0) FROM modules",
        [],
        |row| row.get(0),
    )?;
    Ok(used_bytes(connection)?.saturating_sub(modules.max(0) as u64))
}

/// Deletes the batches `condition` (on `batches`, with `?1` bound to `value`) selects,
/// with their rows; how many batches.
fn delete_batches(connection: &Connection, condition: &str, value: i64) -> rusqlite::Result<usize> {
    let selected = format!("SELECT batch FROM batches WHERE {condition}");
    let transaction = connection.unchecked_transaction()?;
    for table in ["actuations", "trades", "events", "experiences"] {
        transaction.execute(
            &format!("DELETE FROM {table} WHERE batch IN ({selected})"),
            [value],
        )?;
    }
    let deleted =
        transaction.execute(&format!("DELETE FROM batches WHERE {condition}"), [value])?;
    transaction.commit()?;
    Ok(deleted)
}
