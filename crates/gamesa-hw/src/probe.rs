//! `gamesa probe`: what this machine lets GAMESA read and write. Every sensor source
//! with whether it is available and why not, every power-managed component with its
//! reading and limit range, and every knob a real actuator could write, with its
//! current value, its range, and what privilege is missing to write it.
//!
//! Nothing is written: a knob's writability is checked by opening it for writing,
//! which changes nothing (sysfs acts on a write, not an open).

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use gamesa_proto::{ComponentTelemetry, SourceStatus, Tick};
use serde::Serialize;

use crate::{LinuxSensors, LinuxSensorsOptions, PowerLimitBinding, Sensors, drm};

/// A knob a real actuator could write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Knob {
    /// The actuation target that would write it, such as `power.limit:cpu` (a powercap
    /// package zone, bound as `power_limits.cpu`), `power.limit:gpu0` (NVML, or an
    /// amdgpu, i915 or xe hwmon limit) or `cpufreq.max:3`.
    pub target: String,
    /// Where it lives: a file under the sensors' root, or `nvml:<index>`.
    pub at: String,
    /// For a `power.limit` knob, the `[actuators] power_limits` entry that binds its
    /// component to it.
    pub binding: Option<PowerLimitBinding>,
    /// Its value now, in `unit`.
    pub current: Option<u64>,
    /// The range the device accepts, in `unit`, where it says.
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub unit: &'static str,
    /// `None` when this process could write it; otherwise what is missing.
    pub missing: Option<String>,
}

/// What `gamesa probe` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub sources: Vec<SourceStatus>,
    pub components: Vec<ComponentTelemetry>,
    pub knobs: Vec<Knob>,
}

/// Reads the machine under `options.root` twice, 200 ms apart (power readings need two
/// samples), and lists its knobs.
pub fn probe(options: LinuxSensorsOptions) -> Probe {
    let root = options.root.clone();
    let mut sensors = LinuxSensors::new(options);
    let _first = sensors.sample(Tick(0));
    std::thread::sleep(Duration::from_millis(200));
    let frame = sensors.sample(Tick(1)).frame;
    let root_user = effective_uid() == Some(0);
    let mut knobs = Vec::new();
    for domain in &frame.power_domains {
        // Package zones (`intel-rapl:0`), not their subzones (`intel-rapl:0:0`).
        if domain.id.matches(':').count() != 1 {
            continue;
        }
        let dir = root.join("sys/class/powercap").join(&domain.id);
        let file = dir.join("constraint_0_power_limit_uw");
        knobs.push(Knob {
            target: "power.limit:cpu".to_owned(),
            at: shown(&root, &file),
            current: read_u64(&file).map(|uw| uw / 1000),
            min: read_u64(&dir.join("constraint_0_min_power_uw")).map(|uw| uw / 1000),
            max: read_u64(&dir.join("constraint_0_max_power_uw"))
                .filter(|uw| *uw > 0)
                .map(|uw| uw / 1000),
            unit: "mW",
            missing: missing(&file),
            binding: Some(PowerLimitBinding::Powercap {
                zone: domain.id.clone(),
                time_window_us: None,
            }),
        });
    }
    for gpu in &frame.gpus {
        knobs.push(Knob {
            target: format!("power.limit:gpu{}", gpu.index),
            at: format!("nvml:{}", gpu.index),
            current: Some(gpu.limit_mw),
            min: Some(gpu.limit_min_mw),
            max: Some(gpu.limit_max_mw),
            unit: "mW",
            missing: (!root_user).then(|| "NVML sets power limits for root only".to_owned()),
            binding: Some(PowerLimitBinding::Nvml { index: gpu.index }),
        });
    }
    for gpu in sensors.hwmon_gpus() {
        let Some((limit_file, (min_file, max_file))) = gpu
            .limit_file
            .and_then(|file| Some((file, drm::limit_bound_files(file)?)))
        else {
            continue;
        };
        // The path the writer uses: through the PCI address, stable across boots.
        let dir = drm::stable_hwmon_parent(&root, &gpu.device.pci).join(&gpu.device.hwmon);
        let file = dir.join(limit_file);
        let bound = |name: Option<&str>| {
            drm::read_bound_uw(&dir.join(name?))
                .ok()
                .flatten()
                .map(|uw| uw / 1000)
        };
        knobs.push(Knob {
            target: format!("power.limit:{}", gpu.id),
            at: shown(&root, &file),
            current: read_u64(&file).map(|uw| uw / 1000),
            min: bound(min_file),
            max: bound(Some(max_file)),
            unit: "mW",
            missing: missing(&file),
            binding: Some(PowerLimitBinding::Hwmon {
                pci: gpu.device.pci.clone(),
                file: limit_file.to_owned(),
            }),
        });
    }
    for (cpu, _) in frame
        .cpu
        .iter()
        .flat_map(|cpu| cpu.frequency_khz.iter().enumerate())
        .filter(|(_, khz)| khz.is_some())
    {
        let dir = root.join(format!("sys/devices/system/cpu/cpu{cpu}/cpufreq"));
        let file = dir.join("scaling_max_freq");
        knobs.push(Knob {
            target: format!("cpufreq.max:{cpu}"),
            at: shown(&root, &file),
            current: read_u64(&file),
            min: read_u64(&dir.join("cpuinfo_min_freq")),
            max: read_u64(&dir.join("cpuinfo_max_freq")),
            unit: "kHz",
            missing: missing(&file),
            binding: None,
        });
    }
    Probe {
        sources: frame.sources,
        components: frame.components,
        knobs,
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `path` as the user knows it: absolute on the real machine, under the root otherwise.
fn shown(root: &Path, path: &Path) -> String {
    if root == Path::new("/") {
        path.display().to_string()
    } else {
        path.strip_prefix(root)
            .map_or_else(
                |_| path.to_path_buf(),
                |relative| PathBuf::from("/").join(relative),
            )
            .display()
            .to_string()
    }
}

/// What is missing to write `path`, found by opening it for writing (nothing written).
fn missing(path: &Path) -> Option<String> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => None,
        Err(error) if error.kind() == ErrorKind::PermissionDenied => Some(format!(
            "write access to {} (run as root, or grant it with a udev rule or the \
             systemd unit's capabilities)",
            path.display()
        )),
        Err(error) if error.kind() == ErrorKind::ReadOnlyFilesystem => {
            Some(format!("{} is on a read-only file system", path.display()))
        }
        Err(error) => Some(format!("{}: {error}", path.display())),
    }
}

