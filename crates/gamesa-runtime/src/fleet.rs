//! Fleet mode in the daemon: `[fleet]` read into the NATS link's settings, with the
//! credentials fetched from where config points (an environment variable or a file,
//! never the command line), and the link started beside the tick loop.

use std::sync::Arc;

use gamesa_config::{Config, fleet::FleetConfig};
use gamesa_fleet::Split;
use gamesa_fleet_nats::{Auth, FleetLink, LinkSettings};

/// Why `[fleet]` could not be turned into a link: the key at fault and what is wrong.
pub type FleetSetupError = (String, String);

/// The link's settings from `[fleet]`; `env` reads environment variables. The runtime's
/// tick period floors the margin (a node holds its cap for a tick).
pub fn link_settings(
    config: &Config,
    env: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<LinkSettings, FleetSetupError> {
    let fleet: &FleetConfig = &config.fleet;
    let tick_ms = 1_000_u64.div_ceil(u64::from(config.runtime.tick_hz.max(1)));
    let read_file = |key: &str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .map_err(|error| {
                (
                    format!("fleet.{key}"),
                    format!("cannot read {}: {error}", path.display()),
                )
            })
    };
    let auth = match (&fleet.user, &fleet.nkey_file) {
        (Some(user), _) => {
            let password = match (&fleet.password_env, &fleet.password_file) {
                (Some(name), _) => env(name).ok_or_else(|| {
                    (
                        "fleet.password_env".to_owned(),
                        format!("the variable `{name}` is not set"),
                    )
                })?,
                (None, Some(path)) => read_file("password_file", path)?,
                (None, None) => {
                    return Err((
                        "fleet.user".to_owned(),
                        "needs password_env or password_file".to_owned(),
                    ));
                }
            };
            Auth::UserPassword {
                user: user.clone(),
                password,
            }
        }
        (None, Some(path)) => Auth::NKey(read_file("nkey_file", path)?),
        (None, None) => Auth::None,
    };
    let split = match fleet.split.as_str() {
        "static" => Split::Static,
        "proportional" => Split::Proportional,
        _ => Split::Market,
    };
    Ok(LinkSettings {
        nats_url: fleet.nats_url.clone(),
        cluster: fleet.cluster.clone(),
        node: fleet.node.clone(),
        weight: fleet.node_weight,
        budget_mw: fleet.budget_mw,
        safe_shares_mw: fleet.safe_shares_mw.clone(),
        epoch_ms: fleet.epoch_ms,
        lease_ms: fleet.lease_ms(),
        margin_ms: fleet.margin_ms(tick_ms),
        split,
        auth,
    })
}

/// Starts the link on the current tokio runtime; the node's cap is its safe share until
/// a grant arrives.
pub fn start(settings: LinkSettings) -> Arc<FleetLink> {
    tracing::info!(
        node = %settings.node,
        cluster = %settings.cluster,
        url = %settings.nats_url,
        "fleet: joining"
    );
    Arc::new(FleetLink::start(settings))
}
