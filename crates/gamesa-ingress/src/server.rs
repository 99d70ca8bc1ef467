//! The ingress server: a Unix socket (mode 0660) and a TCP listener, served by a tokio
//! runtime on a thread of its own, so client traffic never runs on the tick's thread.
//!
//! Each connection is one task (`connection.rs`). Bad input from one client gets an
//! error reply with a stable code, or closes that connection only; it never panics and
//! never touches another connection.
//!
//! # Invariants
//! - at most `max_connections` connections are served; one more is told so and closed
//! - a stopping server closes its listeners, then waits (at most [`FAREWELLS`]) until
//!   every connection has written its last replies and the `shutting_down` notice

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use gamesa_wire::{ErrorBody, ErrorCode, ReplyFrame, encode_frame};

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, watch},
};

pub use super::connection::OUTPUT_HIGH_WATER;
use super::{
    connection::{Connection, FAREWELL},
    hub::IngressHub,
};
use gamesa_config::Config;

/// How long a stopping server waits for every connection to say farewell: each bounds
/// its own last write by [`FAREWELL`], so this is reached only by a stuck task.
const FAREWELLS: Duration = Duration::from_secs(2);

/// Held by every connection task until it has said farewell and closed: the server's
/// stop waits until every holder is gone (the receiver then reads `None`).
#[derive(Debug, Clone)]
struct Alive {
    _sender: mpsc::Sender<()>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("ingress clients: {0}")]
    Clients(String),
    #[error("cannot listen on {what}: {reason}")]
    Listen { what: String, reason: String },
    #[error("cannot start the ingress thread: {0}")]
    Thread(String),
}

/// A running ingress server. Dropping it stops the listeners, closes every connection
/// and removes the Unix socket file.
#[derive(Debug)]
pub struct Ingress {
    hub: Arc<IngressHub>,
    tcp_address: Option<SocketAddr>,
    unix_socket: Option<PathBuf>,
    /// `true` tells the accept loops and every connection to finish.
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ingress {
    /// Starts the listeners `config.ingress` enables; `token_env` tokens are read from
    /// the process environment.
    pub fn start(config: &Config) -> Result<Ingress, IngressError> {
        Ingress::start_with_env(config, &mut |name| std::env::var(name).ok())
    }

    /// As [`Ingress::start`], reading `token_env` variables through `env`.
    pub fn start_with_env(
        config: &Config,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<Ingress, IngressError> {
        let hub = Arc::new(IngressHub::new(config, env).map_err(IngressError::Clients)?);
        let settings = &config.ingress;
        let listen_error = |what: String| {
            move |error: io::Error| IngressError::Listen {
                what,
                reason: error.to_string(),
            }
        };
        let tcp = if settings.tcp_enabled {
            let what = format!("tcp {}", settings.tcp_address);
            let listener = std::net::TcpListener::bind(settings.tcp_address)
                .map_err(listen_error(what.clone()))?;
            listener.set_nonblocking(true).map_err(listen_error(what))?;
            Some(listener)
        } else {
            None
        };
        let tcp_address = match &tcp {
            Some(listener) => Some(listener.local_addr().map_err(listen_error("tcp".into()))?),
            None => None,
        };
        let unix = if settings.unix_enabled {
            Some(bind_unix(
                &settings.unix_socket,
                settings.unix_group.as_deref(),
            )?)
        } else {
            None
        };
        let (shutdown, watcher) = watch::channel(false);
        let threads = settings.threads.max(1) as usize;
        let thread_hub = Arc::clone(&hub);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("gamesa-ingress")
            .enable_all()
            .build()
            .map_err(|error| IngressError::Thread(error.to_string()))?;
        let thread = std::thread::Builder::new()
            .name("gamesa-ingress".into())
            .spawn(move || {
                runtime.block_on(serve(thread_hub, tcp, unix, watcher));
                runtime.shutdown_timeout(FAREWELL);
            })
            .map_err(|error| IngressError::Thread(error.to_string()))?;
        if let Some(address) = tcp_address {
            tracing::info!(%address, "ingress listening on tcp");
        }
        if settings.unix_enabled {
            tracing::info!(path = %settings.unix_socket.display(), "ingress listening on a unix socket");
        }
        Ok(Ingress {
            hub,
            tcp_address,
            unix_socket: settings.unix_enabled.then(|| settings.unix_socket.clone()),
            shutdown,
            thread: Some(thread),
        })
    }

    /// The hub to attach to the runtime.
    pub fn hub(&self) -> &Arc<IngressHub> {
        &self.hub
    }

    /// The bound TCP address (the real port when config asked for port 0).
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.tcp_address
    }

    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }

