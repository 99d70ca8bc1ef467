//! Shared set-up for the HTTP tests: `gamesa run` as a process on the twin
//! (`config/sim.toml`) with `[http]` on a free loopback port, the socket protocol on a
//! Unix socket beside it, and three clients; and a plain HTTP/1.1 client over one
//! keep-alive TCP connection that writes exactly the bytes a test gives it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const GAME: &str = "game-token-0001";
pub const READER: &str = "reader-token-0001";
pub const TRADER: &str = "trader-token-0001";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `config/sim.toml` on `gpu_bottleneck`, with `[http]` on 127.0.0.1:0, a Unix
/// socket in `dir`, and the clients `game` (signals, queries), `reader` (health
/// only) and `trader` (power orders, queries); `edit` changes the table last.
pub fn write_config(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let path = repo_root().join("config/sim.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    table["sensors"]["scenario"] = toml::Value::String(
        repo_root()
            .join("scenarios/gpu_bottleneck.toml")
            .display()
            .to_string(),
    );
    table["runtime"]["status_interval_s"] = 0.into();
    let extra: toml::Table = format!(
        r#"
        [http]
        enabled = true
        address = "127.0.0.1:0"

        [ingress]
        unix_enabled = true
        unix_socket = "{}"
        rate_limit_per_s = 1000000
        rate_burst = 1000000

        [[clients]]
        name = "game"
        token = "{GAME}"
        effects = ["signal:performance", "query:*"]

        [[clients]]
        name = "reader"
        token = "{READER}"
        effects = ["query:health"]

        [[clients]]
        name = "trader"
        token = "{TRADER}"
        effects = ["order:power_budget_mw", "query:*"]
        "#,
        dir.join("gamesa.sock").display()
    )
    .parse()
    .unwrap();
    table.extend(extra);
    edit(&mut table);
    let config = dir.join("gamesa.toml");
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    config
}

/// Sets `section.key` in a config table.
pub fn set(table: &mut toml::Table, section: &str, key: &str, value: impl Into<toml::Value>) {
    table[section]
        .as_table_mut()
        .unwrap()
        .insert(key.into(), value.into());
}

/// A `gamesa run` process; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub http: SocketAddr,
    pub socket: PathBuf,
    /// Every line it wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts the daemon on `config` and returns once its API listens.
    pub fn start(config: &Path) -> Daemon {
        let dir = config.parent().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .current_dir(dir)
            .env("STATE_DIRECTORY", dir)
            .env("RUNTIME_DIRECTORY", dir)
            .env("GAMESA_LOG", "info")
            .args(["run", "--config"])
            .arg(config)
            .args(["--duration-s", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let http = loop {
            let line = lines
                .next()
                .expect("the daemon exited before its API listened")
                .unwrap();
            log.lock().unwrap().push(line.clone());
            if line.contains("http API listening") {
                let address = line
                    .split("address=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap();
                break address.parse::<SocketAddr>().unwrap();
            }
        };
        let kept = Arc::clone(&log);
        // Keep draining stderr so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let daemon = Daemon {
            child,
            http,
            socket: dir.join("gamesa.sock"),
            log,
        };
        daemon.wait_ready();
        daemon
    }

    /// Waits (at most 20 s) until `/health/ready` answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut client = self.client();
            if client.get("/health/ready", None).status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "the daemon never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client(&self) -> Http {
        Http::connect(self.http)
    }

    /// Whether a stderr line so far contains every one of `parts`.
    pub fn logged(&self, parts: &[&str]) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The protocol error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Http {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(address: SocketAddr) -> Http {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Http { stream, reader }
    }

    /// Sends a request with `token` as its bearer token (if any) and a JSON body (if
    /// any), and reads its response.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: gamesa\r\n");
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or_default());
        self.write_raw(head.as_bytes());
        self.read_response()
            .expect("the server closed the connection")
    }

    pub fn get(&mut self, path: &str, token: Option<&str>) -> Response {
        self.send("GET", path, token, None)
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next response; `None` when the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Response> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (key, value) = line.split_once(':').unwrap();
            headers.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Some(Response {
            status,
            headers,
            body,
        })
    }

    /// Whether the server has closed the connection (reads the end of the stream
    /// within `within`).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
            || matches!(self.reader.read(&mut byte), Err(ref error) if error.kind() == std::io::ErrorKind::ConnectionReset)
    }
}
