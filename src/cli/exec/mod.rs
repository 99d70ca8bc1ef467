//! `gamesa exec -- CMD ARGS...`: runs a command and holds a performance signal on a
//! daemon connection for exactly its lifetime, the way `gamemoderun` does; with
//! `--cores N` it also buys N CPU cores on the market and keeps the command in a cgroup
//! whose cpuset follows the cores its leases hold. With no daemon reachable it warns
//! once and runs the command all the same.

mod scope;

use std::{
    path::PathBuf,
    process::{Child, Command, ExitCode, ExitStatus},
    time::Duration,
};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use gamesa_proto::{AgentId, Domain, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_wire::{
    AllocationsResult, BookResult, Client, OrderKind, OrderRequestBody, OrderResult, QueryName,
    QueryRequest, Request, SignalRequest, SignalResult, client::Duplex,
};

use self::scope::CoreScope;
use super::send::{ConnectArgs, Door};

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    door: ConnectArgs,
    /// What the command is: the kind of the signal held while it runs.
    #[arg(long, value_enum, default_value_t = Profile::Game)]
    profile: Profile,
    /// The signal's strength, 0 to 1.
    #[arg(long, default_value_t = 0.9)]
    strength: f64,
    /// Buy this many CPU cores for the command's life and pin it to them: the command
    /// runs in a cgroup of its own whose cpuset follows the cores the leases hold
    /// (needs `order:cpu_cores` and credits).
    #[arg(long, value_name = "N")]
    cores: Option<u64>,
    /// The highest price bid per core and epoch (credits). The bid is at the best ask
    /// or the last trade when the book shows one, else at this price; the default
    /// clears the cpu agent's reserve at full load (`core_price_busy`).
    #[arg(long, default_value_t = 20_000, requires = "cores")]
    max_price: u64,
    /// The cgroup v2 directory the command's cgroup is made in (it must delegate the
    /// cpuset controller to its children).
    #[arg(long, default_value = "/sys/fs/cgroup", requires = "cores")]
    cgroup_root: PathBuf,
    /// The command and its arguments (after `--`; `%command%` in a Steam launch option).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// What a command is, and the performance signal that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// A game: `game_started`.
    Game,
    /// An offline render: `render_started`.
    Render,
    /// A training job: `training_started`.
    Train,
}

impl Profile {
    fn kind(self) -> &'static str {
        match self {
            Profile::Game => "game_started",
            Profile::Render => "render_started",
            Profile::Train => "training_started",
        }
    }
}

/// How often a command with `--cores` looks at its leases: about a tick.
const POLL: Duration = Duration::from_millis(100);

pub fn main(args: ExecArgs) -> ExitCode {
    match args.door.open() {
        Ok(Door::Tcp(client)) => run_with(client, &args),
        Ok(Door::Unix(client)) => run_with(client, &args),
        Err(error) => {
            warn_unheld(&error);
            finish(spawn(&args).and_then(|mut child| Ok(child.wait()?)))
        }
    }
}

fn warn_unheld(error: &anyhow::Error) {
    eprintln!("gamesa exec: no signal held ({error:#}); running the command anyway");
}

/// With a connection: hold the signal (and buy cores) while the command runs.
fn run_with<S: Duplex>(mut client: Client<S>, args: &ExecArgs) -> ExitCode {
    let agent = match hold(&mut client, args) {
        Ok(agent) => Some(agent),
        Err(error) => {
            warn_unheld(&error);
            None
        }
    };
    let mut child = match spawn(args) {
        Ok(child) => child,
        Err(error) => return finish(Err(error)),
    };
    let status = match (args.cores, agent) {
        (Some(cores), Some(Some(agent))) => {
            let status = pinned(&mut client, &mut child, args, cores, agent);
            status.or_else(|error| {
                eprintln!("gamesa exec: cores not followed ({error:#})");
                Ok(child.wait()?)
            })
        }
        (Some(_), _) => {
            eprintln!("gamesa exec: --cores needs a client (--client and --token)");
            child.wait().map_err(Into::into)
        }
        (None, _) => child.wait().map_err(Into::into),
    };
    // The connection closes here, after the command: the daemon releases the signal.
    drop(client);
    finish(status)
}

/// Says hello and holds the signal; the client's participant id when it said hello.
fn hold<S: Duplex>(client: &mut Client<S>, args: &ExecArgs) -> anyhow::Result<Option<AgentId>> {
    let hello = args.door.hello(client)??;
    client
        .call(&Request::Signal(SignalRequest {
            kind: SignalKind::new(args.profile.kind())?,
            domain: Domain::Performance,
            strength: Strength::try_from(args.strength)?,
            ttl_ticks: None,
            hold: true,
        }))?
        .into_result::<SignalResult>()?;
    Ok(hello.map(|hello| hello.agent))
}

