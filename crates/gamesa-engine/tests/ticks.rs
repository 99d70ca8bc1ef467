//! The tick engine, tick by tick, without actors: hand-built cores and scripted agents,
//! each test one behaviour of the phase sequence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    num::NonZeroU64,
    sync::{Arc, Mutex},
};

use gamesa_agent::{
    Agent, AgentError, AgentFactory, AgentSpec, Observation, testkit::component_with_limits,
};
use gamesa_engine::{
    ExchangeCore, GuardianCore, HostedAgent, Intake, SchedulerCore, TickEngine, TickOutput,
    TickSettings, engine::LocalCores,
};
use gamesa_guardian::{
    GateRule, Guardian, GuardianConfig, LedgerConfig, SafetyPolicy, SupervisionDecision,
    Supervisor, schema_for_components,
};
use gamesa_hw::Applied;
use gamesa_market::{Exchange, MarketConfig};
use gamesa_proto::{
    Actuation, AgentId, ComponentKind, Credits, Domain, Fill, Intent, OrderIntent, Price, Quantity,
    Resource, Side, Signal, SignalKind, Strength, TelemetryFrame, Tick, TimeInForce,
};
use gamesa_signals::{DomainRanking, SignalQueue};

const SELLER: AgentId = AgentId(1);
const BUYER: AgentId = AgentId(2);
/// An ingress client: an account and effects, but no agent to observe.
const CLIENT: AgentId = AgentId(9);

/// What a scripted agent does at a tick.
type Script = dyn Fn(&Observation<'_>) -> Result<Vec<Intent>, AgentError> + Send + Sync;

/// The fills an agent was told of, with the tick it was told.
type Seen = Arc<Mutex<Vec<(Tick, Fill)>>>;

/// An agent that follows its script, and notes every fill it is told of.
struct Scripted {
    script: Arc<Script>,
    fills: Seen,
}

impl Agent for Scripted {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut fills = self.fills.lock().unwrap();
        fills.extend(
            observation
                .fills
                .iter()
                .map(|fill| (observation.tick, *fill)),
        );
        (self.script)(observation)
    }
}

struct Cast {
    agents: Vec<HostedAgent>,
    fills: BTreeMap<AgentId, Seen>,
}

fn cast(scripts: Vec<(AgentId, Arc<Script>)>) -> Cast {
    let mut agents = Vec::new();
    let mut fills = BTreeMap::new();
    for (id, script) in scripts {
        let seen = Arc::new(Mutex::new(Vec::new()));
        fills.insert(id, Arc::clone(&seen));
        let factory: AgentFactory = Arc::new(move |_: &AgentSpec| {
            Ok(Box::new(Scripted {
                script: Arc::clone(&script),
                fills: Arc::clone(&seen),
            }) as Box<dyn Agent>)
        });
        let spec = AgentSpec {
            id,
            name: format!("agent{}", id.0),
            kind: "scripted".into(),
            weight: 1,
            params: toml::Table::new(),
            module: None,
        };
        agents.push(HostedAgent::new(spec, factory).unwrap());
    }
    Cast { agents, fills }
}

/// One GPU, every agent granted every effect the tests use, the buyer's power leases
/// bound to the GPU, and at most two restarts within 100 ticks.
fn engine(cast: Cast) -> TickEngine {
    let mut guardian = Guardian::new(
        GuardianConfig {
            ledger: LedgerConfig {
                allowance_per_epoch: Credits(1_000_000_000),
                cap_epochs: 10,
            },
            ..GuardianConfig::default()
        },
        schema_for_components(["gpu0"]),
    );
    guardian
        .set_gate_rule(
            "power.limit:gpu0",
            GateRule {
                min: Some(100_000),
                max: Some(300_000),
                max_step: None,
                deadband: 0,
                rate: None,
            },
        )
        .unwrap();
    let participants = cast
        .agents
        .iter()
        .map(|agent| agent.spec().id)
        .chain([CLIENT]);
    for id in participants.clone() {
        guardian.ledger_mut().open_account(id);
        guardian.effects_mut().grant_all(
            id,
            [
                "order:power_budget_mw",
                "power.set_limit:gpu0",
                "signal:safety",
            ]
            .map(|effect| effect.parse().unwrap()),
        );
    }
    guardian.bind_power_component(BUYER, "gpu0");
    let weights = participants.map(|id| (id, 1)).collect();
    TickEngine::new(
        TickSettings {
            epoch_ticks: 10,
            seed: 7,
        },
        LocalCores {
            guardian: GuardianCore::new(
                guardian,
                Supervisor::new(2, 100),
                SafetyPolicy {
                    safe_limits_mw: BTreeMap::new(),
                    power_holders: BTreeMap::from([("gpu0".to_owned(), vec![BUYER])]),
                },
                weights,
            ),
            exchange: ExchangeCore::new(Exchange::new(MarketConfig::new(
                NonZeroU64::new(10).unwrap(),
            ))),
            scheduler: SchedulerCore::new(SignalQueue::new(DomainRanking::default())),
            agents: cast.agents,
        },
    )
}

