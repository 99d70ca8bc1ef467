//! `gamesa send`: a command-line client of the ingress protocol. It connects, says
//! `hello`, sends one request (or subscribes and prints events), and prints the reply in
//! words, or as JSON with `--json`.

use std::{net::TcpStream, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use gamesa_proto::{
    CorrelationId, Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength, Tick,
};
use gamesa_wire::{
    AccountResult, AgentsResult, AllocationsResult, BookResult, CancelRequest, CancelResult,
    Client, ClientError, ComponentName, DecisionRecord, DecisionsResult, Event, ExperiencesResult,
    FillEvent, HealthResult, HelloResult, OrderKind, OrderRequestBody, OrderResult, PricesEvent,
    ProgressAmount, ProgressRequest, ProgressResult, QueryName, QueryRequest, Reply, Request,
    SignalEvent, SignalRequest, SignalResult, TelemetryResult, Topic, TopicRequest, VetoEvent,
    client::Duplex,
};

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    door: ConnectArgs,
    /// Print replies and events as JSON, one per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: SendCommand,
}

/// How to reach the daemon and who to say we are; shared by `send`, `exec` and `top`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Connect over TCP to this address (or set GAMESA_TCP).
    #[arg(long, env = "GAMESA_TCP", conflicts_with = "unix")]
    tcp: Option<String>,
    /// Connect to this Unix socket (or set GAMESA_SOCKET; default: ingress.sock in the
    /// runtime directory a daemon of this user would use, else /run/gamesa/ingress.sock).
    #[arg(long, env = "GAMESA_SOCKET")]
    unix: Option<PathBuf>,
    /// The client name in the server's `[[clients]]` (or set GAMESA_CLIENT).
    #[arg(long, env = "GAMESA_CLIENT")]
    client: Option<String>,
    /// The client's token (or set GAMESA_TOKEN). Without client and token, only
    /// `query health` works.
    #[arg(long, env = "GAMESA_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// An open connection, over either door.
pub enum Door {
    Tcp(Client<TcpStream>),
    Unix(Client<std::os::unix::net::UnixStream>),
}

impl ConnectArgs {
    /// Connects over TCP when an address is given, else to the Unix socket.
    pub fn open(&self) -> anyhow::Result<Door> {
        if let Some(address) = &self.tcp {
            return Client::<TcpStream>::connect_tcp(address.as_str())
                .map(Door::Tcp)
                .with_context(|| format!("connecting to tcp {address}"));
        }
        let path = self.unix.clone().unwrap_or_else(default_socket);
        Client::connect_unix(&path)
            .map(Door::Unix)
            .with_context(|| format!("connecting to the unix socket {}", path.display()))
    }

    /// Refuses a client without a token, or a token without a client, before anything
    /// connects.
    pub fn check_credentials(&self) -> anyhow::Result<()> {
        match (&self.client, &self.token) {
            (Some(_), Some(_)) | (None, None) => Ok(()),
            _ => {
                anyhow::bail!("give both --client and --token (or GAMESA_CLIENT and GAMESA_TOKEN)")
            }
        }
    }

    /// Says `hello` when a client and token are given; neither is fine too.
    pub fn hello<S: Duplex>(
        &self,
        client: &mut Client<S>,
    ) -> anyhow::Result<Result<Option<HelloResult>, ClientError>> {
        self.check_credentials()?;
        match (&self.client, &self.token) {
            (Some(name), Some(token)) => Ok(client.hello(name, token).map(Some)),
            _ => Ok(Ok(None)),
        }
    }
}

