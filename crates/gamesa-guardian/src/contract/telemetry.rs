//! The contract variables GAMESA derives from a telemetry frame: their schema, the env
//! built from a frame plus proposed power limits, and the current/proposed pair the
//! guardian keeps through a tick.
//!
//! Per component id `<id>` (`cpu`, `gpu0`, ...), in the units the names carry:
//!
//! | variable | value |
//! | --- | --- |
//! | `<id>.temp_c` | temperature, °C |
//! | `<id>.t_max_c` | the temperature it must stay below, °C |
//! | `<id>.power_w` | power draw, W |
//! | `<id>.limit_mw` | power limit (the proposed one where there is one), mW |
//! | `<id>.limit_min_mw`, `<id>.limit_max_mw` | the device's limit range, mW |
//! | `<id>.delta_power_w` | proposed limit minus the current one (or the draw), W; 0 without a proposal |
//! | `<id>.util` | utilization, 0 to 1 |
//!
//! and `node.cap_mw`, `node.draw_mw`, and the lists `power.limit_mw` (one member per
//! component whose power limit is known, or proposed) and `power.draw_mw` (one member
//! per component).
//!
//! # Invariants
//! - a reading the frame does not have is missing from the env, never zero

use std::collections::BTreeMap;

use gamesa_proto::{ComponentTelemetry, TelemetryFrame};

use super::{Env, Schema};

/// The per-component scalar suffixes, as listed in the module docs.
pub const COMPONENT_VARIABLES: [&str; 8] = [
    "temp_c",
    "t_max_c",
    "power_w",
    "limit_mw",
    "limit_min_mw",
    "limit_max_mw",
    "delta_power_w",
    "util",
];
pub const LIST_LIMIT_MW: &str = "power.limit_mw";
pub const LIST_DRAW_MW: &str = "power.draw_mw";
pub const NODE_CAP_MW: &str = "node.cap_mw";
pub const NODE_DRAW_MW: &str = "node.draw_mw";

/// The schema of the telemetry variables for these component ids. Add constants from
/// config (a thermal resistance, say) with [`Schema::add_scalar`].
pub fn schema_for_components<I, S>(ids: I) -> Schema
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut schema = Schema::new();
    for id in ids {
        for variable in COMPONENT_VARIABLES {
            schema.add_scalar(format!("{}.{variable}", id.as_ref()));
        }
    }
    schema
        .with_scalar(NODE_CAP_MW)
        .with_scalar(NODE_DRAW_MW)
        .with_list(LIST_LIMIT_MW)
        .with_list(LIST_DRAW_MW)
}

fn mw(value: u64) -> f64 {
    value as f64
}

fn celsius(milli: i32) -> f64 {
    f64::from(milli) / 1000.0
}

/// What a proposed limit is measured against for `delta_power_w`: the current limit,
/// or the draw when the limit is unknown.
fn baseline_mw(component: &ComponentTelemetry) -> Option<f64> {
    component.limit_mw.or(component.power_mw).map(mw)
}

/// Builds the env of a frame, with `proposed_limits_mw` (component id → limit) standing
/// in for the current limits where given. Proposals for components the frame does not
/// have are ignored.
pub fn env_from_telemetry(
    frame: &TelemetryFrame,
    proposed_limits_mw: &BTreeMap<String, u64>,
) -> Env {
    let mut env = Env::new();
    env.declare_list(LIST_LIMIT_MW);
    env.declare_list(LIST_DRAW_MW);
    for component in &frame.components {
        let id = component.id.as_str();
        let mut set = |suffix: &str, value: Option<f64>| {
            if let Some(value) = value {
                env.set_scalar(&format!("{id}.{suffix}"), value);
            }
        };
        let proposed = proposed_limits_mw.get(id).copied().map(mw);
        let limit = proposed.or(component.limit_mw.map(mw));
        let delta_w = match proposed {
            None => Some(0.0),
            Some(proposed) => baseline_mw(component).map(|base| (proposed - base) / 1000.0),
        };
        set("temp_c", component.temp_mc.map(celsius));
        set("t_max_c", component.t_max_mc.map(celsius));
        set("power_w", component.power_mw.map(|p| mw(p) / 1000.0));
        set("limit_mw", limit);
        set("limit_min_mw", component.limit_min_mw.map(mw));
        set("limit_max_mw", component.limit_max_mw.map(mw));
        set("delta_power_w", delta_w);
        set(
            "util",
            Some(f64::from(component.utilization_permille) / 1000.0),
        );
        // A component with no power limit at all (a CPU without RAPL) is not
        // power-managed, so it is no member of the list rather than a missing one.
        if limit.is_some() {
            env.set_list_item(LIST_LIMIT_MW, id, limit);
        }
        env.set_list_item(LIST_DRAW_MW, id, component.power_mw.map(mw));
    }
    if let Some(cap) = frame.node.cap_mw {
        env.set_scalar(NODE_CAP_MW, mw(cap));
    }
    if let Some(draw) = frame.node.draw_mw {
        env.set_scalar(NODE_DRAW_MW, mw(draw));
    }
    env
}

