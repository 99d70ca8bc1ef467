//! The `thermal-proportional` baseline: `proportional` (the cap above the minimums shared
//! by utilization) with each limit capped at its component's *learned* thermal limit,
//! the steady-state power that keeps it [`THERMAL_MARGIN_C`] below `t_max`; what the
//! caps leave over goes to the others. What a careful engineer would write in an
//! afternoon, knowing only telemetry and a datasheet's limit range.
//!
//! Each component's thermal resistance, time constant and ambient temperature are
//! learned online from its own temperature and power
//! ([`gamesa_agent::thermal_model::ThermalModel`], recursive least squares on the RC
//! model). The ambient is the learned one once the fit is trusted, else
//! [`ASSUMED_AMBIENT_C`]. Until a component's fit is trusted (its first two seconds or
//! so) its limit is not capped: the guardian's thermal contracts and the thermal agent's
//! safety signal stand guard meanwhile, as they do for every policy. The cap is the
//! steady-state bound `(t_max − margin − ambient) / R`, with no transient allowance: a
//! limit that is safe forever, not just for the next seconds.

use gamesa_agent::{proto::TelemetryFrame, thermal_model::ThermalModel};

use super::{ComponentBounds, proportional};

/// How far below `t_max` each component is held at steady state, in °C: the guardian's
/// thermal contracts refuse raises that would pass `t_max − 2 °C`.
pub const THERMAL_MARGIN_C: f64 = 2.0;

/// The ambient temperature assumed until a component's fit has learned it, in °C.
pub const ASSUMED_AMBIENT_C: f64 = 25.0;

/// The split for `cap_w`: `proportional`'s, with each component's maximum lowered to its
/// thermal limit (never below its minimum) where one is known.
pub fn split(
    cap_w: f64,
    components: &[ComponentBounds],
    utilization: &[f64],
    thermal_limit_w: &[Option<f64>],
) -> Vec<f64> {
    let capped: Vec<ComponentBounds> = components
        .iter()
        .enumerate()
        .map(|(index, component)| {
            let mut capped = component.clone();
            if let Some(limit_w) = thermal_limit_w.get(index).copied().flatten() {
                capped.max_w = component.max_w.min(limit_w).max(component.min_w);
            }
            capped
        })
        .collect();
    proportional::split(cap_w, &capped, utilization)
}

/// The steady-state power that holds a component at `t_max_c − THERMAL_MARGIN_C` with
/// thermal resistance `r_c_per_w` in a room at `ambient_c`.
pub fn thermal_limit_w(t_max_c: f64, ambient_c: f64, r_c_per_w: f64) -> f64 {
    ((t_max_c - THERMAL_MARGIN_C - ambient_c) / r_c_per_w).max(0.0)
}

/// What the baseline learns: one thermal model per component, in component order.
#[derive(Debug, Clone)]
pub struct ThermalProportional {
    components: Vec<ComponentBounds>,
    models: Vec<ThermalModel>,
}

impl ThermalProportional {
    pub fn new(components: Vec<ComponentBounds>) -> ThermalProportional {
        let models = vec![ThermalModel::default(); components.len()];
        ThermalProportional { components, models }
    }