#[derive(Debug, Subcommand)]
enum SendCommand {
    /// Inject a signal, taken in at the next tick.
    Signal {
        #[arg(long)]
        kind: String,
        #[arg(long, value_parser = domain_arg())]
        domain: Domain,
        /// 0 to 1.
        #[arg(long)]
        strength: f64,
        #[arg(long)]
        ttl_ticks: Option<u32>,
    },
    /// Place a bid or an ask through the client's credit account.
    Order {
        #[arg(long, value_parser = resource_arg())]
        resource: Resource,
        #[arg(long, value_enum)]
        side: SideArg,
        /// Credits per unit.
        #[arg(long)]
        price: u64,
        #[arg(long)]
        quantity: u64,
        /// Immediate-or-cancel instead of a resting limit order.
        #[arg(long)]
        ioc: bool,
        /// Rest at most this many ticks.
        #[arg(long)]
        expires_after_ticks: Option<u64>,
    },
    /// Cancel one of the client's resting orders.
    Cancel {
        #[arg(long)]
        order: u64,
    },
    /// Report a workload's progress on a component, added to its counter at the next
    /// tick.
    Progress {
        /// The component the work ran on (`cpu`, `gpu0`).
        #[arg(long)]
        component: String,
        /// Units of work done since the previous report, in the workload's own unit
        /// (frames, steps); a number from 0 to 10^12.
        #[arg(long)]
        amount: f64,
        /// Work the job still has to do after this report, in the same unit, when the
        /// workload knows its size: fleet mode moves power to the node that would
        /// finish last.
        #[arg(long)]
        left: Option<f64>,
    },
    /// Read the runtime's state as of the last tick.
    Query {
        #[arg(value_enum)]
        query: QueryArg,
        /// The resource (`book`: required; `allocations`: a filter).
        #[arg(long, value_parser = resource_arg())]
        resource: Option<Resource>,
        /// Whose account (`account`; default: the client's own).
        #[arg(long)]
        agent: Option<String>,
        /// Price levels per side (`book`).
        #[arg(long)]
        levels: Option<u32>,
        /// Only decisions of this tick or later (`decisions`).
        #[arg(long)]
        since_tick: Option<u64>,
        /// Only decisions of this tick's, or an injected request's, correlation id
        /// (`decisions`).
        #[arg(long)]
        correlation: Option<String>,
        /// Only denials and clamps (`decisions`).
        #[arg(long)]
        vetoes_only: bool,
        /// At most this many, the newest (`decisions`; default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// The component (`why`: required).
        #[arg(long)]
        component: Option<String>,
        /// This tick of `--run`, or of the latest run (`why`).
        #[arg(long)]
        tick: Option<u64>,
        /// The journal's run number, with `--tick` (`why`).
        #[arg(long, requires = "tick")]
        run: Option<i64>,
        /// The last tick at or before this time, in ms since the Unix epoch (`why`).
        #[arg(long)]
        at_ms: Option<u64>,
    },
    /// Subscribe to topics and print events until interrupted (or `--count` events).
    Watch {
        #[arg(value_enum, required_unless_present = "plot", conflicts_with = "plot")]
        topics: Vec<TopicArg>,
        #[arg(long)]
        count: Option<u64>,
        /// Instead of printing events: record the limits, draw, temperatures and
        /// power price of the live run (needs `query:telemetry` and `query:book`) and
        /// draw them into this SVG, as `gamesa sim --plot` does.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// How long to record for `--plot`.
        #[arg(long, default_value_t = 60.0, requires = "plot")]
        seconds: f64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SideArg {
    Bid,
    Ask,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum QueryArg {
    Health,
    Telemetry,
    Book,
    Allocations,
    Account,
    Agents,
    Decisions,
    /// The journal's experience store: power buyers' epochs, newest first.
    Experiences,
    /// Why a component had the limit it had (`--component` and one of `--tick`,
    /// `--at-ms`, `--correlation`), read from the daemon's journal.
    Why,
    /// Fleet mode: the leader, the term, this node's lease, and (asked of the leader)
    /// every node's draw, bid and grant.
    Fleet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TopicArg {
    Fills,
    Prices,
    Signals,
    Vetoes,
}

pub fn main(args: SendArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gamesa send: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let request = build_request(&args.what)?;
    match args.door.open()? {
        Door::Tcp(client) => converse(client, &args, request),
        Door::Unix(client) => converse(client, &args, request),
    }
}

/// The socket a daemon started by this user would listen on (its runtime directory, as
/// `ingress.unix_socket` is placed), when it exists; else the service's.
fn default_socket() -> PathBuf {
    super::runtime_file(gamesa_runtime::config::ingress::DEFAULT_SOCKET)
}

/// `--resource`: one of the resources, listed in the help and in the error.
fn resource_arg() -> impl clap::builder::TypedValueParser<Value = Resource> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Resource::ALL.map(Resource::as_str))
        .try_map(|name| name.parse::<Resource>())
}

/// `--domain`: one of the signal domains, listed in the help and in the error.
fn domain_arg() -> impl clap::builder::TypedValueParser<Value = Domain> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Domain::ALL.map(Domain::as_str))
        .try_map(|name| name.parse::<Domain>())
}

