//! LinuxActuator tests on fake sysfs and cgroupfs trees: writes, no-ops, refusals,
//! failures and crash recovery. Tests run as root, whom file modes do not stop, so
//! write failures come from `sysfs::fault` or from a directory where a file belongs.

use std::{
    fs,
    path::{Path, PathBuf},
};

use tempfile::TempDir;

use super::*;
use crate::sysfs::fault;

const RAPL: &str = "sys/class/powercap/intel-rapl:0";
const CGROUP: &str = "sys/fs/cgroup/game";
const CPUFREQ: &str = "sys/devices/system/cpu/cpu1/cpufreq";

/// A fake root with a RAPL zone, a cgroup and one cpu's cpufreq, and a state file path.
struct Machine {
    dir: TempDir,
}

impl Machine {
    fn new() -> Machine {
        let machine = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        machine.write(&format!("{RAPL}/name"), "package-0\n");
        machine.write(&format!("{RAPL}/constraint_0_power_limit_uw"), "65000000\n");
        machine.write(&format!("{RAPL}/constraint_0_time_window_us"), "27983872\n");
        machine.write(&format!("{RAPL}/constraint_0_max_power_uw"), "95000000\n");
        machine.write("sys/fs/cgroup/cpuset.cpus.effective", "0-3\n");
        machine.write(&format!("{CGROUP}/cpu.max"), "max 100000\n");
        machine.write(&format!("{CGROUP}/cpuset.cpus"), "\n");
        machine.write(&format!("{CPUFREQ}/cpuinfo_min_freq"), "400000\n");
        machine.write(&format!("{CPUFREQ}/cpuinfo_max_freq"), "4700000\n");
        machine.write(&format!("{CPUFREQ}/scaling_max_freq"), "4700000\n");
        machine.write(
            &format!("{CPUFREQ}/energy_performance_available_preferences"),
            "default performance balance_performance balance_power \n",
        );
        machine.write(
            &format!("{CPUFREQ}/energy_performance_preference"),
            "balance_performance\n",
        );
        machine
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/actuator-state.json")
    }

    fn path(&self, file: &str) -> PathBuf {
        self.root().join(file)
    }

    fn write(&self, file: &str, content: &str) {
        let path = self.path(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(&self, file: &str) -> Vec<u8> {
        fs::read(self.path(file)).unwrap()
    }

    fn config(&self, enabled: &[&str]) -> ActuatorConfig {
        ActuatorConfig {
            root: self.root(),
            state_file: self.state_file(),
            enabled_targets: enabled.iter().map(|t| t.to_string()).collect(),
            power_limits: BTreeMap::new(),
        }
    }

    fn actuator(&self, enabled: &[&str]) -> LinuxActuator {
        LinuxActuator::new(self.config(enabled)).unwrap()
    }

    /// Every file of the fake root with its bytes, to compare before and after.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root(), &mut out);
        out
    }

    fn recorded_on_disk(&self) -> Vec<String> {
        let (store, _) = StateStore::open(&self.state_file()).unwrap();
        store.targets()
    }
}

fn cpu_limit(limit_mw: u64) -> Actuation {
    Actuation::PowerLimit {
        component: "cpu".into(),
        limit_mw,
    }
}

fn cpu_max(quota_us: Option<u64>) -> Actuation {
    Actuation::CgroupCpuMax {
        cgroup: "game".into(),
        quota_us,
        period_us: 100_000,
    }
}

fn cpuset(cpus: &str) -> Actuation {
    Actuation::CgroupCpuset {
        cgroup: "game".into(),
        cpus: cpus.into(),
    }
}

fn freq(max_khz: u64) -> Actuation {
    Actuation::CpufreqMax { cpu: 1, max_khz }
}

fn epp(preference: &str) -> Actuation {
    Actuation::EnergyPreference {
        cpu: 1,
        preference: preference.into(),
    }
}

#[test]
fn targets_not_enabled_go_to_the_dry_run() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut actuator = machine.actuator(&["cgroup.cpu_max:other"]);
    for actuation in [cpu_limit(50_000), cpu_max(Some(50_000)), freq(2_000_000)] {
        let applied = actuator.apply(&actuation).unwrap();
        assert!(applied.dry_run && applied.changed, "{applied:?}");
    }
    assert_eq!(machine.snapshot(), before, "nothing written");
    assert!(!machine.state_file().exists());
    assert_eq!(actuator.dry_run().settings().len(), 3);
    let report = actuator.restore_all();
    assert_eq!(report.restored.len(), 3);
    assert_eq!(report.failed, []);
}