fn frame(tick: u64) -> TelemetryFrame {
    let mut gpu = component_with_limits("gpu0", ComponentKind::Gpu);
    gpu.limit_mw = Some(200_000);
    gpu.power_mw = Some(150_000);
    gpu.temp_mc = Some(60_000);
    TelemetryFrame {
        tick: Tick(tick),
        components: vec![gpu],
        ..TelemetryFrame::default()
    }
}

fn order(side: Side, price: u64, quantity: u64) -> Intent {
    Intent::Place(OrderIntent {
        resource: Resource::PowerBudgetMw,
        side,
        price: Price(price),
        quantity: Quantity(quantity),
        time_in_force: TimeInForce::Limit { expires_at: None },
    })
}

fn set_gpu_limit(limit_mw: u64) -> Intent {
    Intent::Actuate(Actuation::PowerLimit {
        component: "gpu0".into(),
        limit_mw,
    })
}

fn script(
    f: impl Fn(&Observation<'_>) -> Result<Vec<Intent>, AgentError> + Send + Sync + 'static,
) -> Arc<Script> {
    Arc::new(f)
}

/// An agent that asks for the GPU's limit to be `limit_mw` at tick 0, then nothing.
fn sets_gpu_limit_at_tick_0(limit_mw: u64) -> Arc<Script> {
    script(move |observation| {
        Ok(if observation.tick == Tick(0) {
            vec![set_gpu_limit(limit_mw)]
        } else {
            Vec::new()
        })
    })
}

/// A seller that offers 50 W at tick 0, and a buyer that bids for it.
fn market() -> Cast {
    cast(vec![
        (
            SELLER,
            script(|observation| {
                Ok(if observation.tick == Tick(0) {
                    vec![
                        Intent::SetCapacity {
                            resource: Resource::PowerBudgetMw,
                            quantity: Quantity(50_000),
                        },
                        order(Side::Ask, 2, 50_000),
                    ]
                } else {
                    Vec::new()
                })
            }),
        ),
        (
            BUYER,
            script(|observation| {
                Ok(if observation.tick == Tick(0) {
                    vec![order(Side::Bid, 3, 50_000)]
                } else {
                    Vec::new()
                })
            }),
        ),
    ])
}

/// Every actuation the output asks for, written: `dry_run` as asked.
fn write_all(engine: &mut TickEngine, output: &mut TickOutput, dry_run: bool) {
    let results = output
        .to_apply()
        .into_iter()
        .map(|(_, actuation)| {
            Ok(Applied {
                target: actuation.target(),
                previous: String::new(),
                current: actuation.value_text(),
                changed: true,
                dry_run,
            })
        })
        .collect();
    engine.applied(output, results);
}

#[test]
fn a_trade_is_settled_and_each_party_hears_of_its_fill_at_its_next_turn() {
    let cast = market();
    let seen = cast.fills.clone();
    let mut engine = engine(cast);
    let output = engine.tick(frame(0), Intake::default());
    assert!(
        output.mint.as_ref().is_some_and(Result::is_ok),
        "epoch 0 mints"
    );
    assert_eq!(output.fills.len(), 1, "{:?}", output.market_events);
    let (fill, verdict) = &output.fills[0];
    assert!(verdict.is_allowed(), "{verdict}");
    assert_eq!((fill.buyer, fill.seller), (BUYER, SELLER));
    assert_eq!(fill.quantity, Quantity(50_000));
    assert!(seen.values().all(|fills| fills.lock().unwrap().is_empty()));

    engine.tick(frame(1), Intake::default());
    for party in [SELLER, BUYER] {
        let fills = seen[&party].lock().unwrap().clone();
        assert_eq!(fills, vec![(Tick(1), *fill)], "{party}");
    }
    let accounts = engine.cores().guardian.accounts();
    assert!(engine.cores().guardian.is_conserved(), "{accounts:?}");
}

#[test]
fn a_failing_agent_is_restarted_then_isolated_and_what_it_changed_is_restored() {
    let rogue = AgentId(3);
    let mut engine = engine(cast(vec![(
        rogue,
        script(|observation| {
            if observation.tick == Tick(0) {
                Ok(vec![set_gpu_limit(150_000)])
            } else {
                Err(AgentError::Failed("broken from tick 1 on".into()))
            }
        }),
    )]));
    let mut first = engine.tick(frame(0), Intake::default());
    assert_eq!(first.to_apply().len(), 1, "{:?}", first.actuations);
    write_all(&mut engine, &mut first, false);

    let decisions: Vec<SupervisionDecision> = (1..=3)
        .map(|tick| {
            let output = engine.tick(frame(tick), Intake::default());
            assert_eq!(output.failures.len(), 1, "tick {tick}");
            let decision = output.failures[0].decision;
            if tick < 3 {
                assert!(output.restore.is_empty(), "tick {tick}");
            } else {
                assert_eq!(output.restore, vec!["power.limit:gpu0".to_owned()]);
            }
            decision
        })
        .collect();
    assert_eq!(
        decisions,
        vec![
            SupervisionDecision::Restart { restarts: 1 },
            SupervisionDecision::Restart { restarts: 2 },
            SupervisionDecision::Isolate { restarts: 2 },
        ]
    );
    let after = engine.tick(frame(4), Intake::default());
    assert!(after.failures.is_empty(), "an isolated agent is not asked");
    assert!(after.intents_by_agent.is_empty());
    assert!(engine.state().seats().iter().all(|seat| seat.isolated));
}

#[test]
fn a_safety_hold_preempts_an_agents_actuation_of_the_held_component() {
    let mut engine = engine(cast(vec![(
        BUYER,
        script(|_| Ok(vec![set_gpu_limit(280_000)])),
    )]));
    let hold = Signal {
        kind: SignalKind::new("thermal_critical.gpu0").unwrap(),
        domain: Domain::Safety,
        strength: Strength::MAX,
        source: AgentId(900),
        ttl_ticks: 3,
        correlation: None,
    };
    let output = engine.tick(
        frame(0),
        Intake {
            signals: vec![hold],
            ..Intake::default()
        },
    );
    assert_eq!(output.held, vec!["gpu0".to_owned()]);
    assert_eq!(output.revoked_power_of, vec![BUYER]);
    assert_eq!(output.preempted.len(), 1, "{:?}", output.preempted);
    assert_eq!(
        output.to_apply(),
        vec![(
            None,
            Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 100_000,
            }
        )],
        "only the guardian's safe limit (the lowest the device takes) is written"
    );
}

