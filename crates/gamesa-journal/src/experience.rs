//! Each power-buying agent's epochs ([`Experience`]), summed from the ticks as they are
//! journaled, written to `experiences`, and read back: the latest of each agent to warm
//! it at the next start, and any for queries.

use std::collections::BTreeMap;

use gamesa_agent::Experience;
use gamesa_engine::TickOutput;
use gamesa_guardian::Verdict;
use gamesa_proto::{AgentId, Resource, Tick};
use rusqlite::{Connection, params};

/// Epochs of its own past an agent is warmed with at most.
pub const WARM_EPOCHS: usize = 64;

/// One agent's epoch so far.
#[derive(Debug, Clone, Default)]
struct Sums {
    first_tick: Tick,
    at_ms: u64,
    ticks: u64,
    utilization: u64,
    power: (u64, u64),
    temp_max: Option<i32>,
    limit: (u64, u64),
    progress: Option<(u64, u64)>,
    bought: u64,
    value: u128,
}

/// The epochs being summed, per powered agent.
#[derive(Debug)]
pub(crate) struct Epochs {
    /// `(agent, its name, its component)`.
    powered: Vec<(AgentId, String, String)>,
    open: BTreeMap<AgentId, Sums>,
}

impl Epochs {
    pub(crate) fn new(powered: Vec<(AgentId, String, String)>) -> Epochs {
        Epochs {
            powered,
            open: BTreeMap::new(),
        }
    }

    /// Takes in one tick; the epochs it closes (it began a new one) are returned
    /// first, with their agent's name and when they began.
    pub(crate) fn tick(
        &mut self,
        output: &TickOutput,
        at_ms: u64,
    ) -> Vec<(String, u64, Experience)> {
        let closed = if output.mint.is_some() {
            self.close()
        } else {
            Vec::new()
        };
        for (agent, _, component) in &self.powered {
            let Some(reading) = output.frame.component(component) else {
                continue;
            };
            let sums = self.open.entry(*agent).or_insert_with(|| Sums {
                first_tick: output.tick,
                at_ms,
                ..Sums::default()
            });
            sums.ticks += 1;
            sums.utilization += u64::from(reading.utilization_permille);
            if let Some(power) = reading.power_mw {
                sums.power = (sums.power.0 + power, sums.power.1 + 1);
            }
            if let Some(temp) = reading.temp_mc {
                sums.temp_max = Some(sums.temp_max.map_or(temp, |max| max.max(temp)));
            }
            if let Some(limit) = reading.limit_mw {
                sums.limit = (sums.limit.0 + limit, sums.limit.1 + 1);
            }
            if let Some(progress) = reading.progress_micro {
                let (first, _) = sums.progress.unwrap_or((progress, progress));
                sums.progress = Some((first, progress));
            }
            for (fill, verdict) in &output.fills {
                if fill.buyer == *agent
                    && fill.resource == Resource::PowerBudgetMw
                    && matches!(verdict, Verdict::Allow { .. })
                {
                    sums.bought += fill.quantity.0;
                    sums.value += u128::from(fill.price.0) * u128::from(fill.quantity.0);
                }
            }
        }
        closed
    }

    /// Closes every open epoch (the run ends, or a new epoch begins).
    pub(crate) fn close(&mut self) -> Vec<(String, u64, Experience)> {
        let open = std::mem::take(&mut self.open);
        open.into_iter()
            .filter_map(|(agent, sums)| {
                let (_, name, component) = self.powered.iter().find(|(id, ..)| *id == agent)?;
                let mean = |(sum, count): (u64, u64)| (count > 0).then(|| sum / count);
                Some((
                    name.clone(),
                    sums.at_ms,
                    Experience {
                        first_tick: sums.first_tick,
                        ticks: sums.ticks,
                        component: component.clone(),
                        utilization_permille: (sums.utilization / sums.ticks.max(1)) as u16,
                        power_mw: mean(sums.power),
                        temp_mc: sums.temp_max,
                        limit_mw: mean(sums.limit),
                        progress_micro: sums
                            .progress
                            .map(|(first, last)| last.saturating_sub(first)),
                        bought_mw: sums.bought,
                        mean_price: (sums.bought > 0)
                            .then(|| sums.value as f64 / sums.bought as f64),
                    },
                ))
            })
            .collect()
    }

    /// One closed epoch's row.
    pub(crate) fn write(
        connection: &Connection,
        batch: i64,
        run: i64,
        agent: &str,
        at_ms: u64,
        experience: &Experience,
    ) -> rusqlite::Result<()> {
        connection
            .prepare_cached(
                "INSERT INTO experiences
                 (batch, run, agent, component, first_tick, ticks, at_ms, utilization_permille,
                  power_mw, temp_mc, limit_mw, progress_micro, bought_mw, mean_price)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                batch,
                run,
                agent,
                experience.component,
                experience.first_tick.0 as i64,
                experience.ticks as i64,
                at_ms as i64,
                experience.utilization_permille,
                experience.power_mw.map(|mw| mw as i64),
                experience.temp_mc,
                experience.limit_mw.map(|mw| mw as i64),
                experience.progress_micro.map(|micro| micro as i64),
                experience.bought_mw as i64,
                experience.mean_price
            ])
            .map(drop)
    }
}

/// One journaled experience, with whose and which run's it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Journaled {
    pub run: i64,
    pub agent: String,
    pub at_ms: u64,
    #[serde(flatten)]
    pub experience: Experience,
}

/// The latest `limit` experiences (of `agent`, or of every agent), newest first.
pub fn latest(
    connection: &Connection,
    agent: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Journaled>> {
    let mut statement = connection.prepare_cached(
        "SELECT run, agent, at_ms, component, first_tick, ticks, utilization_permille, power_mw,
                temp_mc, limit_mw, progress_micro, bought_mw, mean_price
         FROM experiences WHERE ?1 IS NULL OR agent = ?1
         ORDER BY run DESC, first_tick DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![agent, limit as i64], |row| {
        Ok(Journaled {
            run: row.get(0)?,
            agent: row.get(1)?,
            at_ms: row.get::<_, i64>(2)? as u64,
            experience: Experience {
                component: row.get(3)?,
                first_tick: Tick(row.get::<_, i64>(4)? as u64),
                ticks: row.get::<_, i64>(5)? as u64,
                utilization_permille: row.get(6)?,
                power_mw: row.get::<_, Option<i64>>(7)?.map(|mw| mw as u64),
                temp_mc: row.get(8)?,
                limit_mw: row.get::<_, Option<i64>>(9)?.map(|mw| mw as u64),
                progress_micro: row.get::<_, Option<i64>>(10)?.map(|micro| micro as u64),
                bought_mw: row.get::<_, i64>(11)? as u64,
                mean_price: row.get(12)?,
            },
        })
    })?;
    rows.collect()
}

/// Each of `powered`'s latest [`WARM_EPOCHS`] epochs by name, oldest first; agents
/// without any are left out.
pub(crate) fn pasts(
    connection: &Connection,
    powered: &[(AgentId, String, String)],
) -> rusqlite::Result<Vec<(AgentId, Vec<Experience>)>> {
    let mut pasts = Vec::new();
    for (agent, name, _) in powered {
        let mut past: Vec<Experience> = latest(connection, Some(name), WARM_EPOCHS)?
            .into_iter()
            .map(|journaled| journaled.experience)
            .collect();
        past.reverse();
        if !past.is_empty() {
            pasts.push((*agent, past));
        }
    }
    Ok(pasts)
}
