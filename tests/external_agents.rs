//! External agents (`kind = "external"`) on the twin, answered by processes over the
//! ingress protocol: the example strategy (`FixedCores`) attached over TCP sells its
//! cores, every answer is journaled and a replay takes them again; a process that
//! disconnects, stalls, sends garbage or sends invalid intents is restarted three
//! times and isolated while the others trade on and every client order is answered;
//! the Python example (`examples/python/external_agent.py`) sells its cores too; and a
//! reload adds an external agent without restarting the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;
mod support;

use std::{net::TcpStream, time::Duration};

use gamesa_agent::{AgentSpec, Intent, SignalIntent};
use gamesa_proto::{AgentId, Domain, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_runtime::{
    Config, TickOutput,
    journal::{JournalReader, JournalWriter, RunInfo, WriterSettings, replay},
};
use gamesa_wire::{
    AttachRequest, AttachResult, Client, ErrorCode, IntentsRequest, OrderKind, OrderRequestBody,
    Request, Topic, TurnEvent,
};
use ingress_support::{Daemon, WORKLOAD, ingress_config, registry};

const BOT: (&str, &str) = ("cores-bot", "cores-bot-token-01");
const AGENT: &str = "cores0";

/// The bundled twin with ingress, a client `cores-bot` the external agent `cores0`
/// answers through, and the `workload` client allowed to buy cores.
fn external_config(dir: &std::path::Path, deadline_ms: u64) -> Config {
    config_with(dir, deadline_ms, true)
}

/// [`external_config`], with or without the external agent.
fn config_with(dir: &std::path::Path, deadline_ms: u64, with_agent: bool) -> Config {
    ingress_config(dir, "gpu_bottleneck.toml", |table| {
        let clients = table["clients"].as_array_mut().unwrap();
        for client in clients.iter_mut() {
            if client["name"].as_str() == Some(WORKLOAD.0) {
                client["effects"]
                    .as_array_mut()
                    .unwrap()
                    .push("order:cpu_cores".into());
            }
        }
        clients.push(toml::Value::Table(
            format!("name = \"{}\"\ntoken = \"{}\"\nweight = 0", BOT.0, BOT.1)
                .parse()
                .unwrap(),
        ));
        table["runtime"]["agent_deadline_ms"] = toml::Value::Integer(deadline_ms as i64);
        if !with_agent {
            return;
        }
        table["agents"]
            .as_array_mut()
            .unwrap()
            .push(toml::Value::Table(
                format!(
                    "kind = \"external\"\nid = \"{AGENT}\"\nclient = \"{}\"\n\
                 effects = [\"order:cpu_cores\"]",
                    BOT.0
                )
                .parse()
                .unwrap(),
            ));
    })
}

fn external_id(config: &Config) -> AgentId {
    AgentId(config.agents.len() as u32)
}

/// What the process on the far side does with its turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Runs `FixedCores` and answers every turn.
    Strategy,
    /// Answers three turns, then closes its connection.
    Disconnect,
    /// Reads its turns and never answers.
    Stall,
    /// Answers with an `intents` request whose `intents` is not a list.
    Garbage,
    /// Answers with an order that expired before its tick.
    Invalid,
}

/// Says hello as the agent's client and attaches it, then runs `behaviour` on a thread
/// of its own until the connection closes. Returns the thread and the agent's id.
fn attach(daemon: &Daemon, behaviour: Behaviour) -> (std::thread::JoinHandle<usize>, AgentId) {
    let mut client = daemon.tcp_as(BOT);
    let attached: AttachResult = client
        .call_as(&Request::Attach(AttachRequest {
            agent: AGENT.into(),
        }))
        .unwrap();
    let thread = std::thread::spawn(move || answer_turns(client, behaviour));
    (thread, attached.id)
}

