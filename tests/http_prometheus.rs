//! `/metrics` against the real tools: `promtool check metrics` accepts a scrape, a
//! real Prometheus server scrapes a live daemon and answers a PromQL query with what
//! the daemon reported, and the Grafana dashboard asks only for metrics a scrape has.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package, which
//! `scripts/install-test-deps.sh` installs; without them these tests fail and say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::{
    collections::BTreeSet,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use http_support::{Daemon, Http, repo_root, write_config};

/// A program from `$PATH`; the test fails, saying how to get it, when it is missing.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: it comes with Debian's `prometheus` package \
                 (scripts/install-test-deps.sh installs it)"
            )
        })
}

/// The value of the first sample of `metric` (a whole family name) in a scrape.
fn value_of(scrape: &str, metric: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn scrape(http: &mut Http) -> String {
    let response = http.get("/metrics", None);
    assert_eq!(response.status, 200);
    response.text()
}

#[test]
fn promtool_accepts_a_scrape() {
    let promtool = tool("promtool");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&write_config(dir.path(), |_| {}));
    let text = scrape(&mut daemon.client());
    for family in [
        "hw_power_watts",
        "hw_temperature_celsius",
        "hw_energy_joules_total",
        "gamesa_power_limit_watts",
        "gamesa_market_price",
        "gamesa_guardian_vetoes_total",
        "gamesa_ticks_total",
        "gamesa_tick_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}\n---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Prometheus server; killed when dropped.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks Prometheus `query` (an instant query): each series' labels, and its samples as
/// (time, value): the one at the query's time for an instant vector, the raw scraped
/// ones, with their scrape times, for a range vector (`metric[1m]`).
fn promql(
    prometheus: std::net::SocketAddr,
    query: &str,
) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
    let mut http = Http::connect(prometheus);
    let encoded: String = query
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect();
    let response = http.get(&format!("/api/v1/query?query={encoded}"), None);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let point = |value: &serde_json::Value| {
                (
                    value[0].as_f64().unwrap(),
                    value[1].as_str().unwrap().parse().unwrap(),
                )
            };
            let points = match series["values"].as_array() {
                Some(values) => values.iter().map(point).collect(),
                None => vec![point(&series["value"])],
            };
            (series["metric"].clone(), points)
        })
        .collect()
}

/// Whether Prometheus is listening and ready to answer queries: it opens its port
/// before its storage is loaded, and answers queries with 503 until then.
fn ready(prometheus: std::net::SocketAddr) -> bool {
    std::net::TcpStream::connect(prometheus).is_ok()
        && Http::connect(prometheus).get("/-/ready", None).status == 200
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_real_prometheus_scrapes_what_the_daemon_reports() {
    let binary = tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&write_config(dir.path(), |_| {}));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  \
             - job_name: gamesa\n    static_configs:\n      - targets: ['{}']\n",
            daemon.http
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The daemon's own count of ticks, read every 20 ms while Prometheus scrapes it.
    let mut ours: Vec<(f64, f64)> = Vec::new();
    let mut http = daemon.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scraped = None;
    while Instant::now() < deadline {
        let text = scrape(&mut http);
        ours.push((now_s(), value_of(&text, "gamesa_ticks_total").unwrap()));
        if ours.len().is_multiple_of(10)
            && ready(port)
            && let Some((labels, points)) = promql(port, "gamesa_ticks_total[1m]").into_iter().next()
            && let Some(&(at, value)) = points.first()
            // Our reads must reach past the scrape, so as to bracket it.
            && ours.last().is_some_and(|(read, _)| *read > at + 1.0)
        {
            scraped = Some((labels, at, value));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (labels, at, value) = scraped.expect("Prometheus never had a sample of the daemon");
    assert_eq!(labels["job"], "gamesa");
    assert_eq!(labels["instance"], daemon.http.to_string());
    // The scrape started at `at` and took under a second: what we read just before it
    // and a second after bracket the value Prometheus stored.
    let before = ours
        .iter()
        .rev()
        .find(|(read, _)| *read <= at)
        .map(|(_, ticks)| *ticks)
        .unwrap_or(0.0);
    let after = ours
        .iter()
        .find(|(read, _)| *read >= at + 1.0)
        .map(|(_, ticks)| *ticks)
        .unwrap();
    assert!(
        before <= value && value <= after && value > 0.0,
        "Prometheus stored {value} at {at}; the daemon said {before} before and {after} after"
    );
    // Labels come through: a component's power, by its id.
    let gpu = promql(port, "hw_power_watts{hw_id=\"gpu0\"}");
    assert_eq!(gpu.len(), 1, "{gpu:?}");
    assert!(gpu[0].1[0].1 > 0.0, "{gpu:?}");
}

#[test]
fn the_grafana_dashboard_asks_only_for_exported_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("packaging/grafana/gamesa-dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&write_config(dir.path(), |_| {}));
    let text = scrape(&mut daemon.client());
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    let mut asked = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Metric names: identifiers followed by `{`.
            for (index, _) in expr.match_indices('{') {
                let name: String = expr[..index]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                if !name.is_empty() {
                    asked.insert(name);
                }
            }
        }
    }
    assert!(asked.len() >= 10, "{asked:?}");
    // Read from real sensors only (NVML, /proc/stat): the twin has neither, so these
    // have no samples here, and a family with no sample is not written.
    let real_sensors_only = ["hw_gpu_utilization_ratio", "system_cpu_utilization_ratio"];
    for name in &asked {
        if real_sensors_only.contains(&name.as_str()) {
            continue;
        }
        let family = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            exported.contains(family),
            "the dashboard asks for {name}, which /metrics does not export: {exported:?}"
        );
    }
}
