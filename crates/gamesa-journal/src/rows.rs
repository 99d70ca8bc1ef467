//! The queryable rows of a batch: one per actuation checked (`actuations`), per
//! buyer, seller, resource and verdict of its fills (`trades`), and per failure,
//! safety hold, denial, refused signal, market error, gap or config reload (`events`).

use gamesa_engine::TickOutput;
use gamesa_proto::{Actuation, AgentId, Tick};
use rusqlite::{Transaction, params};

/// The queryable rows of one batch.
pub(crate) struct Rows<'a> {
    pub(crate) transaction: &'a Transaction<'a>,
    pub(crate) batch: i64,
    pub(crate) run: i64,
    pub(crate) names: &'a [(AgentId, String)],
}

impl Rows<'_> {
    fn name(&self, id: AgentId) -> String {
        name_of(self.names, id)
    }

    pub(crate) fn tick(&self, output: &TickOutput, at_ms: u64) -> rusqlite::Result<()> {
        let tick = output.tick;
        let mut actuation = self.transaction.prepare_cached(
            "INSERT INTO actuations
             (batch, run, tick, at_ms, requester, target, requested, verdict, applied, reason, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for record in &output.actuations {
            let requester = record
                .requester
                .map_or_else(|| "guardian".to_owned(), |agent| self.name(agent));
            let outcome = record.outcome.as_ref().map(|outcome| match outcome {
                Ok(applied) if applied.dry_run => "dry_run".to_owned(),
                Ok(applied) if applied.changed => "written".to_owned(),
                Ok(_) => "unchanged".to_owned(),
                Err(error) => format!("error: {error}"),
            });
            actuation.execute(params![
                self.batch,
                self.run,
                tick.0 as i64,
                at_ms as i64,
                requester,
                record.requested.target(),
                value(&record.requested),
                record.verdict.decision(),
                record.to_apply().and_then(value),
                record.verdict.reason().to_string(),
                outcome
            ])?;
        }
        for failure in &output.failures {
            let mut detail = format!("{}; {:?}", failure.failure, failure.decision);
            if let Some(error) = &failure.rebuild_error {
                detail.push_str(&format!("; rebuild: {error}"));
            }
            self.event(tick, at_ms, "failure", &self.name(failure.agent), &detail)?;
        }
        for component in &output.held {
            self.event(tick, at_ms, "hold", component, "safety hold")?;
        }
        for (intent, reason) in &output.denied_intents {
            self.event(
                tick,
                at_ms,
                "denied",
                &self.name(intent.agent),
                &format!("{}: {reason}", intent.intent),
            )?;
        }
        for (signal, error) in &output.refused_signals {
            self.event(
                tick,
                at_ms,
                "refused_signal",
                &signal.source.to_string(),
                &format!("{}: {error}", signal.kind),
            )?;
        }
        for (subject, error) in &output.market_errors {
            let subject = subject.map_or_else(
                || "market".to_owned(),
                |(agent, resource)| format!("{} {resource}", self.name(agent)),
            );
            self.event(tick, at_ms, "market_error", &subject, &error.to_string())?;
        }
        Ok(())
    }

    pub(crate) fn trades(&self, trades: Trades) -> rusqlite::Result<()> {
        let mut insert = self.transaction.prepare_cached(
            "INSERT INTO trades
             (batch, run, first_tick, last_tick, buyer, seller, resource, verdict, fills,
              quantity, mean_price, min_price, max_price, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for ((buyer, seller, resource, verdict), trade) in trades.groups {
            let mean = trade.value as f64 / trade.quantity.max(1) as f64;
            insert.execute(params![
                self.batch,
                self.run,
                trade.first_tick.0 as i64,
                trade.last_tick.0 as i64,
                self.name(buyer),
                self.name(seller),
                resource.to_string(),
                verdict,
                trade.fills as i64,
                trade.quantity as i64,
                mean,
                trade.min_price as i64,
                trade.max_price as i64,
                trade.reason
            ])?;
        }
        Ok(())
    }

    pub(crate) fn event(
        &self,
        tick: Tick,
        at_ms: u64,
        kind: &str,
        subject: &str,
        detail: &str,
    ) -> rusqlite::Result<()> {
        self.transaction
            .prepare_cached(
                "INSERT INTO events (batch, run, tick, at_ms, kind, subject, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                self.batch,
                self.run,
                tick.0 as i64,
                at_ms as i64,
                kind,
                subject,
                detail
            ])
            .map(drop)
    }
}

/// `id`'s name among `names`, or the id itself.
pub(crate) fn name_of(names: &[(AgentId, String)], id: AgentId) -> String {
    names
        .iter()
        .find(|(known, _)| *known == id)
        .map_or_else(|| id.to_string(), |(_, name)| name.clone())
}

/// A batch's fills summed per `(buyer, seller, resource, verdict)`.
#[derive(Default)]
pub(crate) struct Trades {
    groups:
        std::collections::BTreeMap<(AgentId, AgentId, gamesa_proto::Resource, &'static str), Trade>,
}

struct Trade {
    first_tick: Tick,
    last_tick: Tick,
    fills: u64,
    quantity: u64,
    /// Σ price × quantity, for the mean price.
    value: u128,
    min_price: u64,
    max_price: u64,
    /// Why the guardian refused them (the first), for refused fills.
    reason: Option<String>,
}

impl Trades {
    pub(crate) fn add(&mut self, output: &TickOutput) {
        for (fill, verdict) in &output.fills {
            let key = (fill.buyer, fill.seller, fill.resource, verdict.decision());
            let (price, quantity) = (fill.price.0, fill.quantity.0);
            let trade = self.groups.entry(key).or_insert_with(|| Trade {
                first_tick: output.tick,
                last_tick: output.tick,
                fills: 0,
                quantity: 0,
                value: 0,
                min_price: price,
                max_price: price,
                reason: (!matches!(verdict, gamesa_guardian::Verdict::Allow { .. }))
                    .then(|| verdict.reason().to_string()),
            });
            trade.last_tick = output.tick;
            trade.fills += 1;
            trade.quantity += quantity;
            trade.value += u128::from(price) * u128::from(quantity);
            trade.min_price = trade.min_price.min(price);
            trade.max_price = trade.max_price.max(price);
        }
    }
}

/// The number an actuation sets (mW for a power limit), when it sets one.
fn value(actuation: &Actuation) -> Option<i64> {
    match actuation {
        Actuation::PowerLimit { limit_mw, .. } => i64::try_from(*limit_mw).ok(),
        Actuation::CpufreqMax { max_khz, .. } => i64::try_from(*max_khz).ok(),
        Actuation::CgroupCpuMax { .. }
        | Actuation::CgroupCpuset { .. }
        | Actuation::EnergyPreference { .. } => None,
    }
}