    /// Stops listening, says `shutting_down` to every connection, and waits for the
    /// server thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(path) = self.unix_socket.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A group's id: a number as it is, or a name looked up in the system's group database
/// (`/etc/group`, or whatever NSS serves).
fn group_id(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid.as_raw()),
        Ok(None) => Err(format!("no group named `{group}`")),
        Err(error) => Err(format!("looking up group `{group}`: {error}")),
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Binds the Unix socket, replacing a stale socket file but never a live one, and sets
/// its mode to 0660 and its group to `group`. A missing directory is created (0755),
/// as a runtime directory under `$XDG_RUNTIME_DIR` may not exist yet.
fn bind_unix(
    path: &Path,
    group: Option<&str>,
) -> Result<std::os::unix::net::UnixListener, IngressError> {
    use std::os::unix::{
        fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
        net::UnixStream,
    };
    let failed = |reason: String| IngressError::Listen {
        what: format!("unix socket {}", path.display()),
        reason,
    };
    let gid = group.map(group_id).transpose().map_err(failed)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|error| failed(format!("creating {}: {error}", parent.display())))?;
    }
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        if !metadata.file_type().is_socket() {
            return Err(failed("the path exists and is not a socket".into()));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(failed("another server is listening there".into()));
        }
        std::fs::remove_file(path).map_err(|error| failed(error.to_string()))?;
    }
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(|error| failed(error.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|error| failed(error.to_string()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|error| failed(format!("giving it group {gid}: {error}")))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|error| failed(error.to_string()))?;
    Ok(listener)
}

async fn serve(
    hub: Arc<IngressHub>,
    tcp: Option<std::net::TcpListener>,
    unix: Option<std::os::unix::net::UnixListener>,
    shutdown: watch::Receiver<bool>,
) {
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let alive = Alive { _sender: alive };
    let mut loops = tokio::task::JoinSet::new();
    if let Some(listener) = tcp {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                let accept =
                    accept_tcp(listener, Arc::clone(&hub), shutdown.clone(), alive.clone());
                loops.spawn(accept);
            }
            Err(error) => tracing::error!(%error, "ingress tcp listener unusable"),
        }
    }
    if let Some(listener) = unix {
        match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => {
                let accept =
                    accept_unix(listener, Arc::clone(&hub), shutdown.clone(), alive.clone());
                loops.spawn(accept);
            }
            Err(error) => tracing::error!(%error, "ingress unix listener unusable"),
        }
    }
    drop(alive);
    while loops.join_next().await.is_some() {}
    // The listeners are closed; every connection is saying farewell. Wait for the last
    // one, so that stopping the runtime does not cut a `shutting_down` notice short.
    if tokio::time::timeout(FAREWELLS, all_gone.recv())
        .await
        .is_err()
    {
        tracing::warn!("ingress connections still open after their farewell; dropping them");
    }
}

/// Counts a new connection; `false` when the server is full.
fn admit_connection(hub: &IngressHub) -> bool {
    let max = hub.settings().max_connections;
    let counter = &hub.counters.connections;
    if counter.fetch_add(1, Ordering::AcqRel) >= max {
        counter.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    true
}

async fn accept_tcp(
    listener: tokio::net::TcpListener,
    hub: Arc<IngressHub>,
    mut shutdown: watch::Receiver<bool>,
    alive: Alive,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (reader, writer) = stream.into_split();
                    start_connection(&hub, reader, writer, &shutdown, &alive);
                }
                Err(error) => accept_failed(error).await,
            },
        }
    }
}

async fn accept_unix(
    listener: tokio::net::UnixListener,
    hub: Arc<IngressHub>,
    mut shutdown: watch::Receiver<bool>,
    alive: Alive,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (reader, writer) = stream.into_split();
                    start_connection(&hub, reader, writer, &shutdown, &alive);
                }
                Err(error) => accept_failed(error).await,
            },
        }
    }
}

/// Out of file descriptors or a transient failure: back off a little, keep listening.
async fn accept_failed(error: io::Error) {
    tracing::warn!(%error, "ingress accept failed");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

fn start_connection<R, W>(
    hub: &Arc<IngressHub>,
    reader: R,
    mut writer: W,
    shutdown: &watch::Receiver<bool>,
    alive: &Alive,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let alive = alive.clone();
    if !admit_connection(hub) {
        let max = hub.settings().max_connections;
        tokio::spawn(async move {
            let _alive = alive;
            let mut frame = Vec::new();
            let error = ErrorBody::new(
                ErrorCode::TooManyConnections,
                format!("the server holds its maximum of {max} connections"),
            );
            if encode_frame(&ReplyFrame::error(None, &error), &mut frame).is_ok() {
                let _ = tokio::time::timeout(FAREWELL, writer.write_all(&frame)).await;
            }
            let _ = writer.shutdown().await;
        });
        return;
    }
    let connection = Connection::new(Arc::clone(hub));
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let _alive = alive;
        connection.run(reader, writer, shutdown).await;
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn the_socket_gets_its_directory_mode_and_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not/yet/ingress.sock");
        let own_gid = std::fs::metadata(dir.path()).unwrap().gid();
        let _listener = bind_unix(&path, Some(&own_gid.to_string())).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o660);
        assert_eq!(metadata.gid(), own_gid);
    }

    #[test]
    fn a_group_is_a_number_or_a_name_and_an_unknown_name_is_refused() {
        assert_eq!(group_id("4242"), Ok(4242));
        assert_eq!(group_id("root"), Ok(0));
        let error = group_id("no-such-group-gamesa").unwrap_err();
        assert!(error.contains("no-such-group-gamesa"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingress.sock");
        let error = bind_unix(&path, Some("no-such-group-gamesa")).unwrap_err();
        assert!(error.to_string().contains("no group named"), "{error}");
        assert!(!path.exists(), "nothing is bound when the group is wrong");
    }
}