fn spawn(args: &ExecArgs) -> anyhow::Result<Child> {
    let (program, rest) = args.command.split_first().context("no command to run")?;
    Command::new(program)
        .args(rest)
        .spawn()
        .map_err(|error| anyhow::Error::new(error).context(format!("cannot run `{program}`")))
}

/// Runs the command in a cgroup whose cpuset follows the client's `cpu_cores` leases,
/// buying what is missing at the best ask each tick, until the command ends.
fn pinned<S: Duplex>(
    client: &mut Client<S>,
    child: &mut Child,
    args: &ExecArgs,
    wanted: u64,
    agent: AgentId,
) -> anyhow::Result<ExitStatus> {
    let mut scope = CoreScope::create(
        &args.cgroup_root,
        &format!("gamesa-exec-{}", child.id()),
        child.id(),
    )?;
    let followed = follow(client, child, &mut scope, args, wanted, agent);
    if let Err(error) = scope.remove() {
        eprintln!("gamesa exec: the command's cgroup stays: {error}");
    }
    followed
}

fn follow<S: Duplex>(
    client: &mut Client<S>,
    child: &mut Child,
    scope: &mut CoreScope,
    args: &ExecArgs,
    wanted: u64,
    agent: AgentId,
) -> anyhow::Result<ExitStatus> {
    // The last tick a bid of ours may still rest: no second bid before then.
    let mut bid_rests_until = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let leases: AllocationsResult = client.call_as(&Request::Query(QueryRequest {
            resource: Some(Resource::CpuCores),
            ..QueryRequest::new(QueryName::Allocations)
        }))?;
        let now = leases.tick.map_or(0, |tick| tick.0);
        let mine: Vec<_> = leases
            .leases
            .iter()
            .filter(|lease| lease.holder == agent)
            .collect();
        let cores: Vec<u32> = mine.iter().flat_map(|lease| lease.cores.clone()).collect();
        if let Some(list) = scope.follow(&cores)? {
            eprintln!(
                "gamesa exec: {} cpuset.cpus = {list:?}",
                scope.dir().display()
            );
        }
        // Renew before the leases run out: what will still be held next tick.
        let lasting: u64 = mine
            .iter()
            .filter(|lease| lease.expires_at.0 > now + 1)
            .map(|lease| lease.quantity.0)
            .sum();
        if lasting < wanted && now > bid_rests_until {
            bid_rests_until = buy(client, wanted - lasting, args.max_price)?;
        } else {
            std::thread::sleep(POLL);
        }
    }
}

/// How many ticks a bid for cores rests: sellers quote afresh each tick, so a bid
/// must wait in the book for their next asks.
const BID_TICKS: u64 = 3;

/// A bid for `quantity` cores resting [`BID_TICKS`] ticks, at the best ask or the last
/// trade price, else at `max_price` (sellers quote afresh each tick, so the book
/// between ticks is often empty). A fill is at the price of the order that rested
/// first, which may be this bid's. Returns the last tick the bid may rest.
fn buy<S: Duplex>(client: &mut Client<S>, quantity: u64, max_price: u64) -> anyhow::Result<u64> {
    let book: BookResult = client.call_as(&Request::Query(QueryRequest {
        resource: Some(Resource::CpuCores),
        levels: Some(1),
        ..QueryRequest::new(QueryName::Book)
    }))?;
    let price = book
        .best_ask
        .or(book.last_price)
        .map_or(max_price, |price| price.0.min(max_price));
    let placed: OrderResult = client
        .call(&Request::Order(OrderRequestBody {
            resource: Resource::CpuCores,
            side: Side::Bid,
            price: Price(price),
            quantity: Quantity(quantity),
            time_in_force: OrderKind::Limit,
            expires_after_ticks: Some(BID_TICKS),
        }))?
        .into_result()?;
    Ok(placed.tick.0 + BID_TICKS)
}

/// The command's exit code, or what a shell reports when it could not run.
fn finish(status: anyhow::Result<ExitStatus>) -> ExitCode {
    match status {
        Ok(status) => exit_code(status),
        Err(error) => {
            eprintln!("gamesa exec: {error:#}");
            // As a shell says: 127 not found, 126 found but not runnable.
            let not_found = error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound);
            ExitCode::from(if not_found { 127 } else { 126 })
        }
    }
}

/// The child's exit code, or 128 + the signal that killed it, as a shell reports it.
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(255)),
        (None, None) => ExitCode::FAILURE,
    }
}
