//! A workload that bids for GPU memory and power budget through its own credit
//! account, then watches its fills.
//!
//! ```text
//! GAMESA_TCP=127.0.0.1:7411 GAMESA_CLIENT=workload GAMESA_TOKEN=... \
//!     cargo run --example workload_bidder -- 2048 500
//! ```
//! The arguments are the megabytes of GPU memory and the price per megabyte; it also
//! bids for 10 W of power budget. The client needs `order:gpu_memory_mb`,
//! `order:power_budget_mw` and `subscribe:fills`.

use anyhow::Context as _;
use gamesa_proto::{Price, Quantity, Resource, Side};
use gamesa_wire::{
    AccountResult, Client, FillEvent, OrderKind, OrderRequestBody, OrderResult, QueryName, Request,
    SubscribeResult, Topic, TopicRequest, client::Duplex,
};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let memory_mb: u64 = args.next().unwrap_or_else(|| "2048".into()).parse()?;
    let price: u64 = args.next().unwrap_or_else(|| "500".into()).parse()?;
    match std::env::var("GAMESA_TCP") {
        Ok(address) => bid(Client::connect_tcp(address.as_str())?, memory_mb, price),
        Err(_) => {
            let path = std::env::var("GAMESA_SOCKET")
                .unwrap_or_else(|_| "/run/gamesa/ingress.sock".into());
            bid(
                Client::connect_unix(&path).with_context(|| path.clone())?,
                memory_mb,
                price,
            )
        }
    }
}

fn order(resource: Resource, quantity: u64, price: u64) -> Request {
    Request::Order(OrderRequestBody {
        resource,
        side: Side::Bid,
        price: Price(price),
        quantity: Quantity(quantity),
        time_in_force: OrderKind::Limit,
        expires_after_ticks: Some(20),
    })
}

fn bid<S: Duplex>(mut client: Client<S>, memory_mb: u64, price: u64) -> anyhow::Result<()> {
    let name = std::env::var("GAMESA_CLIENT").context("set GAMESA_CLIENT")?;
    let token = std::env::var("GAMESA_TOKEN").context("set GAMESA_TOKEN")?;
    let hello = client.hello(&name, &token)?;
    let account: AccountResult = client.call_as(&Request::query(QueryName::Account))?;
    println!(
        "{} ({}) has {} credits available",
        hello.client, hello.agent, account.available
    );
    let _: SubscribeResult = client.call_as(&Request::Subscribe(TopicRequest {
        topic: Topic::Fills,
    }))?;
    // Both orders go out at once; each reply arrives after the tick that takes it in.
    let memory = client.send(&order(Resource::GpuMemoryMb, memory_mb, price))?;
    let power = client.send(&order(Resource::PowerBudgetMw, 10_000, 1))?;
    let mut mine = Vec::new();
    for id in [memory, power] {
        match client.wait_reply(id)?.into_result::<OrderResult>() {
            Ok(placed) => {
                println!(
                    "{} placed at tick {}: filled {}, resting {}",
                    placed.order, placed.tick, placed.filled, placed.resting
                );
                mine.push(placed.order);
            }
            Err(error) => println!("order refused: {error}"),
        }
    }
    println!("watching fills (Ctrl-C to stop)");
    loop {
        let event = client.next_event()?;
        let fill: FillEvent = event.data_as()?;
        if event.lost > 0 {
            println!("({} events lost)", event.lost);
        }
        let marker = if mine.contains(&fill.buy_order) {
            "*"
        } else {
            " "
        };
        println!(
            "{marker} tick {} {} {} bought by {} from {} at {}",
            event.tick, fill.quantity, fill.resource, fill.buyer_name, fill.seller_name, fill.price
        );
    }
}