    /// Learns from `frame`, then splits `cap_w`.
    pub fn decide(&mut self, frame: &TelemetryFrame, cap_w: f64) -> Vec<f64> {
        let interval_s = frame.interval_ms as f64 / 1000.0;
        let mut utilization = Vec::with_capacity(self.components.len());
        let mut thermal_limits = Vec::with_capacity(self.components.len());
        for (component, model) in self.components.iter().zip(&mut self.models) {
            let telemetry = frame.component(&component.name);
            utilization.push(telemetry.map_or(0.0, |telemetry| {
                f64::from(telemetry.utilization_permille) / 1000.0
            }));
            let Some(telemetry) = telemetry else {
                thermal_limits.push(None);
                continue;
            };
            if let (Some(temp_mc), Some(power_mw)) = (telemetry.temp_mc, telemetry.power_mw)
                && interval_s > 0.0
            {
                model.observe(
                    f64::from(temp_mc) / 1000.0,
                    power_mw as f64 / 1000.0,
                    interval_s,
                );
            }
            let ambient_c = model.ambient_c().unwrap_or(ASSUMED_AMBIENT_C);
            thermal_limits.push(
                telemetry
                    .t_max_mc
                    .zip(model.resistance())
                    .map(|(t_max_mc, r)| {
                        thermal_limit_w(f64::from(t_max_mc) / 1000.0, ambient_c, r)
                    }),
            );
        }
        split(cap_w, &self.components, &utilization, &thermal_limits)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::proto::{ComponentKind, ComponentTelemetry};

    use super::*;
    use crate::policy::static_equal::tests::cpu_and_gpu;

    fn close(actual: &[f64], expected: &[f64]) -> bool {
        actual.len() == expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() < 1e-6)
    }

    #[test]
    fn a_thermal_limit_caps_the_share_and_the_rest_goes_to_the_others() {
        // Without thermal limits it is `proportional`: CPU 0.2, GPU 0.8 of 270 W above
        // the minimums: 84 and 316 W.
        let plain = split(400.0, &cpu_and_gpu(), &[0.2, 0.8], &[None, None]);
        assert!(close(&plain, &[84.0, 316.0]), "{plain:?}");
        // The GPU may hold only 250 W (R = 0.24 °C/W, t_max 87 °C, 25 °C ambient:
        // (87 − 2 − 25) / 0.24 = 250 W): it gets 250 W and the CPU the other 66 W too,
        // 150 W at most.
        let limit = thermal_limit_w(87.0, 25.0, 0.24);
        assert!((limit - 250.0).abs() < 1e-9);
        let capped = split(400.0, &cpu_and_gpu(), &[0.2, 0.8], &[None, Some(limit)]);
        assert!(close(&capped, &[150.0, 250.0]), "{capped:?}");
        // A thermal limit below the minimum leaves the minimum.
        let hot = split(400.0, &cpu_and_gpu(), &[0.2, 0.8], &[None, Some(40.0)]);
        assert!(close(&hot, &[150.0, 100.0]), "{hot:?}");
    }

    /// A frame for a GPU alone at `temp_c`, drawing `power_w`.
    fn frame(temp_c: f64, power_w: f64) -> TelemetryFrame {
        TelemetryFrame {
            interval_ms: 100,
            components: vec![ComponentTelemetry {
                id: "gpu0".into(),
                kind: ComponentKind::Gpu,
                utilization_permille: 1000,
                power_mw: Some((power_w * 1000.0).round() as u64),
                temp_mc: Some((temp_c * 1000.0).round() as i32),
                t_max_mc: Some(87_000),
                limit_mw: None,
                limit_min_mw: None,
                limit_max_mw: None,
                progress_micro: None,
                work_left_micro: None,
            }],
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn the_thermal_limit_is_learned_from_telemetry() {
        // One GPU (100–350 W) with R = 0.24 °C/W and C = 150 J/°C in a 25 °C room,
        // drawing 300 and 200 W by turns (5 s each): at 300 W it heads for 97 °C. Once
        // the fit is trusted the limit comes down to the 250 W that hold it at 85 °C.
        let gpu = vec![cpu_and_gpu().remove(1)];
        let mut policy = ThermalProportional::new(gpu);
        assert_eq!(policy.decide(&frame(25.0, 300.0), 400.0), vec![350.0]);
        let mut temp_c: f64 = 25.0;
        let mut split = Vec::new();
        for step in 0..600 {
            let power_w = if (step / 50) % 2 == 0 { 300.0 } else { 200.0 };
            temp_c += 0.1 * (power_w - (temp_c - 25.0) / 0.24) / 150.0;
            split = policy.decide(&frame(temp_c, power_w), 400.0);
        }
        assert!((split[0] - 250.0).abs() < 5.0, "{split:?}");
    }
}
