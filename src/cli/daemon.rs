//! `gamesa run`: the daemon's life around the runtime — hardware, journal, ingress and
//! telemetry started from the config, the tick loop until a stop, reloads on SIGHUP,
//! systemd told how it goes, and the shutdown that restores the machine.

use std::{io::Write as _, path::Path};

use anyhow::Context as _;
use gamesa_agent::AgentRegistry;
use gamesa_runtime::config::{ConfigSources, Layered};
use gamesa_runtime::telemetry::{Destination, Telemetry, TelemetrySettings};
use gamesa_runtime::{Config, ConfigError, Runtime, hardware::hardware_for, status::StatusWindow};

use super::{env_vars, journal, pidfile, signals, stderr_is_terminal};

/// Runs the daemon on a loaded config until SIGINT, SIGTERM or `duration_s`; SIGHUP
/// reloads the config from `sources`.
pub fn run(
    config: Config,
    settings: TelemetrySettings,
    (sources, layered): (&ConfigSources, &Layered),
    duration_s: Option<f64>,
    registry: &AgentRegistry,
) -> anyhow::Result<()> {
    // A relative scenario is relative to the file that named it.
    let config_dir = layered
        .provenance
        .base_dir("sensors.scenario")
        .unwrap_or(Path::new("."))
        .to_owned();
    // `/metrics` reads every instrument through a reader of its own, so the
    // instruments exist when the API is on even with export off.
    let prometheus = config
        .http
        .enabled
        .then(gamesa_runtime::telemetry::PrometheusReader::default);
    let telemetry = start_telemetry(&settings, prometheus.as_ref())?;
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
        let mut runtime = Runtime::start(&config, registry, hardware.sensors, hardware.actuator)
            .context("starting the runtime")?;
        runtime.instrument(tracer);
        if let Some(journal) = journal::start_journal(&config, registry) {
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
        // Fleet mode: the node's cap follows its fleet's grants from the first tick.
        let fleet = if config.fleet.enabled {
            let settings =
                gamesa_runtime::fleet::link_settings(&config, &mut |name| std::env::var(name).ok())
                    .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
            let link = gamesa_runtime::fleet::start(settings);
            runtime.attach_fleet(std::sync::Arc::clone(&link));
            Some(link)
        } else {
            None
        };
        let ingress = if config.ingress.enabled() {
            let ingress = gamesa_runtime::ingress::Ingress::start(&config)
                .context("starting the ingress listeners")?;
            runtime.attach_ingress(std::sync::Arc::clone(ingress.hub()));
            if let Some(link) = &fleet {
                ingress.hub().set_fleet(std::sync::Arc::clone(link));
            }
            Some(ingress)
        } else {
            None
        };
        // The HTTP API is a second door into the same hub (or the only one).
        let http = if config.http.enabled {
            let hub = match &ingress {
                Some(ingress) => std::sync::Arc::clone(ingress.hub()),
                None => {
                    let hub = gamesa_runtime::ingress::IngressHub::new(&config, &mut |name| {
                        std::env::var(name).ok()
                    })
                    .map_err(|error| anyhow::anyhow!("ingress clients: {error}"))?;
                    let hub = std::sync::Arc::new(hub);
                    runtime.attach_ingress(std::sync::Arc::clone(&hub));
                    if let Some(link) = &fleet {
                        hub.set_fleet(std::sync::Arc::clone(link));
                    }
                    hub
                }
            };
            Some(
                gamesa_http::HttpServer::start(&config.http, config.runtime.tick_hz, hub, prometheus)
                    .context("starting the http API")?,
            )
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
        let mut status_on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let mut signals = signals::Signals::new(duration_s);
        // After the handlers: whoever reads the pid may send SIGHUP at once.
        let _pid = pidfile::PidFile::write();
        let mut ready = false;
        // A reload's config is read (and its WASM modules compiled) off the tick loop,
        // which ticks on meanwhile; a SIGHUP during a load asks for another after it.
        let mut loading: Option<Loading> = None;
        let mut load_again = false;
        let mut on_tick = |report: &gamesa_runtime::TickOutput| {
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
                && (report.tick.0 + 1).is_multiple_of(status_every)
                && let Some(line) = status.take_line()
            {
                // A person at a terminal reads it; journald gets a debug record,
                // and `systemctl status` the line itself.
                notify_systemd(&[sd_notify::NotifyState::Status(&line)]);
                if status_on_terminal {
                    // A terminal that went away (the SSH session hung up and
                    // the daemon reloaded) is not a reason to stop.
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{line}").is_err() {
                        status_on_terminal = false;
                    }
                } else {
                    tracing::debug!(target: "gamesa::status", "{line}");
                }
            }
        };
        let ran = loop {
            let mut woke = Woke::Signal(signals::Wake::Stop);
            let ran = runtime
                .run_until(
                    async { woke = next_wake(&mut signals, &mut loading).await },
                    &mut on_tick,
                )
                .await;
            match (ran, woke) {
                (Ok(()), Woke::Signal(signals::Wake::Reload)) => match loading {
                    Some(_) => load_again = true,
                    None => loading = Some(start_loading(sources, registry)),
                },
                (Ok(()), Woke::Loaded(loaded)) => {
                    loading = None;
                    if let Err(error) = apply_reload(&mut runtime, *loaded, registry).await {
                        break Err(error);
                    }
                    if std::mem::take(&mut load_again) {
                        loading = Some(start_loading(sources, registry));
                    }
                }
                (ran, _) => break ran.map_err(anyhow::Error::from),
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
        drop(http);
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

/// A config being read again for a reload, on a blocking thread.
type Loading = tokio::task::JoinHandle<Result<Config, ConfigError>>;

/// What that thread came back with.
type Loaded = Result<Result<Config, ConfigError>, tokio::task::JoinError>;

/// Why the tick loop stopped to look.
enum Woke {
    Signal(signals::Wake),
    /// A reload's config was read (or could not be). Boxed: a config is large.
    Loaded(Box<Loaded>),
}

/// The next signal, or the end of the load under way.
async fn next_wake(signals: &mut signals::Signals, loading: &mut Option<Loading>) -> Woke {
    match loading {
        None => Woke::Signal(signals.next().await),
        Some(load) => tokio::select! {
            wake = signals.next() => Woke::Signal(wake),
            loaded = load => Woke::Loaded(Box::new(loaded)),
        },
    }
}

/// SIGHUP: reads the config again from the same layers on a blocking thread, since
/// loading compiles and checks every WASM module it names (seconds for a new one),
/// while the loop ticks on.
fn start_loading(sources: &ConfigSources, registry: &AgentRegistry) -> Loading {
    notify_systemd(&[sd_notify::NotifyState::Reloading]);
    tracing::info!("hang-up: reloading the config");
    let (sources, registry) = (sources.clone(), registry.clone());
    tokio::task::spawn_blocking(move || {
        Config::load_layered(&sources, env_vars(), &registry).map(|(next, _)| next)
    })
}

/// Applies a reloaded config without a restart (`Runtime::reload`). An invalid config,
/// or a change that needs a restart, is logged and the running config stays; only an
/// actor gone is an error.
async fn apply_reload(
    runtime: &mut Runtime,
    loaded: Loaded,
    registry: &AgentRegistry,
) -> anyhow::Result<()> {
    let next = match loaded {
        Ok(Ok(next)) => next,
        Ok(Err(error)) => {
            tracing::error!(%error, "the new config is invalid; the running config stays");
            notify_systemd(&[sd_notify::NotifyState::Ready]);
            return Ok(());
        }
        Err(error) => {
            tracing::error!(%error, "reading the new config failed; the running config stays");
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

/// Starts trace and metric export as `[telemetry]` and the `OTEL_*` variables say (a
/// relative `telemetry.file` is already under the state directory).
fn start_telemetry(
    settings: &TelemetrySettings,
    prometheus: Option<&gamesa_runtime::telemetry::PrometheusReader>,
) -> anyhow::Result<Telemetry> {
    let telemetry = Telemetry::start_with(settings, prometheus).context("starting telemetry")?;
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
