//! The twin's [`Sensors`]: each sample advances the model by one step, then reports it
//! in the same frame shape the Linux sensors produce.

use gamesa_proto::{
    ComponentTelemetry, NodeTelemetry, SourceStatus, TelemetryFrame, TemperatureTelemetry, Tick,
};

use super::{SharedTwin, Twin};
use crate::{Sample, Sensors};

/// Telemetry from the twin. Build it with [`SharedTwin::sensors`].
#[derive(Debug, Clone)]
pub struct TwinSensors {
    twin: SharedTwin,
}

impl TwinSensors {
    pub fn new(twin: SharedTwin) -> TwinSensors {
        TwinSensors { twin }
    }
}

impl Sensors for TwinSensors {
    /// Advances the twin by one step of `step_ms` under the limits in force, then reports
    /// that step. Once the scenario's duration is covered the twin no longer moves: the
    /// frame repeats the last step with `interval_ms = 0` and says so in `sources`.
    fn sample(&mut self, tick: Tick) -> Sample {
        let mut twin = self.twin.lock();
        let advanced = twin.step();
        Sample {
            frame: frame_of(&twin, tick, advanced),
            errors: Vec::new(),
        }
    }
}

/// The frame describing the twin's last step.
pub fn frame_of(twin: &Twin, tick: Tick, advanced: bool) -> TelemetryFrame {
    let components: Vec<ComponentTelemetry> =
        twin.components
            .iter()
            .map(|component| ComponentTelemetry {
                id: component.name.clone(),
                kind: component.kind,
                // A busy-waiting part reports more than it does (`util_bias`).
                utilization_permille: ((component.demand + component.util_bias).clamp(0.0, 1.0)
                    * 1000.0)
                    .round() as u16,
                // What the sensors report (lagged, noisy, quantized as the scenario says),
                // not what the physics did.
                power_mw: Some(watts_to_mw(component.reported.power_w)),
                temp_mc: Some(celsius_to_mc(component.reported.temp_c)),
                t_max_mc: Some(celsius_to_mc(component.constants.t_max_c)),
                limit_mw: Some(watts_to_mw(component.limit_w)),
                limit_min_mw: Some(watts_to_mw(component.constants.min_w)),
                limit_max_mw: Some(watts_to_mw(component.constants.max_w)),
                // The component's own work, before its weight says how much it counts.
                progress_micro: Some(
                    (component.work / component.constants.weight * 1e6).round() as u64
                ),
                // The workload knows its job's size, as a training run knows its steps.
                work_left_micro: component
                    .work_left()
                    .map(|left| (left / component.constants.weight * 1e6).round() as u64),
            })
            .collect();
    let temperatures = twin
        .components
        .iter()
        .map(|component| TemperatureTelemetry {
            id: format!("twin/{}", component.name),
            label: Some(component.name.clone()),
            temp_mc: celsius_to_mc(component.reported.temp_c),
            critical_mc: Some(celsius_to_mc(component.constants.t_max_c)),
        })
        .collect();
    // The sum of the reported (noisy, lagged) figures, so agents see draw == Σ power_mw
    // exactly, as a node meter summing the same sensors would.
    let draw_mw = components
        .iter()
        .filter_map(|component| component.power_mw)
        .sum();
    TelemetryFrame {
        tick,
        interval_ms: if advanced {
            twin.scenario().step_ms()
        } else {
            0
        },
        temperatures,
        components,
        node: NodeTelemetry {
            draw_mw: Some(draw_mw),
            cap_mw: Some(watts_to_mw(twin.cap_w)),
        },
        sources: vec![SourceStatus {
            source: "twin".into(),
            available: true,
            detail: (!advanced).then(|| {
                format!(
                    "scenario `{}` finished at {} s; the twin no longer advances",
                    twin.scenario().name(),
                    twin.time_s()
                )
            }),
        }],
        ..TelemetryFrame::default()
    }
}

