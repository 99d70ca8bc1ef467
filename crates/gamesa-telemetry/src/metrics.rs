//! Metrics through OpenTelemetry: hardware figures under the semantic-convention names
//! (`hw.*`, `system.*`) and market, guardian and runtime figures under `gamesa.*`.
//!
//! A tick only folds its report into a small shared state under one lock; observable
//! instruments read that state when the meter provider collects (every
//! `metrics_interval_s`). Only the tick duration is recorded per tick, as a histogram.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use gamesa_agent::MarketView;
use gamesa_proto::{AgentId, ComponentKind, Resource, TelemetryFrame};
use opentelemetry::{
    KeyValue,
    metrics::{AsyncInstrument, Histogram, Meter},
};

use super::spans::reason_kind;
use gamesa_engine::TickOutput;
use gamesa_guardian::SupervisionDecision;

fn component_type(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Cpu => "cpu",
        ComponentKind::Gpu => "gpu",
    }
}

fn hw(id: &str, kind: &'static str) -> [KeyValue; 2] {
    [
        KeyValue::new("hw.id", id.to_owned()),
        KeyValue::new("hw.type", kind),
    ]
}

fn resource_attribute(resource: Resource) -> [KeyValue; 1] {
    [KeyValue::new("gamesa.resource", resource.as_str())]
}

/// What the instruments report, folded in tick by tick.
#[derive(Debug, Default)]
struct State {
    frame: Option<Arc<TelemetryFrame>>,
    market: MarketView,
    open_orders: [u64; Resource::ALL.len()],
    fills: [u64; Resource::ALL.len()],
    volume: [u64; Resource::ALL.len()],
    /// (verdict, reason kind) → count.
    vetoes: BTreeMap<(&'static str, &'static str), u64>,
    restarts: BTreeMap<AgentId, u64>,
    isolations: BTreeMap<AgentId, u64>,
    /// Energy per component since start, in joules.
    energy_j: BTreeMap<String, (ComponentKind, f64)>,
    ticks: u64,
    /// Fleet mode's figures as of the last tick; `None` outside fleet mode.
    fleet: Option<FleetFigures>,
}

/// What fleet mode reports each tick (`docs/fleet.md`): the node's cap and lease, whether
/// it leads and under which term, and its link's counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetFigures {
    pub cap_mw: u64,
    pub leased_mw: u64,
    pub is_leader: bool,
    pub term: u64,
    pub orders_sent: u64,
    pub orders_unanswered: u64,
    pub grants_taken: u64,
    pub grants_refused: u64,
    pub malformed: u64,
}

type Shared = Arc<Mutex<State>>;

fn read<T>(state: &Shared, read: impl FnOnce(&State) -> T) -> T {
    read(&state.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The runtime's instruments.
#[derive(Clone)]
pub struct TickMetrics {
    state: Shared,
    tick_duration: Histogram<f64>,
}

impl std::fmt::Debug for TickMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickMetrics").finish_non_exhaustive()
    }
}

impl TickMetrics {
    /// Registers every instrument on `meter`.
    pub fn new(meter: &Meter) -> TickMetrics {
        let state: Shared = Arc::default();
        register_hardware(meter, &state);
        register_market(meter, &state);
        register_guardian(meter, &state);
        register_fleet(meter, &state);
        let tick_duration = meter
            .f64_histogram("gamesa.tick.duration")
            .with_unit("s")
            .with_description("Wall-clock time of one tick, every phase included.")
            .with_boundaries(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0,
            ])
            .build();
        TickMetrics {
            state,
            tick_duration,
        }
    }

    /// Fleet mode's figures after a tick.
    pub fn record_fleet(&self, figures: FleetFigures) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fleet = Some(figures);
    }

    /// Folds one tick's report in. `open_orders` counts the orders resting at the
    /// start of the tick, per resource.
    pub fn record(
        &self,
        report: &TickOutput,
        open_orders: [u64; Resource::ALL.len()],
        duration: Duration,
    ) {
        self.tick_duration.record(duration.as_secs_f64(), &[]);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.ticks += 1;
        let interval_s = report.frame.interval_ms as f64 / 1000.0;
        for component in &report.frame.components {
            if let Some(power_mw) = component.power_mw {
                let joules = power_mw as f64 / 1000.0 * interval_s;
                match state.energy_j.get_mut(&component.id) {
                    Some((_, total)) => *total += joules,
                    None => {
                        state
                            .energy_j
                            .insert(component.id.clone(), (component.kind, joules));
                    }
                }
            }
        }
        state.frame = Some(Arc::clone(&report.frame));
        state.market = report.market;
        state.open_orders = open_orders;
        for (fill, verdict) in &report.fills {
            if verdict.is_allowed() {
                state.fills[fill.resource.index()] += 1;
                state.volume[fill.resource.index()] += fill.quantity.0;
            }
        }
        for verdict in report.vetoes() {
            let key = (verdict.decision(), reason_kind(verdict.reason()));
            *state.vetoes.entry(key).or_default() += 1;
        }
        for (_, reason) in &report.denied_intents {
            *state
                .vetoes
                .entry(("deny", reason_kind(reason)))
                .or_default() += 1;
        }
        for failure in &report.failures {
            match failure.decision {
                SupervisionDecision::Restart { .. } => {
                    *state.restarts.entry(failure.agent).or_default() += 1
                }
                SupervisionDecision::Isolate { .. } => {
                    *state.isolations.entry(failure.agent).or_default() += 1
                }
                SupervisionDecision::AlreadyIsolated => {}
            }
        }
    }
}

