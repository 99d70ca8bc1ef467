//! The `[ingress]` table (listeners and limits of the client protocol) and the
//! `[[clients]]` entries (who may connect, with which token and effects).

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf};

use gamesa_proto::Effect;
use serde::{Deserialize, Serialize, Serializer};

use super::{Config, Invalid};

/// The socket's file name; relative, so it goes under the runtime directory
/// ([`crate::state_dir::runtime_directory`]).
pub const DEFAULT_SOCKET: &str = "ingress.sock";

/// Listeners and limits of the ingress server (`docs/protocol.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// Listen on the Unix socket `unix_socket`.
    pub unix_enabled: bool,
    /// Created with mode 0660; a stale socket file left by a dead daemon is replaced. A
    /// relative path is under the runtime directory: `$RUNTIME_DIRECTORY`, then
    /// `$XDG_RUNTIME_DIR/gamesa`, then `/run/gamesa`.
    pub unix_socket: PathBuf,
    /// The group the socket is given (a name, or a number), so that its members may
    /// connect (mode 0660); unset: the daemon's own group.
    pub unix_group: Option<String>,
    /// Listen on TCP at `tcp_address`.
    pub tcp_enabled: bool,
    /// Loopback by default; port 0 picks a free port.
    pub tcp_address: SocketAddr,
    /// Largest request body accepted, checked on the length prefix before reading it.
    pub max_frame_bytes: u32,
    /// Connections held at once, over both listeners; more are told and closed.
    pub max_connections: u32,
    /// Requests per second each connection may send (token bucket refill rate).
    pub rate_limit_per_s: u32,
    /// Requests a connection may send in a burst (token bucket size).
    pub rate_burst: u32,
    /// Requests a connection may have unanswered before the server stops reading it.
    pub max_in_flight: u32,
    /// A connection with no subscription that sends nothing this long is closed.
    pub idle_timeout_s: f64,
    /// Events held per connection for its subscriptions; past it the oldest are dropped.
    pub subscription_queue: u32,
    /// Worker threads of the server's own async runtime.
    pub threads: u32,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            unix_enabled: false,
            unix_socket: PathBuf::from(DEFAULT_SOCKET),
            unix_group: None,
            tcp_enabled: false,
            tcp_address: SocketAddr::from(([127, 0, 0, 1], 7411)),
            max_frame_bytes: 64 * 1024,
            max_connections: 64,
            rate_limit_per_s: 1_000,
            rate_burst: 2_000,
            max_in_flight: 1_024,
            idle_timeout_s: 300.0,
            subscription_queue: 1_024,
            threads: 1,
        }
    }
}

impl IngressConfig {
    /// Whether `gamesa run` starts any listener.
    pub fn enabled(&self) -> bool {
        self.unix_enabled || self.tcp_enabled
    }
}

/// One client allowed to connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Unique among clients and agents; `hello` names it.
    pub name: String,
    /// The secret `hello` must carry. Never printed by `check-config`.
    #[serde(default, serialize_with = "redacted")]
    pub token: Option<String>,
    /// The environment variable that holds the token, read when the server starts.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Capabilities, such as `signal:performance`, `order:gpu_memory_mb`, `query:*`,
    /// `subscribe:fills`.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// Share of the minted allowance, like an agent's weight; 0 mints it nothing (it
    /// can still sell).
    #[serde(default = "default_client_weight")]
    pub weight: u32,
    /// Its participant id, as for an agent (`AgentConfig::participant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<u32>,
}

fn default_client_weight() -> u32 {
    1
}

fn redacted<S: Serializer>(token: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => serializer.serialize_some("<redacted>"),
        None => serializer.serialize_none(),
    }
}

/// The shortest token accepted in config.
pub const MIN_TOKEN_CHARS: usize = 8;

