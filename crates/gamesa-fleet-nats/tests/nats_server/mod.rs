//! A `nats-server` with JetStream on loopback, started by a test in a directory of its
//! own and killed when dropped. Shared by this crate's tests and the daemons' fleet test
//! (`tests/fleet_daemons.rs`, through `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

pub struct NatsServer {
    child: Child,
    pub port: u16,
}

impl NatsServer {
    pub fn start(store: &Path, port: u16) -> NatsServer {
        NatsServer::start_with(store, port, &[])
    }

    /// With `extra` arguments, such as `["--user", "u", "--pass", "p"]`.
    pub fn start_with(store: &Path, port: u16, extra: &[&str]) -> NatsServer {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .arg("-sd")
            .arg(store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "this test needs nats-server (Debian's `nats-server` package; \
                 scripts/install-test-deps.sh installs it)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer { child, port }
    }

    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
