//! `gamesa replay` and `gamesa why`: a journal read back (`docs/journal.md`), and how
//! `gamesa run` opens its journal. The work is done by `gamesa-journal`; this file is
//! the command line around it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, bail};
use clap::Args;
use gamesa_agent::AgentRegistry;
use gamesa_proto::{CorrelationId, Tick};
use gamesa_runtime::{
    Config,
    config::state_dir,
    journal::{
        JournalReader, JournalWriter, RunInfo,
        replay::{self, TickRange},
        why::{self, Moment},
    },
};

/// `gamesa replay [--journal FILE] [--run N] [--from T] [--to T] [--config OTHER.toml] [--json]`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The journal file (default: `journal.sqlite` under the state directory).
    #[arg(long)]
    journal: Option<PathBuf>,
    /// The run to replay (`SELECT run FROM runs`); default: the latest.
    #[arg(long)]
    run: Option<i64>,
    /// Compare (or report) from this tick, or the first tick at or after this time.
    #[arg(long, value_name = "TICK|TIME")]
    from: Option<String>,
    /// Stop after this tick, or the last tick at or before this time.
    #[arg(long, value_name = "TICK|TIME")]
    to: Option<String>,
    /// What-if: replay the same inputs under this config instead and report how
    /// allocations, limits and vetoes would have differed.
    #[arg(long, value_name = "OTHER.toml")]
    config: Option<PathBuf>,
    /// Print JSON instead of words.
    #[arg(long)]
    json: bool,
    /// What-if: how many differing ticks to print (the totals cover all).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

/// `gamesa why --component ID (--at TIME | --tick N | --correlation ID) [--json]`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("moment").required(true).args(["at", "tick", "correlation"]))]
pub struct WhyArgs {
    /// The journal file (default: `journal.sqlite` under the state directory).
    #[arg(long)]
    journal: Option<PathBuf>,
    /// The component whose limit to explain, such as `gpu0` or `cpu`.
    #[arg(long)]
    component: String,
    /// A local time such as `2026-12-03 03:00`, or RFC 3339 with an offset.
    #[arg(long)]
    at: Option<String>,
    /// A tick of `--run` (default: the latest run).
    #[arg(long)]
    tick: Option<u64>,
    #[arg(long, requires = "tick")]
    run: Option<i64>,
    /// A tick's correlation id, as traces and ingress replies carry it.
    #[arg(long)]
    correlation: Option<String>,
    /// Print JSON instead of words.
    #[arg(long)]
    json: bool,
}

pub fn replay_main(args: ReplayArgs, registry: &AgentRegistry) -> ExitCode {
    super::report(replay_command(args, registry))
}

pub fn why_main(args: WhyArgs) -> ExitCode {
    super::report(why_command(args))
}

fn replay_command(args: ReplayArgs, registry: &AgentRegistry) -> anyhow::Result<()> {
    let reader = JournalReader::open(&journal_path(args.journal.as_deref())?)?;
    let run = reader.run(args.run)?;
    let range = TickRange {
        from: args
            .from
            .as_deref()
            .map(|text| moment_tick(&reader, run.run, text, Bound::From))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|text| moment_tick(&reader, run.run, text, Bound::To))
            .transpose()?,
    };
    match &args.config {
        None => {
            let report = replay::replay(&reader, registry, Some(run.run), range)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "run": report.run,
                        "executed": report.executed,
                        "compared": report.compared,
                        "identical": report.identical(),
                        "divergence": report.divergence.as_ref().map(|divergence| serde_json::json!({
                            "tick": divergence.tick.0,
                            "path": divergence.path,
                            "recorded": divergence.recorded,
                            "replayed": divergence.replayed,
                        })),
                    })
                );
            } else {
                println!("{report}");
            }
            if report.identical() {
                Ok(())
            } else {
                bail!("the replay diverged")
            }
        }
        Some(path) => {
            let other = Config::load(path, super::env_vars(), registry)
                .with_context(|| format!("the what-if config {}", path.display()))?;
            let report = replay::what_if(&reader, registry, Some(run.run), range, &other)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.display(args.show));
            }
            Ok(())
        }
    }
}