#[test]
fn enabled_targets_match_exactly_or_by_prefix() {
    let config = ActuatorConfig {
        enabled_targets: vec!["power.limit:gpu0".into(), "cgroup.*".into()],
        ..ActuatorConfig::default()
    };
    assert!(config.is_enabled("power.limit:gpu0"));
    assert!(!config.is_enabled("power.limit:gpu01"));
    assert!(config.is_enabled("cgroup.cpuset:game"));
    assert!(!config.is_enabled("cpufreq.max:0"));
    assert!(!ActuatorConfig::default().is_enabled("power.limit:cpu"));
}

#[test]
fn power_limit_components_map_to_hardware() {
    let mut config = ActuatorConfig::default();
    assert_eq!(
        config.power_limit_binding("cpu", &GpuNumbering::NONE),
        Ok(PowerLimitBinding::Powercap {
            zone: "intel-rapl:0".into(),
            time_window_us: None
        })
    );
    assert_eq!(
        config.power_limit_binding("gpu3", &GpuNumbering::NONE),
        Ok(PowerLimitBinding::Nvml { index: 3 })
    );
    assert_eq!(
        config.power_limit_binding("fan", &GpuNumbering::NONE),
        Err(HwError::UnknownComponent {
            component: "fan".into()
        })
    );
    config
        .power_limits
        .insert("gpu3".into(), PowerLimitBinding::Nvml { index: 0 });
    assert_eq!(
        config.power_limit_binding("gpu3", &GpuNumbering::NONE),
        Ok(PowerLimitBinding::Nvml { index: 0 })
    );
}

#[test]
fn config_reads_from_toml() {
    let config: ActuatorConfig = toml::from_str(
        r#"
        state_file = "/run/gamesa/state.json"
        enabled_targets = ["power.limit:cpu"]
        [power_limits.cpu]
        via = "powercap"
        zone = "intel-rapl:1"
        time_window_us = 1000000
        [power_limits.gpu0]
        via = "nvml"
        index = 1
        "#,
    )
    .unwrap();
    assert_eq!(config.root, PathBuf::from("/"));
    assert_eq!(
        config.power_limits["cpu"],
        PowerLimitBinding::Powercap {
            zone: "intel-rapl:1".into(),
            time_window_us: Some(1_000_000)
        }
    );
    assert_eq!(
        config.power_limits["gpu0"],
        PowerLimitBinding::Nvml { index: 1 }
    );
}

#[test]
fn powercap_limit_is_recorded_written_and_restored_byte_for_byte() {
    let machine = Machine::new();
    let limit = format!("{RAPL}/constraint_0_power_limit_uw");
    let mut actuator = machine.actuator(&["power.limit:cpu"]);
    let applied = actuator.apply(&cpu_limit(50_000)).unwrap();
    assert_eq!(
        applied,
        Applied {
            target: "power.limit:cpu".into(),
            previous: "65000 mW".into(),
            current: "50000 mW".into(),
            changed: true,
            dry_run: false,
        }
    );
    assert_eq!(machine.read(&limit), b"50000000");
    assert_eq!(machine.recorded_on_disk(), ["power.limit:cpu"]);
    let (store, _) = StateStore::open(&machine.state_file()).unwrap();
    assert_eq!(
        store.record("power.limit:cpu").unwrap(),
        [Original {
            knob: knob::Knob::Sysfs {
                path: machine.path(&limit)
            },
            value: "65000000\n".into(),
        }]
    );

    // A second change keeps the first original.
    actuator.apply(&cpu_limit(40_000)).unwrap();
    let report = actuator.restore_all();
    assert_eq!(report.restored, ["power.limit:cpu"]);
    assert_eq!(report.failed, []);
    assert_eq!(machine.read(&limit), b"65000000\n");
    assert!(machine.recorded_on_disk().is_empty());
    assert!(actuator.recorded_targets().is_empty());
}

