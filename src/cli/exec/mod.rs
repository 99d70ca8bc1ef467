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

/// How long any answer from the daemon may take: a daemon that hangs must not hold up
/// the command (its reply to an order comes after a tick).
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub fn main(args: ExecArgs) -> ExitCode {
    match args.door.open() {
        Ok(Door::Tcp(client)) => run_with(client, &args),
        Ok(Door::Unix(client)) => run_with(client, &args),
        Err(error) => {
            warn_unheld(&error);
            finish(spawn(&args).and_then(wait))
        }
    }
}

fn warn_unheld(error: &anyhow::Error) {
    eprintln!("gamesa exec: no signal held ({error:#}); running the command anyway");
}

/// With a connection: hold the signal (and buy cores) while the command runs.
fn run_with<S: Duplex>(mut client: Client<S>, args: &ExecArgs) -> ExitCode {
    let agent = match client
        .set_read_timeout(Some(ANSWER_WITHIN))
        .map_err(anyhow::Error::from)
        .and_then(|()| hold(&mut client, args))
    {
        Ok(agent) => Some(agent),
        Err(error) => {
            warn_unheld(&error);
            None
        }
    };
    let status = match (args.cores, agent) {
        (Some(cores), Some(Some(agent))) => pinned(&mut client, args, cores, agent),
        (Some(_), _) => {
            eprintln!("gamesa exec: --cores needs a client (--client and --token)");
            spawn(args).and_then(wait)
        }
        (None, _) => spawn(args).and_then(wait),
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

/// Waits for the command, passing SIGTERM and SIGHUP sent to `gamesa exec` on to it (a
/// terminal's Ctrl-C reaches both already), so that whatever ends it, `gamesa exec`
/// outlives it and cleans up.
fn wait(mut child: Child) -> anyhow::Result<ExitStatus> {
    let forwarding = forward_signals(child.id())?;
    let status = child.wait();
    forwarding.close();
    Ok(status?)
}

fn forward_signals(pid: u32) -> anyhow::Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGINT {
                continue; // the terminal sent it to the command too
            }
            if let (Ok(pid), Ok(signal)) = (
                i32::try_from(pid),
                nix::sys::signal::Signal::try_from(signal),
            ) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
    });
    Ok(handle)
}

/// Runs the command in a cgroup whose cpuset follows the client's `cpu_cores` leases,
/// buying what is missing, until the command ends; then removes the cgroup. The command
/// starts through a shell trampoline that waits until it is in the cgroup, so nothing
/// it starts runs outside. When the cgroup cannot be made, it runs unpinned.
fn pinned<S: Duplex>(
    client: &mut Client<S>,
    args: &ExecArgs,
    wanted: u64,
    agent: AgentId,
) -> anyhow::Result<ExitStatus> {
    let name = format!("gamesa-exec-{}", std::process::id());
    let mut scope = match CoreScope::create(&args.cgroup_root, &name) {
        Ok(scope) => scope,
        Err(error) => {
            eprintln!("gamesa exec: running unpinned: {error}");
            return spawn(args).and_then(wait);
        }
    };
    let mut child = match trampoline(args, &scope) {
        Ok(child) => child,
        Err(error) => {
            let _ = scope.remove();
            return Err(error);
        }
    };
    if let Err(error) = scope.admit(child.id()) {
        eprintln!("gamesa exec: {error}; stopping the command before it starts");
        let _ = child.kill();
        let _ = child.wait();
        let _ = scope.remove();
        return Err(error.into());
    }
    let forwarding = forward_signals(child.id())?;
    let status = match follow(client, &mut child, &mut scope, args, wanted, agent) {
        Ok(status) => Ok(status),
        Err(error) => {
            // The daemon went away or refused: the command goes on, unpinned.
            eprintln!("gamesa exec: cores no longer followed ({error:#}); unpinned");
            let _ = scope.follow(&[]);
            child.wait().map_err(Into::into)
        }
    };
    forwarding.close();
    if let Err(error) = scope.remove() {
        eprintln!("gamesa exec: the command's cgroup stays: {error}");
    }
    status
}

/// `sh -c 'wait until $$ is in cgroup.procs; exec "$@"' gamesa-exec CMD ARGS...`: the
/// shell's pid is the command's, so once it is listed the command starts inside.
fn trampoline(args: &ExecArgs, scope: &CoreScope) -> anyhow::Result<Child> {
    const WAIT_THEN_EXEC: &str = r#"procs=$1; shift
i=0
until grep -qx "$$" "$procs" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -gt 500 ] && { echo "gamesa exec: never moved into $procs" >&2; exit 126; }
  sleep 0.01
done
exec "$@""#;
    Command::new("/bin/sh")
        .args(["-c", WAIT_THEN_EXEC, "gamesa-exec"])
        .arg(scope.procs())
        .args(&args.command)
        .spawn()
        .context("cannot start /bin/sh for the command")
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
