//! Thermal zones: `sys/class/thermal/thermal_zone*/{temp,type}` and their critical trip
//! point (`trip_point_N_type` = `critical`, `trip_point_N_temp`).

use std::path::{Path, PathBuf};

use gamesa_proto::TemperatureTelemetry;

use super::TemperatureReading;
use crate::{HwError, sysfs};

/// Zone types that measure the CPU.
const CPU_ZONE_TYPES: [&str; 4] = ["x86_pkg_temp", "cpu-thermal", "cpu_thermal", "k10temp"];
/// Trip points examined per zone, at most.
const MAX_TRIP_POINTS: usize = 32;

#[derive(Debug)]
struct Zone {
    id: String,
    label: Option<String>,
    temp_path: PathBuf,
    critical_mc: Option<i32>,
    cpu: bool,
}

/// The thermal zones found at start; labels and trip points are read once then.
#[derive(Debug)]
pub(crate) struct ThermalSource {
    zones: Vec<Zone>,
}

impl ThermalSource {
    /// Finds the zones. Problems with a zone's type or trip points go to `errors`; the
    /// zone is still sampled.
    pub(crate) fn discover(
        root: &Path,
        errors: &mut Vec<HwError>,
    ) -> Result<ThermalSource, String> {
        let dir = root.join("sys/class/thermal");
        let zones: Vec<Zone> = sysfs::entries_with_prefix(&dir, "thermal_zone", sysfs::is_number)
            .into_iter()
            .map(|(id, path)| {
                let label = match sysfs::read_text(&path.join("type")) {
                    Ok(text) => Some(text.trim().to_string()),
                    Err(err) => {
                        errors.push(err);
                        None
                    }
                };
                let cpu = label
                    .as_deref()
                    .is_some_and(|label| CPU_ZONE_TYPES.contains(&label));
                Zone {
                    critical_mc: critical_trip(&path, errors),
                    temp_path: path.join("temp"),
                    id,
                    label,
                    cpu,
                }
            })
            .collect();
        if zones.is_empty() {
            return Err(format!("no thermal_zone* under {}", dir.display()));
        }
        Ok(ThermalSource { zones })
    }

    pub(crate) fn read(&self, out: &mut Vec<TemperatureReading>, errors: &mut Vec<HwError>) {
        for zone in &self.zones {
            match read_millicelsius(&zone.temp_path) {
                Ok(temp_mc) => out.push(TemperatureReading {
                    telemetry: TemperatureTelemetry {
                        id: zone.id.clone(),
                        label: zone.label.clone(),
                        temp_mc,
                        critical_mc: zone.critical_mc,
                    },
                    cpu: zone.cpu,
                }),
                Err(err) => errors.push(err),
            }
        }
    }
}

