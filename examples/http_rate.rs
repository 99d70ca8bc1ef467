//! An open-loop load on a running daemon's HTTP API, for `scripts/bench-http.sh`:
//! `RATE` requests per second of `GET PATH` for `SECONDS`, spread over `CONNECTIONS`
//! keep-alive connections, each request sent at its scheduled time whatever the
//! previous one did, and its latency counted from that time (so a stall is not hidden
//! by the requests it delayed). It prints the latency percentiles, and the daemon's
//! tick rate (from `gamesa_ticks_total` on `/metrics`) over as long a stretch before
//! the load and during it.
//!
//! ```sh
//! cargo run --release --example http_rate -- 127.0.0.1:9471 /v1/telemetry TOKEN 1000 10 8
//! ```

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, path, token, rate, seconds, connections] = args.as_slice() else {
        bail!("usage: http_rate ADDRESS PATH TOKEN RATE SECONDS CONNECTIONS");
    };
    let address: SocketAddr = address.parse().context("ADDRESS")?;
    let rate: f64 = rate.parse().context("RATE")?;
    let seconds: f64 = seconds.parse().context("SECONDS")?;
    let connections: usize = connections.parse().context("CONNECTIONS")?;
    let period = Duration::from_secs_f64(seconds);

    let ticks_idle = tick_rate(address, period)?;
    let before = ticks(address)?;
    let started = Instant::now();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: gamesa\r\nAuthorization: Bearer {token}\r\n\r\n");
    let per_connection = rate / connections as f64;
    let workers: Vec<_> = (0..connections)
        .map(|index| {
            let request = request.clone();
            std::thread::spawn(move || -> anyhow::Result<(Vec<Duration>, usize)> {
                let mut http = Connection::open(address)?;
                let interval = Duration::from_secs_f64(1.0 / per_connection);
                // Connections start staggered over one interval.
                let mut next = started + interval.mul_f64(index as f64 / connections as f64);
                let mut latencies = Vec::new();
                let mut failed = 0;
                while next < started + period {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let status = http.call(request.as_bytes())?;
                    latencies.push(next.elapsed());
                    if status != 200 {
                        failed += 1;
                    }
                    next += interval;
                }
                Ok((latencies, failed))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        let (some, failures) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        latencies.extend(some);
        failed += failures;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ticks_loaded = (ticks(address)? - before) / elapsed;
    latencies.sort();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 * quantile).ceil() as usize).saturating_sub(1);
        latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    if latencies.is_empty() {
        bail!("no request was sent");
    }
    println!(
        "{} requests in {elapsed:.1} s ({:.0}/s, {failed} not 200) on {connections} connections",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    println!(
        "tick rate: {ticks_idle:.2}/s idle before, {ticks_loaded:.2}/s under load ({:+.1} %)",
        (ticks_loaded / ticks_idle - 1.0) * 100.0
    );
    Ok(())
}

/// Ticks per second over `period`, read from `/metrics`.
fn tick_rate(address: SocketAddr, period: Duration) -> anyhow::Result<f64> {
    let start = ticks(address)?;
    let started = Instant::now();
    std::thread::sleep(period);
    Ok((ticks(address)? - start) / started.elapsed().as_secs_f64())
}

fn ticks(address: SocketAddr) -> anyhow::Result<f64> {
    let mut http = Connection::open(address)?;
    http.call(b"GET /metrics HTTP/1.1\r\nHost: gamesa\r\n\r\n")?;
    let body = String::from_utf8_lossy(&http.body).into_owned();
    body.lines()
        .find_map(|line| line.strip_prefix("gamesa_ticks_total "))
        .and_then(|value| value.trim().parse().ok())
        .context("no gamesa_ticks_total on /metrics")
}

struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    body: Vec<u8>,
}

impl Connection {
    fn open(address: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Connection {
            stream,
            reader,
            body: Vec::new(),
        })
    }

    /// Sends one request and reads its response; returns the status.
    fn call(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .context("no status line")?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((key, value)) = header.split_once(':')
                && key.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        Ok(status)
    }
}