#[test]
fn an_equal_value_is_a_no_op() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut actuator = machine.actuator(&["*"]);
    for (actuation, shown) in [
        (cpu_limit(65_000), "65000 mW"),
        (cpu_max(None), "max 100000"),
        (freq(4_700_000), "4700000"),
        (epp("balance_performance"), "balance_performance"),
    ] {
        let applied = actuator.apply(&actuation).unwrap();
        assert_eq!(
            applied,
            Applied {
                target: actuation.target(),
                previous: shown.into(),
                current: shown.into(),
                changed: false,
                dry_run: false,
            }
        );
    }
    assert_eq!(machine.snapshot(), before);
    assert!(!machine.state_file().exists(), "no record for a no-op");
}

#[test]
fn out_of_range_values_are_refused_before_anything_is_recorded() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut actuator = machine.actuator(&["*"]);
    let refusals = [
        (
            cpu_limit(100_000),
            HwError::OutOfRange {
                target: "power.limit:cpu".into(),
                value: 100_000,
                min: 0,
                max: 95_000,
            },
        ),
        (
            cpu_max(Some(500)),
            HwError::OutOfRange {
                target: "cgroup.cpu_max:game".into(),
                value: 500,
                min: 1_000,
                max: u64::MAX,
            },
        ),
        (
            cpuset("2-5"),
            HwError::NotAllowed {
                target: "cgroup.cpuset:game".into(),
                value: "2-5".into(),
                allowed: "0-3".into(),
            },
        ),
        (
            freq(5_000_000),
            HwError::OutOfRange {
                target: "cpufreq.max:1".into(),
                value: 5_000_000,
                min: 400_000,
                max: 4_700_000,
            },
        ),
        (
            freq(100_000),
            HwError::OutOfRange {
                target: "cpufreq.max:1".into(),
                value: 100_000,
                min: 400_000,
                max: 4_700_000,
            },
        ),
        (
            epp("power"),
            HwError::NotAllowed {
                target: "cpufreq.epp:1".into(),
                value: "power".into(),
                allowed: "default performance balance_performance balance_power".into(),
            },
        ),
    ];
    for (actuation, expected) in refusals {
        assert_eq!(actuator.apply(&actuation), Err(expected), "{actuation}");
    }
    assert!(matches!(
        actuator.apply(&Actuation::PowerLimit {
            component: "fan".into(),
            limit_mw: 1
        }),
        Err(HwError::UnknownComponent { .. })
    ));
    assert!(matches!(
        actuator.apply(&cpu_limit(0)),
        Err(HwError::InvalidActuation { .. })
    ));
    assert_eq!(machine.snapshot(), before);
    assert!(!machine.state_file().exists());
}

