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

/// Where `limit_mw` and `delta_power_w` sit in [`COMPONENT_VARIABLES`].
const LIMIT_MW: usize = 3;
const DELTA_POWER_W: usize = 6;

/// A component's variables, in the order of [`COMPONENT_VARIABLES`] (`None`: missing),
/// with `proposed_mw` standing in for its current limit where given.
fn component_values(component: &ComponentTelemetry, proposed_mw: Option<f64>) -> [Option<f64>; 8] {
    let limit = proposed_mw.or(component.limit_mw.map(mw));
    let delta_w = match proposed_mw {
        None => Some(0.0),
        Some(proposed) => baseline_mw(component).map(|base| (proposed - base) / 1000.0),
    };
    [
        component.temp_mc.map(celsius),
        component.t_max_mc.map(celsius),
        component.power_mw.map(|p| mw(p) / 1000.0),
        limit,
        component.limit_min_mw.map(mw),
        component.limit_max_mw.map(mw),
        delta_w,
        Some(f64::from(component.utilization_permille) / 1000.0),
    ]
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
        let proposed = proposed_limits_mw.get(id).copied().map(mw);
        let values = component_values(component, proposed);
        for (suffix, value) in COMPONENT_VARIABLES.iter().zip(values) {
            if let Some(value) = value {
                env.set_scalar(&format!("{id}.{suffix}"), value);
            }
        }
        // A component with no power limit at all (a CPU without RAPL) is not
        // power-managed, so it is no member of the list rather than a missing one.
        let limit = values[LIMIT_MW];
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

/// One component of the last frame: its variable names, built once per component set
/// so that a tick with the same components formats and allocates none.
#[derive(Debug, Clone, PartialEq)]
struct ComponentKeys {
    id: String,
    /// `<id>.<suffix>` for each suffix of [`COMPONENT_VARIABLES`], in that order.
    names: [String; 8],
    /// What a proposed limit is measured against for `delta_power_w`.
    baseline_mw: Option<f64>,
}

impl ComponentKeys {
    fn new(component: &ComponentTelemetry) -> ComponentKeys {
        let id = &component.id;
        ComponentKeys {
            id: id.clone(),
            names: COMPONENT_VARIABLES.map(|suffix| format!("{id}.{suffix}")),
            baseline_mw: baseline_mw(component),
        }
    }

    /// Writes this component's values into an env that already holds the values of a
    /// frame with the same components: each variable is overwritten, or removed where
    /// it is missing now, so the env ends as [`env_from_telemetry`] would build it.
    fn overwrite(&self, env: &mut Env, component: &ComponentTelemetry, proposed_mw: Option<f64>) {
        let values = component_values(component, proposed_mw);
        for (name, value) in self.names.iter().zip(values) {
            match value {
                Some(value) => env.set_scalar(name, value),
                None => {
                    env.remove_scalar(name);
                }
            }
        }
        match values[LIMIT_MW] {
            Some(limit) => env.set_list_item(LIST_LIMIT_MW, &self.id, Some(limit)),
            None => {
                env.remove_list_item(LIST_LIMIT_MW, &self.id);
            }
        }
        env.set_list_item(LIST_DRAW_MW, &self.id, component.power_mw.map(mw));
    }
}

/// Overwrites (or removes, where the frame lacks them) the node variables.
fn overwrite_node(env: &mut Env, frame: &TelemetryFrame) {
    for (name, value) in [
        (NODE_CAP_MW, frame.node.cap_mw),
        (NODE_DRAW_MW, frame.node.draw_mw),
    ] {
        match value {
            Some(value) => env.set_scalar(name, mw(value)),
            None => {
                env.remove_scalar(name);
            }
        }
    }
}

/// The current state (the frame as sampled) and the proposed state (the frame with the
/// limits the tick has allowed so far) that contracts are checked against.
///
/// # Invariants
/// - after [`TelemetryEnv::update`], both envs hold exactly what [`TelemetryEnv::new`]
///   builds from the same arguments, plus the constants set so far
/// - `reusable` only while `components` lists the last frame's components, in frame
///   order, and their ids are distinct
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryEnv {
    current: Env,
    proposed: Env,
    /// The last frame's components in frame order.
    components: Vec<ComponentKeys>,
    /// Whether the next frame with the same component ids can be written over the envs
    /// in place (false before the first frame, and when ids repeat: then the later
    /// reading wins only where it is known, which only a rebuild reproduces).
    reusable: bool,
    /// Values from outside the frame ([`TelemetryEnv::set_constant`]), written over
    /// the frame's at every update.
    constants: BTreeMap<String, f64>,
}

impl TelemetryEnv {
    /// The pair for a new tick: current from `frame`, proposed from `frame` plus the
    /// limits already planned for this tick (often none).
    pub fn new(frame: &TelemetryFrame, planned_limits_mw: &BTreeMap<String, u64>) -> TelemetryEnv {
        let components: Vec<ComponentKeys> =
            frame.components.iter().map(ComponentKeys::new).collect();
        let reusable = components
            .iter()
            .enumerate()
            .all(|(at, keys)| components[..at].iter().all(|other| other.id != keys.id));
        TelemetryEnv {
            current: env_from_telemetry(frame, &BTreeMap::new()),
            proposed: env_from_telemetry(frame, planned_limits_mw),
            components,
            reusable,
            constants: BTreeMap::new(),
        }
    }

    /// Starts the next tick: the same envs as `TelemetryEnv::new(frame,
    /// planned_limits_mw)` with the constants set so far, but when the frame has the
    /// same components as the last one (every tick, in practice), written over the old
    /// envs in place, reusing their names and allocations.
    pub fn update(&mut self, frame: &TelemetryFrame, planned_limits_mw: &BTreeMap<String, u64>) {
        let same_components = self.reusable
            && self.components.iter().map(|keys| keys.id.as_str()).eq(frame
                .components
                .iter()
                .map(|component| component.id.as_str()));
        if same_components {
            for (keys, component) in self.components.iter_mut().zip(&frame.components) {
                keys.baseline_mw = baseline_mw(component);
                keys.overwrite(&mut self.current, component, None);
                let proposed = planned_limits_mw.get(&keys.id).copied().map(mw);
                keys.overwrite(&mut self.proposed, component, proposed);
            }
            overwrite_node(&mut self.current, frame);
            overwrite_node(&mut self.proposed, frame);
        } else {
            let constants = std::mem::take(&mut self.constants);
            *self = TelemetryEnv::new(frame, planned_limits_mw);
            self.constants = constants;
        }
        for (name, value) in &self.constants {
            self.current.set_scalar(name, *value);
            self.proposed.set_scalar(name, *value);
        }
    }

    pub fn current(&self) -> &Env {
        &self.current
    }

    pub fn proposed(&self) -> &Env {
        &self.proposed
    }

    /// Sets a value in both states, now and at every later [`TelemetryEnv::update`]: a
    /// constant from config (such as `gpu0.r_th`) or a reading from outside the frame.
    pub fn set_constant(&mut self, name: &str, value: f64) {
        self.current.set_scalar(name, value);
        self.proposed.set_scalar(name, value);
        match self.constants.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.constants.insert(name.to_owned(), value);
            }
        }
    }

    /// The last frame's entry for a component; the later one where its id repeats.
    fn keys(&self, component: &str) -> Option<&ComponentKeys> {
        self.components
            .iter()
            .rev()
            .find(|keys| keys.id == component)
    }

    /// Whether the frame had this component.
    pub fn has_component(&self, component: &str) -> bool {
        self.keys(component).is_some()
    }

    /// The proposed limit of a component, in mW (`None` when unknown or not a component).
    pub fn proposed_limit_mw(&self, component: &str) -> Option<f64> {
        let keys = self.keys(component)?;
        self.proposed.scalar(&keys.names[LIMIT_MW])
    }

    /// Sets (or, with `None`, forgets) the proposed limit of a component, keeping
    /// `<id>.limit_mw`, `<id>.delta_power_w` and `power.limit_mw[<id>]` in step. Returns
    /// false, changing nothing, when the frame had no such component.
    pub fn set_proposed_limit(&mut self, component: &str, limit_mw: Option<f64>) -> bool {
        let Some(keys) = self
            .components
            .iter()
            .rev()
            .find(|keys| keys.id == component)
        else {
            return false;
        };
        let (limit_name, delta_name) = (&keys.names[LIMIT_MW], &keys.names[DELTA_POWER_W]);
        match limit_mw {
            Some(limit) => {
                self.proposed.set_scalar(limit_name, limit);
                match keys.baseline_mw {
                    Some(base) => self
                        .proposed
                        .set_scalar(delta_name, (limit - base) / 1000.0),
                    None => {
                        self.proposed.remove_scalar(delta_name);
                    }
                }
            }
            None => {
                self.proposed.remove_scalar(limit_name);
                self.proposed.remove_scalar(delta_name);
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
    use proptest::prelude::*;

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
            progress_micro: None,
            work_left_micro: None,
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

    #[test]
    fn the_index_constants_name_the_limit_and_the_delta() {
        assert_eq!(COMPONENT_VARIABLES[LIMIT_MW], "limit_mw");
        assert_eq!(COMPONENT_VARIABLES[DELTA_POWER_W], "delta_power_w");
    }

    #[test]
    fn an_update_with_the_same_components_equals_a_rebuild() {
        let mut env = TelemetryEnv::new(&frame(), &BTreeMap::new());
        env.set_constant("gpu0.r_th", 0.25);
        assert!(env.set_proposed_limit("gpu0", Some(260_000.0)));
        let mut next = frame();
        next.components[0].temp_mc = None;
        next.components[1].limit_mw = None;
        next.node.cap_mw = None;
        let planned = BTreeMap::from([("cpu".to_owned(), 90_000)]);
        env.update(&next, &planned);
        let mut rebuilt = TelemetryEnv::new(&next, &planned);
        rebuilt.set_constant("gpu0.r_th", 0.25);
        assert_eq!(env.current(), rebuilt.current());
        assert_eq!(env.proposed(), rebuilt.proposed());
        assert_eq!(env.proposed().scalar("cpu.temp_c"), None);
        assert_eq!(env.proposed().scalar("gpu0.r_th"), Some(0.25));
        assert_eq!(env.proposed().list_item(LIST_LIMIT_MW, "gpu0"), None);
        assert_eq!(env.proposed().scalar("cpu.delta_power_w"), Some(-10.0));
    }

    /// One tick's input to [`TelemetryEnv::update`], and what happens during the tick.
    #[derive(Debug, Clone)]
    struct Step {
        frame: TelemetryFrame,
        planned: BTreeMap<String, u64>,
        constants: Vec<(&'static str, f64)>,
        proposals: Vec<(&'static str, Option<f64>)>,
    }

    const IDS: [&str; 3] = ["cpu", "gpu0", "gpu1"];

    fn component(
        id: impl Strategy<Value = &'static str>,
    ) -> impl Strategy<Value = ComponentTelemetry> {
        let reading = || proptest::option::of(0u64..400_000);
        (
            id,
            0u16..=1000,
            reading(),
            proptest::option::of(20_000i32..100_000),
            proptest::option::of(80_000i32..100_000),
            reading(),
            reading(),
            reading(),
        )
            .prop_map(
                |(id, util, power, temp, t_max, limit, limit_min, limit_max)| ComponentTelemetry {
                    id: id.to_owned(),
                    kind: ComponentKind::Gpu,
                    utilization_permille: util,
                    power_mw: power,
                    temp_mc: temp,
                    t_max_mc: t_max,
                    limit_mw: limit,
                    limit_min_mw: limit_min,
                    limit_max_mw: limit_max,
                    progress_micro: None,
                    work_left_micro: None,
                },
            )
    }

    fn any_id() -> impl Strategy<Value = &'static str> {
        prop::sample::select(IDS.to_vec())
    }

    /// A tick whose frame mostly has the components `ids` (new readings), sometimes
    /// others.
    fn step(ids: Vec<&'static str>) -> impl Strategy<Value = Step> {
        let same: Vec<_> = ids
            .into_iter()
            .map(|id| component(Just(id)).boxed())
            .collect();
        (
            same,
            prop::collection::vec(component(any_id()), 0..4),
            prop::bool::weighted(0.2),
            proptest::option::of(0u64..500_000),
            proptest::option::of(0u64..500_000),
            prop::collection::btree_map(any_id().prop_map(str::to_owned), 0u64..400_000, 0..3),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["gpu0.r_th", "cpu.temp_c", "gpu1.limit_mw"]),
                    -5.0f64..5.0,
                ),
                0..2,
            ),
            prop::collection::vec((any_id(), proptest::option::of(0.0f64..400_000.0)), 0..3),
        )
            .prop_map(
                |(same, other, use_other, cap, draw, planned, constants, proposals)| Step {
                    frame: TelemetryFrame {
                        components: if use_other { other } else { same },
                        node: NodeTelemetry {
                            draw_mw: draw,
                            cap_mw: cap,
                        },
                        ..TelemetryFrame::default()
                    },
                    planned,
                    constants,
                    proposals,
                },
            )
    }

    /// Ticks over one set of component ids (which may repeat an id).
    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(any_id(), 0..4)
            .prop_flat_map(|ids| prop::collection::vec(step(ids), 1..12))
    }

    fn assert_same(env: &TelemetryEnv, rebuilt: &TelemetryEnv) -> Result<(), TestCaseError> {
        prop_assert_eq!(env.current(), rebuilt.current());
        prop_assert_eq!(env.proposed(), rebuilt.proposed());
        for id in IDS {
            prop_assert_eq!(env.has_component(id), rebuilt.has_component(id));
            prop_assert_eq!(env.proposed_limit_mw(id), rebuilt.proposed_limit_mw(id));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// What the guardian did before updates were made in place: a new env every
        /// tick, then the constants, sorted by name.
        #[test]
        fn updating_in_place_equals_rebuilding_every_tick(steps in steps()) {
            let mut env = TelemetryEnv::default();
            let mut constants: BTreeMap<&str, f64> = BTreeMap::new();
            for step in steps {
                env.update(&step.frame, &step.planned);
                let mut rebuilt = TelemetryEnv::new(&step.frame, &step.planned);
                for (name, value) in &constants {
                    rebuilt.set_constant(name, *value);
                }
                assert_same(&env, &rebuilt)?;
                for (name, value) in step.constants {
                    env.set_constant(name, value);
                    rebuilt.set_constant(name, value);
                    constants.insert(name, value);
                }
                for (id, limit) in step.proposals {
                    prop_assert_eq!(
                        env.set_proposed_limit(id, limit),
                        rebuilt.set_proposed_limit(id, limit)
                    );
                }
                assert_same(&env, &rebuilt)?;
            }
        }
    }
}