/// Precomputed names, so changing a proposed limit allocates nothing.
#[derive(Debug, Clone, PartialEq)]
struct ComponentKeys {
    limit_mw: String,
    delta_power_w: String,
    baseline_mw: Option<f64>,
}

/// The current state (the frame as sampled) and the proposed state (the frame with the
/// limits the tick has allowed so far) that contracts are checked against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryEnv {
    current: Env,
    proposed: Env,
    keys: BTreeMap<String, ComponentKeys>,
}

impl TelemetryEnv {
    /// The pair for a new tick: current from `frame`, proposed from `frame` plus the
    /// limits already planned for this tick (often none).
    pub fn new(frame: &TelemetryFrame, planned_limits_mw: &BTreeMap<String, u64>) -> TelemetryEnv {
        let keys = frame
            .components
            .iter()
            .map(|component| {
                let id = &component.id;
                let keys = ComponentKeys {
                    limit_mw: format!("{id}.limit_mw"),
                    delta_power_w: format!("{id}.delta_power_w"),
                    baseline_mw: baseline_mw(component),
                };
                (id.clone(), keys)
            })
            .collect();
        TelemetryEnv {
            current: env_from_telemetry(frame, &BTreeMap::new()),
            proposed: env_from_telemetry(frame, planned_limits_mw),
            keys,
        }
    }

    pub fn current(&self) -> &Env {
        &self.current
    }

    pub fn proposed(&self) -> &Env {
        &self.proposed
    }

    /// Sets a value in both states: a constant from config (such as `gpu0.r_th`) or a
    /// reading from outside the frame.
    pub fn set_constant(&mut self, name: &str, value: f64) {
        self.current.set_scalar(name, value);
        self.proposed.set_scalar(name, value);
    }

    /// Whether the frame had this component.
    pub fn has_component(&self, component: &str) -> bool {
        self.keys.contains_key(component)
    }

    /// The proposed limit of a component, in mW (`None` when unknown or not a component).
    pub fn proposed_limit_mw(&self, component: &str) -> Option<f64> {
        let keys = self.keys.get(component)?;
        self.proposed.scalar(&keys.limit_mw)
    }

