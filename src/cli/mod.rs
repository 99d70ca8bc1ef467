//! The `gamesa` command line — `run` the daemon, `check-config`, `sim`, `send`, `top`,
//! `exec`, `replay`, `why`, `probe`, `restore`, `reload` — over any agent registry, so that a
//! program with agent kinds of its own is the whole `gamesa` in a few lines
//! ([`main_with`]).

mod daemon;
mod exec;
mod journal;
mod live_plot;
mod pidfile;
mod send;
mod signals;
mod sim;
mod top;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gamesa_agent::AgentRegistry;
use gamesa_runtime::Config;
use gamesa_runtime::config::{ConfigSources, Layered};
use gamesa_runtime::telemetry::{Destination, TelemetrySettings};

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
    /// A live view of a running daemon in the terminal: each component's limit, draw,
    /// temperature and headroom, a resource's market, the split of the node's power
    /// cap, live signals and the last vetoes. Keys: p/space pause, r/Tab next
    /// resource, q quit. It reconnects by itself when the daemon restarts.
    Top(top::TopArgs),
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
const BUILTIN_CONFIG: &str = include_str!("../../config/default.toml");

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

/// The whole `gamesa` command line with `registry`'s agent kinds: what the `gamesa`
/// binary runs with the built-in ones. A program that adds kinds of its own:
///
/// ```no_run
/// fn main() -> Result<std::process::ExitCode, gamesa::agent::AgentError> {
///     let registry = gamesa::builtin_registry()?;
///     // registry.register("fan", ...)? — see docs/agents.md
///     Ok(gamesa::cli::main_with(&registry))
/// }
/// ```
pub fn main_with(registry: &AgentRegistry) -> ExitCode {
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
        Command::CheckConfig { file, config } => check_config(
            ConfigArgs {
                config: file.or(config.config),
                ..config
            },
            registry,
        ),
        Command::Sim(args) => sim::main(args, registry),
        Command::Send(args) => send::main(args),
        Command::Top(args) => top::main(args),
        Command::Exec(args) => exec::main(args),
        Command::Replay(args) => journal::replay_main(args, registry),
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
        Command::Restore { config } => match load(&config, registry) {
            Ok((loaded, _)) => report(restore(&loaded.actuators.state_file, &loaded.sensors.root)),
            // After a crash the machine must come back even when the config on disk
            // is broken (a reload refused it): the default state file is tried.
            Err(_) => {
                let state_file = Path::new(gamesa_hw::actuators::DEFAULT_STATE_FILE);
                eprintln!(
                    "gamesa: restoring from the default state file {} instead",
                    state_file.display()
                );
                report(restore(state_file, Path::new("/")))
            }
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
            match load(&config, registry)
                .and_then(|loaded| Ok((telemetry_settings(&loaded.0)?, loaded)))
            {
                Ok((settings, (loaded, layered))) => report(daemon::run(
                    loaded,
                    settings,
                    (&config.sources(), &layered),
                    duration_s,
                    registry,
                )),
                Err(code) => code,
            }
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gamesa: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and validates the config; on failure prints why and returns exit code 78.
fn load(args: &ConfigArgs, registry: &AgentRegistry) -> Result<(Config, Layered), ExitCode> {
    Config::load_layered(&args.sources(), env_vars(), registry).map_err(|error| {
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

/// The runtime directory a daemon started by this user would use (as
/// `ingress.unix_socket` is placed).
fn own_runtime_directory() -> PathBuf {
    let vars: Vec<(String, String)> = env_vars().collect();
    gamesa_runtime::config::state_dir::runtime_directory(|name| lookup(&vars, name))
}

/// `name` in this user's runtime directory when it exists there, else in the
/// service's (`/run/gamesa`): where a client looks for the daemon's socket or pid.
fn runtime_file(name: &str) -> PathBuf {
    let own = own_runtime_directory().join(name);
    if own.exists() {
        own
    } else {
        Path::new(gamesa_runtime::config::state_dir::SYSTEM_RUNTIME_DIRECTORY).join(name)
    }
}

/// The value of `name` among `vars` (from [`env_vars`]).
pub(crate) fn lookup<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(variable, _)| variable == name)
        .map(|(_, value)| value.as_str())
}

fn check_config(args: ConfigArgs, registry: &AgentRegistry) -> ExitCode {
    let (config, layered, settings) = match load(&args, registry)
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

/// `gamesa restore`: opening the real actuator on the state file restores what it
/// records (as every start does); this reports it and stops there.
fn restore(state_file: &Path, root: &Path) -> anyhow::Result<()> {
    if !state_file.exists() {
        println!(
            "nothing to restore: {} does not exist (no run with real actuators left anything)",
            state_file.display()
        );
        return Ok(());
    }
    // Opening the real actuator restores what the file records; no target is enabled,
    // so it writes nothing else.
    let actuator = gamesa_hw::LinuxActuator::new(gamesa_hw::ActuatorConfig {
        root: root.to_owned(),
        state_file: state_file.to_owned(),
        enabled_targets: Vec::new(),
        power_limits: Default::default(),
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

/// Colours only for a person at a terminal: journald and log files get plain text.
fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}