/// Returns how many turns it answered.
fn answer_turns(mut client: Client<TcpStream>, behaviour: Behaviour) -> usize {
    let spec = AgentSpec {
        id: AgentId(0),
        name: AGENT.into(),
        kind: gamesa_example_fixed_cores::KIND.into(),
        weight: 1,
        params: toml::Table::new(),
        module: None,
    };
    let mut strategy = gamesa_example_fixed_cores::build(&spec).unwrap();
    let mut answered = 0;
    while let Ok(event) = client.next_event() {
        if event.topic != Topic::Turn {
            continue;
        }
        let turn: TurnEvent = event.data_as().unwrap();
        let tick = turn.observation.tick;
        let intents = match behaviour {
            Behaviour::Disconnect if answered == 3 => return answered,
            Behaviour::Stall => continue,
            Behaviour::Garbage => {
                let mut frame = Vec::new();
                gamesa_wire::encode_frame(
                    &serde_json::json!({
                        "id": 1_000 + answered, "type": "intents", "tick": tick.0,
                        "intents": "cores, please",
                    }),
                    &mut frame,
                )
                .unwrap();
                client.send_raw(&frame).unwrap();
                answered += 1;
                continue;
            }
            // A signal that would live no tick at all.
            Behaviour::Invalid => vec![Intent::Raise(SignalIntent {
                kind: SignalKind::new("cores_wanted").unwrap(),
                domain: Domain::Performance,
                strength: Strength::MAX,
                ttl_ticks: 0,
            })],
            Behaviour::Strategy | Behaviour::Disconnect => {
                strategy.observe(&turn.observation.view()).unwrap()
            }
        };
        let reply = client
            .call(&Request::Intents(IntentsRequest {
                agent: None,
                tick,
                intents,
            }))
            .unwrap();
        if behaviour == Behaviour::Invalid {
            assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::InvalidRequest);
        } else {
            reply.outcome.unwrap();
        }
        answered += 1;
    }
    answered
}

/// `ticks` ticks, with one bid for a core, resting through its tick, by the `workload` client before each;
/// returns the outputs and checks that every order was answered.
async fn ticks_with_a_buyer(daemon: &mut Daemon, ticks: usize) -> Vec<TickOutput> {
    let mut buyer = daemon.tcp_as(WORKLOAD);
    let mut sent = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..ticks {
        sent.push(
            buyer
                .send(&Request::Order(OrderRequestBody {
                    resource: Resource::CpuCores,
                    side: Side::Bid,
                    price: Price(1_000),
                    quantity: Quantity(1),
                    time_in_force: OrderKind::Limit,
                    expires_after_ticks: Some(1),
                }))
                .unwrap(),
        );
        ingress_support::barrier(&mut buyer);
        reports.push(daemon.runtime.tick().await.unwrap());
    }
    buyer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for id in sent {
        let reply = buyer.wait_reply(id).unwrap();
        assert!(reply.outcome.is_ok(), "order {id}: {reply:?}");
    }
    reports
}

fn cores_sold_by(reports: &[TickOutput], seller: AgentId) -> u64 {
    reports
        .iter()
        .flat_map(|report| &report.fills)
        .filter(|(fill, verdict)| {
            fill.seller == seller
                && fill.resource == Resource::CpuCores
                && matches!(verdict, gamesa_guardian::Verdict::Allow { .. })
        })
        .map(|(fill, _)| fill.quantity.0)
        .sum()
}

#[actix::test]
async fn an_attached_process_sells_its_cores_and_a_replay_takes_its_journaled_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = external_config(dir.path(), 10_000);
    let external = external_id(&config);
    let mut daemon = Daemon::start(&config);
    let path = dir.path().join("journal.sqlite");
    daemon.runtime.attach_journal(
        JournalWriter::open(
            &path,
            WriterSettings::from(&config.journal),
            &RunInfo::of(&config, &registry(), 0).unwrap(),
        )
        .unwrap(),
    );
    // Before its process attaches, the agent sits its turns out.
    let before = daemon.ticks(2).await;
    assert!(before.iter().all(|report| report.failures.is_empty()));
    assert!(
        before
            .iter()
            .all(|report| report.answered == vec![(external, Ok(Vec::new()))])
    );
    let (process, attached) = attach(&daemon, Behaviour::Strategy);
    assert_eq!(attached, external);
    let reports = ticks_with_a_buyer(&mut daemon, 30).await;
    assert!(reports.iter().all(|report| report.failures.is_empty()));
    assert!(
        reports
            .iter()
            .all(|report| report.answered.len() == 1 && report.answered[0].1.is_ok())
    );
    let sold = cores_sold_by(&reports, external);
    // Two cores, each leased for an epoch (10 ticks) at a time.
    assert!(sold >= 4, "the external agent sold {sold} cores");

    let Daemon {
        runtime, ingress, ..
    } = daemon;
    let shutdown = runtime.shutdown().await;
    drop(ingress);
    assert_eq!(process.join().unwrap(), 30);
    assert_eq!(shutdown.journal.unwrap().committed, 32);

    let reader = JournalReader::open(&path).unwrap();
    let report = replay::replay(&reader, &registry(), None, replay::TickRange::default()).unwrap();
    assert_eq!(report.divergence, None, "{report}");
    assert_eq!(report.compared, 32);
}