fn register_hardware(meter: &Meter, state: &Shared) {
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("hw.temperature")
        .with_unit("Cel")
        .with_description("Temperature of each component and sensor.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for component in &frame.components {
                    if let Some(temp_mc) = component.temp_mc {
                        observer.observe(
                            f64::from(temp_mc) / 1000.0,
                            &hw(&component.id, component_type(component.kind)),
                        );
                    }
                }
                for sensor in &frame.temperatures {
                    observer.observe(
                        f64::from(sensor.temp_mc) / 1000.0,
                        &hw(&sensor.id, "temperature"),
                    );
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("hw.power")
        .with_unit("W")
        .with_description("Power drawn by each managed component.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for component in &frame.components {
                    if let Some(power_mw) = component.power_mw {
                        observer.observe(
                            power_mw as f64 / 1000.0,
                            &hw(&component.id, component_type(component.kind)),
                        );
                    }
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("gamesa.power.limit")
        .with_unit("W")
        .with_description(
            "Power limit in force on each managed component (the dry-run value when \
             actuators are dry).",
        )
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for component in &frame.components {
                    if let Some(limit_mw) = component.limit_mw {
                        observer.observe(
                            limit_mw as f64 / 1000.0,
                            &hw(&component.id, component_type(component.kind)),
                        );
                    }
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("hw.temperature.limit")
        .with_unit("Cel")
        .with_description("Highest temperature each managed component may run at.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for component in &frame.components {
                    if let Some(t_max_mc) = component.t_max_mc {
                        let [id, kind] = hw(&component.id, component_type(component.kind));
                        observer.observe(
                            f64::from(t_max_mc) / 1000.0,
                            &[id, kind, KeyValue::new("hw.limit_type", "max")],
                        );
                    }
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_counter("hw.energy")
        .with_unit("J")
        .with_description("Energy used by each managed component since start.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                for (id, (kind, joules)) in &state.energy_j {
                    observer.observe(*joules, &hw(id, component_type(*kind)));
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("hw.gpu.utilization")
        .with_unit("1")
        .with_description("Busy share of each GPU, 0 to 1.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for component in &frame.components {
                    if component.kind == ComponentKind::Gpu {
                        observer.observe(
                            f64::from(component.utilization_permille) / 1000.0,
                            &hw(&component.id, "gpu"),
                        );
                    }
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .u64_observable_gauge("hw.gpu.memory.usage")
        .with_unit("By")
        .with_description("GPU memory in use.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                let Some(frame) = &state.frame else { return };
                for gpu in &frame.gpus {
                    observer.observe(
                        gpu.memory_used_mb.saturating_mul(1024 * 1024),
                        &hw(&format!("gpu{}", gpu.index), "gpu"),
                    );
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .f64_observable_gauge("system.cpu.utilization")
        .with_unit("1")
        .with_description("Busy share of all cores, 0 to 1.")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            read(&shared, |state| {
                if let Some(cpu) = state.frame.as_ref().and_then(|frame| frame.cpu.as_ref()) {
                    observer.observe(f64::from(cpu.utilization_permille) / 1000.0, &[]);
                }
            })
        })
        .build();
    let shared = Arc::clone(state);
    meter
        .u64_observable_gauge("system.memory.usage")
        .with_unit("By")
        .with_description("Host memory in use.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                if let Some(memory) = state.frame.as_ref().and_then(|frame| frame.memory.as_ref()) {
                    observer.observe(
                        memory.used_mb.saturating_mul(1024 * 1024),
                        &[KeyValue::new("system.memory.state", "used")],
                    );
                }
            })
        })
        .build();
}

fn register_market(meter: &Meter, state: &Shared) {
    let shared = Arc::clone(state);
    meter
        .u64_observable_gauge("gamesa.market.price")
        .with_unit("{credit}")
        .with_description("Last trade price of each resource, in credits per unit.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                for resource in Resource::ALL {
                    if let Some(price) = state.market.last_price(resource) {
                        observer.observe(price.0, &resource_attribute(resource));
                    }
                }
            })
        })
        .build();
    let per_resource = |name: &'static str,
                        unit: &'static str,
                        description: &'static str,
                        pick: fn(&State) -> &[u64; Resource::ALL.len()],
                        counter: bool| {
        let shared = Arc::clone(state);
        let callback = move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                for resource in Resource::ALL {
                    observer.observe(pick(state)[resource.index()], &resource_attribute(resource));
                }
            })
        };
        if counter {
            meter
                .u64_observable_counter(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(callback)
                .build();
        } else {
            meter
                .u64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(callback)
                .build();
        }
    };
    per_resource(
        "gamesa.market.volume",
        "{unit}",
        "Quantity traded per resource since start, in the resource's unit.",
        |state| &state.volume,
        true,
    );
    per_resource(
        "gamesa.market.fills",
        "{fill}",
        "Settled fills per resource since start.",
        |state| &state.fills,
        true,
    );
    per_resource(
        "gamesa.market.open_orders",
        "{order}",
        "Orders resting in each book.",
        |state| &state.open_orders,
        false,
    );
}

