//! What a WASM agent's instance may touch: the WASI context and the store's limits.
//!
//! WASI is linked because a guest built for `wasm32-wasip2` imports it (its standard
//! library's clocks, random, stdio and exit), but nothing of the host is behind it: no
//! preopened directories, no environment or arguments, no sockets, no stdin. Both clocks
//! read zero and the random bytes are a fixed sequence seeded from the agent's name, so
//! the guest's answers depend on its observations alone. What it writes to stdout or
//! stderr is kept (the last [`TAIL_BYTES`]) to explain a failure.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use rand::{RngCore as _, SeedableRng as _};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxView, WasiView,
    cli::{IsTerminal, StdoutStream},
    p2::{OutputStream, Pollable, StreamResult},
};

/// How much of the guest's output is kept for failure reports.
pub const TAIL_BYTES: usize = 4096;
/// The random bytes a guest draws cycle through this many, from its seed.
const RANDOM_BYTES: usize = 4096;

/// The store's data: WASI's state and the limits the store enforces.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub output: Tail,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox for the agent `name` whose memory may grow to `memory_bytes`.
    pub fn new(name: &str, memory_bytes: u64) -> Sandbox {
        let output = Tail::default();
        let mut seeded = rand_chacha::ChaCha8Rng::seed_from_u64(seed(name));
        let mut random = vec![0; RANDOM_BYTES];
        seeded.fill_bytes(&mut random);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .wall_clock(Zero)
            .monotonic_clock(Zero)
            .secure_random(wasmtime_wasi::Deterministic::new(random.clone()))
            .insecure_random(wasmtime_wasi::Deterministic::new(random))
            .insecure_random_seed(u128::from(seed(name)))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(memory_bytes).unwrap_or(usize::MAX))
            .instances(64)
            .tables(64)
            .memories(16)
            .table_elements(1 << 20)
            .trap_on_grow_failure(true)
            .build();
        Sandbox {
            wasi,
            table: ResourceTable::new(),
            limits,
            output,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A seed from a name, the same on every machine and release (XXH3's output is fixed
/// by its specification).
fn seed(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// A clock that reads zero, wall and monotonic alike.
struct Zero;

impl HostWallClock for Zero {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Zero {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The last [`TAIL_BYTES`] the guest wrote to stdout and stderr. Writing never fails
/// and never blocks, however much the guest writes.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
}

impl Tail {
    fn push(&self, bytes: &[u8]) {
        let mut kept = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let over = (kept.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        kept.drain(..over);
        kept.extend(bytes);
    }

    /// The last line the guest wrote (a panic's message, typically), if any.
    pub fn last_line(&self) -> Option<String> {
        let kept = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes: Vec<u8> = kept.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
    }
}

impl IsTerminal for Tail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Tail {
    async fn ready(&mut self) {}
}

impl OutputStream for Tail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Tail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_the_last_line() {
        let tail = Tail::default();
        assert_eq!(tail.last_line(), None);
        tail.push(b"first\n");
        tail.push(&vec![b'x'; 3 * TAIL_BYTES]);
        tail.push(b"\npanicked at src/lib.rs:3:5:\nboom\n\n");
        assert_eq!(tail.bytes.lock().unwrap().len(), TAIL_BYTES);
        assert_eq!(tail.last_line().as_deref(), Some("boom"));
    }
}
