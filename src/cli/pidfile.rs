//! `gamesa.pid` in the runtime directory: written by `gamesa run`, removed when it
//! ends, and read by `gamesa reload` to know whom to send SIGHUP.

use std::path::PathBuf;

use anyhow::Context as _;
use gamesa_runtime::config::state_dir;

const FILE: &str = "gamesa.pid";

/// Where this user's daemon keeps its pid (the socket's directory).
fn path() -> PathBuf {
    let vars: Vec<(String, String)> = super::env_vars().collect();
    state_dir::runtime_directory(|name| super::lookup(&vars, name)).join(FILE)
}

/// The pid file of the running daemon; removed when dropped.
#[derive(Debug)]
pub struct PidFile(Option<PathBuf>);

impl PidFile {
    /// Writes this process's pid. A runtime directory that cannot be written (a user
    /// without `$XDG_RUNTIME_DIR`) is logged: `gamesa reload --pid` still works.
    pub fn write() -> PidFile {
        let path = path();
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, format!("{}\n", std::process::id())));
        match written {
            Ok(()) => PidFile(Some(path)),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "no pid file: `gamesa reload` needs --pid");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `gamesa reload`: SIGHUP to `pid`, or to the pid in the pid file.
pub fn signal_reload(pid: Option<i32>) -> anyhow::Result<()> {
    let pid = match pid {
        Some(pid) => pid,
        None => {
            let path = path();
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (is gamesa running? else give --pid)",
                    path.display()
                )
            })?;
            text.trim()
                .parse()
                .with_context(|| format!("{} holds `{}`, not a pid", path.display(), text.trim()))?
        }
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("sending SIGHUP to {pid}"))?;
    println!("asked gamesa ({pid}) to reload its config; its log says what changed");
    Ok(())
}