/// `gamesa.fleet.*`, observed only in fleet mode.
fn register_fleet(meter: &Meter, state: &Shared) {
    let gauge = |name: &'static str,
                 unit: &'static str,
                 description: &'static str,
                 pick: fn(&FleetFigures) -> f64| {
        let shared = Arc::clone(state);
        meter
            .f64_observable_gauge(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
                read(&shared, |state| {
                    if let Some(fleet) = &state.fleet {
                        observer.observe(pick(fleet), &[]);
                    }
                })
            })
            .build();
    };
    gauge(
        "gamesa.fleet.cap",
        "W",
        "The node's cap in fleet mode: its safe share plus its valid lease.",
        |fleet| fleet.cap_mw as f64 / 1000.0,
    );
    gauge(
        "gamesa.fleet.lease",
        "W",
        "The fleet's pool this node holds under a valid lease.",
        |fleet| fleet.leased_mw as f64 / 1000.0,
    );
    gauge(
        "gamesa.fleet.leader",
        "{leader}",
        "1 while this node leads the fleet, else 0.",
        |fleet| f64::from(u8::from(fleet.is_leader)),
    );
    gauge(
        "gamesa.fleet.term",
        "{term}",
        "The highest leader term this node has seen.",
        |fleet| fleet.term as f64,
    );
    let counter = |name: &'static str,
                   unit: &'static str,
                   description: &'static str,
                   pick: fn(&FleetFigures) -> [(&'static str, u64); 2]| {
        let shared = Arc::clone(state);
        meter
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
                read(&shared, |state| {
                    if let Some(fleet) = &state.fleet {
                        for (outcome, count) in pick(fleet) {
                            observer.observe(count, &[KeyValue::new("gamesa.outcome", outcome)]);
                        }
                    }
                })
            })
            .build();
    };
    counter(
        "gamesa.fleet.orders",
        "{order}",
        "Orders this node sent to the leader since start, and those no leader answered.",
        |fleet| {
            [
                ("sent", fleet.orders_sent),
                ("unanswered", fleet.orders_unanswered),
            ]
        },
    );
    counter(
        "gamesa.fleet.grants",
        "{grant}",
        "Grants this node took, and those it refused (stale term, unknown order, too late).",
        |fleet| {
            [
                ("taken", fleet.grants_taken),
                ("refused", fleet.grants_refused),
            ]
        },
    );
    let shared = Arc::clone(state);
    meter
        .u64_observable_counter("gamesa.fleet.malformed")
        .with_unit("{message}")
        .with_description("Fleet messages that did not decode: dropped, never applied.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                if let Some(fleet) = &state.fleet {
                    observer.observe(fleet.malformed, &[]);
                }
            })
        })
        .build();
}

fn register_guardian(meter: &Meter, state: &Shared) {
    let shared = Arc::clone(state);
    meter
        .u64_observable_counter("gamesa.guardian.vetoes")
        .with_unit("{veto}")
        .with_description("Denied and clamped requests since start, by verdict and reason.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| {
                for ((verdict, reason), count) in &state.vetoes {
                    observer.observe(
                        *count,
                        &[
                            KeyValue::new("gamesa.verdict", *verdict),
                            KeyValue::new("gamesa.reason", *reason),
                        ],
                    );
                }
            })
        })
        .build();
    let agents = |name: &'static str,
                  unit: &'static str,
                  description: &'static str,
                  pick: fn(&State) -> &BTreeMap<AgentId, u64>| {
        let shared = Arc::clone(state);
        meter
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
                read(&shared, |state| {
                    for (agent, count) in pick(state) {
                        observer.observe(
                            *count,
                            &[KeyValue::new("gamesa.agent.id", i64::from(agent.0))],
                        );
                    }
                })
            })
            .build();
    };
    agents(
        "gamesa.agent.restarts",
        "{restart}",
        "Agent restarts since start.",
        |state| &state.restarts,
    );
    agents(
        "gamesa.agent.isolations",
        "{isolation}",
        "Agents isolated since start.",
        |state| &state.isolations,
    );
    let shared = Arc::clone(state);
    meter
        .u64_observable_counter("gamesa.ticks")
        .with_unit("{tick}")
        .with_description("Ticks run since start.")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            read(&shared, |state| observer.observe(state.ticks, &[]))
        })
        .build();
}