#[actix::test]
async fn a_process_that_disconnects_stalls_or_sends_garbage_is_isolated_and_nothing_is_lost() {
    for behaviour in [
        Behaviour::Disconnect,
        Behaviour::Stall,
        Behaviour::Garbage,
        Behaviour::Invalid,
    ] {
        let dir = tempfile::tempdir().unwrap();
        // Short, for the stall; the built-in agents answer in microseconds.
        let config = external_config(dir.path(), 300);
        let external = external_id(&config);
        let mut daemon = Daemon::start(&config);
        let (process, attached) = attach(&daemon, behaviour);
        assert_eq!(attached, external);
        let reports = ticks_with_a_buyer(&mut daemon, 12).await;
        assert_eq!(
            support::decisions_on(&reports, external),
            support::restarted_three_times_then_isolated(),
            "{behaviour:?}"
        );
        assert!(
            reports
                .iter()
                .flat_map(|report| &report.failures)
                .all(|failure| failure.agent == external),
            "{behaviour:?}: another agent failed"
        );
        let fills_after = support::fills_after_isolation(&reports);
        assert!(
            fills_after > 0,
            "{behaviour:?}: nobody traded after the isolation"
        );
        let Daemon {
            runtime, ingress, ..
        } = daemon;
        runtime.shutdown().await;
        drop(ingress);
        process.join().unwrap();
    }
}

