//! Shared set-up for the ingress tests: the bundled twin config with `[ingress]` on
//! 127.0.0.1:0 and a Unix socket in a temporary directory, three clients, and helpers
//! that connect and say hello.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_runtime::{Config, Runtime, ingress::Ingress};
use gamesa_wire::{Client, QueryName, Request};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn registry() -> AgentRegistry {
    gamesa::builtin_registry().unwrap()
}

pub const GAME: (&str, &str) = ("game", "game-token-0001");
pub const WORKLOAD: (&str, &str) = ("workload", "workload-token-01");
pub const READER: (&str, &str) = ("reader", "reader-token-0001");

/// `config/sim.toml` on `scenario`, with ingress on loopback TCP (a free port) and a
/// Unix socket in `dir`, and the three test clients; `edit` changes the table last.
pub fn ingress_config(dir: &Path, scenario: &str, edit: impl FnOnce(&mut toml::Table)) -> Config {
    let path = repo_root().join("config/sim.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    table["sensors"]["scenario"] = toml::Value::String(
        repo_root()
            .join("scenarios")
            .join(scenario)
            .display()
            .to_string(),
    );
    let ingress: toml::Table = format!(
        r#"
        unix_enabled = true
        unix_socket = "{}"
        tcp_enabled = true
        tcp_address = "127.0.0.1:0"
        rate_limit_per_s = 1000000
        rate_burst = 1000000
        threads = 1
        "#,
        dir.join("ingress.sock").display()
    )
    .parse()
    .unwrap();
    table.insert("ingress".into(), toml::Value::Table(ingress));
    let clients: toml::Table = r#"
        [[clients]]
        name = "game"
        token = "game-token-0001"
        effects = ["signal:performance", "signal:efficiency", "query:*", "subscribe:*"]

        [[clients]]
        name = "workload"
        token_env = "GAMESA_TEST_WORKLOAD_TOKEN"
        effects = ["order:gpu_memory_mb", "order:power_budget_mw", "query:*", "subscribe:fills"]
        weight = 2

        [[clients]]
        name = "reader"
        token = "reader-token-0001"
        effects = ["query:health", "query:book"]
        weight = 0
        "#
    .parse()
    .unwrap();
    table.insert("clients".into(), clients["clients"].clone());
    // The tests tick in virtual time and compare runs: a thread stalled on a loaded
    // machine must not count as an agent's missed deadline (tests/hung_agent.rs tests
    // deadlines with its own).
    table
        .entry("runtime")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
        .insert("agent_deadline_ms".into(), toml::Value::Integer(10_000));
    edit(&mut table);
    let text = toml::to_string(&table).unwrap();
    Config::from_toml_str(&text, &path, std::iter::empty(), &registry()).unwrap()
}

/// A runtime on the twin with the ingress server attached.
pub struct Daemon {
    pub runtime: Runtime,
    pub ingress: Ingress,
    pub twin: SharedTwin,
    pub config: Config,
}

impl Daemon {
    /// Call inside an actix system.
    pub fn start(config: &Config) -> Daemon {
        Daemon::start_with(config, |twin| Box::new(twin.sensors()))
    }

    /// Like [`Daemon::start`], with the sensors `sensors` makes of the twin.
    pub fn start_with(
        config: &Config,
        sensors: impl FnOnce(&SharedTwin) -> Box<dyn gamesa_hw::Sensors>,
    ) -> Daemon {
        let scenario = config.sensors.scenario.clone().unwrap();
        let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario).unwrap()));
        let mut runtime = Runtime::start(
            config,
            &registry(),
            sensors(&twin),
            Box::new(twin.actuator()),
        )
        .unwrap();
        let ingress = Ingress::start_with_env(config, &mut |name| {
            (name == "GAMESA_TEST_WORKLOAD_TOKEN").then(|| WORKLOAD.1.to_owned())
        })
        .unwrap();
        runtime.attach_ingress(std::sync::Arc::clone(ingress.hub()));
        Daemon {
            runtime,
            ingress,
            twin,
            config: config.clone(),
        }
    }

    pub fn tcp(&self) -> Client<TcpStream> {
        Client::connect_tcp(self.ingress.tcp_address().unwrap()).unwrap()
    }

    pub fn unix(&self) -> Client<UnixStream> {
        Client::connect_unix(self.ingress.unix_socket().unwrap()).unwrap()
    }

    /// A TCP client that said hello as `who`.
    pub fn tcp_as(&self, who: (&str, &str)) -> Client<TcpStream> {
        let mut client = self.tcp();
        client.hello(who.0, who.1).unwrap();
        client
    }

    pub fn unix_as(&self, who: (&str, &str)) -> Client<UnixStream> {
        let mut client = self.unix();
        client.hello(who.0, who.1).unwrap();
        client
    }

    /// A stream to `transport`'s listener, with nothing said on it yet.
    pub fn raw(&self, transport: Transport) -> Stream {
        match transport {
            Transport::Tcp => {
                let stream = TcpStream::connect(self.ingress.tcp_address().unwrap()).unwrap();
                stream.set_nodelay(true).unwrap();
                Stream::Tcp(stream)
            }
            Transport::Unix => {
                Stream::Unix(UnixStream::connect(self.ingress.unix_socket().unwrap()).unwrap())
            }
        }
    }

    /// A client on `transport` that has not said hello.
    pub fn connect(&self, transport: Transport) -> Client<Stream> {
        Client::new(self.raw(transport)).unwrap()
    }

    /// A client on `transport` that said hello as `who`.
    pub fn connect_as(&self, transport: Transport, who: (&str, &str)) -> Client<Stream> {
        let mut client = self.connect(transport);
        client.hello(who.0, who.1).unwrap();
        client
    }

    pub async fn ticks(&mut self, count: usize) -> Vec<gamesa_runtime::TickOutput> {
        let mut reports = Vec::new();
        for _ in 0..count {
            reports.push(self.runtime.tick().await.unwrap());
        }
        reports
    }
}

