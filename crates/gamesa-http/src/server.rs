//! The listener and its connections: hyper's HTTP/1.1 server, one task per connection,
//! on a tokio runtime of the server's own thread.
//!
//! # Invariants
//! - a client must send each request's head within `header_timeout_s` (hyper's
//!   header-read timeout) and its body within as long again, or the connection is
//!   closed: a slow client holds one connection slot for a bounded time
//! - at most `max_connections` connections are served; more wait in the backlog
//! - a stopping server stops accepting, lets each connection finish the request it is
//!   in (at most [`DRAIN`]), and joins its thread

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use axum::{Router, extract::Request};
use gamesa_config::HttpConfig;
use gamesa_ingress::IngressHub;
use gamesa_telemetry::PrometheusReader;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
    task::JoinSet,
};
use tower::ServiceExt as _;

use super::{
    auth::{ConnectionState, Sessions},
    routes::{App, router},
};

/// How long a stopping server lets connections finish their requests.
const DRAIN: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on http {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("cannot start the http thread: {0}")]
    Thread(String),
}

/// A running HTTP server; dropping it stops it.
#[derive(Debug)]
pub struct HttpServer {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `settings.address` and serves `hub` (and `metrics` at `/metrics`).
    /// `tick_hz` sets how stale the last tick may be for `/health/ready`: five ticks,
    /// and never under a second.
    pub fn start(
        settings: &HttpConfig,
        tick_hz: u32,
        hub: Arc<IngressHub>,
        metrics: Option<PrometheusReader>,
    ) -> Result<HttpServer, HttpError> {
        let listen_error = |error: std::io::Error| HttpError::Listen {
            address: settings.address,
            reason: error.to_string(),
        };
        let listener = std::net::TcpListener::bind(settings.address).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        let header_timeout = Duration::from_secs_f64(settings.header_timeout_s);
        let app = Arc::new(App {
            hub,
            metrics,
            sessions: Sessions::default(),
            max_body_bytes: settings.max_body_bytes as usize,
            body_timeout: header_timeout,
            stale_after: Duration::from_secs_f64((5.0 / f64::from(tick_hz.max(1))).max(1.0)),
            next_id: AtomicU64::new(1),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads.max(1) as usize)
            .thread_name("gamesa-http")
            .enable_all()
            .build()
            .map_err(|error| HttpError::Thread(error.to_string()))?;
        let (shutdown, watcher) = watch::channel(false);
        let limits = Limits {
            header_timeout,
            max_connections: settings.max_connections.max(1) as usize,
        };
        let thread = std::thread::Builder::new()
            .name("gamesa-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, router(app), limits, watcher).await,
                        Err(error) => tracing::error!(%error, "the http listener failed"),
                    }
                });
                runtime.shutdown_timeout(DRAIN);
            })
            .map_err(|error| HttpError::Thread(error.to_string()))?;
        tracing::info!(%address, "http API listening");
        Ok(HttpServer {
            address,
            shutdown,
            thread: Some(thread),
        })
    }

    /// Where it listens (the port chosen when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the http thread panicked");
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    max_connections: usize,
}

async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            _ = shutdown.changed() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnectionState::default());
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(Arc::clone(&state));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, connection).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
