//! The simulated twin: a deterministic model of a machine's CPU and GPU components,
//! driven by a [`Scenario`], behind the same [`crate::Sensors`] and [`crate::Actuator`]
//! traits as the real hardware. It is the instrument every evaluation of GAMESA is
//! measured with; `docs/twin.md` states its physics and `docs/scenarios.md` its input.
//!
//! - [`Scenario`]: the machine, the workload phases, the events and the job (TOML).
//! - [`Twin`]: the pure core (f64 state, no clock), one [`Twin::step`] at a time.
//! - [`Schedule`]: which phases and events are in force at any step, as
//!   [`StepConditions`] (demands, resistances, cap); the twin steps by it.
//! - [`SharedTwin`]: one twin shared by its [`TwinSensors`] (each sample is one step,
//!   reported through the component's sensors: lagged, noisy and quantized as the
//!   scenario says, while the physics uses the true values) and its [`TwinActuator`]
//!   (power limits).
//! - [`TwinReport`] and [`Trace`]: what a run measured, and the per-step series.
//!
//! ```
//! use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
//! use gamesa_hw::{Actuator, Sensors};
//! use gamesa_proto::{Actuation, Tick};
//!
//! let scenario = Scenario::from_toml_str(r#"
//!     name = "doc"
//!     seed = 1
//!     duration_s = 2
//!     step_ms = 100
//!     ambient_c = 25
//!     [node]
//!     cap_w = 300
//!     [components.gpu0]
//!     kind = "gpu"
//!     tdp_w = 300
//!     idle_w = 30
//!     min_w = 100
//!     max_w = 350
//!     r_c_per_w = 0.2
//!     c_j_per_c = 150
//!     t_max_c = 87
//!     [[phases]]
//!     at_s = 0
//!     gpu0 = 1.0
//! "#).unwrap();
//! let twin = SharedTwin::new(Twin::new(scenario));
//! let (mut sensors, mut actuator) = (twin.sensors(), twin.actuator());
//! actuator
//!     .apply(&Actuation::PowerLimit { component: "gpu0".into(), limit_mw: 200_000 })
//!     .unwrap();
//! let frame = sensors.sample(Tick(1)).frame;
//! assert_eq!(frame.component("gpu0").unwrap().power_mw, Some(200_000));
//! assert_eq!(twin.report().steps, 1);
//! ```

mod actuator;
mod cap_window;
mod model;
pub mod physics;
mod report;
mod rng;
mod scenario;
mod schedule;
mod sensor_model;
mod sensors;
mod shared;
mod trace;

pub use actuator::TwinActuator;
pub use cap_window::{CapCheck, CapWindow, OVER_CAP_TOLERANCE};
pub use model::Twin;
pub use report::{ComponentReport, TwinReport};
pub use scenario::{
    ComponentSpec, Event, EventKind, MAX_DRAWN_PHASES, MAX_DURATION_S, MAX_SENSOR_LAG_TICKS,
    MAX_STEP_MS, Phase, Position, Scenario, ScenarioError,
};
pub use schedule::{Schedule, StepConditions};
pub use sensors::{TwinSensors, frame_of};
pub use shared::SharedTwin;
pub use trace::{Trace, TraceComponent, TraceStep};