/// This process's effective user id, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sources:")?;
        for source in &self.sources {
            match (&source.available, &source.detail) {
                (true, _) => writeln!(f, "  {:<9} available", source.source)?,
                (false, Some(why)) => writeln!(f, "  {:<9} unavailable: {why}", source.source)?,
                (false, None) => writeln!(f, "  {:<9} unavailable", source.source)?,
            }
        }
        writeln!(f, "components:")?;
        if self.components.is_empty() {
            writeln!(
                f,
                "  none: no powercap package zone and no GPU; agents can trade, but no \
                 limit can be read or written"
            )?;
        }
        let mw = |value: Option<u64>| {
            value.map_or_else(
                || "?".to_owned(),
                |mw| format!("{:.1} W", mw as f64 / 1000.0),
            )
        };
        for component in &self.components {
            writeln!(
                f,
                "  {:<6} {:?}: drawing {}, limit {} (range {} to {}), {:.1} % busy",
                component.id,
                component.kind,
                mw(component.power_mw),
                mw(component.limit_mw),
                mw(component.limit_min_mw),
                mw(component.limit_max_mw),
                f64::from(component.utilization_permille) / 10.0
            )?;
        }
        writeln!(f, "writable knobs:")?;
        if self.knobs.is_empty() {
            writeln!(f, "  none found")?;
        }
        for knob in &self.knobs {
            let value =
                |value: Option<u64>| value.map_or_else(|| "?".to_owned(), |v| v.to_string());
            let state = match &knob.missing {
                None => "writable".to_owned(),
                Some(missing) => format!("not writable: needs {missing}"),
            };
            writeln!(
                f,
                "  {:<20} {} = {} {} (range {} to {}): {state}",
                knob.target,
                knob.at,
                value(knob.current),
                knob.unit,
                value(knob.min),
                value(knob.max),
            )?;
        }
        writeln!(
            f,
            "nothing is written unless [actuators] real lists a target (docs/hardware.md)"
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A RAPL package zone and a subzone, and two cpus with cpufreq.
    fn fake_root(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        for (zone, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core")] {
            let zone = root.join("sys/class/powercap").join(zone);
            std::fs::create_dir_all(&zone).unwrap();
            for (file, content) in [
                ("name", name),
                ("energy_uj", "1000000"),
                ("max_energy_range_uj", "262143328850"),
                ("constraint_0_power_limit_uw", "65000000"),
                ("constraint_0_max_power_uw", "125000000"),
            ] {
                std::fs::write(zone.join(file), content).unwrap();
            }
        }
        for cpu in 0..2 {
            let dir = root.join(format!("sys/devices/system/cpu/cpu{cpu}/cpufreq"));
            std::fs::create_dir_all(&dir).unwrap();
            for (file, content) in [
                ("scaling_cur_freq", "2400000"),
                ("scaling_max_freq", "3600000"),
                ("cpuinfo_min_freq", "800000"),
                ("cpuinfo_max_freq", "4200000"),
            ] {
                std::fs::write(dir.join(file), content).unwrap();
            }
        }
        root
    }

    #[test]
    fn a_fake_machine_shows_its_sources_components_and_knobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = fake_root(dir.path());
        let found = probe(LinuxSensorsOptions {
            root: root.clone(),
            cap_mw: None,
            nvml: false,
        });
        let available = |name: &str| {
            found
                .sources
                .iter()
                .find(|source| source.source == name)
                .map(|source| source.available)
        };
        assert_eq!(available("powercap"), Some(true));
        assert_eq!(available("cpufreq"), Some(true));
        assert_eq!(available("thermal"), Some(false));
        assert_eq!(available("nvml"), Some(false));
        let cpu = found.components.iter().find(|c| c.id == "cpu").unwrap();
        assert_eq!(cpu.limit_mw, Some(65_000));
        let powercap = &found.knobs[0];
        assert_eq!(
            (powercap.target.as_str(), powercap.at.as_str()),
            (
                "power.limit:cpu",
                "/sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw"
            )
        );
        assert_eq!(
            (powercap.current, powercap.min, powercap.max),
            (Some(65_000), None, Some(125_000))
        );
        assert_eq!(powercap.missing, None);
        let cpufreq: Vec<_> = found.knobs[1..].iter().map(|k| k.target.as_str()).collect();
        assert_eq!(cpufreq, ["cpufreq.max:0", "cpufreq.max:1"]);
        assert_eq!(found.knobs[1].current, Some(3_600_000));
        assert_eq!(
            (found.knobs[1].min, found.knobs[1].max),
            (Some(800_000), Some(4_200_000))
        );
        // Probing wrote nothing.
        let limit = root.join("sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw");
        assert_eq!(std::fs::read_to_string(limit).unwrap(), "65000000");
        let text = found.to_string();
        assert!(text.contains("power.limit:cpu"), "{text}");
        assert!(text.contains("thermal   unavailable"), "{text}");
    }

    /// An i915 card and an amdgpu card: components gpu0 and gpu1 by PCI address, and
    /// their limit files as knobs by the path the writer uses.
    #[test]
    fn hwmon_gpus_are_components_and_their_limits_knobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        crate::drm::fake::amdgpu(&root);
        crate::drm::fake::i915(&root);
        let found = probe(LinuxSensorsOptions {
            root: root.clone(),
            cap_mw: None,
            nvml: false,
        });
        let components: Vec<_> = found
            .components
            .iter()
            .filter(|c| c.kind == gamesa_proto::ComponentKind::Gpu)
            .map(|c| (c.id.as_str(), c.limit_mw, c.limit_min_mw, c.limit_max_mw))
            .collect();
        assert_eq!(
            components,
            [
                ("gpu0", Some(190_000), None, Some(225_000)),
                ("gpu1", Some(203_000), Some(150_000), Some(230_000)),
            ]
        );
        let knobs: Vec<_> = found
            .knobs
            .iter()
            .map(|k| {
                (
                    k.target.as_str(),
                    k.at.as_str(),
                    k.current,
                    k.min,
                    k.max,
                    k.missing.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            knobs,
            [
                (
                    "power.limit:gpu0",
                    "/sys/bus/pci/devices/0000:02:00.0/hwmon/hwmon5/power1_max",
                    Some(190_000),
                    None,
                    Some(225_000),
                    None
                ),
                (
                    "power.limit:gpu1",
                    "/sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon3/power1_cap",
                    Some(203_000),
                    Some(150_000),
                    Some(230_000),
                    None
                ),
            ]
        );
        assert_eq!(
            found.knobs[1].binding,
            Some(PowerLimitBinding::Hwmon {
                pci: "0000:03:00.0".into(),
                file: "power1_cap".into(),
            })
        );
        let text = found.to_string();
        assert!(text.contains("gpu_hwmon available"), "{text}");
        assert!(
            text.contains(
                "power.limit:gpu1     /sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon3/power1_cap \
                 = 203000 mW (range 150000 to 230000): writable"
            ),
            "{text}"
        );
        // Probing wrote nothing.
        let cap = root.join("sys/devices/pci0000:00/0000:03:00.0/hwmon/hwmon3/power1_cap");
        assert_eq!(std::fs::read_to_string(cap).unwrap(), "203000000\n");
    }

    #[test]
    fn a_knob_that_is_gone_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let reason = missing(&dir.path().join("absent")).unwrap();
        assert!(reason.contains("absent"), "{reason}");
    }
}
