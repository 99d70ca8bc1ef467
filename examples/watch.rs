//! Subscribes to topics and prints every event, as JSON lines.
//!
//! ```text
//! GAMESA_TCP=127.0.0.1:7411 GAMESA_CLIENT=game GAMESA_TOKEN=... \
//!     cargo run --example watch -- fills prices vetoes
//! ```

use anyhow::Context as _;
use gamesa_wire::{Client, Request, SubscribeResult, Topic, TopicRequest, client::Duplex};

fn main() -> anyhow::Result<()> {
    let mut topics = Vec::new();
    for name in std::env::args().skip(1) {
        topics.push(match name.as_str() {
            "fills" => Topic::Fills,
            "prices" => Topic::Prices,
            "signals" => Topic::Signals,
            "vetoes" => Topic::Vetoes,
            other => anyhow::bail!("unknown topic `{other}` (fills, prices, signals, vetoes)"),
        });
    }
    if topics.is_empty() {
        topics.push(Topic::Fills);
    }
    match std::env::var("GAMESA_TCP") {
        Ok(address) => watch(Client::connect_tcp(address.as_str())?, &topics),
        Err(_) => {
            let path = std::env::var("GAMESA_SOCKET")
                .unwrap_or_else(|_| "/run/gamesa/ingress.sock".into());
            watch(
                Client::connect_unix(&path).with_context(|| path.clone())?,
                &topics,
            )
        }
    }
}

fn watch<S: Duplex>(mut client: Client<S>, topics: &[Topic]) -> anyhow::Result<()> {
    let name = std::env::var("GAMESA_CLIENT").context("set GAMESA_CLIENT")?;
    let token = std::env::var("GAMESA_TOKEN").context("set GAMESA_TOKEN")?;
    client.hello(&name, &token)?;
    for topic in topics {
        let subscribed: SubscribeResult =
            client.call_as(&Request::Subscribe(TopicRequest { topic: *topic }))?;
        eprintln!(
            "subscribed to {} (queue {})",
            topic.as_str(),
            subscribed.queue
        );
    }
    loop {
        let event = client.next_event()?;
        println!(
            "{}",
            serde_json::json!({
                "topic": event.topic.as_str(),
                "seq": event.seq,
                "tick": event.tick.0,
                "lost": event.lost,
                "data": serde_json::to_value(&event.data)?,
            })
        );
    }
}