    /// Sets (or, with `None`, forgets) the proposed limit of a component, keeping
    /// `<id>.limit_mw`, `<id>.delta_power_w` and `power.limit_mw[<id>]` in step. Returns
    /// false, changing nothing, when the frame had no such component.
    pub fn set_proposed_limit(&mut self, component: &str, limit_mw: Option<f64>) -> bool {
        let Some(keys) = self.keys.get(component) else {
            return false;
        };
        match limit_mw {
            Some(limit) => {
                self.proposed.set_scalar(&keys.limit_mw, limit);
                match keys.baseline_mw {
                    Some(base) => self
                        .proposed
                        .set_scalar(&keys.delta_power_w, (limit - base) / 1000.0),
                    None => {
                        self.proposed.remove_scalar(&keys.delta_power_w);
                    }
                }
            }
            None => {
                self.proposed.remove_scalar(&keys.limit_mw);
                self.proposed.remove_scalar(&keys.delta_power_w);
            }
        }
        self.proposed
            .set_list_item(LIST_LIMIT_MW, component, limit_mw);
        true
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{ComponentKind, NodeTelemetry};

    use super::*;
    use crate::contract::Contract;

    fn frame() -> TelemetryFrame {
        let component = |id: &str, kind, temp_mc, power_mw, limit_mw| ComponentTelemetry {
            id: id.into(),
            kind,
            utilization_permille: 500,
            power_mw: Some(power_mw),
            temp_mc,
            t_max_mc: Some(95_000),
            limit_mw: Some(limit_mw),
            limit_min_mw: Some(50_000),
            limit_max_mw: Some(300_000),
        };
        TelemetryFrame {
            components: vec![
                component("cpu", ComponentKind::Cpu, Some(70_000), 60_000, 100_000),
                component("gpu0", ComponentKind::Gpu, None, 150_000, 200_000),
            ],
            node: NodeTelemetry {
                draw_mw: Some(210_000),
                cap_mw: Some(350_000),
            },
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn a_component_without_a_power_limit_is_no_member_of_the_limit_list() {
        let mut frame = frame();
        frame.components[0].limit_mw = None;
        let env = env_from_telemetry(&frame, &BTreeMap::new());
        let members: Vec<(&str, Option<f64>)> = env.list(LIST_LIMIT_MW).unwrap().collect();
        assert_eq!(members, vec![("gpu0", Some(200_000.0))]);
        let schema = schema_for_components(["cpu", "gpu0"]);
        let cap = Contract::parse("cap", "sum(power.limit_mw) <= node.cap_mw", &schema).unwrap();
        assert!(cap.check(&env).is_ok());
        assert_eq!(env.list_item(LIST_DRAW_MW, "cpu"), Some(Some(60_000.0)));
    }

    #[test]
    fn env_carries_units_and_leaves_unknown_readings_missing() {
        let proposed = BTreeMap::from([("gpu0".to_owned(), 230_000)]);
        let env = env_from_telemetry(&frame(), &proposed);
        assert_eq!(env.scalar("cpu.temp_c"), Some(70.0));
        assert_eq!(env.scalar("gpu0.temp_c"), None);
        assert_eq!(env.scalar("cpu.power_w"), Some(60.0));
        assert_eq!(env.scalar("cpu.util"), Some(0.5));
        assert_eq!(env.scalar("gpu0.limit_mw"), Some(230_000.0));
        assert_eq!(env.scalar("gpu0.delta_power_w"), Some(30.0));
        assert_eq!(env.scalar("cpu.delta_power_w"), Some(0.0));
        assert_eq!(env.scalar("node.cap_mw"), Some(350_000.0));
        let limits: Vec<_> = env.list(LIST_LIMIT_MW).unwrap().collect();
        assert_eq!(
            limits,
            vec![("cpu", Some(100_000.0)), ("gpu0", Some(230_000.0))]
        );
    }

    #[test]
    fn schema_and_env_agree_for_the_design_examples() {
        let schema = schema_for_components(["cpu", "gpu0"]);
        let contract = Contract::parse(
            "examples",
            "sum(power.limit_mw) <= node.cap_mw and cpu.temp_c < 85 \
             and gpu0.temp_c + 0.25 * gpu0.delta_power_w < gpu0.t_max_c - 5",
            &schema,
        )
        .unwrap();
        let report = contract.evaluate(&env_from_telemetry(&frame(), &BTreeMap::new()));
        let outcomes: Vec<_> = report.clauses.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            vec![
                crate::ClauseOutcome::Holds { margin: 50_000.0 },
                crate::ClauseOutcome::Holds { margin: 15.0 },
                crate::ClauseOutcome::Missing {
                    variable: "gpu0.temp_c".into()
                },
            ]
        );
    }

    #[test]
    fn proposed_limits_move_the_scalar_the_delta_and_the_list_together() {
        let mut env = TelemetryEnv::new(&frame(), &BTreeMap::new());
        assert!(env.set_proposed_limit("gpu0", Some(260_000.0)));
        assert_eq!(env.proposed().scalar("gpu0.limit_mw"), Some(260_000.0));
        assert_eq!(env.proposed().scalar("gpu0.delta_power_w"), Some(60.0));
        assert_eq!(
            env.proposed().list_item(LIST_LIMIT_MW, "gpu0"),
            Some(Some(260_000.0))
        );
        assert_eq!(env.current().scalar("gpu0.limit_mw"), Some(200_000.0));
        assert!(env.set_proposed_limit("gpu0", None));
        assert_eq!(env.proposed_limit_mw("gpu0"), None);
        assert_eq!(env.proposed().list_item(LIST_LIMIT_MW, "gpu0"), Some(None));
        assert!(!env.set_proposed_limit("npu0", Some(1.0)));
    }
}
