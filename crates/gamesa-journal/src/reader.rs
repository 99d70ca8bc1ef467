//! [`JournalReader`]: a journal file opened read-only (a running daemon may still be
//! writing it): its runs, and their ticks decoded batch by batch.

use std::{ops::ControlFlow, path::Path};

use gamesa_proto::{AgentId, Credits, Tick};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{JournalError, TickInputs, batch, schema::open_for_reading};

/// One run as the `runs` table has it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run: i64,
    pub started_ms: u64,
    /// Unset while the run goes on, or when it was killed.
    pub ended_ms: Option<u64>,
    pub gamesa_version: String,
    pub seed: u64,
    pub tick_hz: u32,
    /// The effective config, TOML.
    pub config: String,
    pub participants: Vec<(AgentId, String)>,
    /// What the run credited before its first tick from a snapshot, and which.
    pub resumed: Vec<(AgentId, Credits)>,
    pub resumed_from: Option<i64>,
    /// The past epochs each agent was warmed with before the first tick.
    pub warmed: Vec<(AgentId, Vec<gamesa_agent::Experience>)>,
}

impl RunRecord {
    /// The run's ticks per epoch, from its journaled config (the default when the
    /// config leaves it out). Read without building the config, which would need the
    /// run's agent kinds.
    pub fn epoch_ticks(&self) -> u64 {
        self.config
            .parse::<toml::Table>()
            .ok()
            .and_then(|config| config.get("runtime")?.get("epoch_ticks")?.as_integer())
            .and_then(|ticks| u64::try_from(ticks).ok())
            .unwrap_or_else(|| gamesa_config::RuntimeConfig::default().epoch_ticks)
    }

    /// A participant's name, or its id when the run does not name it.
    pub fn name(&self, id: AgentId) -> String {
        self.participants
            .iter()
            .find(|(known, _)| *known == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone())
    }
}

/// One journaled tick.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTick {
    pub inputs: TickInputs,
    /// The digest of every decision ([`crate::decisions_digest`]).
    pub digest: u64,
    /// The decisions kept field by field, as JSON ([`crate::decisions_json`]).
    pub decisions: Vec<u8>,
}

#[derive(Debug)]
pub struct JournalReader {
    connection: Connection,
}