/// Watts to milliwatts, rounded; the scenario checks keep every figure non-negative.
pub(super) fn watts_to_mw(watts: f64) -> u64 {
    (watts * 1000.0).round().max(0.0) as u64
}

/// °C to milli-°C, rounded (saturating, as `as` does, far outside any real range).
fn celsius_to_mc(celsius: f64) -> i32 {
    (celsius * 1000.0).round() as i32
}

#[cfg(test)]
mod tests {
    use gamesa_proto::ComponentKind;

    use super::*;
    use crate::twin::Scenario;

    fn twin() -> SharedTwin {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/two_gpus.toml");
        SharedTwin::new(Twin::new(Scenario::load(path).unwrap()))
    }

    #[test]
    fn each_sample_is_one_step_reported_in_integer_units() {
        let shared = twin();
        let mut sensors = shared.sensors();
        let Sample { frame, errors } = sensors.sample(Tick(7));
        assert!(errors.is_empty());
        assert_eq!(frame.tick, Tick(7));
        assert_eq!(frame.interval_ms, 100);
        let ids: Vec<&str> = frame.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["cpu", "gpu0", "gpu1"]);

        // two_gpus starts with cpu 0.4, gpu0 0.9, gpu1 0.9 at the initial limits
        // (125 W, 300 W, 300 W): the CPU draws 15 + 0.4 · min(135, 110 / 0.4) = 69 W.
        let cpu = frame.component("cpu").unwrap();
        assert_eq!(cpu.kind, ComponentKind::Cpu);
        assert_eq!(cpu.utilization_permille, 400);
        assert_eq!(cpu.power_mw, Some(69_000));
        assert_eq!(cpu.limit_mw, Some(125_000));
        assert_eq!(cpu.limit_min_mw, Some(30_000));
        assert_eq!(cpu.limit_max_mw, Some(150_000));
        assert_eq!(cpu.t_max_mc, Some(95_000));
        // After one step of 0.1 s: 25 + 0.1 · (69 − 0) / 60 = 25.115 °C.
        assert_eq!(cpu.temp_mc, Some(25_115));
        // Each GPU: 30 + 0.9 · min(320, 270 / 0.9) = 300 W.
        let gpu0 = frame.component("gpu0").unwrap();
        assert_eq!(
            (gpu0.kind, gpu0.power_mw),
            (ComponentKind::Gpu, Some(300_000))
        );

