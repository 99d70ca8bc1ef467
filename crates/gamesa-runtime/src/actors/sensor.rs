//! The sensor actor: owns the telemetry source (real or twin) and samples it on demand.

use actix::{Actor, Context, Handler, Message};
use gamesa_hw::{Sample, Sensors};
use gamesa_proto::Tick;

pub struct SensorActor {
    sensors: Box<dyn Sensors>,
}

impl SensorActor {
    pub fn new(sensors: Box<dyn Sensors>) -> SensorActor {
        SensorActor { sensors }
    }
}

impl std::fmt::Debug for SensorActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorActor").finish_non_exhaustive()
    }
}

impl Actor for SensorActor {
    type Context = Context<Self>;
}

/// Take one sample for `tick`.
#[derive(Debug, Message)]
#[rtype(result = "Sample")]
pub struct TakeSample {
    pub tick: Tick,
}

impl Handler<TakeSample> for SensorActor {
    type Result = actix::MessageResult<TakeSample>;

    fn handle(&mut self, message: TakeSample, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.sensors.sample(message.tick))
    }
}