#[test]
fn cgroup_writers_write_and_skip_equal_values() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["cgroup.*"]);
    let applied = actuator.apply(&cpu_max(Some(50_000))).unwrap();
    assert_eq!(
        (applied.previous.as_str(), applied.current.as_str()),
        ("max 100000", "50000 100000")
    );
    assert_eq!(machine.read(&format!("{CGROUP}/cpu.max")), b"50000 100000");
    assert!(!actuator.apply(&cpu_max(Some(50_000))).unwrap().changed);

    let applied = actuator.apply(&cpuset("0-1")).unwrap();
    assert_eq!(
        (applied.previous.as_str(), applied.current.as_str()),
        ("", "0-1")
    );
    // The kernel prints ranges; an equal set written another way is still a no-op.
    assert!(!actuator.apply(&cpuset("0,1")).unwrap().changed);

    let report = actuator.restore_target("cgroup.cpuset:game");
    assert_eq!(report.restored, ["cgroup.cpuset:game"]);
    assert_eq!(machine.read(&format!("{CGROUP}/cpuset.cpus")), b"\n");
    assert_eq!(actuator.recorded_targets(), ["cgroup.cpu_max:game"]);
    actuator.restore_all();
    assert_eq!(machine.read(&format!("{CGROUP}/cpu.max")), b"max 100000\n");
}

#[test]
fn a_missing_cgroup_is_a_read_error_naming_the_file() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["*"]);
    let absent = Actuation::CgroupCpuMax {
        cgroup: "absent".into(),
        quota_us: Some(10_000),
        period_us: 100_000,
    };
    assert!(matches!(
        actuator.apply(&absent),
        Err(HwError::Read { path, .. }) if path == machine.path("sys/fs/cgroup/absent/cpu.max")
    ));
    assert!(actuator.recorded_targets().is_empty());
}

#[test]
fn cpufreq_writers_write_and_restore() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["cpufreq.*"]);
    actuator.apply(&freq(2_000_000)).unwrap();
    actuator.apply(&epp("balance_power")).unwrap();
    assert_eq!(
        machine.read(&format!("{CPUFREQ}/scaling_max_freq")),
        b"2000000"
    );
    assert_eq!(
        machine.read(&format!("{CPUFREQ}/energy_performance_preference")),
        b"balance_power"
    );
    assert_eq!(actuator.apply(&epp("default")).unwrap().current, "default");
    let report = actuator.restore_all();
    assert_eq!(report.restored, ["cpufreq.epp:1", "cpufreq.max:1"]);
    assert_eq!(
        machine.read(&format!("{CPUFREQ}/scaling_max_freq")),
        b"4700000\n"
    );
    assert_eq!(
        machine.read(&format!("{CPUFREQ}/energy_performance_preference")),
        b"balance_performance\n"
    );
}

#[test]
fn the_time_window_is_written_first_and_restored_too() {
    let machine = Machine::new();
    let mut config = machine.config(&["power.limit:cpu"]);
    config.power_limits.insert(
        "cpu".into(),
        PowerLimitBinding::Powercap {
            zone: "intel-rapl:0".into(),
            time_window_us: Some(1_000_000),
        },
    );
    let before = machine.snapshot();
    let mut actuator = LinuxActuator::new(config).unwrap();
    actuator.apply(&cpu_limit(45_000)).unwrap();
    assert_eq!(
        machine.read(&format!("{RAPL}/constraint_0_time_window_us")),
        b"1000000"
    );
    assert_eq!(
        machine.read(&format!("{RAPL}/constraint_0_power_limit_uw")),
        b"45000000"
    );
    actuator.restore_all();
    assert_eq!(machine.snapshot(), before);
}

#[test]
fn a_failed_write_that_changed_nothing_drops_its_record() {
    let machine = Machine::new();
    let limit = machine.path(&format!("{RAPL}/constraint_0_power_limit_uw"));
    let mut actuator = machine.actuator(&["power.limit:cpu"]);
    fault::fail_writes_to(&limit);
    let result = actuator.apply(&cpu_limit(50_000));
    fault::clear();
    assert_eq!(
        result,
        Err(HwError::Write {
            path: limit.clone(),
            value: "50000000".into(),
            reason: "permission denied".into(),
        })
    );
    assert_eq!(fs::read(&limit).unwrap(), b"65000000\n");
    assert!(actuator.recorded_targets().is_empty());
    assert!(machine.recorded_on_disk().is_empty());
    // The target is still usable afterwards.
    assert!(actuator.apply(&cpu_limit(50_000)).unwrap().changed);
}

