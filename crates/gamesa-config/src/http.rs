//! The `[http]` table: the HTTP API and Prometheus `/metrics` (`docs/http.md`), off by
//! default, on loopback when on.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// The port the API listens on unless `address` says otherwise.
pub const DEFAULT_PORT: u16 = 9471;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve the API. Clients authenticate with `Authorization: Bearer <token>`, the
    /// token of one of the `[[clients]]`; `/health/*`, `/metrics` and
    /// `/v1/openapi.json` need none.
    pub enabled: bool,
    /// Loopback by default; port 0 picks a free port.
    pub address: SocketAddr,
    /// Largest request body accepted; a larger one is refused with 413 before it is
    /// read.
    pub max_body_bytes: u32,
    /// A client must send a request's whole head within this many seconds
    /// (slow-loris), and a body within as many again.
    pub header_timeout_s: f64,
    /// Connections held at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: u32,
    /// Worker threads of the server's own async runtime.
    pub threads: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: false,
            address: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            max_body_bytes: 64 * 1024,
            header_timeout_s: 5.0,
            max_connections: 256,
            threads: 2,
        }
    }
}

/// Ranges serde cannot express; each failure names its key.
pub fn validate_http(config: &HttpConfig) -> Result<(), Invalid> {
    let invalid = |key: &str, message: String| Err((format!("http.{key}"), message));
    if !(64..=16 * 1024 * 1024).contains(&config.max_body_bytes) {
        return invalid(
            "max_body_bytes",
            format!("{} is outside 64..=16777216", config.max_body_bytes),
        );
    }
    if !(config.header_timeout_s.is_finite() && (0.1..=300.0).contains(&config.header_timeout_s)) {
        return invalid(
            "header_timeout_s",
            format!("{} is outside 0.1..=300", config.header_timeout_s),
        );
    }
    for (key, value) in [
        ("max_connections", config.max_connections),
        ("threads", config.threads),
    ] {
        if value == 0 {
            return invalid(key, "must be at least 1".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_value_names_its_key() {
        assert_eq!(validate_http(&HttpConfig::default()), Ok(()));
        let cases = [
            (
                HttpConfig {
                    max_body_bytes: 10,
                    ..HttpConfig::default()
                },
                "http.max_body_bytes",
            ),
            (
                HttpConfig {
                    header_timeout_s: f64::NAN,
                    ..HttpConfig::default()
                },
                "http.header_timeout_s",
            ),
            (
                HttpConfig {
                    threads: 0,
                    ..HttpConfig::default()
                },
                "http.threads",
            ),
            (
                HttpConfig {
                    max_connections: 0,
                    ..HttpConfig::default()
                },
                "http.max_connections",
            ),
        ];
        for (config, key) in cases {
            let error = validate_http(&config).err().map(|(key, _)| key);
            assert_eq!(error.as_deref(), Some(key));
        }
    }
}
