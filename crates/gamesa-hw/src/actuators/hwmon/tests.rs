//! The hwmon GPU writer on fake sysfs trees laid out as amdgpu and i915 lay them out
//! (`drm::fake`): the default binding, writes, refusals, and originals restored on
//! `restore_all` and by the next start after a crash.

use std::{
    fs,
    path::{Path, PathBuf},
};

use gamesa_proto::Actuation;
use tempfile::TempDir;

use crate::{
    Actuator, Applied, HwError,
    actuators::{
        ActuatorConfig, GpuNumbering, HwmonGpu, LinuxActuator, PowerLimitBinding,
        knob::{Knob, NvmlHandle},
        state::{Original, StateStore},
    },
    drm::fake,
};

const AMD_PCI: &str = "0000:03:00.0";
const INTEL_PCI: &str = "0000:02:00.0";

/// A fake root with an i915 card (gpu0 by PCI address) and an amdgpu card (gpu1).
struct Machine {
    dir: TempDir,
}

impl Machine {
    fn new() -> Machine {
        let machine = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(machine.root()).unwrap();
        fake::amdgpu(&machine.root());
        fake::i915(&machine.root());
        machine
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/actuator-state.json")
    }

    /// A limit file by the stable path the writer uses.
    fn limit(&self, pci: &str, hwmon: u32, file: &str) -> PathBuf {
        self.root().join(format!(
            "sys/bus/pci/devices/{pci}/hwmon/hwmon{hwmon}/{file}"
        ))
    }

    fn amd_cap(&self) -> PathBuf {
        self.limit(AMD_PCI, 3, "power1_cap")
    }

    fn intel_max(&self) -> PathBuf {
        self.limit(INTEL_PCI, 5, "power1_max")
    }

    fn config(&self, enabled: &[&str]) -> ActuatorConfig {
        ActuatorConfig {
            root: self.root(),
            state_file: self.state_file(),
            enabled_targets: enabled.iter().map(|t| t.to_string()).collect(),
            ..ActuatorConfig::default()
        }
    }

    /// An actuator that sees no NVML, whatever this machine has: the hwmon GPUs are
    /// then gpu0 and gpu1.
    fn actuator(&self, enabled: &[&str]) -> LinuxActuator {
        let mut actuator = LinuxActuator::new(self.config(enabled)).unwrap();
        actuator.nvml = NvmlHandle::unavailable("no NVML in this test");
        actuator
    }
}

fn limit(component: &str, limit_mw: u64) -> Actuation {
    Actuation::PowerLimit {
        component: component.into(),
        limit_mw,
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn gpus_bind_to_nvml_first_then_to_hwmon_gpus_in_order() {
    let gpus = GpuNumbering {
        nvml_count: 1,
        hwmon: vec![
            HwmonGpu {
                pci: INTEL_PCI.into(),
                limit_file: Some("power1_max".into()),
            },
            HwmonGpu {
                pci: AMD_PCI.into(),
                limit_file: None,
            },
        ],
    };
    let config = ActuatorConfig::default();
    assert_eq!(
        config.power_limit_binding("gpu0", &gpus),
        Ok(PowerLimitBinding::Nvml { index: 0 })
    );
    assert_eq!(
        config.power_limit_binding("gpu1", &gpus),
        Ok(PowerLimitBinding::Hwmon {
            pci: INTEL_PCI.into(),
            file: "power1_max".into()
        })
    );
    assert_eq!(
        config.power_limit_binding("gpu2", &gpus),
        Err(HwError::NoPowerLimit {
            component: "gpu2".into(),
            device: AMD_PCI.into()
        })
    );
    assert_eq!(
        config.power_limit_binding("gpu3", &gpus),
        Ok(PowerLimitBinding::Nvml { index: 3 }),
        "past the known GPUs, as before: NVML says whether it exists"
    );
}

#[test]
fn the_numbering_is_read_from_the_root_like_the_sensors_read_it() {
    let machine = Machine::new();
    let mut nvml = NvmlHandle::unavailable("no NVML in this test");
    assert_eq!(
        GpuNumbering::discover(&machine.root(), &mut nvml),
        GpuNumbering {
            nvml_count: 0,
            hwmon: vec![
                HwmonGpu {
                    pci: INTEL_PCI.into(),
                    limit_file: Some("power1_max".into()),
                },
                HwmonGpu {
                    pci: AMD_PCI.into(),
                    limit_file: Some("power1_cap".into()),
                },
            ],
        }
    );
}

#[test]
fn amdgpu_power1_cap_is_recorded_written_and_restored_byte_for_byte() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["power.limit:gpu1"]);
    let applied = actuator.apply(&limit("gpu1", 180_000)).unwrap();
    assert_eq!(
        applied,
        Applied {
            target: "power.limit:gpu1".into(),
            previous: "203000 mW".into(),
            current: "180000 mW".into(),
            changed: true,
            dry_run: false,
        }
    );
    assert_eq!(read(&machine.amd_cap()), "180000000");
    let (store, _) = StateStore::open(&machine.state_file()).unwrap();
    assert_eq!(
        store.record("power.limit:gpu1").unwrap(),
        [Original {
            knob: Knob::Sysfs {
                path: machine.amd_cap()
            },
            value: "203000000\n".into(),
        }]
    );
    // amdgpu keeps whole watts: the request is rounded down to one.
    let applied = actuator.apply(&limit("gpu1", 170_600)).unwrap();
    assert_eq!(applied.current, "170000 mW");
    assert_eq!(read(&machine.amd_cap()), "170000000");
    assert!(!actuator.apply(&limit("gpu1", 170_900)).unwrap().changed);

    let report = actuator.restore_all();
    assert_eq!(report.restored, ["power.limit:gpu1"]);
    assert_eq!(report.failed, []);
    assert_eq!(read(&machine.amd_cap()), "203000000\n");
    assert!(actuator.recorded_targets().is_empty());
}