/// The temperature of the first trip point whose type is `critical`.
fn critical_trip(zone: &Path, errors: &mut Vec<HwError>) -> Option<i32> {
    for n in 0..MAX_TRIP_POINTS {
        let kind = match sysfs::read_optional(&zone.join(format!("trip_point_{n}_type"))) {
            Ok(Some(kind)) => kind,
            Ok(None) => return None,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        if kind.trim() == "critical" {
            return match read_millicelsius(&zone.join(format!("trip_point_{n}_temp"))) {
                Ok(temp) => Some(temp),
                Err(err) => {
                    errors.push(err);
                    None
                }
            };
        }
    }
    None
}

/// Reads a file holding a temperature in m°C (it may be negative).
pub(crate) fn read_millicelsius(path: &Path) -> Result<i32, HwError> {
    sysfs::with_text(path, |text| {
        sysfs::parse_i64(path, text)?
            .try_into()
            .map_err(|_| sysfs::parse_error(path, text, "a temperature in m°C"))
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn zone(root: &Path, n: u32, kind: &str, temp: &str, trips: &[(&str, &str)]) -> PathBuf {
        let dir = root.join(format!("sys/class/thermal/thermal_zone{n}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
        fs::write(dir.join("temp"), temp).unwrap();
        for (i, (kind, temp)) in trips.iter().enumerate() {
            fs::write(dir.join(format!("trip_point_{i}_type")), kind).unwrap();
            fs::write(dir.join(format!("trip_point_{i}_temp")), temp).unwrap();
        }
        dir
    }

    #[test]
    fn reads_zones_with_type_and_critical_trip() {
        let root = tempfile::tempdir().unwrap();
        zone(
            root.path(),
            0,
            "acpitz",
            "27800\n",
            &[("passive\n", "90000\n"), ("critical\n", "105000\n")],
        );
        zone(root.path(), 1, "x86_pkg_temp", "-5000\n", &[]);
        let mut errors = Vec::new();
        let source = ThermalSource::discover(root.path(), &mut errors).unwrap();
        let mut out = Vec::new();
        source.read(&mut out, &mut errors);
        assert_eq!(errors, []);
        assert_eq!(
            out,
            [
                TemperatureReading {
                    telemetry: TemperatureTelemetry {
                        id: "thermal_zone0".into(),
                        label: Some("acpitz".into()),
                        temp_mc: 27_800,
                        critical_mc: Some(105_000),
                    },
                    cpu: false,
                },
                TemperatureReading {
                    telemetry: TemperatureTelemetry {
                        id: "thermal_zone1".into(),
                        label: Some("x86_pkg_temp".into()),
                        temp_mc: -5_000,
                        critical_mc: None,
                    },
                    cpu: true,
                },
            ]
        );
    }

    #[test]
    fn malformed_temp_is_a_typed_error_and_other_zones_still_arrive() {
        let root = tempfile::tempdir().unwrap();
        let bad = zone(root.path(), 0, "acpitz", "abc\n", &[]);
        zone(root.path(), 1, "x86_pkg_temp", "41000\n", &[]);
        let mut errors = Vec::new();
        let source = ThermalSource::discover(root.path(), &mut errors).unwrap();
        let mut out = Vec::new();
        source.read(&mut out, &mut errors);
        assert_eq!(
            errors,
            [HwError::Parse {
                path: bad.join("temp"),
                content: "abc".into(),
                expected: "an integer",
            }]
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].telemetry.temp_mc, 41_000);
    }

    #[test]
    fn out_of_range_temp_is_a_parse_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = zone(root.path(), 0, "acpitz", "99999999999\n", &[]);
        let mut errors = Vec::new();
        let source = ThermalSource::discover(root.path(), &mut errors).unwrap();
        source.read(&mut Vec::new(), &mut errors);
        assert_eq!(
            errors,
            [HwError::Parse {
                path: dir.join("temp"),
                content: "99999999999".into(),
                expected: "a temperature in m°C",
            }]
        );
    }

    #[test]
    fn unreadable_type_keeps_the_zone_without_label() {
        let root = tempfile::tempdir().unwrap();
        let dir = zone(root.path(), 0, "x", "30000", &[]);
        fs::remove_file(dir.join("type")).unwrap();
        fs::create_dir(dir.join("type")).unwrap(); // unreadable, even for root
        let mut errors = Vec::new();
        let source = ThermalSource::discover(root.path(), &mut errors).unwrap();
        assert!(matches!(&errors[..], [HwError::Read { path, .. }] if *path == dir.join("type")));
        let mut out = Vec::new();
        source.read(&mut out, &mut errors);
        assert_eq!(out[0].telemetry.label, None);
        assert_eq!(out[0].telemetry.temp_mc, 30_000);
    }

    #[test]
    fn no_zones_is_unavailable() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("sys/class/thermal/cooling_device0")).unwrap();
        let reason = ThermalSource::discover(root.path(), &mut Vec::new()).unwrap_err();
        assert!(reason.starts_with("no thermal_zone* under"), "{reason}");
    }
}
