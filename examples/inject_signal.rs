//! Injects one signal into a running GAMESA over ingress and prints where it went.
//!
//! ```text
//! GAMESA_TCP=127.0.0.1:7411 GAMESA_CLIENT=game GAMESA_TOKEN=... \
//!     cargo run --example inject_signal -- game_started performance 0.9
//! ```
//! Without `GAMESA_TCP` it connects to `GAMESA_SOCKET` (default
//! `/run/gamesa/ingress.sock`).

use anyhow::Context as _;
use gamesa_proto::{Domain, SignalKind, Strength};
use gamesa_wire::{Client, Request, SignalRequest, SignalResult, client::Duplex};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "game_started".into());
    let domain: Domain = args
        .next()
        .unwrap_or_else(|| "performance".into())
        .parse()?;
    let strength: f64 = args.next().unwrap_or_else(|| "0.9".into()).parse()?;
    let request = Request::Signal(SignalRequest {
        kind: SignalKind::new(kind)?,
        domain,
        strength: Strength::try_from(strength)?,
        ttl_ticks: Some(50),
        hold: false,
    });
    match std::env::var("GAMESA_TCP") {
        Ok(address) => send(Client::connect_tcp(address.as_str())?, &request),
        Err(_) => {
            let path = std::env::var("GAMESA_SOCKET")
                .unwrap_or_else(|_| "/run/gamesa/ingress.sock".into());
            send(
                Client::connect_unix(&path).with_context(|| path.clone())?,
                &request,
            )
        }
    }
}

fn send<S: Duplex>(mut client: Client<S>, request: &Request) -> anyhow::Result<()> {
    let name = std::env::var("GAMESA_CLIENT").context("set GAMESA_CLIENT")?;
    let token = std::env::var("GAMESA_TOKEN").context("set GAMESA_TOKEN")?;
    let hello = client.hello(&name, &token)?;
    println!("connected as {} ({})", hello.client, hello.agent);
    let queued: SignalResult = client.call_as(request)?;
    println!(
        "queued for tick {}; follow it with correlation id {}",
        queued.tick, queued.correlation
    );
    Ok(())
}
