//! The daemon's process signals: SIGINT and SIGTERM stop it, SIGHUP asks it to reload
//! its config (the hang-up of an SSH session included: it never ends the daemon with
//! its limits in place), and an optional deadline stops it too.

use std::time::Duration;

use tokio::time::Instant;

/// Why the daemon's loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Stop,
    Reload,
}

/// The signal streams, registered once for the daemon's life so that a signal that
/// arrives between two waits is not lost.
#[derive(Debug)]
pub struct Signals {
    /// SIGINT, SIGTERM, SIGHUP.
    #[cfg(unix)]
    streams: Option<[tokio::signal::unix::Signal; 3]>,
    deadline: Option<Instant>,
}

impl Signals {
    /// Listens for SIGINT, SIGTERM and SIGHUP, and stops by itself after `duration_s`
    /// when given.
    pub fn new(duration_s: Option<f64>) -> Signals {
        #[cfg(unix)]
        let streams = {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(interrupt), Ok(terminate), Ok(hangup)) => Some([interrupt, terminate, hangup]),
                (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM or SIGHUP; only Ctrl-C stops gamesa");
                    None
                }
            }
        };
        Signals {
            #[cfg(unix)]
            streams,
            deadline: duration_s
                .map(|seconds| Instant::now() + Duration::from_secs_f64(seconds.max(0.0))),
        }
    }

    /// Waits for the next reason to stop the tick loop.
    pub async fn next(&mut self) -> Wake {
        let deadline = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        if let Some([interrupt, terminate, hangup]) = self.streams.as_mut() {
            return tokio::select! {
                _ = interrupt.recv() => Wake::Stop,
                _ = terminate.recv() => Wake::Stop,
                _ = hangup.recv() => Wake::Reload,
                () = deadline => Wake::Stop,
            };
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Wake::Stop,
            () = deadline => Wake::Stop,
        }
    }
}
