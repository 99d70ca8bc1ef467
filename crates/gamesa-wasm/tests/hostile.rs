//! A malicious module is stopped at every turn it misbehaves, with a failure that says
//! how (the runtime then restarts and isolates it: `tests/wasm_agents.rs`), and one that
//! peeks at the clock and randomness sees only what the sandbox gives every run. The
//! guest is `guests/hostile`, built for `wasm32-wasip2` by the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod build_guest;

use gamesa_agent::{
    Agent, AgentError, AgentSpec, Intent, ModuleSpec,
    proto::{AgentId, Tick},
    testkit::World,
};
use gamesa_wasm::{WasmAgent, WasmHost};

const FUEL: u64 = 10_000_000;
const MEMORY: u64 = 64 << 20;

fn spec(behaviour: &str, from_tick: u64) -> AgentSpec {
    AgentSpec {
        id: AgentId(7),
        name: "hostile".into(),
        kind: ModuleSpec::KIND.into(),
        weight: 1,
        params: format!("behaviour = \"{behaviour}\"\nfrom_tick = {from_tick}")
            .parse()
            .unwrap(),
        module: Some(ModuleSpec {
            path: build_guest::module(build_guest::HOSTILE),
            fuel: FUEL,
            memory_bytes: MEMORY,
        }),
    }
}

fn turn(agent: &mut WasmAgent, tick: u64) -> Result<Vec<Intent>, AgentError> {
    let world = World {
        tick: Tick(tick),
        ..World::default()
    };
    agent.observe(&world.observation(AgentId(7)))
}

/// The failure `behaviour` causes from tick 5, after four quiet turns.
fn failure(host: &WasmHost, behaviour: &str) -> String {
    let mut agent = host.create(&spec(behaviour, 5)).unwrap();
    for tick in 1..5 {
        assert_eq!(
            turn(&mut agent, tick),
            Ok(Vec::new()),
            "{behaviour} at {tick}"
        );
    }
    match turn(&mut agent, 5) {
        Err(AgentError::Failed(message)) => message,
        other => panic!("{behaviour}: {other:?}"),
    }
}

#[test]
fn each_kind_of_misbehaviour_fails_the_turn_and_says_how() {
    let host = WasmHost::new().unwrap();
    for (behaviour, says) in [
        ("spin", "observe ran out of fuel"),
        ("hog", "memory limit"),
        ("trap", "observe trapped"),
        ("flood", "over the limit"),
        ("garbage", "undecodable intents"),
        ("invalid", "is invalid: price must be between"),
        ("err", "observe returned an error"),
    ] {
        let message = failure(&host, behaviour);
        assert!(message.contains(says), "{behaviour}: {message}");
    }
}

#[test]
fn an_instance_that_trapped_is_not_called_again() {
    let host = WasmHost::new().unwrap();
    let mut agent = host.create(&spec("trap", 0)).unwrap();
    let Err(AgentError::Failed(first)) = turn(&mut agent, 1) else {
        panic!("the trap did not fail the turn")
    };
    let Err(AgentError::Failed(again)) = turn(&mut agent, 2) else {
        panic!("a trapped instance answered")
    };
    assert_eq!(again, format!("not called again: {first}"));
    // A fresh instance (what a restart builds) starts clean.
    let mut fresh = host.create(&spec("trap", 3)).unwrap();
    assert_eq!(turn(&mut fresh, 1), Ok(Vec::new()));
}

#[test]
fn clocks_and_randomness_are_the_same_in_every_instance() {
    let host = WasmHost::new().unwrap();
    let peek = |tick| {
        let mut agent = host.create(&spec("peek", 0)).unwrap();
        turn(&mut agent, tick).unwrap()
    };
    let first = peek(1);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(peek(1), first);
    assert_eq!(peek(2), first, "the guest saw time pass");
}

#[test]
fn an_unknown_behaviour_and_a_module_that_is_not_one_are_refused_at_build() {
    let host = WasmHost::new().unwrap();
    let Err(AgentError::InvalidParams { message, .. }) = host.create(&spec("sulk", 0)) else {
        panic!("an unknown behaviour was accepted")
    };
    assert!(message.contains("its init refused"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.wasm");
    std::fs::write(&fake, b"\0asm not really").unwrap();
    let mut broken = spec("spin", 0);
    broken.module.as_mut().unwrap().path = fake;
    let Err(AgentError::InvalidModule { message, .. }) = host.create(&broken) else {
        panic!("garbage compiled")
    };
    assert!(message.contains("not a WebAssembly component"), "{message}");
}
