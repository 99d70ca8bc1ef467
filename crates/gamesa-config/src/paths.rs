//! Places the config's relative runtime paths: the ingress socket under the runtime
//! directory and the actuators' state file under the state directory, so that nothing
//! lands in the current directory of whoever started the daemon.

use super::{Config, state_dir};

/// Makes `ingress.unix_socket` and `actuators.state_file` absolute when they are
/// relative. A state file with no state directory to go under stays relative;
/// validation refuses it only when a real actuator would need it.
pub fn place<'a>(config: &mut Config, var: impl Fn(&str) -> Option<&'a str> + Copy) {
    if config.ingress.unix_socket.is_relative() {
        config.ingress.unix_socket =
            state_dir::runtime_directory(var).join(&config.ingress.unix_socket);
    }
    if let Ok(placed) = state_dir::resolve_file(&config.actuators.state_file, var) {
        config.actuators.state_file = placed;
    }
}