#[actix::test]
async fn the_python_example_sells_its_cores_as_an_external_agent() {
    use std::io::BufRead;
    let has_msgpack = std::process::Command::new("python3")
        .args(["-c", "import msgpack"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        has_msgpack,
        "this test needs python3 with the msgpack package: `apt-get install python3-msgpack` \
         (scripts/install-test-deps.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = external_config(dir.path(), 10_000);
    let external = external_id(&config);
    let mut daemon = Daemon::start(&config);
    let mut python = std::process::Command::new("python3")
        .arg(ingress_support::repo_root().join("examples/python/external_agent.py"))
        .arg("--unix")
        .arg(daemon.ingress.unix_socket().unwrap())
        .args(["--client", BOT.0, "--token", BOT.1, "--agent", AGENT])
        .args(["--turns", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(python.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("attached cores0"), "{line}");
    let reports = ticks_with_a_buyer(&mut daemon, 20).await;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(python.wait().unwrap().success(), "{rest}");
    assert!(rest.ends_with("done\n"), "{rest}");
    assert!(reports.iter().all(|report| report.failures.is_empty()));
    let sold = cores_sold_by(&reports, external);
    assert!(sold >= 2, "the Python agent sold {sold} cores\n{rest}");
}

#[actix::test]
async fn a_reload_adds_an_external_agent_without_restarting_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&config_with(dir.path(), 10_000, false));
    daemon.ticks(3).await;
    let next = external_config(dir.path(), 10_000);
    let report = daemon
        .runtime
        .reload(next, &registry(), &mut |name| {
            (name == "GAMESA_TEST_WORKLOAD_TOKEN").then(|| WORKLOAD.1.to_owned())
        })
        .await
        .unwrap();
    assert!(
        report.changed.iter().any(|change| change.contains(AGENT)),
        "{report:?}"
    );
    // Numbered after every participant the run has had.
    let (process, external) = attach(&daemon, Behaviour::Strategy);
    let reports = ticks_with_a_buyer(&mut daemon, 15).await;
    assert!(reports.iter().all(|report| report.failures.is_empty()));
    assert!(cores_sold_by(&reports, external) >= 2);
    let Daemon {
        runtime, ingress, ..
    } = daemon;
    runtime.shutdown().await;
    drop(ingress);
    assert_eq!(process.join().unwrap(), 15);
}

/// `gamesa check-config` on `config/sim.toml` plus `extra` (TOML appended).
fn check_config_with(extra: &str) -> (Option<i32>, String) {
    let root = ingress_support::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(root.join("config/sim.toml")).unwrap();
    text = text.replace(
        "\"../scenarios/",
        &format!("\"{}/scenarios/", root.display()),
    );
    text.push('\n');
    text.push_str(extra);
    let path = dir.path().join("gamesa.toml");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("check-config")
        .arg(&path)
        .env("GAMESA_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_each_bad_external_entry() {
    let ingress = "[ingress]\nunix_enabled = true\nunix_socket = \"/tmp/gamesa-check.sock\"\n\n\
                   [[clients]]\nname = \"bot\"\ntoken = \"bot-token-000001\"\n\n";
    let ok = format!("{ingress}[[agents]]\nkind = \"external\"\nid = \"py\"\nclient = \"bot\"\n");
    let (code, stderr) = check_config_with(&ok);
    assert_eq!(code, Some(0), "{stderr}");

    let cases = [
        (
            format!("{ingress}[[agents]]\nkind = \"external\"\nid = \"py\"\n"),
            "agents[5].client",
            "required for kind = \"external\"",
        ),
        (
            format!("{ingress}[[agents]]\nkind = \"memory\"\nid = \"m2\"\nclient = \"bot\"\n"),
            "agents[5].client",
            "only for kind = \"external\"",
        ),
        (
            format!("{ingress}[[agents]]\nkind = \"external\"\nid = \"py\"\nclient = \"nobody\"\n"),
            "agents[5].client",
            "`nobody` is not a [[clients]] entry (configured: bot)",
        ),
        (
            "[[clients]]\nname = \"bot\"\ntoken = \"bot-token-000001\"\n\n\
             [[agents]]\nkind = \"external\"\nid = \"py\"\nclient = \"bot\"\n"
                .to_owned(),
            "agents[5].client",
            "enable ingress.unix_enabled or ingress.tcp_enabled",
        ),
        (
            format!(
                "{ingress}[[agents]]\nkind = \"external\"\nid = \"py\"\nclient = \"bot\"\n\
                 params = {{ cores = 2 }}\n"
            ),
            "agents[5].params",
            "cores",
        ),
    ];
    for (extra, key, says) in cases {
        let (code, stderr) = check_config_with(&extra);
        assert_eq!(code, Some(78), "{extra}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(says),
            "{extra}: expected `{key}` and `{says}` in: {stderr}"
        );
    }
}

#[actix::test]
async fn bad_attach_and_intents_requests_get_their_codes_and_the_connection_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&external_config(dir.path(), 10_000));
    let attach_request = Request::Attach(AttachRequest {
        agent: AGENT.into(),
    });
    let code = |client: &mut Client<TcpStream>, request: &Request| {
        client.call(request).unwrap().outcome.unwrap_err().code
    };
    let mut anonymous = daemon.tcp();
    assert_eq!(
        code(&mut anonymous, &attach_request),
        ErrorCode::NotAuthenticated
    );
    let mut other = daemon.tcp_as(WORKLOAD);
    assert_eq!(code(&mut other, &attach_request), ErrorCode::NotYours);
    let mut bot = daemon.tcp_as(BOT);
    let answer = Request::Intents(IntentsRequest {
        agent: None,
        tick: gamesa_proto::Tick(0),
        intents: Vec::new(),
    });
    assert_eq!(code(&mut bot, &answer), ErrorCode::NoTurn, "not attached");
    let turn = Request::Subscribe(gamesa_wire::TopicRequest { topic: Topic::Turn });
    assert_eq!(code(&mut bot, &turn), ErrorCode::InvalidRequest);
    let unknown = Request::Attach(AttachRequest {
        agent: "gpu0".into(),
    });
    assert_eq!(
        code(&mut bot, &unknown),
        ErrorCode::NotYours,
        "not external"
    );
    bot.call_as::<AttachResult>(&attach_request).unwrap();
    let mut second = daemon.tcp_as(BOT);
    assert_eq!(code(&mut second, &attach_request), ErrorCode::NotYours);
    assert_eq!(code(&mut bot, &answer), ErrorCode::NoTurn, "no turn asked");
    // Every connection is still open and answers.
    for client in [&mut anonymous, &mut other, &mut bot, &mut second] {
        ingress_support::barrier(client);
    }
}