#[test]
fn a_directory_in_place_of_the_knob_is_a_read_error() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["cpufreq.max:1"]);
    // Readable for the original (the bounds), but scaling_max_freq is a directory.
    let target = machine.path(&format!("{CPUFREQ}/scaling_max_freq"));
    fs::remove_file(&target).unwrap();
    fs::create_dir(&target).unwrap();
    assert!(matches!(
        actuator.apply(&freq(2_000_000)),
        Err(HwError::Read { path, .. }) if path == target
    ));
    assert!(actuator.recorded_targets().is_empty());
}

#[test]
fn a_partly_failed_write_keeps_a_record_that_restores() {
    let machine = Machine::new();
    let mut config = machine.config(&["power.limit:cpu"]);
    config.power_limits.insert(
        "cpu".into(),
        PowerLimitBinding::Powercap {
            zone: "intel-rapl:0".into(),
            time_window_us: Some(1_000_000),
        },
    );
    let before = machine.snapshot();
    let limit = machine.path(&format!("{RAPL}/constraint_0_power_limit_uw"));
    let mut actuator = LinuxActuator::new(config).unwrap();
    fault::fail_writes_to(&limit);
    assert!(matches!(
        actuator.apply(&cpu_limit(45_000)),
        Err(HwError::Write { path, .. }) if path == limit
    ));
    fault::clear();
    // The window was changed before the limit failed: its original is on disk.
    assert_eq!(
        machine.read(&format!("{RAPL}/constraint_0_time_window_us")),
        b"1000000"
    );
    assert_eq!(machine.recorded_on_disk(), ["power.limit:cpu"]);
    let report = actuator.restore_all();
    assert_eq!(report.restored, ["power.limit:cpu"]);
    assert_eq!(machine.snapshot(), before);
}

#[test]
fn nothing_is_written_when_the_original_cannot_be_recorded() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut actuator = machine.actuator(&["*"]);
    // The state file's directory is now a regular file: the record cannot be saved.
    fs::write(machine.dir.path().join("state"), "").unwrap();
    assert!(matches!(
        actuator.apply(&freq(2_000_000)),
        Err(HwError::State { .. })
    ));
    assert_eq!(machine.snapshot(), before);
    assert!(actuator.recorded_targets().is_empty());
}

#[test]
fn a_fresh_actuator_restores_what_a_crashed_one_changed() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut crashed = machine.actuator(&["*"]);
    for actuation in [
        cpu_limit(30_000),
        cpu_max(Some(20_000)),
        cpuset("1-2"),
        freq(1_200_000),
        epp("power"),
    ] {
        // `power` is not in this cpu's list; everything else applies.
        let _ = crashed.apply(&actuation);
    }
    assert_ne!(machine.snapshot(), before);
    drop(crashed); // a crash: nothing restored

    let restarted = machine.actuator(&[]);
    let start = restarted.start_report();
    assert_eq!(start.quarantined, None);
    assert_eq!(
        start.recovered.restored,
        [
            "cgroup.cpu_max:game",
            "cgroup.cpuset:game",
            "cpufreq.max:1",
            "power.limit:cpu"
        ]
    );
    assert_eq!(start.recovered.failed, []);
    assert_eq!(
        machine.snapshot(),
        before,
        "every original back, byte for byte"
    );
    assert!(restarted.recorded_targets().is_empty());
    assert!(machine.recorded_on_disk().is_empty());
}