        assert_eq!(frame.node.draw_mw, Some(669_000));
        assert_eq!(frame.node.cap_mw, Some(650_000));
        assert_eq!(frame.temperatures.len(), 3);
        assert_eq!(frame.temperatures[0].id, "twin/cpu");
        assert_eq!(frame.temperatures[0].temp_mc, 25_115);
        assert_eq!(frame.temperatures[0].critical_mc, Some(95_000));
        assert_eq!(frame.sources.len(), 1);
        assert_eq!(frame.sources[0].source, "twin");
        assert!(frame.sources[0].available);
        assert_eq!(frame.sources[0].detail, None);
        assert_eq!(shared.report().steps, 1);
    }

    #[test]
    fn after_the_scenario_ends_samples_repeat_the_last_step() {
        let shared = twin();
        shared.with(Twin::run_to_end);
        let mut sensors = shared.sensors();
        let frame = sensors.sample(Tick(1)).frame;
        assert_eq!(frame.interval_ms, 0);
        assert!(
            frame.sources[0]
                .detail
                .as_deref()
                .is_some_and(|detail| detail.contains("finished at 300 s"))
        );
        assert_eq!(shared.report().steps, 3_000);
    }

    /// `two_gpus.toml` with `extra` lines added to every component (sensor keys).
    fn two_gpus_with(extra: &str) -> Twin {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/two_gpus.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.replace("t_max_c = ", &format!("{extra}\nt_max_c = "));
        let mut twin = Twin::new(Scenario::from_toml_str(&text).unwrap());
        twin.record_trace();
        twin
    }

    const NOISY: &str =
        "temp_noise_c = 1.5\npower_noise_w = 8\nsensor_lag_ticks = 4\ntemp_step_c = 1";

    /// Every frame of a run with limits moved mid-run, and the report and trace bytes.
    fn run(mut twin: Twin) -> (Vec<TelemetryFrame>, Vec<u8>, Vec<u8>) {
        let mut frames = Vec::new();
        for step in 0..600_u64 {
            if step % 40 == 0 {
                twin.set_limit_w(1, 150.0 + (step % 200) as f64);
            }
            let advanced = twin.step();
            frames.push(frame_of(&twin, Tick(step), advanced));
        }
        let report = serde_json::to_vec(&twin.report()).unwrap();
        let trace = serde_json::to_vec(twin.trace().unwrap()).unwrap();
        (frames, report, trace)
    }

    #[test]
    fn sensor_noise_and_lag_change_the_frame_and_never_the_report_or_trace() {
        let (exact_frames, exact_report, exact_trace) = run(two_gpus_with(""));
        let (noisy_frames, noisy_report, noisy_trace) = run(two_gpus_with(NOISY));
        assert_eq!(exact_report, noisy_report);
        assert_eq!(exact_trace, noisy_trace);
        assert_ne!(exact_frames, noisy_frames);
        for (exact, noisy) in exact_frames.iter().zip(&noisy_frames) {
            for (exact, noisy) in exact.components.iter().zip(&noisy.components) {
                // Utilization, limit and progress stay current and exact.
                assert_eq!(exact.utilization_permille, noisy.utilization_permille);
                assert_eq!(exact.limit_mw, noisy.limit_mw);
                assert_eq!(exact.progress_micro, noisy.progress_micro);
                // Whole degrees.
                assert_eq!(noisy.temp_mc.unwrap() % 1000, 0);
            }
            let sum: u64 = noisy.components.iter().filter_map(|c| c.power_mw).sum();
            assert_eq!(noisy.node.draw_mw, Some(sum));
            assert_eq!(
                noisy.temperatures[0].temp_mc,
                noisy.components[0].temp_mc.unwrap()
            );
        }
    }

    #[test]
    fn a_lagged_frame_shows_the_power_of_n_steps_ago() {
        let (exact, _, _) = run(two_gpus_with(""));
        let (lagged, _, _) = run(two_gpus_with("sensor_lag_ticks = 4"));
        for step in 4..exact.len() {
            for index in 0..3 {
                assert_eq!(
                    lagged[step].components[index].power_mw,
                    exact[step - 4].components[index].power_mw
                );
                assert_eq!(
                    lagged[step].components[index].temp_mc,
                    exact[step - 4].components[index].temp_mc
                );
            }
        }
        // Before that, the start: idle power at ambient.
        assert_eq!(lagged[0].components[0].power_mw, Some(15_000));
        assert_eq!(lagged[0].components[0].temp_mc, Some(25_000));
    }

    #[test]
    fn the_same_noisy_scenario_gives_the_same_frames() {
        let (first, _, _) = run(two_gpus_with(NOISY));
        let (second, _, _) = run(two_gpus_with(NOISY));
        assert_eq!(
            serde_json::to_vec(&first).unwrap(),
            serde_json::to_vec(&second).unwrap()
        );
        let other_seed = {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/two_gpus.toml");
            let text = std::fs::read_to_string(path)
                .unwrap()
                .replace("t_max_c = ", &format!("{NOISY}\nt_max_c = "));
            let seed_line = text.lines().find(|line| line.starts_with("seed")).unwrap();
            let text = text.replacen(seed_line, "seed = 123456", 1);
            let mut twin = Twin::new(Scenario::from_toml_str(&text).unwrap());
            twin.record_trace();
            twin
        };
        let (third, _, _) = run(other_seed);
        assert_ne!(first, third);
    }
}
