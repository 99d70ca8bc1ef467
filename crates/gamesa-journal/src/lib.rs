//! GAMESA's journal: every tick's inputs and decisions in one SQLite file that a user
//! can open with `sqlite3` (`docs/journal.md`), and what reads it back.
//!
//! - [`record`]: what a tick consumed ([`TickInputs`]) and decided (a digest of every
//!   decision, and the JSON of those kept field by field);
//! - [`schema`]: the tables, their version, opening a file;
//! - [`writer`]: [`JournalWriter`], batches committed by a thread of its own, with
//!   retention by age and size; the tick never waits on it;
//! - [`reader`]: [`JournalReader`], runs and ticks decoded from the file;
//! - [`experience`]: each power-buying agent's epochs, warming it at the next start;
//! - `modules`: the WASM modules a run loaded, kept by digest for replay;
//! - [`snapshot`]: what every agent holds, at each epoch and at shutdown, resumed by
//!   the next run;
//! - [`replay`]: the recorded inputs run again through the same tick engine, compared
//!   decision by decision, or under another config (what-if);
//! - [`why`]: the causal chain behind a component's limit at a moment, in words.

mod batch;
pub mod experience;
mod modules;
pub mod reader;
pub mod record;
pub mod replay;
mod rows;
pub mod schema;
pub mod snapshot;
pub mod why;
pub mod writer;

use std::path::{Path, PathBuf};

pub use gamesa_agent::{AgentRegistry, Experience};

pub use reader::{JournalReader, RecordedTick, RunRecord};
pub use record::{TickInputs, decisions_digest, decisions_json};
pub use replay::{Divergence, ReplayError, ReplayReport, TickRange, WhatIfReport, replay, what_if};
pub use writer::{Entry, JournalStats, JournalWriter, RunInfo, WriterSettings, config_text};

/// Why the journal could not be opened, written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: cannot open: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error(
        "journal {}: schema version {found}, but this gamesa reads version {expected}",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("journal {}: write failed: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("journal: cannot read: {0}")]
    Read(String),
    /// What was asked for (a run, a tick, a moment) is not in the journal.
    #[error("journal: {0}")]
    NotFound(String),
    #[error("journal: cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("journal: {what} are corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

impl JournalError {
    fn open(path: &Path, error: rusqlite::Error) -> JournalError {
        JournalError::Open {
            path: path.to_owned(),
            reason: error.to_string(),
        }
    }

    fn write(path: &Path, error: rusqlite::Error) -> JournalError {
        JournalError::Write {
            path: path.to_owned(),
            reason: error.to_string(),
        }
    }
}

impl From<rusqlite::Error> for JournalError {
    fn from(error: rusqlite::Error) -> JournalError {
        JournalError::Read(error.to_string())
    }
}