fn why_command(args: WhyArgs) -> anyhow::Result<()> {
    let moment = match (&args.at, args.tick, &args.correlation) {
        (Some(at), _, _) => Moment::At(parse_time(at)?),
        (_, Some(tick), _) => Moment::Tick(args.run, Tick(tick)),
        (_, _, Some(correlation)) => Moment::Correlation(
            correlation
                .parse::<CorrelationId>()
                .with_context(|| format!("`{correlation}` is not a correlation id"))?,
        ),
        _ => bail!("say when: --at, --tick or --correlation"),
    };
    let reader = JournalReader::open(&journal_path(args.journal.as_deref())?)?;
    let (run, tick) = why::resolve(&reader, moment)?;
    let explanation = why::explain(&reader, &run, tick, &args.component, run.epoch_ticks())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        print!("{explanation}");
    }
    Ok(())
}

/// `--journal`, or `journal.sqlite` under the state directory.
fn journal_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let vars: Vec<(String, String)> = super::env_vars().collect();
    let file = given.unwrap_or(Path::new("journal.sqlite"));
    Ok(state_dir::resolve_file(file, |name| {
        super::lookup(&vars, name)
    })?)
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    From,
    To,
}

/// A tick number, or a time resolved to the run's tick at (`To`) or after (`From`) it.
fn moment_tick(reader: &JournalReader, run: i64, text: &str, bound: Bound) -> anyhow::Result<Tick> {
    if let Ok(tick) = text.parse::<u64>() {
        return Ok(Tick(tick));
    }
    let at_ms = parse_time(text)?;
    match (reader.tick_at(at_ms)?, bound) {
        (Some((found, tick)), Bound::To) if found == run => Ok(tick),
        (Some((found, tick)), Bound::From) if found == run => Ok(tick.next()),
        _ => match bound {
            // Before the run's first journaled tick: from its start; after it: nothing.
            Bound::From => Ok(Tick(0)),
            Bound::To => bail!("run {run} has no tick at or before {text}"),
        },
    }
}

/// `2026-12-03 03:00` (the system's time zone) or RFC 3339 with an offset, in ms since
/// the Unix epoch.
fn parse_time(text: &str) -> anyhow::Result<u64> {
    let timestamp = match text.parse::<jiff::Timestamp>() {
        Ok(timestamp) => timestamp,
        Err(_) => {
            let civil = text.parse::<jiff::civil::DateTime>().with_context(|| {
                format!("`{text}` is neither a tick nor a time such as `2026-12-03 03:00`")
            })?;
            jiff::tz::TimeZone::system()
                .to_timestamp(civil)
                .with_context(|| format!("`{text}` in the system's time zone"))?
        }
    };
    u64::try_from(timestamp.as_millisecond()).with_context(|| format!("`{text}` is before 1970"))
}

/// The journal `gamesa run` writes to, as `[journal]` says; `None` when it is off or
/// cannot be opened (logged: the daemon runs on without one).
pub fn start_journal(config: &Config, registry: &AgentRegistry) -> Option<JournalWriter> {
    if !config.journal.enabled {
        return None;
    }
    let vars: Vec<(String, String)> = super::env_vars().collect();
    let opened = state_dir::resolve_file(&config.journal.file, |name| super::lookup(&vars, name))
        .map_err(|error| error.to_string())
        .and_then(|path| {
            let started_ms = jiff::Timestamp::now().as_millisecond().max(0) as u64;
            let run =
                RunInfo::of(config, registry, started_ms).map_err(|error| error.to_string())?;
            JournalWriter::open(&path, (&config.journal).into(), &run)
                .map_err(|error| error.to_string())
        });
    match opened {
        Ok(journal) => {
            tracing::info!(file = %journal.path().display(), run = journal.run(), "journaling every tick");
            Some(journal)
        }
        Err(error) => {
            tracing::error!(%error, "the journal is off for this run");
            None
        }
    }
}
