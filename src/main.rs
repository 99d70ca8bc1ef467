//! The `gamesa` command line: `run` the daemon, `check-config` a file, and `sim`ulate
//! scenarios on the twin.

mod exec;
mod journal;
mod pidfile;
mod send;
mod signals;
mod sim;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gamesa_runtime::config::{ConfigSources, Layered};
use gamesa_runtime::telemetry::{Destination, Telemetry, TelemetrySettings};
use gamesa_runtime::{Config, Runtime, hardware::hardware_for, status::StatusWindow};

/// sysexits.h EX_CONFIG: the configuration is unusable.
const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "gamesa",
    version,
    about = "Runs a machine's hardware as a market."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the runtime: sample, trade, guard and actuate at the configured tick rate.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Stop by itself after this many seconds (default: run until SIGINT/SIGTERM).
        #[arg(long)]
        duration_s: Option<f64>,
    },
    /// Validate the config and print the effective config (every layer merged, GAMESA__*
    /// overrides applied) and where each value came from.
    CheckConfig {
        /// A config file to check alone (the same as --config).
        #[arg(conflicts_with = "config")]
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run scenarios on the simulated twin in virtual time, under the market or a
    /// baseline policy: metrics, a comparison of every policy, JSON, a plot.
    Sim(sim::SimArgs),
    /// Talk to a running daemon over ingress: inject a signal, place or cancel an
    /// order, query state, or watch a topic.
    Send(send::SendArgs),
    /// Run a command and hold a performance signal for exactly its lifetime (like
    /// `gamemoderun`; as a Steam launch option: `gamesa exec -- %command%`). The exit
    /// code is the command's; with no daemon reachable it warns and runs it anyway.
    Exec(exec::ExecArgs),
    /// What this machine lets GAMESA read and write: every sensor source, every
    /// power-managed component, every knob a real actuator could write with its value,
    /// range and the privilege missing. Writes nothing.
    Probe {
        /// The file-system root the sensors read (a fake sysfs tree in tests).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print JSON instead of words.
        #[arg(long, conflicts_with = "config")]
        json: bool,
        /// Print a starter config for this machine instead (components, gate limits
        /// from the device ranges, a node cap, dry-run actuators, the built-in agents).
        #[arg(long)]
        config: bool,
    },
    /// Put back every original value a run with real actuators recorded and did not
    /// restore (a crash, `kill -9`), then exit: for `ExecStopPost=`, or to have the
    /// machine back now. Run it while no daemon with that state file runs.
    Restore {
        /// The config whose `actuators.state_file` (and `sensors.root`) to use.
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Re-run a journaled run through the same tick engine: 100 % identical decisions,
    /// or the first divergence; with `--config`, what another config would have decided.
    Replay(journal::ReplayArgs),
    /// Why a component had the limit it had at a moment, from the journal.
    Why(journal::WhyArgs),
    /// Ask the running daemon to reload its config (SIGHUP to the pid in its runtime
    /// directory's gamesa.pid, or --pid): it applies what may change live and logs what
    /// changed, or why the running config stays.
    Reload {
        /// The daemon's process id (default: read from gamesa.pid).
        #[arg(long)]
        pid: Option<i32>,
    },
    /// Print the man page (roff) to stdout: `gamesa man > gamesa.1`.
    Man,
    /// Print shell completions to stdout: `gamesa completions bash > gamesa.bash`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the config comes from (`docs/config.md`): the config directory's `gamesa.toml`
/// (or the built-in defaults) and its `gamesa.d/*.toml` drop-ins, or one `--config`
/// file; then `GAMESA__SECTION__KEY` variables.
#[derive(Debug, Clone, clap::Args)]
struct ConfigArgs {
    /// A config file. Alone, it is the whole config (with GAMESA__* variables) and the
    /// config directory is not read; with --config-dir, it goes over the directory's.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The config directory: gamesa.toml, else the built-in defaults, then the
    /// gamesa.d/*.toml drop-ins in name order. Read when --config is not given.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
}

/// The defaults `gamesa run` uses when the config directory has no `gamesa.toml`:
/// real sensors, dry-run actuators.
const BUILTIN_CONFIG: &str = include_str!("../config/default.toml");

impl ConfigArgs {
    fn sources(&self) -> ConfigSources {
        let dir = match (&self.config_dir, &self.config) {
            (Some(dir), _) => Some(dir.clone()),
            (None, None) => Some(PathBuf::from(gamesa_runtime::config::layers::SYSTEM_DIR)),
            (None, Some(_)) => None,
        };
        ConfigSources {
            builtin: Some(BUILTIN_CONFIG),
            dir,
            file: self.config.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GAMESA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(stderr_is_terminal())
        .init();
    match cli.command {
        Command::CheckConfig { file, config } => check_config(ConfigArgs {
            config: file.or(config.config),
            ..config
        }),
        Command::Sim(args) => sim::main(args),
        Command::Send(args) => send::main(args),
        Command::Exec(args) => exec::main(args),
        Command::Replay(args) => journal::replay_main(args),
        Command::Probe { root, json, config } => {
            let found = gamesa_hw::probe::probe(gamesa_hw::LinuxSensorsOptions {
                root: root.clone(),
                cap_mw: None,
                nvml: true,
            });
            if config {
                print!(
                    "{}",
                    gamesa_runtime::config::starter::starter_config(&found, &root)
                );
                ExitCode::SUCCESS
            } else if json {
                report(
                    serde_json::to_string_pretty(&found)
                        .map(|text| println!("{text}"))
                        .map_err(Into::into),
                )
            } else {
                print!("{found}");
                ExitCode::SUCCESS
            }
        }
        Command::Restore { config } => match load(&config) {
            Ok((loaded, _)) => report(restore(&loaded)),
            Err(code) => code,
        },
        Command::Why(args) => journal::why_main(args),
        Command::Reload { pid } => report(pidfile::signal_reload(pid)),
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)
            {
                Ok(()) => print_all(&String::from_utf8_lossy(&page)),
                Err(error) => report(Err(error.into())),
            }
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "gamesa",
                &mut script,
            );
            print_all(&String::from_utf8_lossy(&script))
        }
        Command::Run { config, duration_s } => {
            match load(&config).and_then(|loaded| Ok((telemetry_settings(&loaded.0)?, loaded))) {
                Ok((settings, (loaded, layered))) => report(run(
                    loaded,
                    settings,
                    (&config.sources(), &layered),
                    duration_s,
                )),
                Err(code) => code,
            }
        }
    }
}

pub(crate) fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gamesa: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and validates the config; on failure prints why and returns exit code 78.
fn load(args: &ConfigArgs) -> Result<(Config, Layered), ExitCode> {
    let registry = match gamesa::builtin_registry() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("gamesa: built-in agents: {error}");
            return Err(ExitCode::FAILURE);
        }
    };
    Config::load_layered(&args.sources(), env_vars(), &registry).map_err(|error| {
        eprintln!("gamesa: invalid config: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// `[telemetry]` with the `OTEL_*` variables applied and the trace file's path resolved;
/// a malformed variable (or no state directory for a relative file) prints why and
/// returns exit code 78, before anything starts.
fn telemetry_settings(config: &Config) -> Result<TelemetrySettings, ExitCode> {
    TelemetrySettings::resolve(&config.telemetry, env_vars()).map_err(|error| {
        eprintln!("gamesa: invalid telemetry settings: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The environment's variables whose name and value are UTF-8; the others cannot be
/// config overrides or `OTEL_*` settings (and `std::env::vars` would panic on them).
pub(crate) fn env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

/// The value of `name` among `vars` (from [`env_vars`]).
pub(crate) fn lookup<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(variable, _)| variable == name)
        .map(|(_, value)| value.as_str())
}

fn check_config(args: ConfigArgs) -> ExitCode {
    let (config, layered, settings) = match load(&args)
        .and_then(|(config, layered)| Ok((telemetry_settings(&config)?, config, layered)))
    {
        Ok((settings, config, layered)) => (config, layered, settings),
        Err(code) => return code,
    };
    let effective = match toml::Table::try_from(&config) {
        Ok(table) => table,
        Err(error) => {
            eprintln!("gamesa: cannot print the effective config: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = format!(
        "# {}: valid; {}; effective config:\n{}\n# where each value came from:\n",
        layered.describe(),
        describe(&settings.destination),
        toml::to_string_pretty(&effective).unwrap_or_default()
    );
    for (key, value) in gamesa_runtime::config::layers::leaves(&effective) {
        let mut shown = value.to_string();
        if shown.chars().count() > 60 {
            shown = format!("{}…", shown.chars().take(59).collect::<String>());
        }
        let origin = layered.provenance.origin(&key);
        text.push_str(&format!("#   {key} = {shown}  <- {origin}\n"));
    }
    print_all(&text)
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print_all(text: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gamesa: cannot write to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where traces and metrics go, in words.
fn describe(destination: &Destination) -> String {
    match destination {
        Destination::Off => "telemetry off".to_owned(),
        Destination::File(file) => format!("traces and metrics to {}", file.display()),
        Destination::Otlp {
            traces_endpoint, ..
        } => format!("traces and metrics to OTLP at {traces_endpoint}"),
    }
}

fn run(
    config: Config,
    settings: TelemetrySettings,
    (sources, layered): (&ConfigSources, &Layered),
    duration_s: Option<f64>,
) -> anyhow::Result<()> {
    let registry = gamesa::builtin_registry()?;
    // A relative scenario is relative to the file that named it.
    let config_dir = layered
        .provenance
        .base_dir("sensors.scenario")
        .unwrap_or(Path::new("."))
        .to_owned();
    let telemetry = start_telemetry(&settings)?;
    let logging = tracing::subscriber::set_default(run_subscriber(&telemetry));
    let tracer = &telemetry;
    // The ingress server makes its request spans on threads of its own.
    gamesa_runtime::telemetry::route_requests_to(telemetry.dispatch());
    let system = actix::System::new();
    let result = system.block_on(async move {
        let hardware = hardware_for(&config, &config_dir)?;
        if let Some(start) = &hardware.start_report {
            for target in &start.recovered.restored {
                tracing::warn!(%target, "restored an original left by a previous run");
            }
            if let Some(quarantined) = &start.quarantined {
                tracing::error!(%quarantined, "actuator state file was corrupt and was kept aside");
            }
        }
        let mut runtime = Runtime::start(&config, &registry, hardware.sensors, hardware.actuator)
            .context("starting the runtime")?;
        runtime.instrument(tracer);
        if let Some(journal) = journal::start_journal(&config, &registry) {
            if let Some(resumed) = journal.resumed() {
                let credited = runtime.resume(resumed.holdings.clone()).await?;
                match credited {
                    Ok(total) => tracing::info!(
                        snapshot = resumed.snapshot,
                        run = resumed.run,
                        tick = resumed.tick.0,
                        %total,
                        not_here = ?resumed.unknown,
                        "resumed every agent's credits from the last run"
                    ),
                    Err(error) => {
                        tracing::error!(%error, "could not resume the last run's credits")
                    }
                }
            }
            let warmed = journal.pasts().len();
            for (agent, failure) in runtime.warm(journal.pasts()).await? {
                tracing::warn!(%agent, %failure, "an agent failed to take its past epochs");
            }
            if warmed > 0 {
                tracing::info!(agents = warmed, "handed agents their past epochs");
            }
            runtime.attach_journal(journal);
        }
        let ingress = if config.ingress.enabled() {
            let ingress = gamesa_runtime::ingress::Ingress::start(&config)
                .context("starting the ingress listeners")?;
            runtime.attach_ingress(std::sync::Arc::clone(ingress.hub()));
            Some(ingress)
        } else {
            None
        };
        tracing::info!(
            tick_hz = config.runtime.tick_hz,
            agents = config.agents.len(),
            real_actuators = ?config.actuators.real,
            "gamesa running; Ctrl-C to stop"
        );
        let status_every = config.runtime.status_interval_s * u64::from(config.runtime.tick_hz);
        let mut status = StatusWindow::default();
        let status_on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let mut signals = signals::Signals::new(duration_s);
        // After the handlers: whoever reads the pid may send SIGHUP at once.
        let _pid = pidfile::PidFile::write();
        let mut ready = false;
        let ran = loop {
            let mut wake = signals::Wake::Stop;
            let ran = runtime
                .run_until(async { wake = signals.next().await }, |report| {
                    if !ready {
                        // The first tick ran: tell systemd (Type=notify) we are up.
                        ready = true;
                        notify_systemd(&[sd_notify::NotifyState::Ready]);
                    }
                    for error in &report.sample_errors {
                        tracing::warn!(%error, "sensor reading failed");
                    }
                    status.record(report);
                    if status_every > 0
                        && (report.tick.0 + 1) % status_every == 0
                        && let Some(line) = status.take_line()
                    {
                        // A person at a terminal reads it; journald gets a debug record,
                        // and `systemctl status` the line itself.
                        notify_systemd(&[sd_notify::NotifyState::Status(&line)]);
                        if status_on_terminal {
                            println!("{line}");
                        } else {
                            tracing::debug!(target: "gamesa::status", "{line}");
                        }
                    }
                })
                .await;
            match (ran, wake) {
                (Ok(()), signals::Wake::Reload) => {
                    reload(&mut runtime, sources, &registry).await?;
                }
                (ran, _) => break ran,
            }
        };
        // Every way out of the loop goes through the shutdown, which restores every
        // original even when an actor is dead; a panic unwinding past the runtime
        // restores them as it drops.
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        match &ran {
            Ok(()) => tracing::info!("stopping: cancelling orders and restoring originals"),
            Err(error) => {
                tracing::error!(%error, "the tick loop failed; cancelling orders and restoring originals")
            }
        }
        let shutdown = runtime.shutdown().await;
        drop(ingress);
        for (target, error) in &shutdown.restored.failed {
            tracing::error!(%target, %error, "could not restore an original value");
        }
        if let Some(error) = &shutdown.cancel_failed {
            tracing::error!(%error, "could not cancel the open orders");
        }
        if let Some(journal) = &shutdown.journal {
            match &journal.off {
                Some(error) => tracing::error!(committed = journal.committed, dropped = journal.dropped, %error, "the journal stopped writing during the run"),
                None if journal.dropped > 0 => tracing::warn!(committed = journal.committed, dropped = journal.dropped, "the journal dropped ticks"),
                None => tracing::info!(committed = journal.committed, "journal closed"),
            }
        }
        println!(
            "gamesa stopped: {} open orders cancelled, {} originals restored",
            shutdown.cancelled_orders,
            shutdown.restored.restored.len()
        );
        ran?;
        match shutdown.cancel_failed {
            Some(error) => Err(error.into()),
            None => anyhow::Ok(()),
        }
    });
    drop(logging);
    gamesa_runtime::telemetry::route_requests_to(None);
    if let Err(error) = telemetry.shutdown() {
        tracing::warn!(%error, "telemetry did not flush everything");
    }
    result
}

/// SIGHUP: reads the config again from the same layers and applies it without a
/// restart (`Runtime::reload`). An invalid config, or a change that needs a restart, is
/// logged and the running config stays; only an actor gone is an error.
async fn reload(
    runtime: &mut Runtime,
    sources: &ConfigSources,
    registry: &gamesa::agent::AgentRegistry,
) -> anyhow::Result<()> {
    notify_systemd(&[sd_notify::NotifyState::Reloading]);
    tracing::info!("hang-up: reloading the config");
    let next = match Config::load_layered(sources, env_vars(), registry) {
        Ok((next, _)) => next,
        Err(error) => {
            tracing::error!(%error, "the new config is invalid; the running config stays");
            notify_systemd(&[sd_notify::NotifyState::Ready]);
            return Ok(());
        }
    };
    match runtime
        .reload(next, registry, &mut |name| std::env::var(name).ok())
        .await
    {
        Ok(report) if report.changed.is_empty() => {
            tracing::info!("config reloaded: nothing changed")
        }
        Ok(report) => {
            tracing::info!(changed = ?report.changed, "config reloaded");
            for (agent, failure) in &report.failed {
                tracing::error!(%agent, %failure, "an agent failed to rebuild with its new parameters");
            }
        }
        Err(gamesa_runtime::RuntimeError::ActorGone(gone)) => return Err(gone.into()),
        Err(error) => {
            tracing::error!(%error, "the config was not reloaded; the running config stays")
        }
    }
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    Ok(())
}

/// `gamesa restore`: opening the real actuator on the state file restores what it
/// records (as every start does); this reports it and stops there.
fn restore(config: &Config) -> anyhow::Result<()> {
    let state_file = &config.actuators.state_file;
    if !state_file.exists() {
        println!(
            "nothing to restore: {} does not exist (no run with real actuators left anything)",
            state_file.display()
        );
        return Ok(());
    }
    let actuator = gamesa_hw::LinuxActuator::new(gamesa_hw::ActuatorConfig {
        root: config.sensors.root.clone(),
        state_file: state_file.clone(),
        enabled_targets: config.actuators.real.clone(),
        power_limits: config.actuators.power_limits.clone(),
    })
    .with_context(|| format!("opening {}", state_file.display()))?;
    let report = actuator.start_report();
    if let Some(quarantined) = &report.quarantined {
        anyhow::bail!(
            "the state file was corrupt and was kept aside; nothing restored: {quarantined}"
        );
    }
    for target in &report.recovered.restored {
        println!("restored {target}");
    }
    for (target, error) in &report.recovered.failed {
        eprintln!("gamesa: could not restore {target}: {error}");
    }
    if report.recovered.restored.is_empty() && report.recovered.failed.is_empty() {
        println!(
            "nothing to restore: {} records no change",
            state_file.display()
        );
    }
    match report.recovered.failed.len() {
        0 => Ok(()),
        failed => anyhow::bail!("{failed} originals could not be restored"),
    }
}

/// Starts trace and metric export as `[telemetry]` and the `OTEL_*` variables say (a
/// relative `telemetry.file` is already under the state directory).
fn start_telemetry(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    let telemetry = Telemetry::start(settings).context("starting telemetry")?;
    match telemetry.destination() {
        Destination::File(file) => {
            tracing::info!(file = %file.display(), "traces and metrics go to a JSON-lines file")
        }
        Destination::Otlp {
            protocol,
            traces_endpoint,
            ..
        } => {
            tracing::info!(?protocol, endpoint = %traces_endpoint, "traces and metrics go to OTLP")
        }
        Destination::Off => {}
    }
    Ok(telemetry)
}

/// `main`'s log output plus the telemetry layer, for the thread that runs the daemon.
fn run_subscriber(telemetry: &Telemetry) -> impl tracing::Subscriber + Send + Sync + use<> {
    use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt as _};
    let filter = EnvFilter::try_from_env("GAMESA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(stderr_is_terminal())
                .with_filter(filter),
        )
        .with(telemetry.layer())
}

/// Tells systemd how the service is doing, when it runs under `Type=notify`
/// (`$NOTIFY_SOCKET` set); elsewhere it does nothing. A failure is logged, never fatal.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, state) {
        tracing::warn!(%error, "could not notify systemd");
    }
}

/// Colours only for a person at a terminal: journald and log files get plain text.
fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}