/// Checks `[ingress]` and `[[clients]]`; the error names the key.
pub fn validate_ingress(config: &Config) -> Result<(), Invalid> {
    let ingress = &config.ingress;
    let invalid = |key: &str, message: String| Err((format!("ingress.{key}"), message));
    if !(64..=16 * 1024 * 1024).contains(&ingress.max_frame_bytes) {
        return invalid(
            "max_frame_bytes",
            format!("{} is outside 64..=16777216", ingress.max_frame_bytes),
        );
    }
    for (key, value) in [
        ("max_connections", ingress.max_connections),
        ("rate_limit_per_s", ingress.rate_limit_per_s),
        ("rate_burst", ingress.rate_burst),
        ("max_in_flight", ingress.max_in_flight),
        ("subscription_queue", ingress.subscription_queue),
        ("threads", ingress.threads),
    ] {
        if value == 0 {
            return invalid(key, "must be at least 1".into());
        }
    }
    if ingress
        .unix_group
        .as_deref()
        .is_some_and(|group| group.trim().is_empty())
    {
        return invalid(
            "unix_group",
            "is empty (leave it unset for the daemon's group)".into(),
        );
    }
    if !(ingress.idle_timeout_s.is_finite() && ingress.idle_timeout_s > 0.0) {
        return invalid(
            "idle_timeout_s",
            format!(
                "{} is not a positive number of seconds",
                ingress.idle_timeout_s
            ),
        );
    }
    if ingress.unix_enabled && ingress.unix_socket.as_os_str().is_empty() {
        return invalid("unix_socket", "is empty".into());
    }
    let agent_names: BTreeSet<&str> = config
        .agents
        .iter()
        .map(|agent| agent.id.as_str())
        .collect();
    let mut names = BTreeSet::new();
    for (index, client) in config.clients.iter().enumerate() {
        let key = |field: &str| format!("clients[{index}].{field}");
        let fail = |field: &str, message: String| Err((key(field), message));
        let name_ok = !client.name.is_empty()
            && client.name.len() <= 64
            && client
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !name_ok {
            return fail(
                "name",
                format!(
                    "`{}` is not 1 to 64 characters of [A-Za-z0-9_.-]",
                    client.name
                ),
            );
        }
        if agent_names.contains(client.name.as_str()) || !names.insert(client.name.as_str()) {
            return fail(
                "name",
                format!("`{}` is used by another client or agent", client.name),
            );
        }
        match (&client.token, &client.token_env) {
            (Some(token), None) if token.chars().count() < MIN_TOKEN_CHARS => {
                return fail(
                    "token",
                    format!("must be at least {MIN_TOKEN_CHARS} characters"),
                );
            }
            (Some(_), None) => {}
            (None, Some(variable)) if variable.is_empty() => {
                return fail("token_env", "is empty".into());
            }
            (None, Some(_)) => {}
            _ => {
                return fail("token", "set exactly one of `token` and `token_env`".into());
            }
        }
    }
    Ok(())
}

/// A client's token: the configured one, or the named variable read from `env`.
pub fn resolve_token(
    client: &ClientConfig,
    env: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    if let Some(token) = &client.token {
        return Ok(token.clone());
    }
    let variable = client.token_env.as_deref().unwrap_or_default();
    match env(variable) {
        Some(token) if token.chars().count() >= MIN_TOKEN_CHARS => Ok(token),
        Some(_) => Err(format!(
            "client `{}`: ${variable} holds fewer than {MIN_TOKEN_CHARS} characters",
            client.name
        )),
        None => Err(format!(
            "client `{}`: the token variable ${variable} is not set",
            client.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::AgentRegistry;

    use super::*;
    use crate::ConfigError;

    fn load(extra: &str) -> Result<Config, ConfigError> {
        let text = format!("[guardian]\n{extra}");
        Config::from_toml_str(
            &text,
            std::path::Path::new("test.toml"),
            std::iter::empty(),
            &AgentRegistry::new(),
        )
    }

    fn invalid_key(extra: &str) -> String {
        match load(extra) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn ingress_is_off_by_default_and_loopback_when_on() {
        let config = load("").unwrap();
        assert!(!config.ingress.enabled());
        assert!(config.ingress.tcp_address.ip().is_loopback());
        assert_eq!(config.ingress.max_frame_bytes, 65_536);
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            invalid_key("[ingress]\nmax_frame_bytes = 10"),
            "ingress.max_frame_bytes"
        );
        assert_eq!(
            invalid_key("[ingress]\nrate_burst = 0"),
            "ingress.rate_burst"
        );
        assert_eq!(
            invalid_key("[ingress]\nidle_timeout_s = -1.0"),
            "ingress.idle_timeout_s"
        );
        assert!(matches!(
            load("[ingress]\nport = 1"),
            Err(ConfigError::Syntax { .. })
        ));
        assert_eq!(
            invalid_key("[[clients]]\nname = \"a b\"\ntoken = \"12345678\""),
            "clients[0].name"
        );
        assert_eq!(
            invalid_key("[[clients]]\nname = \"a\"\ntoken = \"short\""),
            "clients[0].token"
        );
        assert_eq!(
            invalid_key("[[clients]]\nname = \"a\"\ntoken = \"12345678\"\ntoken_env = \"X\""),
            "clients[0].token"
        );
        assert_eq!(
            invalid_key(
                "[[clients]]\nname = \"a\"\ntoken = \"12345678\"\n\
                 [[clients]]\nname = \"a\"\ntoken = \"87654321\""
            ),
            "clients[1].name"
        );
    }

    #[test]
    fn tokens_come_from_config_or_the_environment_and_are_never_printed() {
        let config = load(
            "[[clients]]\nname = \"a\"\ntoken = \"secret-token\"\n\
             [[clients]]\nname = \"b\"\ntoken_env = \"B_TOKEN\"",
        )
        .unwrap();
        let printed = toml::to_string(&config).unwrap();
        assert!(!printed.contains("secret-token"), "{printed}");
        let mut env = |name: &str| (name == "B_TOKEN").then(|| "from-the-env".to_owned());
        assert_eq!(
            resolve_token(&config.clients[0], &mut env).unwrap(),
            "secret-token"
        );
        assert_eq!(
            resolve_token(&config.clients[1], &mut env).unwrap(),
            "from-the-env"
        );
        let error = resolve_token(&config.clients[1], &mut |_| None).unwrap_err();
        assert!(error.contains("B_TOKEN"), "{error}");
    }
}