/// Waits until every request `client` sent so far was read by the server: requests on
/// one connection are handled in order, so the reply to a `health` query sent now
/// arrives only after all of them were answered or queued for the next tick.
pub fn barrier<S: gamesa_wire::client::Duplex>(client: &mut Client<S>) {
    let reply = client.call(&Request::query(QueryName::Health)).unwrap();
    assert!(reply.outcome.is_ok(), "{reply:?}");
}

/// Reads events until one of `topic` whose data satisfies `accept` (others of the tick
/// are skipped); a read that waits 10 s fails the test instead of hanging it.
pub fn find_event<S, T>(
    client: &mut Client<S>,
    topic: gamesa_wire::Topic,
    mut accept: impl FnMut(&T) -> bool,
) -> (gamesa_wire::Event, T)
where
    S: gamesa_wire::client::Duplex,
    T: serde::de::DeserializeOwned,
{
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    loop {
        let event = client.next_event().unwrap();
        if event.topic != topic {
            continue;
        }
        let data: T = event.data_as().unwrap();
        if accept(&data) {
            return (event, data);
        }
    }
}

/// Which listener a test goes through: every promise holds on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
}

pub const TRANSPORTS: [Transport; 2] = [Transport::Tcp, Transport::Unix];

/// A connection to either listener.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.read(buf),
            Stream::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.write(buf),
            Stream::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.flush(),
            Stream::Unix(stream) => stream.flush(),
        }
    }
}

impl gamesa_wire::client::Duplex for Stream {
    fn try_clone_stream(&self) -> std::io::Result<Self> {
        Ok(match self {
            Stream::Tcp(stream) => Stream::Tcp(stream.try_clone()?),
            Stream::Unix(stream) => Stream::Unix(stream.try_clone()?),
        })
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.set_read_timeout(timeout),
            Stream::Unix(stream) => stream.set_read_timeout(timeout),
        }
    }

    fn shutdown_write(&self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.shutdown(std::net::Shutdown::Write),
            Stream::Unix(stream) => stream.shutdown(std::net::Shutdown::Write),
        }
    }
}

/// Writes `count` copies of `request` (ids `first_id`, `first_id + 1`, ...) on a thread
/// of its own, never reading; a write the server refuses by closing ends it.
pub fn pipeline_without_reading(
    stream: &Stream,
    request: &Request,
    first_id: u64,
    count: u64,
) -> std::thread::JoinHandle<()> {
    use gamesa_wire::client::Duplex;
    let mut writer = stream.try_clone_stream().unwrap();
    let mut bytes = Vec::new();
    for id in first_id..first_id + count {
        request.encode(id, &mut bytes).unwrap();
    }
    std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    })
}

/// Waits until the server has read nothing for 500 ms (it stopped reading every
/// connection that still has requests for it); returns the requests it read so far.
/// The window is long enough that a loaded machine's scheduling pause is not taken for
/// the server having stopped.
pub fn wait_until_reading_stops(hub: &gamesa_runtime::ingress::IngressHub) -> u64 {
    use std::sync::atomic::Ordering;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut before = hub.counters.requests.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = hub.counters.requests.load(Ordering::SeqCst);
        if now == before {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept reading for 30 s"
        );
        before = now;
    }
}
