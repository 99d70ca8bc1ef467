//! hwmon temperature inputs: `sys/class/hwmon/hwmon*/temp*_input`, labelled by
//! `temp*_label` (or the chip's `name`), with `temp*_crit` as the critical point.

use std::path::{Path, PathBuf};

use gamesa_proto::TemperatureTelemetry;

use super::{TemperatureReading, thermal::read_millicelsius};
use crate::{HwError, sysfs};

/// hwmon chip names that measure the CPU.
const CPU_CHIPS: [&str; 5] = [
    "coretemp",
    "k10temp",
    "zenpower",
    "cpu_thermal",
    "cpu-thermal",
];

#[derive(Debug)]
struct Input {
    /// `hwmon2/temp1`.
    id: String,
    label: Option<String>,
    input_path: PathBuf,
    critical_mc: Option<i32>,
    cpu: bool,
}

/// The hwmon temperature inputs found at start; labels are read once then.
#[derive(Debug)]
pub(crate) struct HwmonSource {
    inputs: Vec<Input>,
}

impl HwmonSource {
    pub(crate) fn discover(root: &Path, errors: &mut Vec<HwError>) -> Result<HwmonSource, String> {
        let dir = root.join("sys/class/hwmon");
        let mut inputs = Vec::new();
        for (chip_id, chip_path) in sysfs::entries_with_prefix(&dir, "hwmon", sysfs::is_number) {
            let chip_name = match sysfs::read_optional(&chip_path.join("name")) {
                Ok(name) => name.map(|name| name.trim().to_string()),
                Err(err) => {
                    errors.push(err);
                    None
                }
            };
            let cpu = chip_name
                .as_deref()
                .is_some_and(|name| CPU_CHIPS.contains(&name));
            let temps = sysfs::entries_with_prefix(&chip_path, "temp", |rest| {
                rest.strip_suffix("_input").is_some_and(sysfs::is_number)
            });
            for (file, input_path) in temps {
                let Some(sensor) = file.strip_suffix("_input") else {
                    continue;
                };
                let label = match sysfs::read_optional(&chip_path.join(format!("{sensor}_label"))) {
                    Ok(label) => label.map(|label| label.trim().to_string()),
                    Err(err) => {
                        errors.push(err);
                        None
                    }
                };
                let crit_path = chip_path.join(format!("{sensor}_crit"));
                let critical_mc = if crit_path.exists() {
                    read_millicelsius(&crit_path)
                        .map_err(|err| errors.push(err))
                        .ok()
                } else {
                    None
                };
                inputs.push(Input {
                    id: format!("{chip_id}/{sensor}"),
                    label: label.or_else(|| chip_name.clone()),
                    input_path,
                    critical_mc,
                    cpu,
                });
            }
        }
        if inputs.is_empty() {
            return Err(format!("no hwmon*/temp*_input under {}", dir.display()));
        }
        Ok(HwmonSource { inputs })
    }

    pub(crate) fn read(&self, out: &mut Vec<TemperatureReading>, errors: &mut Vec<HwError>) {
        for input in &self.inputs {
            match read_millicelsius(&input.input_path) {
                Ok(temp_mc) => out.push(TemperatureReading {
                    telemetry: TemperatureTelemetry {
                        id: input.id.clone(),
                        label: input.label.clone(),
                        temp_mc,
                        critical_mc: input.critical_mc,
                    },
                    cpu: input.cpu,
                }),
                Err(err) => errors.push(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn chip(root: &Path, n: u32, name: Option<&str>, files: &[(&str, &str)]) -> PathBuf {
        let dir = root.join(format!("sys/class/hwmon/hwmon{n}"));
        fs::create_dir_all(&dir).unwrap();
        if let Some(name) = name {
            fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        }
        for (file, content) in files {
            fs::write(dir.join(file), content).unwrap();
        }
        dir
    }

    #[test]
    fn reads_inputs_with_labels_names_and_crit() {
        let root = tempfile::tempdir().unwrap();
        chip(
            root.path(),
            0,
            Some("coretemp"),
            &[
                ("temp1_input", "52000\n"),
                ("temp1_label", "Package id 0\n"),
                ("temp1_crit", "100000\n"),
                ("temp2_input", "48000\n"),
                ("temp2_label", "Core 0\n"),
                ("in0_input", "1200\n"),
            ],
        );
        chip(root.path(), 1, Some("nvme"), &[("temp1_input", "39850\n")]);
        let mut errors = Vec::new();
        let source = HwmonSource::discover(root.path(), &mut errors).unwrap();
        let mut out = Vec::new();
        source.read(&mut out, &mut errors);
        assert_eq!(errors, []);
        let seen: Vec<_> = out
            .iter()
            .map(|r| {
                (
                    r.telemetry.id.as_str(),
                    r.telemetry.label.as_deref(),
                    r.telemetry.temp_mc,
                    r.telemetry.critical_mc,
                    r.cpu,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "hwmon0/temp1",
                    Some("Package id 0"),
                    52_000,
                    Some(100_000),
                    true
                ),
                ("hwmon0/temp2", Some("Core 0"), 48_000, None, true),
                ("hwmon1/temp1", Some("nvme"), 39_850, None, false),
            ]
        );
    }

    #[test]
    fn malformed_input_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = chip(root.path(), 0, Some("k10temp"), &[("temp1_input", "hot\n")]);
        let mut errors = Vec::new();
        let source = HwmonSource::discover(root.path(), &mut errors).unwrap();
        let mut out = Vec::new();
        source.read(&mut out, &mut errors);
        assert!(out.is_empty());
        assert_eq!(
            errors,
            [HwError::Parse {
                path: dir.join("temp1_input"),
                content: "hot".into(),
                expected: "an integer",
            }]
        );
    }

    #[test]
    fn chips_without_temperatures_leave_the_source_unavailable() {
        let root = tempfile::tempdir().unwrap();
        chip(root.path(), 0, Some("acpi_fan"), &[("fan1_input", "0\n")]);
        let reason = HwmonSource::discover(root.path(), &mut Vec::new()).unwrap_err();
        assert!(reason.starts_with("no hwmon*/temp*_input"), "{reason}");
    }
}
