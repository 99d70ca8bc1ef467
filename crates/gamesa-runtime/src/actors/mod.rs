//! The actors of the runtime. Each owns one core (or one piece of hardware I/O),
//! receives a message, calls the core, and returns what the core returned.

pub mod actuator;
pub mod agent;
pub mod exchange;
pub mod guardian;
pub mod scheduler;
pub mod sensor;

pub use actuator::ActuatorActor;
pub use agent::{AgentActor, AgentFailure};
pub use exchange::ExchangeActor;
pub use guardian::GuardianActor;
pub use scheduler::SchedulerActor;
pub use sensor::SensorActor;
