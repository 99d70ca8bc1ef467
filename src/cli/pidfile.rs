//! `gamesa.pid` in the runtime directory: written and locked by `gamesa run` while it
//! runs, removed when it ends, and read by `gamesa reload` to know whom to send SIGHUP —
//! only while a daemon holds its lock, so a stale file never signals another process.

use std::{fs::File, io::Write as _, path::PathBuf};

use anyhow::{Context as _, bail};
use nix::fcntl::{Flock, FlockArg};

const FILE: &str = "gamesa.pid";

/// The pid file of the running daemon: locked while it runs, removed when dropped.
#[derive(Debug)]
pub struct PidFile(Option<(PathBuf, Flock<File>)>);

impl PidFile {
    /// Writes this process's pid under its runtime directory and holds the file's
    /// lock. A directory that cannot be written (a user without `$XDG_RUNTIME_DIR`),
    /// or another daemon holding the lock there, is logged: `gamesa reload --pid` still
    /// works.
    pub fn write() -> PidFile {
        let path = super::own_runtime_directory().join(FILE);
        match Self::lock_and_write(&path) {
            Ok(lock) => PidFile(Some((path, lock))),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "no pid file: `gamesa reload` needs --pid");
                PidFile(None)
            }
        }
    }

    fn lock_and_write(path: &std::path::Path) -> anyhow::Result<Flock<File>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| errno)
            .context("another gamesa holds it")?;
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(lock)
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some((path, lock)) = self.0.take() {
            let _ = std::fs::remove_file(path);
            drop(lock);
        }
    }
}

/// `gamesa reload`: SIGHUP to `pid`, or to the daemon whose pid file is locked.
pub fn signal_reload(pid: Option<i32>) -> anyhow::Result<()> {
    let pid = match pid {
        Some(pid) => pid,
        None => running_pid()?,
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("sending SIGHUP to {pid}"))?;
    println!("asked gamesa ({pid}) to reload its config; its log says what changed");
    Ok(())
}

/// The pid in the pid file a running daemon holds locked.
fn running_pid() -> anyhow::Result<i32> {
    let path = super::runtime_file(FILE);
    let file = File::open(&path).with_context(|| {
        format!(
            "reading {} (is gamesa running? else give --pid)",
            path.display()
        )
    })?;
    if let Ok(unlocked) = Flock::lock(file, FlockArg::LockSharedNonblock) {
        drop(unlocked);
        bail!(
            "{} is left from a gamesa that is gone (no process holds it); is gamesa running?",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds `{}`, not a pid", path.display(), text.trim()))
}
