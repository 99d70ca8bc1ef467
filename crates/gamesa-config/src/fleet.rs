//! The `[fleet]` table: this node's place in a fleet that shares one power budget over
//! NATS (`docs/fleet.md`). Off by default; without it nothing changes.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    pub enabled: bool,
    /// The NATS server, `nats://host:port`, with JetStream on. Credentials never go in
    /// it: they come from `user` with `password_env` or `password_file`, or from
    /// `nkey_file`.
    pub nats_url: String,
    /// The fleet's name: the subjects' and the key-value bucket's, so several fleets
    /// can share one server.
    pub cluster: String,
    /// This node's name in the fleet; it must be a key of `safe_shares_mw`.
    pub node: String,
    /// The power the whole fleet may draw, in mW.
    pub budget_mw: u64,
    /// Every node's safe share, in mW: what it may always draw, granted or not. They
    /// add up to at most the budget; the rest is the pool the leader leases out.
    pub safe_shares_mw: BTreeMap<String, u64>,
    /// This node's weight in the static split (the baseline without a market).
    pub node_weight: u32,
    /// How often the leader clears the nodes' orders.
    pub epoch_ms: u64,
    /// How long a grant lasts; default three epochs.
    pub lease_ms: Option<u64>,
    /// How early a node ends a lease and a leader stops granting before its mandate
    /// ends; default a fifth of an epoch, and never less than a tick.
    pub margin_ms: Option<u64>,
    /// `market` (default), `static` or `proportional`: how the leader divides the pool.
    pub split: String,
    /// NATS user name, with a password from `password_env` or `password_file`.
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`), instead of a user and password.
    pub nkey_file: Option<PathBuf>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            enabled: false,
            nats_url: "nats://127.0.0.1:4222".into(),
            cluster: "default".into(),
            node: String::new(),
            budget_mw: 0,
            safe_shares_mw: BTreeMap::new(),
            node_weight: 1,
            epoch_ms: 1_000,
            lease_ms: None,
            margin_ms: None,
            split: "market".into(),
            user: None,
            password_env: None,
            password_file: None,
            nkey_file: None,
        }
    }
}

impl FleetConfig {
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms.unwrap_or(self.epoch_ms.saturating_mul(3))
    }

    /// The margin, never less than `tick_ms`: a node reads its cap once a tick and
    /// holds it until the next.
    pub fn margin_ms(&self, tick_ms: u64) -> u64 {
        self.margin_ms.unwrap_or(self.epoch_ms / 5).max(tick_ms)
    }

    /// This node's safe share (0 when the node is not listed, which validation refuses).
    pub fn safe_share_mw(&self) -> u64 {
        self.safe_shares_mw.get(&self.node).copied().unwrap_or(0)
    }
}

/// A name that is one NATS subject token and a valid bucket name.
fn token_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// The checks serde cannot make; each failure names its key. `tick_ms` is the
/// runtime's tick period.
pub fn validate_fleet(config: &FleetConfig, tick_ms: u64) -> Result<(), Invalid> {
    let invalid = |key: &str, message: String| Err((format!("fleet.{key}"), message));
    if !config.enabled {
        return Ok(());
    }
    let Some(rest) = config
        .nats_url
        .strip_prefix("nats://")
        .or_else(|| config.nats_url.strip_prefix("tls://"))
    else {
        return invalid(
            "nats_url",
            format!(
                "`{}` is not nats://host:port or tls://host:port",
                config.nats_url
            ),
        );
    };
    if rest.contains('@') {
        return invalid(
            "nats_url",
            "credentials do not go in the URL: use user with password_env or \
             password_file, or nkey_file"
                .into(),
        );
    }
    if rest.is_empty() {
        return invalid("nats_url", "names no host".into());
    }
    for (key, name) in [("cluster", &config.cluster), ("node", &config.node)] {
        if !token_ok(name) {
            return invalid(
                key,
                format!("`{name}` must be 1 to 64 characters of [A-Za-z0-9_-]"),
            );
        }
    }
    if let Some(bad) = config.safe_shares_mw.keys().find(|name| !token_ok(name)) {
        return invalid(
            "safe_shares_mw",
            format!("node `{bad}`: a name is 1 to 64 characters of [A-Za-z0-9_-]"),
        );
    }
    if !config.safe_shares_mw.contains_key(&config.node) {
        return invalid(
            "safe_shares_mw",
            format!("has no entry for this node, `{}`", config.node),
        );
    }
    if config.budget_mw == 0 {
        return invalid("budget_mw", "must be set, in mW, above 0".into());
    }
    let safe: u128 = config
        .safe_shares_mw
        .values()
        .map(|&mw| u128::from(mw))
        .sum();
    if safe > u128::from(config.budget_mw) {
        return invalid(
            "safe_shares_mw",
            format!(
                "add up to {safe} mW, over fleet.budget_mw ({} mW)",
                config.budget_mw
            ),
        );
    }
    if config.node_weight == 0 {
        return invalid("node_weight", "must be at least 1".into());
    }
    if !(100..=600_000).contains(&config.epoch_ms) {
        return invalid(
            "epoch_ms",
            format!("{} is outside 100..=600000", config.epoch_ms),
        );
    }
    let (lease, margin) = (config.lease_ms(), config.margin_ms(tick_ms));
    if lease < config.epoch_ms + 2 * margin {
        return invalid(
            "lease_ms",
            format!(
                "{lease} ms must be at least an epoch plus twice the margin \
                 ({} + 2 × {margin} ms), or a node's lease runs out between epochs",
                config.epoch_ms
            ),
        );
    }
    if !["market", "static", "proportional"].contains(&config.split.as_str()) {
        return invalid(
            "split",
            format!("`{}` is not market, static or proportional", config.split),
        );
    }
    match (
        &config.user,
        config.password_env.is_some() || config.password_file.is_some(),
        &config.nkey_file,
    ) {
        (Some(_), _, Some(_)) => invalid("nkey_file", "give a user or an nkey, not both".into()),
        (Some(_), false, None) => invalid("user", "needs password_env or password_file".into()),
        (None, true, _) => invalid("user", "a password needs a user".into()),
        _ if config.password_env.is_some() && config.password_file.is_some() => invalid(
            "password_file",
            "give password_env or password_file, not both".into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Edit = Box<dyn FnOnce(&mut FleetConfig)>;

    fn fleet(edit: impl FnOnce(&mut FleetConfig)) -> Result<(), Invalid> {
        let mut config = FleetConfig {
            enabled: true,
            node: "n1".into(),
            budget_mw: 1_000_000,
            safe_shares_mw: [("n1".to_owned(), 300_000), ("n2".to_owned(), 300_000)].into(),
            ..FleetConfig::default()
        };
        edit(&mut config);
        validate_fleet(&config, 100)
    }

    #[test]
    fn a_good_fleet_passes_and_each_bad_key_is_named() {
        assert_eq!(fleet(|_| {}), Ok(()));
        assert_eq!(fleet(|f| f.enabled = false), Ok(()));
        let cases: Vec<(Edit, &str, &str)> = vec![
            (
                Box::new(|f| f.nats_url = "http://x".into()),
                "fleet.nats_url",
                "nats://",
            ),
            (
                Box::new(|f| f.nats_url = "nats://u:p@host:4222".into()),
                "fleet.nats_url",
                "credentials",
            ),
            (
                Box::new(|f| f.cluster = "a.b".into()),
                "fleet.cluster",
                "[A-Za-z0-9_-]",
            ),
            (
                Box::new(|f| f.node = "n3".into()),
                "fleet.safe_shares_mw",
                "no entry for this node",
            ),
            (
                Box::new(|f| f.budget_mw = 500_000),
                "fleet.safe_shares_mw",
                "over fleet.budget_mw",
            ),
            (Box::new(|f| f.budget_mw = 0), "fleet.budget_mw", "above 0"),
            (
                Box::new(|f| f.node_weight = 0),
                "fleet.node_weight",
                "at least 1",
            ),
            (Box::new(|f| f.epoch_ms = 10), "fleet.epoch_ms", "outside"),
            (
                Box::new(|f| f.lease_ms = Some(1_100)),
                "fleet.lease_ms",
                "between epochs",
            ),
            (
                Box::new(|f| f.split = "auction".into()),
                "fleet.split",
                "not market",
            ),
            (
                Box::new(|f| f.user = Some("u".into())),
                "fleet.user",
                "needs password_env",
            ),
            (
                Box::new(|f| f.password_env = Some("P".into())),
                "fleet.user",
                "needs a user",
            ),
            (
                Box::new(|f| {
                    f.user = Some("u".into());
                    f.nkey_file = Some("k".into());
                }),
                "fleet.nkey_file",
                "not both",
            ),
        ];
        for (edit, key, says) in cases {
            let (got_key, message) = fleet(edit).unwrap_err();
            assert_eq!(got_key, key, "{message}");
            assert!(message.contains(says), "{key}: {message}");
        }
    }

    #[test]
    fn the_margin_is_never_less_than_a_tick() {
        let config = FleetConfig::default();
        assert_eq!((config.lease_ms(), config.margin_ms(100)), (3_000, 200));
        assert_eq!(config.margin_ms(500), 500);
    }
}
