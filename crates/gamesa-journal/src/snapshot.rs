//! Snapshots of what every agent holds, so that a restart resumes the market's
//! wealth: written at each epoch's start (after the mint) and at shutdown (after the
//! bids are refunded), and taken back by the next `gamesa run`.
//!
//! A snapshot holds each agent's credits, available and escrowed, by name (a restart
//! may renumber agents). Open orders and leases are not carried: a graceful stop
//! cancels the orders, a killed run's escrow is credited back to its bidders, and a
//! lease lasts one epoch. A snapshot that does not decode, or is of another version, is
//! moved aside (`snapshots.rejected` says why) and the run starts fresh: it is never
//! loaded half-way.

use gamesa_proto::{AgentId, Credits, Tick};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Bumped when the body's shape changes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A snapshot's body, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    /// The tick it was taken at (the next tick, at shutdown).
    pub tick: Tick,
    /// Each agent's credits, available and escrowed, by name.
    pub holdings: Vec<(String, Credits)>,
}

/// What a run resumed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The snapshot's row.
    pub snapshot: i64,
    /// The run it was taken in, and at which tick.
    pub run: i64,
    pub tick: Tick,
    /// Its holdings, under this run's ids.
    pub holdings: Vec<(AgentId, Credits)>,
    /// Names it holds credits for that this run has no agent or client of: not resumed.
    pub unknown: Vec<String>,
}

/// What a run takes back from earlier ones: the latest snapshot (or why it was moved
/// aside), and each powered agent's latest epochs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resumption {
    pub resumed: Option<Resumed>,
    /// Why the latest snapshot was refused (it is kept, marked `rejected`).
    pub rejected: Option<String>,
    /// Each powered agent's latest epochs, oldest first, under this run's ids
    /// ([`gamesa_agent::Agent::warm`]).
    pub warm: Vec<(AgentId, Vec<gamesa_agent::Experience>)>,
}

/// Writes `holdings` (under the run's names) as a snapshot of `run` at `tick`.
pub(crate) fn write(
    connection: &Connection,
    run: i64,
    tick: Tick,
    at_ms: u64,
    holdings: &[(AgentId, Credits)],
    name: impl Fn(AgentId) -> String,
) -> rusqlite::Result<()> {
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        tick,
        holdings: holdings
            .iter()
            .map(|(agent, credits)| (name(*agent), *credits))
            .collect(),
    };
    // Names, ticks and integers: JSON cannot refuse them.
    let body = serde_json::to_string(&snapshot).unwrap_or_default();
    connection
        .prepare_cached(
            "INSERT INTO snapshots (run, tick, at_ms, version, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            run,
            tick.0 as i64,
            at_ms as i64,
            SNAPSHOT_VERSION,
            body
        ])
        .map(drop)
}

/// Takes the latest snapshot not already refused, for a run whose participants are
/// `participants`; a snapshot that cannot be taken is marked `rejected` with why.
pub(crate) fn take_latest(
    connection: &Connection,
    participants: &[(AgentId, String)],
) -> rusqlite::Result<Resumption> {
    let latest: Option<(i64, i64, i64, String)> = connection
        .query_row(
            "SELECT snapshot, run, version, body FROM snapshots WHERE rejected IS NULL
             ORDER BY snapshot DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let Some((row, run, version, body)) = latest else {
        return Ok(Resumption::default());
    };
    let decoded = if version != i64::from(SNAPSHOT_VERSION) {
        Err(format!(
            "snapshot {row} is of version {version}; this gamesa reads version {SNAPSHOT_VERSION}"
        ))
    } else {
        serde_json::from_str::<Snapshot>(&body)
            .map_err(|error| format!("snapshot {row} does not decode: {error}"))
            .and_then(|snapshot| {
                if snapshot.version == SNAPSHOT_VERSION {
                    Ok(snapshot)
                } else {
                    Err(format!(
                        "snapshot {row}'s body is of version {}; this gamesa reads version \
                         {SNAPSHOT_VERSION}",
                        snapshot.version
                    ))
                }
            })
    };
    match decoded {
        Ok(snapshot) => {
            let mut holdings = Vec::new();
            let mut unknown = Vec::new();
            for (name, credits) in snapshot.holdings {
                match participants.iter().find(|(_, known)| *known == name) {
                    Some((agent, _)) => holdings.push((*agent, credits)),
                    None => unknown.push(name),
                }
            }
            holdings.sort();
            Ok(Resumption {
                resumed: Some(Resumed {
                    snapshot: row,
                    run,
                    tick: snapshot.tick,
                    holdings,
                    unknown,
                }),
                rejected: None,
                warm: Vec::new(),
            })
        }
        Err(reason) => {
            connection.execute(
                "UPDATE snapshots SET rejected = ?1 WHERE snapshot = ?2",
                params![reason, row],
            )?;
            Ok(Resumption {
                resumed: None,
                rejected: Some(reason),
                warm: Vec::new(),
            })
        }
    }
}
