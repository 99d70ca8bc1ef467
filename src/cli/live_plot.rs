//! `gamesa send watch --plot OUT.svg --seconds N`: a live run's limits, draw,
//! temperatures and power price, read once a tick over the ingress socket for N
//! seconds and drawn as `gamesa sim --plot` draws a simulated one.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use gamesa_hw::twin::{Trace, TraceComponent, TraceStep};
use gamesa_proto::{Resource, Tick};
use gamesa_sim::RunTrace;
use gamesa_wire::{
    BookResult, Client, QueryName, QueryRequest, Request, TelemetryResult, client::Duplex,
};

/// How often the daemon is asked: twice a tick at the default 10 Hz; a tick read
/// twice is kept once.
const POLL: Duration = Duration::from_millis(50);

/// Records `seconds` of the daemon's ticks (`query:telemetry` and `query:book`), then
/// writes the SVG to `out`. Returns how many ticks it drew.
pub fn record_and_plot<S: Duplex>(
    client: &mut Client<S>,
    seconds: f64,
    out: &Path,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds.max(0.0));
    let mut recording = Recording::default();
    while Instant::now() < deadline {
        let telemetry: TelemetryResult = client.call_as(&Request::query(QueryName::Telemetry))?;
        if let (Some(tick), Some(frame)) = (telemetry.tick, telemetry.frame)
            && recording.last_tick != Some(tick)
        {
            let book: BookResult = client.call_as(&Request::Query(QueryRequest {
                resource: Some(Resource::PowerBudgetMw),
                levels: Some(1),
                ..QueryRequest::new(QueryName::Book)
            }))?;
            recording.add(
                tick,
                started.elapsed().as_secs_f64(),
                &frame,
                book.last_price.map(|price| price.0 as f64),
            );
        }
        std::thread::sleep(POLL);
    }
    let ticks = recording.trace.steps.len();
    anyhow::ensure!(
        ticks > 0,
        "no tick was read in {seconds} s: is the daemon ticking?"
    );
    gamesa_sim::plot::write_svg(
        out,
        &RunTrace {
            twin: recording.trace,
            t_max_c: recording.t_max_c,
            power_price: recording.power_price,
        },
        &format!("gamesa, live: {ticks} ticks"),
    )
    .with_context(|| format!("writing {}", out.display()))?;
    Ok(ticks)
}

/// The steps read so far, one per tick, with the components in first-seen order.
#[derive(Default)]
struct Recording {
    trace: Trace,
    t_max_c: Vec<f64>,
    power_price: Vec<Option<f64>>,
    last_tick: Option<Tick>,
}

impl Recording {
    fn add(
        &mut self,
        tick: Tick,
        time_s: f64,
        frame: &gamesa_proto::TelemetryFrame,
        price: Option<f64>,
    ) {
        self.last_tick = Some(tick);
        for component in &frame.components {
            if !self.trace.components.contains(&component.id) {
                self.trace.components.push(component.id.clone());
                self.t_max_c.push(f64::NAN);
            }
        }
        let watts = |mw: Option<u64>| mw.map_or(f64::NAN, |mw| mw as f64 / 1000.0);
        let celsius = |mc: Option<i32>| mc.map_or(f64::NAN, |mc| f64::from(mc) / 1000.0);
        let components = self
            .trace
            .components
            .iter()
            .enumerate()
            .map(
                |(index, id)| match frame.components.iter().find(|c| &c.id == id) {
                    Some(component) => {
                        if let Some(t_max) = component.t_max_mc {
                            self.t_max_c[index] = f64::from(t_max) / 1000.0;
                        }
                        TraceComponent {
                            limit_w: watts(component.limit_mw),
                            power_w: watts(component.power_mw),
                            temp_c: celsius(component.temp_mc),
                            demand: f64::from(component.utilization_permille) / 1000.0,
                            throttled: false,
                        }
                    }
                    None => TraceComponent {
                        limit_w: f64::NAN,
                        power_w: f64::NAN,
                        temp_c: f64::NAN,
                        demand: 0.0,
                        throttled: false,
                    },
                },
            )
            .collect();
        self.trace.steps.push(TraceStep {
            time_s,
            cap_w: watts(frame.node.cap_mw),
            draw_w: watts(frame.node.draw_mw),
            over_cap: false,
            components,
        });
        self.power_price.push(price);
    }
}
