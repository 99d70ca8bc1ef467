//! The `[journal]` table: whether every tick's inputs and decisions are kept in the
//! SQLite journal (`docs/journal.md`), where, for how long, and how they are batched.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// `false`: nothing is journaled, and `gamesa replay` and `gamesa why` have nothing
    /// of this node's runs to read.
    pub enabled: bool,
    /// The SQLite file. A relative path is taken from the state directory
    /// ([`crate::state_dir`]); an absolute one is used as it is.
    pub file: PathBuf,
    /// Ticks older than this many days are deleted.
    pub keep_days: u32,
    /// The oldest ticks are deleted while the journal's pages hold more than this many
    /// MiB.
    pub max_mb: u64,
    /// Ticks per committed batch: `kill -9` loses at most the batch being filled.
    pub batch_ticks: u32,
    /// Ticks waiting for the writer; when it is full (the disk stalls), ticks are
    /// dropped and counted rather than waited for.
    pub queue_ticks: usize,
    /// Start with what every agent held when the last run stopped (the journal's
    /// latest snapshot) instead of empty accounts.
    pub resume: bool,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            enabled: true,
            file: PathBuf::from("journal.sqlite"),
            keep_days: 7,
            max_mb: 1024,
            batch_ticks: 50,
            queue_ticks: 1024,
            resume: true,
        }
    }
}

/// `journal.keep_days`: a day to ten years.
pub const KEEP_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3650;

/// `journal.max_mb`: 1 MiB to 1 TiB.
pub const MAX_MB_RANGE: std::ops::RangeInclusive<u64> = 1..=1_048_576;

/// `journal.batch_ticks`: one tick to 10,000.
pub const BATCH_TICKS_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;

/// `journal.queue_ticks`: one tick to a million.
pub const QUEUE_TICKS_RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// Ranges serde cannot express; each failure names its key.
pub fn validate_journal(config: &JournalConfig) -> Result<(), Invalid> {
    fn check<T: PartialOrd + std::fmt::Display>(
        key: &str,
        value: T,
        range: &std::ops::RangeInclusive<T>,
    ) -> Result<(), Invalid> {
        if range.contains(&value) {
            Ok(())
        } else {
            Err((
                format!("journal.{key}"),
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }
    check("keep_days", config.keep_days, &KEEP_DAYS_RANGE)?;
    check("max_mb", config.max_mb, &MAX_MB_RANGE)?;
    check("batch_ticks", config.batch_ticks, &BATCH_TICKS_RANGE)?;
    check("queue_ticks", config.queue_ticks, &QUEUE_TICKS_RANGE)?;
    if config.file.as_os_str().is_empty() {
        return Err(("journal.file".to_owned(), "is empty".to_owned()));
    }
    Ok(())
}