#[test]
fn a_dry_run_limit_is_what_the_next_frame_shows() {
    let mut engine = engine(cast(vec![(BUYER, sets_gpu_limit_at_tick_0(120_000))]));
    let mut output = engine.tick(frame(0), Intake::default());
    write_all(&mut engine, &mut output, true);
    assert!(matches!(output.actuations[0].outcome, Some(Ok(_))));
    let next = engine.tick(frame(1), Intake::default());
    assert_eq!(next.frame.components[0].limit_mw, Some(120_000));
}

#[test]
fn refused_actuations_reach_the_guardian_at_the_next_open() {
    let mut engine = engine(cast(vec![(BUYER, sets_gpu_limit_at_tick_0(120_000))]));
    let mut output = engine.tick(frame(0), Intake::default());
    engine.applied(&mut output, vec![Err("the device said no".into())]);
    assert_eq!(
        output.actuations[0].outcome,
        Some(Err("the device said no".into()))
    );
    assert_eq!(engine.cores().guardian.actuation_failures(), 0);
    engine.tick(frame(1), Intake::default());
    assert_eq!(engine.cores().guardian.actuation_failures(), 1);
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let mut engine = engine(market());
        (0..30)
            .map(|tick| {
                let mut output = engine.tick(frame(tick), Intake::default());
                write_all(&mut engine, &mut output, false);
                output.timings.clear();
                output
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn each_order_and_cancel_of_a_client_gets_its_outcome() {
    use gamesa_engine::Outcome;
    use gamesa_guardian::{Reason, StampedIntent};

    let mut engine = engine(market());
    let stamp = |sequence, intent| StampedIntent {
        agent: CLIENT,
        sequence,
        intent,
    };
    let cores_bid = Intent::Place(OrderIntent {
        resource: Resource::CpuCores,
        ..match order(Side::Bid, 1, 1) {
            Intent::Place(order) => order,
            _ => unreachable!(),
        }
    });
    let output = engine.tick(
        frame(0),
        Intake {
            intents: vec![
                // Rests: the buyer's bid at the same price came first and took it all.
                stamp(0, order(Side::Bid, 3, 20_000)),
                stamp(1, Intent::Cancel(gamesa_proto::OrderId(999))),
                // No `order:cpu_cores` effect.
                stamp(2, cores_bid),
            ],
            ..Intake::default()
        },
    );
    let outcomes = output.outcomes(|agent| agent == CLIENT);
    let Some(Outcome::Placed { order, filled, .. }) = outcomes.get(&(CLIENT, 0)).cloned() else {
        panic!("{outcomes:?}");
    };
    assert_eq!(filled, Quantity(0));
    assert_eq!(outcomes[&(CLIENT, 0)].resting(), Some(Quantity(20_000)));
    assert_eq!(
        outcomes[&(CLIENT, 1)],
        Outcome::Rejected(gamesa_market::MarketError::UnknownOrder(
            gamesa_proto::OrderId(999)
        ))
    );
    assert!(matches!(
        outcomes[&(CLIENT, 2)],
        Outcome::Denied(Reason::EffectDenied { .. })
    ));
    assert_eq!(outcomes.len(), 3);
    assert!(output.outcomes(|agent| agent == AgentId(77)).is_empty());

    let next = engine.tick(
        frame(1),
        Intake {
            intents: vec![stamp(0, Intent::Cancel(order))],
            ..Intake::default()
        },
    );
    assert_eq!(
        next.outcomes(|agent| agent == CLIENT),
        BTreeMap::from([(
            (CLIENT, 0),
            Outcome::Cancelled {
                order,
                remaining: Quantity(20_000)
            }
        )])
    );
}

/// Reads [`frame`] each tick.
struct FixedSensors;

impl gamesa_hw::Sensors for FixedSensors {
    fn sample(&mut self, tick: Tick) -> gamesa_hw::Sample {
        gamesa_hw::Sample {
            frame: frame(tick.0),
            errors: Vec::new(),
        }
    }
}

/// Writes everything, and can put nothing back.
struct StuckActuator;

impl gamesa_hw::Actuator for StuckActuator {
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, gamesa_hw::HwError> {
        Ok(Applied {
            target: actuation.target(),
            previous: String::new(),
            current: actuation.value_text(),
            changed: true,
            dry_run: false,
        })
    }

    fn restore_target(&mut self, target: &str) -> gamesa_hw::RestoreReport {
        gamesa_hw::RestoreReport {
            restored: Vec::new(),
            failed: vec![(
                target.to_owned(),
                gamesa_hw::HwError::InvalidActuation {
                    target: target.to_owned(),
                    reason: "the device is gone".into(),
                },
            )],
        }
    }

    fn restore_all(&mut self) -> gamesa_hw::RestoreReport {
        gamesa_hw::RestoreReport::default()
    }
}

#[test]
fn a_restore_that_fails_is_reported_in_the_output_not_dropped() {
    let mut engine = engine(cast(vec![(
        AgentId(3),
        script(|observation| {
            if observation.tick == Tick(0) {
                Ok(vec![set_gpu_limit(150_000)])
            } else {
                Err(AgentError::Failed("broken from tick 1 on".into()))
            }
        }),
    )]));
    let (mut sensors, mut actuator) = (FixedSensors, StuckActuator);
    let outputs: Vec<TickOutput> = (0..4)
        .map(|_| engine.step(&mut sensors, &mut actuator, Intake::default()))
        .collect();
    let isolated = &outputs[3];
    assert_eq!(isolated.restore, vec!["power.limit:gpu0".to_owned()]);
    assert_eq!(isolated.restore_failed.len(), 1, "{isolated:?}");
    assert_eq!(isolated.restore_failed[0].0, "power.limit:gpu0");
    assert!(
        isolated.restore_failed[0].1.contains("the device is gone"),
        "{:?}",
        isolated.restore_failed
    );
}