fn build_request(what: &SendCommand) -> anyhow::Result<Option<Request>> {
    Ok(Some(match what {
        SendCommand::Signal {
            kind,
            domain,
            strength,
            ttl_ticks,
        } => Request::Signal(SignalRequest {
            kind: SignalKind::new(kind.as_str())?,
            domain: *domain,
            strength: Strength::try_from(*strength)?,
            ttl_ticks: *ttl_ticks,
            hold: false,
        }),
        SendCommand::Order {
            resource,
            side,
            price,
            quantity,
            ioc,
            expires_after_ticks,
        } => Request::Order(OrderRequestBody {
            resource: *resource,
            side: match side {
                SideArg::Bid => Side::Bid,
                SideArg::Ask => Side::Ask,
            },
            price: Price(*price),
            quantity: Quantity(*quantity),
            time_in_force: if *ioc {
                OrderKind::Ioc
            } else {
                OrderKind::Limit
            },
            expires_after_ticks: *expires_after_ticks,
        }),
        SendCommand::Cancel { order } => Request::Cancel(CancelRequest {
            order: OrderId(*order),
        }),
        SendCommand::Progress {
            component,
            amount,
            left,
        } => Request::Progress(ProgressRequest {
            component: ComponentName::new(component.as_str()).map_err(anyhow::Error::msg)?,
            amount: ProgressAmount::try_from(*amount)
                .map_err(|reason| anyhow::anyhow!("--amount: {reason}"))?,
            left: left
                .map(ProgressAmount::try_from)
                .transpose()
                .map_err(|reason| anyhow::anyhow!("--left: {reason}"))?,
        }),
        SendCommand::Query {
            query,
            resource,
            agent,
            levels,
            since_tick,
            correlation,
            vetoes_only,
            limit,
            component,
            tick,
            run,
            at_ms,
        } => Request::Query(QueryRequest {
            query: match query {
                QueryArg::Health => QueryName::Health,
                QueryArg::Telemetry => QueryName::Telemetry,
                QueryArg::Book => QueryName::Book,
                QueryArg::Allocations => QueryName::Allocations,
                QueryArg::Account => QueryName::Account,
                QueryArg::Agents => QueryName::Agents,
                QueryArg::Decisions => QueryName::Decisions,
                QueryArg::Experiences => QueryName::Experiences,
                QueryArg::Why => QueryName::Why,
                QueryArg::Fleet => QueryName::Fleet,
            },
            resource: *resource,
            agent: agent.clone(),
            levels: *levels,
            since_tick: since_tick.map(Tick),
            correlation: correlation
                .as_deref()
                .map(|text| {
                    text.parse::<CorrelationId>()
                        .with_context(|| format!("--correlation {text}"))
                })
                .transpose()?,
            vetoes_only: vetoes_only.then_some(true),
            limit: *limit,
            component: component.clone(),
            tick: tick.map(Tick),
            run: *run,
            at_ms: *at_ms,
        }),
        SendCommand::Watch { .. } => return Ok(None),
    }))
}

fn converse<S: Duplex>(
    mut client: Client<S>,
    args: &SendArgs,
    request: Option<Request>,
) -> anyhow::Result<ExitCode> {
    if let Err(error) = args.door.hello(&mut client)? {
        return report_failure(&error, args.json);
    }
    let Some(request) = request else {
        let SendCommand::Watch {
            topics,
            count,
            plot,
            seconds,
        } = &args.what
        else {
            anyhow::bail!("nothing to send");
        };
        if let Some(out) = plot {
            let ticks = super::live_plot::record_and_plot(&mut client, *seconds, out)?;
            println!("{}: {ticks} ticks", out.display());
            return Ok(ExitCode::SUCCESS);
        }
        return watch(client, topics, *count, args.json);
    };
    let reply = match client.call(&request) {
        Ok(reply) => reply,
        Err(error) => return report_failure(&error, args.json),
    };
    print_reply(&request, reply, args.json)
}