#[test]
fn i915_power1_max_is_restored_by_the_next_start_after_a_crash() {
    let machine = Machine::new();
    let mut crashed = machine.actuator(&["power.limit:*"]);
    crashed.apply(&limit("gpu0", 120_000)).unwrap();
    crashed.apply(&limit("gpu1", 160_000)).unwrap();
    assert_eq!(read(&machine.intel_max()), "120000000");
    assert_eq!(read(&machine.amd_cap()), "160000000");
    drop(crashed); // a crash: nothing restored

    let restarted = machine.actuator(&[]);
    assert_eq!(
        restarted.start_report().recovered.restored,
        ["power.limit:gpu0", "power.limit:gpu1"]
    );
    assert_eq!(read(&machine.intel_max()), "190000000\n");
    assert_eq!(read(&machine.amd_cap()), "203000000\n");
    assert!(restarted.recorded_targets().is_empty());
}

#[test]
fn a_renumbered_hwmon_after_a_reboot_is_never_written_in_its_place() {
    let machine = Machine::new();
    let mut crashed = machine.actuator(&["power.limit:gpu1"]);
    crashed.apply(&limit("gpu1", 160_000)).unwrap();
    drop(crashed);
    // The next boot probes the card's hwmon as hwmon7; the driver reset the cap.
    let device = machine.root().join("sys/devices/pci0000:00").join(AMD_PCI);
    fs::rename(device.join("hwmon/hwmon3"), device.join("hwmon/hwmon7")).unwrap();
    fs::write(device.join("hwmon/hwmon7/power1_cap"), "203000000\n").unwrap();

    let restarted = machine.actuator(&[]);
    let recovered = &restarted.start_report().recovered;
    assert_eq!(recovered.restored, Vec::<String>::new());
    assert!(
        matches!(&recovered.failed[..], [(target, HwError::Read { path, .. })]
            if target == "power.limit:gpu1" && *path == machine.amd_cap()),
        "{recovered:?}"
    );
    assert_eq!(read(&device.join("hwmon/hwmon7/power1_cap")), "203000000\n");
    assert_eq!(restarted.recorded_targets(), ["power.limit:gpu1"]);
}

#[test]
fn out_of_range_limits_are_refused_before_anything_is_recorded() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["power.limit:*"]);
    for (actuation, expected) in [
        (
            limit("gpu1", 240_000),
            HwError::OutOfRange {
                target: "power.limit:gpu1".into(),
                value: 240_000,
                min: 150_000,
                max: 230_000,
            },
        ),
        (
            limit("gpu1", 100_000),
            HwError::OutOfRange {
                target: "power.limit:gpu1".into(),
                value: 100_000,
                min: 150_000,
                max: 230_000,
            },
        ),
        (
            limit("gpu0", 250_000),
            HwError::OutOfRange {
                target: "power.limit:gpu0".into(),
                value: 250_000,
                min: 1,
                max: 225_000,
            },
        ),
    ] {
        assert_eq!(actuator.apply(&actuation), Err(expected), "{actuation}");
    }
    assert_eq!(read(&machine.amd_cap()), "203000000\n");
    assert_eq!(read(&machine.intel_max()), "190000000\n");
    assert!(!machine.state_file().exists());
}