#[test]
fn a_failed_restore_keeps_its_record_for_the_next_try() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let mut actuator = machine.actuator(&["*"]);
    actuator.apply(&freq(1_200_000)).unwrap();
    actuator.apply(&cpu_max(Some(20_000))).unwrap();
    let scaling = machine.path(&format!("{CPUFREQ}/scaling_max_freq"));
    fault::fail_writes_to(&scaling);
    let report = actuator.restore_all();
    fault::clear();
    assert_eq!(report.restored, ["cgroup.cpu_max:game"]);
    assert!(matches!(
        &report.failed[..],
        [(target, HwError::Write { path, .. })] if target == "cpufreq.max:1" && *path == scaling
    ));
    assert_eq!(machine.recorded_on_disk(), ["cpufreq.max:1"]);
    drop(actuator);
    let restarted = machine.actuator(&[]);
    assert_eq!(
        restarted.start_report().recovered.restored,
        ["cpufreq.max:1"]
    );
    assert_eq!(machine.snapshot(), before);
}

#[test]
fn a_corrupt_state_file_is_kept_aside_and_reported() {
    let machine = Machine::new();
    fs::create_dir_all(machine.state_file().parent().unwrap()).unwrap();
    fs::write(machine.state_file(), b"{\"version\": 1, \"records\": [tru").unwrap();
    let mut actuator = machine.actuator(&["*"]);
    let moved_to = machine
        .dir
        .path()
        .join("state/actuator-state.json.corrupt-1");
    assert!(
        matches!(
            &actuator.start_report().quarantined,
            Some(HwError::CorruptState { moved_to: m, .. }) if *m == moved_to
        ),
        "{:?}",
        actuator.start_report()
    );
    assert_eq!(
        fs::read(&moved_to).unwrap(),
        b"{\"version\": 1, \"records\": [tru"
    );
    // The actuator works on a fresh state file.
    actuator.apply(&freq(2_000_000)).unwrap();
    assert_eq!(machine.recorded_on_disk(), ["cpufreq.max:1"]);
}

#[test]
fn an_unreadable_state_file_stops_the_actuator() {
    let machine = Machine::new();
    fs::create_dir_all(machine.state_file()).unwrap();
    assert!(matches!(
        LinuxActuator::new(machine.config(&[])),
        Err(HwError::State { .. })
    ));
}

#[test]
fn an_nvml_target_without_nvml_fails_cleanly() {
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["power.limit:gpu0"]);
    // As on a machine without an NVIDIA driver, whatever this one has.
    actuator.nvml = knob::NvmlHandle::unavailable("libnvidia-ml.so.1: not found");
    let result = actuator.apply(&Actuation::PowerLimit {
        component: "gpu0".into(),
        limit_mw: 200_000,
    });
    assert!(
        matches!(result, Err(HwError::NvmlUnavailable { .. })),
        "{result:?}"
    );
    assert!(actuator.recorded_targets().is_empty());
}

/// On a GPU machine: setting the current limit is a no-op and an out-of-range one is
/// refused, neither touching the GPU. (The real write and restore are in
/// `examples/nvml_probe.rs --write`.) Run it with `cargo test -- --ignored`.
#[test]
#[ignore = "needs an NVIDIA driver (NVML)"]
fn nvml_writer_no_op_and_refusal() {
    let mut source = crate::NvmlSource::init().expect("NVML, which this test needs");
    let reading = source.read();
    let gpu = reading
        .components
        .first()
        .expect("a GPU, which this test needs");
    let machine = Machine::new();
    let mut actuator = machine.actuator(&["power.limit:gpu0"]);
    let nvml = nvml_wrapper::Nvml::init().unwrap();
    let management_mw = nvml
        .device_by_index(0)
        .unwrap()
        .power_management_limit()
        .unwrap();
    let same = actuator
        .apply(&Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw: u64::from(management_mw),
        })
        .unwrap();
    assert!(!same.changed, "{same:?}");
    let max = gpu.limit_max_mw.unwrap();
    let result = actuator.apply(&Actuation::PowerLimit {
        component: "gpu0".into(),
        limit_mw: max + 1_000,
    });
    assert!(
        matches!(result, Err(HwError::OutOfRange { value, .. }) if value == max + 1_000),
        "{result:?}"
    );
    assert!(actuator.recorded_targets().is_empty());
}