fn report_failure(error: &ClientError, json: bool) -> anyhow::Result<ExitCode> {
    let Some(server) = error.server_error() else {
        anyhow::bail!("{error}");
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": false, "error": { "code": server.code.as_str(), "message": server.message } })
        );
    } else {
        eprintln!("error {}: {}", server.code, server.message);
    }
    Ok(ExitCode::FAILURE)
}

fn print_reply(request: &Request, reply: Reply, json: bool) -> anyhow::Result<ExitCode> {
    let value = match reply.outcome {
        Ok(value) => value,
        Err(error) => {
            return report_failure(
                &ClientError::Decode(gamesa_wire::DecodeError::Server(error)),
                json,
            );
        }
    };
    if json {
        println!("{}", serde_json::to_string(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let reply = Reply {
        id: reply.id,
        outcome: Ok(value),
    };
    match request {
        Request::Signal(signal) => {
            let result: SignalResult = reply.into_result()?;
            println!(
                "signal {} ({}, strength {}) queued for tick {}; correlation {}",
                signal.kind,
                signal.domain,
                signal.strength.as_unit(),
                result.tick,
                result.correlation
            );
        }
        Request::Order(order) => {
            let result: OrderResult = reply.into_result()?;
            println!(
                "{} accepted at tick {}: {} {} {} at {}; filled {}, resting {}; correlation {}",
                result.order,
                result.tick,
                side_word(order.side),
                order.quantity,
                order.resource,
                order.price,
                result.filled,
                result.resting,
                result.correlation
            );
        }
        Request::Cancel(_) => {
            let result: CancelResult = reply.into_result()?;
            println!(
                "{} cancelled at tick {}: {} units no longer resting",
                result.order, result.tick, result.cancelled
            );
        }
        Request::Progress(report) => {
            let result: ProgressResult = reply.into_result()?;
            println!(
                "progress {} of {} queued for tick {} ({} micro-units)",
                report.amount.units(),
                result.component,
                result.tick,
                result.micro
            );
        }
        Request::Query(query) => print_query(query.query, reply)?,
        Request::Hello(_)
        | Request::Subscribe(_)
        | Request::Unsubscribe(_)
        | Request::Attach(_)
        | Request::Intents(_) => {
            println!("ok");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Bid => "bid",
        Side::Ask => "ask",
    }
}

fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn print_query(query: QueryName, reply: Reply) -> anyhow::Result<()> {
    match query {
        QueryName::Health => {
            let health: HealthResult = reply.into_result()?;
            println!(
                "{}: {} protocol {}, tick {}, up {:.1} s, {} connections{}",
                health.status,
                health.server,
                health.protocol_version,
                or_dash(health.tick),
                health.uptime_ms as f64 / 1000.0,
                health.connections,
                if health.isolated.is_empty() {
                    String::new()
                } else {
                    format!(", isolated: {}", health.isolated.join(", "))
                }
            );
        }
        QueryName::Telemetry => {
            let telemetry: TelemetryResult = reply.into_result()?;
            let Some(frame) = telemetry.frame else {
                println!("no tick has run yet");
                return Ok(());
            };
            println!("tick {}", or_dash(telemetry.tick));
            if let Some(cpu) = &frame.cpu {
                println!("  cpu {:.1}%", f64::from(cpu.utilization_permille) / 10.0);
            }
            if let Some(memory) = &frame.memory {
                println!("  memory {}/{} MB", memory.used_mb, memory.total_mb);
            }
            for component in &frame.components {
                println!(
                    "  {:<6} util {:>5.1}%  power {:>7} W  temp {:>6} °C  limit {:>7} W{}",
                    component.id,
                    f64::from(component.utilization_permille) / 10.0,
                    or_dash(
                        component
                            .power_mw
                            .map(|mw| format!("{:.1}", mw as f64 / 1000.0))
                    ),
                    or_dash(
                        component
                            .temp_mc
                            .map(|mc| format!("{:.1}", f64::from(mc) / 1000.0))
                    ),
                    or_dash(
                        component
                            .limit_mw
                            .map(|mw| format!("{:.1}", mw as f64 / 1000.0))
                    ),
                    component
                        .progress_micro
                        .map(|micro| format!("  progress {:.3}", micro as f64 / 1e6))
                        .unwrap_or_default(),
                );
            }
            if let (Some(draw), Some(cap)) = (frame.node.draw_mw, frame.node.cap_mw) {
                println!(
                    "  node draw {:.1} W of {:.1} W",
                    draw as f64 / 1000.0,
                    cap as f64 / 1000.0
                );
            }
        }
        QueryName::Book => {
            let book: BookResult = reply.into_result()?;
            println!(
                "{} at tick {}: last {}, best bid {}, best ask {}",
                book.resource,
                or_dash(book.tick),
                or_dash(book.last_price),
                or_dash(book.best_bid),
                or_dash(book.best_ask)
            );
            for level in book.asks.iter().rev() {
                println!(
                    "  ask {:>12} x {:<10} ({} orders)",
                    level.price, level.quantity, level.orders
                );
            }
            for level in &book.bids {
                println!(
                    "  bid {:>12} x {:<10} ({} orders)",
                    level.price, level.quantity, level.orders
                );
            }
        }
        QueryName::Allocations => {
            let allocations: AllocationsResult = reply.into_result()?;
            println!(
                "{} leases at tick {}",
                allocations.leases.len(),
                or_dash(allocations.tick)
            );
            for lease in &allocations.leases {
                println!(
                    "  {} {:<20} {:>10} to {:<10} from {:<10} at {} (ticks {}..={})",
                    lease.lease,
                    lease.resource,
                    lease.quantity,
                    lease.holder_name,
                    lease.seller_name,
                    lease.price,
                    lease.start,
                    lease.expires_at
                );
            }
        }
        QueryName::Account => {
            let account: AccountResult = reply.into_result()?;
            println!(
                "{} ({}): available {}, escrowed {}, allowance {} per epoch",
                account.name, account.agent, account.available, account.escrowed, account.allowance
            );
        }
        QueryName::Agents => {
            let agents: AgentsResult = reply.into_result()?;
            for agent in &agents.agents {
                println!(
                    "  {:>3} {:<12} {:<7} {:<8} weight {}{}",
                    agent.id.0,
                    agent.name,
                    format!("{:?}", agent.role).to_lowercase(),
                    agent.kind,
                    agent.weight,
                    if agent.isolated { "  ISOLATED" } else { "" }
                );
            }
        }
        QueryName::Decisions => {
            let found: DecisionsResult = reply.into_result()?;
            match (found.oldest_tick, found.newest_tick) {
                (Some(oldest), Some(newest)) => println!(
                    "{} decisions (the log holds ticks {oldest}..={newest})",
                    found.decisions.len()
                ),
                _ => println!("the decision log is empty"),
            }
            for decision in &found.decisions {
                print_decision(decision);
            }
        }
        QueryName::Experiences => {
            let found: ExperiencesResult = reply.into_result()?;
            println!("{} experiences, newest first", found.experiences.len());
            for record in &found.experiences {
                let epoch = &record.experience;
                println!(
                    "run {} tick {}+{}: {} ({}) {:.1} % busy, drew {} mW under {} mW, bought {} mW at {}, work {}",
                    record.run,
                    epoch.first_tick,
                    epoch.ticks,
                    record.agent,
                    epoch.component,
                    f64::from(epoch.utilization_permille) / 10.0,
                    or_dash(epoch.power_mw),
                    or_dash(epoch.limit_mw),
                    epoch.bought_mw,
                    epoch
                        .mean_price
                        .map_or_else(|| "-".to_owned(), |price| format!("{price:.1}")),
                    or_dash(epoch.progress_micro)
                );
            }
        }
        QueryName::Why => {
            let explanation: gamesa_runtime::journal::why::Explanation = reply.into_result()?;
            print!("{explanation}");
        }
        QueryName::Fleet => {
            let fleet: gamesa_fleet_nats::FleetStatus = reply.into_result()?;
            println!(
                "node {}: {}, leader {} (term {}){}",
                fleet.node,
                if fleet.connected {
                    "connected"
                } else {
                    "not connected"
                },
                fleet.leader.as_deref().unwrap_or("unknown"),
                fleet.term,
                if fleet.is_leader { ", this node" } else { "" }
            );
            println!(
                "cap: safe share {} mW + lease {} mW; draw {} mW; orders {} sent, {} unanswered; \
                 grants {} taken, {} refused; {} malformed",
                fleet.safe_share_mw,
                fleet.leased_mw,
                fleet.draw_mw,
                fleet.orders_sent,
                fleet.orders_unanswered,
                fleet.grants_taken,
                fleet.grants_refused,
                fleet.malformed
            );
            for node in &fleet.nodes {
                println!(
                    "  {}: draws {} mW, asks {} mW (top price {}), granted {} mW",
                    node.node, node.draw_mw, node.demand_mw, node.top_price, node.granted_mw
                );
            }
        }
    }
    Ok(())
}

fn print_decision(decision: &DecisionRecord) {
    let what = match (&decision.allocation, &decision.actuation) {
        (Some(allocation), _) => format!(
            "{} {} from {} to {} at {} ({} orders in the book)",
            allocation.resource,
            allocation.quantity,
            allocation.seller,
            allocation.buyer,
            allocation.clearing_price,
            allocation.orders.len()
        ),
        (None, Some(actuation)) => match &actuation.clamped_to {
            Some(clamped) => format!("{} clamped to {clamped}", actuation.requested),
            None => actuation.requested.clone(),
        },
        (None, None) => String::new(),
    };
    println!(
        "  tick {:<8} {:<5} {what}: {}",
        decision.tick, decision.verdict, decision.reason
    );
    if let Some(failed) = &decision.failed_clause {
        println!(
            "      clause `{}` of {} ({}): {}",
            failed.clause, failed.contract, failed.phase, failed.outcome
        );
    }
}

fn watch<S: Duplex>(
    mut client: Client<S>,
    topics: &[TopicArg],
    count: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    for topic in topics {
        let topic = match topic {
            TopicArg::Fills => Topic::Fills,
            TopicArg::Prices => Topic::Prices,
            TopicArg::Signals => Topic::Signals,
            TopicArg::Vetoes => Topic::Vetoes,
        };
        if let Err(error) = client
            .call_as::<gamesa_wire::SubscribeResult>(&Request::Subscribe(TopicRequest { topic }))
        {
            return report_failure(&error, json);
        }
    }
    let mut seen = 0u64;
    while count.is_none_or(|count| seen < count) {
        let event = match client.next_event() {
            Ok(event) => event,
            Err(ClientError::Closed) => break,
            Err(error) => return report_failure(&error, json),
        };
        seen += 1;
        print_event(&event, json)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(event: &Event, json: bool) -> anyhow::Result<()> {
    if json {
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
        return Ok(());
    }
    if event.lost > 0 {
        println!("({} events lost: this client read too slowly)", event.lost);
    }
    let tick = event.tick;
    match event.topic {
        Topic::Fills => {
            let fill: FillEvent = event.data_as()?;
            println!(
                "tick {tick} fill {} {}: {} buys from {} at {}{}",
                fill.quantity,
                fill.resource,
                fill.buyer_name,
                fill.seller_name,
                fill.price,
                fill.correlation
                    .map(|id| format!(" (correlation {id})"))
                    .unwrap_or_default()
            );
        }
        Topic::Prices => {
            let prices: PricesEvent = event.data_as()?;
            let lines: Vec<String> = prices
                .prices
                .iter()
                .filter(|line| {
                    line.last.is_some() || line.best_bid.is_some() || line.best_ask.is_some()
                })
                .map(|line| {
                    format!(
                        "{} last {} bid {} ask {}",
                        line.resource,
                        or_dash(line.last),
                        or_dash(line.best_bid),
                        or_dash(line.best_ask)
                    )
                })
                .collect();
            println!("tick {tick} prices: {}", lines.join(" | "));
        }
        Topic::Signals => {
            let signal: SignalEvent = event.data_as()?;
            println!(
                "tick {tick} signal {} ({}, strength {}) from {}",
                signal.kind,
                signal.domain,
                signal.strength.as_unit(),
                signal.source_name
            );
        }
        Topic::Vetoes => {
            let veto: VetoEvent = event.data_as()?;
            println!(
                "tick {tick} {} {} of {}: {}",
                veto.decision,
                veto.subject,
                veto.principal_name.as_deref().unwrap_or("guardian"),
                veto.reason
            );
        }
        // Sent only to a connection that attached an external agent, which `watch`
        // never does.
        Topic::Turn => println!("tick {tick} turn event"),
    }
    Ok(())
}