#[test]
fn an_amdgpu_without_a_published_minimum_still_refuses_less_than_a_watt() {
    let machine = Machine::new();
    fs::write(machine.limit(AMD_PCI, 3, "power1_cap_min"), "0\n").unwrap();
    let mut actuator = machine.actuator(&["power.limit:gpu1"]);
    assert_eq!(
        actuator.apply(&limit("gpu1", 500)),
        Err(HwError::OutOfRange {
            target: "power.limit:gpu1".into(),
            value: 500,
            min: 1_000,
            max: 230_000,
        })
    );
    assert!(actuator.apply(&limit("gpu1", 1_000)).unwrap().changed);
    actuator.restore_all();
}

#[test]
fn a_configured_binding_names_the_card_by_pci_address() {
    let machine = Machine::new();
    let mut config = machine.config(&["power.limit:*"]);
    config.power_limits = toml::from_str(&format!(
        r#"
        big = {{ via = "hwmon", pci = "{AMD_PCI}", file = "power1_cap" }}
        climb = {{ via = "hwmon", pci = "../../../../etc", file = "power1_cap" }}
        crit = {{ via = "hwmon", pci = "{INTEL_PCI}", file = "power1_crit" }}
        gone = {{ via = "hwmon", pci = "0000:09:00.0", file = "power1_cap" }}
        "#
    ))
    .unwrap();
    let mut actuator = LinuxActuator::new(config).unwrap();
    assert!(actuator.apply(&limit("big", 200_000)).unwrap().changed);
    assert_eq!(read(&machine.amd_cap()), "200000000");
    for component in ["climb", "crit", "gone"] {
        let result = actuator.apply(&limit(component, 100_000));
        assert!(
            matches!(&result, Err(HwError::InvalidActuation { target, .. })
                if *target == format!("power.limit:{component}")),
            "{component}: {result:?}"
        );
    }
    assert_eq!(actuator.restore_all().restored, ["power.limit:big"]);
    assert_eq!(read(&machine.amd_cap()), "203000000\n");
}

#[test]
fn a_card_without_a_limit_file_says_so() {
    let machine = Machine::new();
    let dir = machine
        .root()
        .join("sys/devices/pci0000:00")
        .join(AMD_PCI)
        .join("hwmon/hwmon3");
    fs::remove_file(dir.join("power1_cap")).unwrap();
    let mut actuator = machine.actuator(&["power.limit:gpu1"]);
    assert_eq!(
        actuator.apply(&limit("gpu1", 180_000)),
        Err(HwError::NoPowerLimit {
            component: "gpu1".into(),
            device: AMD_PCI.into(),
        })
    );
}

/// The sensors' numbering is the one the actuator writes by: what they read as `gpu1`
/// is what `power.limit:gpu1` writes, even when NVML answered only the sensors (here:
/// they saw one NVML GPU, so the hwmon cards are gpu1 and gpu2).
#[test]
fn the_actuator_numbers_gpus_as_the_sensors_did() {
    let machine = Machine::new();
    let sensors = crate::LinuxSensors::new(crate::LinuxSensorsOptions {
        root: machine.root(),
        cap_mw: None,
        nvml: false,
    });
    let mut nvml = NvmlHandle::unavailable("no NVML in this test");
    assert_eq!(
        sensors.gpu_numbering(),
        GpuNumbering::discover(&machine.root(), &mut nvml)
    );
    let as_sensors_saw_it = GpuNumbering {
        nvml_count: 1,
        ..sensors.gpu_numbering()
    };
    let mut actuator = machine
        .actuator(&["power.limit:gpu2"])
        .with_gpu_numbering(as_sensors_saw_it);
    let original = read(&machine.amd_cap());
    actuator.apply(&limit("gpu2", 150_000)).unwrap();
    assert_eq!(read(&machine.amd_cap()), "150000000");
    actuator.restore_all();
    assert_eq!(read(&machine.amd_cap()), original);
}
