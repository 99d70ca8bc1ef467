//! The tick's side of the export pipeline: [`TickSampler`] decides which ticks are
//! traced, [`TickTracer`] hands each sampled tick a [`TickTrace`] (from the pool) and
//! queues it for export when the tick is done.

use std::sync::Arc;

use gamesa_proto::CorrelationId;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};

use super::{
    queue::QueueSender,
    trace::{AttrValue, Phase, TickTrace, TracePool},
};

/// Decides which ticks are traced, and gives each its trace id.
#[derive(Debug, Clone)]
pub struct TickSampler {
    sampler: Arc<Sampler>,
    ids: RandomIdGenerator,
}

impl TickSampler {
    pub fn new(sampler: Sampler) -> TickSampler {
        TickSampler {
            sampler: Arc::new(sampler),
            ids: RandomIdGenerator::default(),
        }
    }

    /// The trace id of the tick when the sampler keeps it. The tick span is a root, so
    /// a parent-based sampler decides with its root sampler.
    pub fn sample(&self) -> Option<TraceId> {
        let trace_id = self.ids.new_trace_id();
        let decision = self
            .sampler
            .should_sample(None, trace_id, "gamesa.tick", &SpanKind::Internal, &[], &[])
            .decision;
        (decision == SamplingDecision::RecordAndSample).then_some(trace_id)
    }
}

/// The tick's side of the export pipeline: samples each tick and queues its trace.
#[derive(Debug, Clone)]
pub struct TickTracer {
    sampler: TickSampler,
    queue: Arc<QueueSender>,
    pool: TracePool,
}

impl TickTracer {
    pub fn new(sampler: TickSampler, queue: Arc<QueueSender>, pool: TracePool) -> TickTracer {
        TickTracer {
            sampler,
            queue,
            pool,
        }
    }

    /// A trace for the tick, when it is sampled.
    pub fn start(&self, tick: u64, correlation: CorrelationId) -> Option<Box<TickTrace>> {
        let trace_id = self.sampler.sample()?;
        let mut trace = match self.pool.take() {
            Some(mut trace) => {
                trace.restart(trace_id, "gamesa.tick");
                trace
            }
            None => Box::new(TickTrace::new(trace_id, "gamesa.tick")),
        };
        trace.attr(Phase::ROOT, "gamesa.tick.seq", tick);
        trace.attr(
            Phase::ROOT,
            "gamesa.correlation_id",
            AttrValue::Correlation(correlation),
        );
        Some(trace)
    }

    /// Ends the root span and queues the tick's spans; never blocks. When the queue
    /// is full they are dropped and counted.
    pub fn ship(&self, mut trace: Box<TickTrace>) {
        trace.end(Phase::ROOT);
        if let Err(dropped) = self.queue.send_tick(trace) {
            self.pool.give(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_decides_per_tick() {
        assert!(TickSampler::new(Sampler::AlwaysOff).sample().is_none());
        let always = TickSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        assert!(always.sample().is_some());
    }
}