impl JournalReader {
    pub fn open(path: &Path) -> Result<JournalReader, JournalError> {
        Ok(JournalReader {
            connection: open_for_reading(path)?,
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        let mut statement = self.connection.prepare(
            "SELECT run, started_ms, ended_ms, gamesa_version, seed, tick_hz, config, participants,
                    resumed_from, resumed, warmed
             FROM runs ORDER BY run",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, String>(7)?,
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, Option<String>>(9)?,
                row.get::<_, Option<String>>(10)?,
            ))
        })?;
        rows.map(|row| {
            let (
                run,
                started_ms,
                ended_ms,
                gamesa_version,
                seed,
                tick_hz,
                config,
                participants,
                resumed_from,
                resumed,
                warmed,
            ) = row?;
            let participants =
                serde_json::from_str(&participants).map_err(|error| JournalError::Corrupt {
                    what: "a run's participants",
                    reason: error.to_string(),
                })?;
            let resumed = match resumed {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|error| JournalError::Corrupt {
                        what: "a run's resumed holdings",
                        reason: error.to_string(),
                    })?
                }
                None => Vec::new(),
            };
            let warmed = match warmed {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|error| JournalError::Corrupt {
                        what: "a run's agents' pasts",
                        reason: error.to_string(),
                    })?
                }
                None => Vec::new(),
            };
            Ok(RunRecord {
                run,
                started_ms: started_ms as u64,
                ended_ms: ended_ms.map(|ms| ms as u64),
                gamesa_version,
                seed: seed as u64,
                tick_hz,
                config,
                participants,
                resumed,
                resumed_from,
                warmed,
            })
        })
        .collect()
    }

    /// Run `run`, or the latest one.
    pub fn run(&self, run: Option<i64>) -> Result<RunRecord, JournalError> {
        let runs = self.runs()?;
        let found = match run {
            Some(wanted) => runs.into_iter().find(|record| record.run == wanted),
            None => runs.into_iter().last(),
        };
        found.ok_or_else(|| {
            JournalError::NotFound(match run {
                Some(wanted) => format!("there is no run {wanted}"),
                None => "the journal has no runs".to_owned(),
            })
        })
    }

    /// The first and last journaled tick of `run` (retention may have removed the
    /// start), `None` when none is.
    pub fn tick_range(&self, run: i64) -> Result<Option<(Tick, Tick)>, JournalError> {
        let range: (Option<i64>, Option<i64>) = self.connection.query_row(
            "SELECT min(first_tick), max(last_tick) FROM batches WHERE run = ?1",
            [run],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(match range {
            (Some(first), Some(last)) => Some((Tick(first as u64), Tick(last as u64))),
            _ => None,
        })
    }

    /// The first tick after each gap of `run`: ticks before it were not journaled.
    pub fn gaps(&self, run: i64) -> Result<Vec<Tick>, JournalError> {
        let mut statement = self
            .connection
            .prepare("SELECT tick FROM events WHERE run = ?1 AND kind = 'gap' ORDER BY tick")?;
        let ticks = statement
            .query_map([run], |row| row.get::<_, i64>(0))?
            .map(|tick| tick.map(|tick| Tick(tick as u64)))
            .collect::<Result<_, _>>()?;
        Ok(ticks)
    }

    /// The run and tick that ran last at or before `at_ms`.
    pub fn tick_at(&self, at_ms: u64) -> Result<Option<(i64, Tick)>, JournalError> {
        let batch: Option<(i64, Vec<u8>)> = self
            .connection
            .query_row(
                "SELECT run, inputs FROM batches WHERE first_ms <= ?1
                 ORDER BY first_ms DESC, batch DESC LIMIT 1",
                [at_ms as i64],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((run, inputs)) = batch else {
            return Ok(None);
        };
        let inputs = batch::decode_inputs(&inputs)?;
        Ok(inputs
            .iter()
            .rev()
            .find(|tick| tick.at_ms <= at_ms)
            .map(|tick| (run, tick.tick)))
    }

    /// Calls `each` with every journaled tick of `run` from `from` to `to` (inclusive),
    /// in order, until it breaks.
    pub fn for_each_tick(
        &self,
        run: i64,
        from: Tick,
        to: Option<Tick>,
        mut each: impl FnMut(RecordedTick) -> Result<ControlFlow<()>, JournalError>,
    ) -> Result<(), JournalError> {
        let to = to.map_or(i64::MAX, |tick| tick.0 as i64);
        let mut statement = self.connection.prepare(
            "SELECT inputs, decisions FROM batches
             WHERE run = ?1 AND last_tick >= ?2 AND first_tick <= ?3 ORDER BY first_tick",
        )?;
        let mut rows = statement.query(params![run, from.0 as i64, to])?;
        while let Some(row) = rows.next()? {
            let inputs = batch::decode_inputs(row.get_ref(0)?.as_blob().map_err(corrupt)?)?;
            let decisions = batch::decode_decisions(row.get_ref(1)?.as_blob().map_err(corrupt)?)?;
            if inputs.len() != decisions.len() {
                return Err(JournalError::Corrupt {
                    what: "a batch",
                    reason: format!(
                        "{} ticks of inputs but {} of decisions",
                        inputs.len(),
                        decisions.len()
                    ),
                });
            }
            for (inputs, (digest, decisions)) in inputs.into_iter().zip(decisions) {
                if inputs.tick < from || inputs.tick.0 as i64 > to {
                    continue;
                }
                let recorded = RecordedTick {
                    inputs,
                    digest,
                    decisions,
                };
                if each(recorded)?.is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One tick of `run`, when it is journaled.
    pub fn tick(&self, run: i64, tick: Tick) -> Result<Option<RecordedTick>, JournalError> {
        let mut found = None;
        self.for_each_tick(run, tick, Some(tick), |recorded| {
            found = Some(recorded);
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }
}

fn corrupt(error: rusqlite::types::FromSqlError) -> JournalError {
    JournalError::Corrupt {
        what: "a batch",
        reason: error.to_string(),
    }
}
