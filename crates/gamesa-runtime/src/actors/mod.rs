//! The actors of the runtime. Each owns one core (or one piece of hardware I/O),
//! receives a message, calls the core, and returns what the core returned.

pub mod actuator;
pub mod agent;
pub mod exchange;
pub mod guardian;
pub mod scheduler;
pub mod sensor;

pub use actuator::ActuatorActor;
pub use agent::AgentActor;
pub use exchange::ExchangeActor;
pub use guardian::GuardianActor;
pub use scheduler::SchedulerActor;
pub use sensor::SensorActor;

/// Stops the actor that receives it, as a panic in it would: for tests of what a dead
/// actor leaves working.
#[cfg(test)]
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct Halt;

#[cfg(test)]
macro_rules! halts {
    ($($actor:ty),*) => {
        $(impl actix::Handler<Halt> for $actor {
            type Result = ();

            fn handle(&mut self, _: Halt, context: &mut Self::Context) {
                actix::ActorContext::stop(context);
            }
        })*
    };
}

#[cfg(test)]
halts!(ExchangeActor, GuardianActor, ActuatorActor);
