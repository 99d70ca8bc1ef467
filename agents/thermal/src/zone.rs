//! Thermal zones: which temperatures are watched, against which `t_max`, and how much
//! headroom each has left.

use std::collections::BTreeMap;

use gamesa_agent::proto::TelemetryFrame;

use crate::params::ThermalParams;

/// One watched temperature this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Zone {
    /// The name used in signal kinds: the id, lowercased, with anything outside
    /// `[a-z0-9_-]` replaced by `_` (`hwmon2/temp1` → `hwmon2_temp1`).
    pub signal_name: String,
    pub temp_mc: i32,
    pub t_max_mc: i32,
}

/// The longest zone name that still fits a signal kind (`thermal_critical.` is 17 of
/// the 64 characters allowed).
const MAX_SIGNAL_NAME: usize = 64 - "thermal_critical.".len();

impl Zone {
    /// Headroom left below `t_max − margin`, never negative, in m°C.
    pub(crate) fn headroom_mc(&self, margin_mc: i32) -> u64 {
        let headroom = i64::from(self.t_max_mc) - i64::from(margin_mc) - i64::from(self.temp_mc);
        u64::try_from(headroom).unwrap_or(0)
    }

    /// The headroom left as a share of what the zone has at ambient, in `[0, 1]`.
    pub(crate) fn headroom_fraction(&self, margin_mc: i32, ambient_mc: i32) -> f64 {
        let full = i64::from(self.t_max_mc) - i64::from(margin_mc) - i64::from(ambient_mc);
        if full <= 0 {
            return 0.0;
        }
        (self.headroom_mc(margin_mc) as f64 / full as f64).clamp(0.0, 1.0)
    }
}

/// The zones of one frame by id, in id order: every component with a temperature and a
/// `t_max` (from params, else telemetry), then every sensor named in `t_max_mc` that is
/// not already a component.
pub(crate) fn zones(frame: &TelemetryFrame, params: &ThermalParams) -> BTreeMap<String, Zone> {
    let mut zones = BTreeMap::new();
    for component in &frame.components {
        let t_max = params
            .t_max_mc
            .get(&component.id)
            .copied()
            .or(component.t_max_mc);
        if let (Some(temp_mc), Some(t_max_mc)) = (component.temp_mc, t_max) {
            zones.insert(
                component.id.clone(),
                Zone {
                    signal_name: signal_name(&component.id),
                    temp_mc,
                    t_max_mc,
                },
            );
        }
    }
    for sensor in &frame.temperatures {
        if let Some(&t_max_mc) = params.t_max_mc.get(&sensor.id) {
            zones.entry(sensor.id.clone()).or_insert_with(|| Zone {
                signal_name: signal_name(&sensor.id),
                temp_mc: sensor.temp_mc,
                t_max_mc,
            });
        }
    }
    zones
}

fn signal_name(id: &str) -> String {
    id.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SIGNAL_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{ComponentKind, ComponentTelemetry, TemperatureTelemetry},
        testkit::component,
    };

    use super::*;

    #[test]
    fn components_and_named_sensors_are_zones() {
        let frame = TelemetryFrame {
            components: vec![
                ComponentTelemetry {
                    temp_mc: Some(70_000),
                    t_max_mc: Some(90_000),
                    ..component("gpu0", ComponentKind::Gpu)
                },
                // No t_max anywhere: not a zone.
                ComponentTelemetry {
                    temp_mc: Some(50_000),
                    ..component("cpu", ComponentKind::Cpu)
                },
            ],
            temperatures: vec![
                TemperatureTelemetry {
                    id: "hwmon2/Temp1".into(),
                    temp_mc: 40_000,
                    ..TemperatureTelemetry::default()
                },
                TemperatureTelemetry {
                    id: "thermal_zone9".into(),
                    temp_mc: 40_000,
                    ..TemperatureTelemetry::default()
                },
            ],
            ..TelemetryFrame::default()
        };
        let params = ThermalParams {
            t_max_mc: [
                ("hwmon2/Temp1".to_owned(), 80_000),
                ("gpu0".to_owned(), 85_000),
            ]
            .into_iter()
            .collect(),
            ..ThermalParams::default()
        };
        let zones = zones(&frame, &params);
        assert_eq!(zones.keys().collect::<Vec<_>>(), ["gpu0", "hwmon2/Temp1"]);
        assert_eq!(zones["gpu0"].t_max_mc, 85_000, "params override telemetry");
        assert_eq!(zones["hwmon2/Temp1"].signal_name, "hwmon2_temp1");
    }

    #[test]
    fn headroom_is_never_negative() {
        let zone = Zone {
            signal_name: "gpu0".into(),
            temp_mc: 88_000,
            t_max_mc: 90_000,
        };
        assert_eq!(zone.headroom_mc(5_000), 0);
        assert_eq!(zone.headroom_fraction(5_000, 25_000), 0.0);
        let cool = Zone {
            temp_mc: 45_000,
            ..zone
        };
        assert_eq!(cool.headroom_mc(5_000), 40_000);
        assert_eq!(cool.headroom_fraction(5_000, 25_000), 40.0 / 60.0);
        let extreme = Zone {
            signal_name: "x".into(),
            temp_mc: i32::MIN,
            t_max_mc: i32::MAX,
        };
        assert_eq!(extreme.headroom_fraction(0, i32::MAX), 0.0);
        assert!(extreme.headroom_mc(0) > 0);
    }
}
