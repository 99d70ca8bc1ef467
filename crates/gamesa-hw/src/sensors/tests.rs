//! Sensor tests on fake sysfs trees, and one on this machine's real root.
//!
//! Unreadable files are simulated with a directory where the file is expected, or
//! with content that is not what the kernel would write: the tests run as root, whom
//! `chmod 000` does not stop.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use gamesa_proto::{ComponentKind, PressureTelemetry, Tick};

use super::*;

fn write(root: &Path, file: &str, content: &str) {
    let path = root.join(file);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn options(root: &Path) -> LinuxSensorsOptions {
    LinuxSensorsOptions {
        root: root.to_path_buf(),
        cap_mw: Some(120_000),
        nvml: false,
    }
}

fn status<'a>(frame: &'a TelemetryFrame, name: &str) -> &'a SourceStatus {
    frame
        .sources
        .iter()
        .find(|status| status.source == name)
        .unwrap_or_else(|| panic!("source {name} not listed in {:?}", frame.sources))
}

/// A machine with one package, its DRAM domain, a CPU thermal zone, an hwmon chip and
/// memory PSI.
fn fake_machine(root: &Path) {
    write(root, "sys/class/powercap/intel-rapl/enabled", "1\n");
    let package = "sys/class/powercap/intel-rapl:0";
    write(root, &format!("{package}/name"), "package-0\n");
    write(root, &format!("{package}/energy_uj"), "1000000\n");
    write(
        root,
        &format!("{package}/max_energy_range_uj"),
        "262143328850\n",
    );
    write(
        root,
        &format!("{package}/constraint_0_power_limit_uw"),
        "65000000\n",
    );
    write(
        root,
        &format!("{package}/constraint_0_max_power_uw"),
        "95000000\n",
    );
    let dram = "sys/class/powercap/intel-rapl:0:0";
    write(root, &format!("{dram}/name"), "dram\n");
    write(root, &format!("{dram}/energy_uj"), "500000\n");
    let zone = "sys/class/thermal/thermal_zone0";
    write(root, &format!("{zone}/type"), "x86_pkg_temp\n");
    write(root, &format!("{zone}/temp"), "55000\n");
    write(root, &format!("{zone}/trip_point_0_type"), "critical\n");
    write(root, &format!("{zone}/trip_point_0_temp"), "100000\n");
    write(root, "sys/class/hwmon/hwmon0/name", "nvme\n");
    write(root, "sys/class/hwmon/hwmon0/temp1_input", "38850\n");
    write(root, "sys/class/hwmon/hwmon0/temp1_label", "Composite\n");
    write(
        root,
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
        "2100000\n",
    );
    write(
        root,
        "proc/pressure/memory",
        "some avg10=0.25 avg60=0.10 avg300=0.00 total=4200\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total=100\n",
    );
}

#[test]
fn a_fake_machine_gives_every_figure() {
    let root = tempfile::tempdir().unwrap();
    fake_machine(root.path());
    let mut sensors = LinuxSensors::new(options(root.path()));
    let start = Instant::now();
    let first = sensors.sample_at(Tick(1), start);
    assert_eq!(first.errors, []);
    assert_eq!(first.frame.tick, Tick(1));
    assert_eq!(first.frame.interval_ms, 0);
    assert_eq!(
        first.frame.power_domains[0].power_mw, None,
        "one reading: no power yet"
    );

    // 30 J on the package and 2 J on DRAM over one second.
    write(
        root.path(),
        "sys/class/powercap/intel-rapl:0/energy_uj",
        "31000000\n",
    );
    write(
        root.path(),
        "sys/class/powercap/intel-rapl:0:0/energy_uj",
        "2500000\n",
    );
    let Sample { frame, errors } = sensors.sample_at(Tick(2), start + Duration::from_secs(1));
    assert_eq!(errors, []);
    assert_eq!(frame.interval_ms, 1000);
    assert_eq!(
        frame
            .power_domains
            .iter()
            .map(|d| (d.id.as_str(), d.name.as_str(), d.power_mw, d.limit_mw))
            .collect::<Vec<_>>(),
        [
            ("intel-rapl:0", "package-0", Some(30_000), Some(65_000)),
            ("intel-rapl:0:0", "dram", Some(2_000), None),
        ]
    );
    assert_eq!(
        frame
            .temperatures
            .iter()
            .map(|t| (t.id.as_str(), t.label.as_deref(), t.temp_mc, t.critical_mc))
            .collect::<Vec<_>>(),
        [
            ("thermal_zone0", Some("x86_pkg_temp"), 55_000, Some(100_000)),
            ("hwmon0/temp1", Some("Composite"), 38_850, None),
        ]
    );
    assert_eq!(
        frame.pressure,
        Some(PressureTelemetry {
            some_avg10_centipct: 25,
            some_avg60_centipct: 10,
            full_avg10_centipct: 0,
            full_avg60_centipct: 0,
            some_total_us: 4200,
            full_total_us: 100,
        })
    );
    let cpu = frame.component("cpu").unwrap();
    assert_eq!(cpu.kind, ComponentKind::Cpu);
    assert_eq!(cpu.power_mw, Some(30_000), "the package only, not DRAM");
    assert_eq!(cpu.limit_mw, Some(65_000));
    assert_eq!(cpu.limit_max_mw, Some(95_000));
    assert_eq!(
        cpu.temp_mc,
        Some(55_000),
        "the CPU zone, not the NVMe drive"
    );
    assert_eq!(cpu.t_max_mc, Some(100_000));
    assert_eq!(frame.node.draw_mw, Some(30_000));
    assert_eq!(frame.node.cap_mw, Some(120_000));
    assert!(frame.memory.is_some());
    for name in [
        source::MEMORY,
        source::THERMAL,
        source::HWMON,
        source::POWERCAP,
        source::PSI,
        source::CPUFREQ,
    ] {
        assert!(status(&frame, name).available, "{:?}", status(&frame, name));
    }
    assert_eq!(
        status(&frame, source::NVML),
        &SourceStatus {
            source: "nvml".into(),
            available: false,
            detail: Some("disabled in the sensor options".into()),
        }
    );
}

#[test]
fn missing_sources_are_listed_unavailable_on_every_frame() {
    let root = tempfile::tempdir().unwrap();
    let mut sensors = LinuxSensors::new(options(root.path()));
    let unavailable: Vec<&str> = sensors
        .unavailable_sources()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        unavailable,
        [
            source::CPUFREQ,
            source::THERMAL,
            source::HWMON,
            source::POWERCAP,
            source::NVML,
            source::GPU_HWMON,
            source::PSI
        ]
    );
    for tick in 1..=2 {
        let sample = sensors.sample(Tick(tick));
        assert_eq!(sample.errors, [], "a missing source is not an error");
        let names: Vec<&str> = sample
            .frame
            .sources
            .iter()
            .map(|s| s.source.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "cpu",
                "memory",
                "cpufreq",
                "thermal",
                "hwmon",
                "powercap",
                "nvml",
                "gpu_hwmon",
                "psi"
            ]
        );
        for name in &unavailable {
            let status = status(&sample.frame, name);
            assert!(!status.available);
            assert!(status.detail.is_some(), "{status:?}");
        }
        let powercap = status(&sample.frame, source::POWERCAP);
        assert_eq!(
            powercap.detail.as_deref(),
            Some(
                format!(
                    "no intel-rapl* zones under {}",
                    root.path().join("sys/class/powercap").display()
                )
                .as_str()
            )
        );
        assert!(sample.frame.temperatures.is_empty());
        assert!(sample.frame.power_domains.is_empty());
        assert!(sample.frame.gpus.is_empty());
        assert_eq!(sample.frame.pressure, None);
        assert_eq!(sample.frame.node.draw_mw, None);
    }
}

#[test]
fn a_malformed_reading_is_a_typed_error_and_the_rest_still_arrives() {
    let root = tempfile::tempdir().unwrap();
    fake_machine(root.path());
    write(root.path(), "sys/class/thermal/thermal_zone0/temp", "abc\n");
    let psi = root.path().join("proc/pressure/memory");
    fs::remove_file(&psi).unwrap();
    fs::create_dir(&psi).unwrap(); // present but unreadable
    let mut sensors = LinuxSensors::new(options(root.path()));
    for tick in 1..=2 {
        let Sample { frame, errors } = sensors.sample(Tick(tick));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0],
            HwError::Parse {
                path: root.path().join("sys/class/thermal/thermal_zone0/temp"),
                content: "abc".into(),
                expected: "an integer",
            }
        );
        assert!(matches!(&errors[1], HwError::Read { path, .. } if *path == psi));
        let thermal = status(&frame, source::THERMAL);
        assert!(thermal.available);
        assert!(
            thermal
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("cannot parse `abc`")),
            "{thermal:?}"
        );
        assert!(
            !status(&frame, source::PSI)
                .detail
                .as_deref()
                .unwrap_or("")
                .is_empty()
        );
        assert_eq!(frame.pressure, None);
        assert_eq!(frame.temperatures.len(), 1, "hwmon still arrives");
        assert_eq!(frame.power_domains.len(), 2, "powercap still arrives");
        assert_eq!(frame.component("cpu").unwrap().temp_mc, None);
    }
}

#[test]
fn discovery_problems_come_with_the_first_sample() {
    let root = tempfile::tempdir().unwrap();
    fake_machine(root.path());
    let name = root.path().join("sys/class/powercap/intel-rapl:0/name");
    fs::write(&name, [0xc3, 0x28]).unwrap(); // invalid UTF-8
    let mut sensors = LinuxSensors::new(options(root.path()));
    let first = sensors.sample(Tick(1));
    assert_eq!(
        first.errors,
        [HwError::Parse {
            path: name,
            content: "\u{fffd}(".into(),
            expected: "UTF-8 text",
        }]
    );
    assert_eq!(
        first.frame.power_domains[0].name, "intel-rapl:0",
        "named by its id"
    );
    assert_eq!(sensors.sample(Tick(2)).errors, []);
}

#[test]
fn cpu_utilization_waits_for_a_measured_interval() {
    let root = tempfile::tempdir().unwrap();
    let mut sensors = LinuxSensors::new(options(root.path()));
    let first = sensors.sample(Tick(1));
    assert_eq!(first.frame.cpu, None);
    let cpu = status(&first.frame, source::CPU);
    assert!(cpu.available);
    assert!(
        cpu.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("warming up")),
        "{cpu:?}"
    );
}

/// This machine: cpu and memory present, and every missing source (here: no thermal
/// zone, no powercap, no GPU) listed as unavailable with a reason.
#[test]
fn reads_this_machine() {
    let mut sensors = LinuxSensors::system();
    // sysinfo measures utilization between two /proc/stat readings 200 ms apart.
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(20));
    let Sample { frame, errors } = sensors.sample(Tick(1));
    eprintln!("sources on this machine: {:#?}", frame.sources);
    let cpu = frame
        .cpu
        .as_ref()
        .expect("cpu utilization on a real machine");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(cpu.per_core_permille.len() >= cores, "{cpu:?}");
    assert!(cpu.utilization_permille <= 1000);
    let memory = frame.memory.as_ref().expect("memory on a real machine");
    assert!(
        memory.total_mb > 0 && memory.available_mb <= memory.total_mb,
        "{memory:?}"
    );
    assert_eq!(frame.sources.len(), 9);
    assert!(status(&frame, source::CPU).available);
    assert!(status(&frame, source::MEMORY).available);
    for status in &frame.sources {
        if !status.available {
            assert!(status.detail.is_some(), "{status:?}");
        }
    }
    let expect_unavailable = |name: &str, path: &str| {
        if !Path::new(path).exists() {
            assert!(
                !status(&frame, name).available,
                "{name}: {path} is absent here"
            );
        }
    };
    expect_unavailable(source::POWERCAP, "/sys/class/powercap");
    expect_unavailable(source::HWMON, "/sys/class/hwmon");
    expect_unavailable(source::PSI, "/proc/pressure/memory");
    let has_zone = fs::read_dir("/sys/class/thermal").is_ok_and(|dir| {
        dir.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
    });
    if !has_zone {
        assert!(!status(&frame, source::THERMAL).available);
    }
    // `frame.gpus` lists the NVML GPUs; the amdgpu, i915 and xe ones are components only.
    let gpu_components = frame
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Gpu)
        .count();
    if status(&frame, source::GPU_HWMON).available {
        assert!(gpu_components > frame.gpus.len(), "{:?}", frame.components);
    } else {
        assert_eq!(frame.gpus.len(), gpu_components);
    }
    if !status(&frame, source::NVML).available {
        assert!(frame.gpus.is_empty());
    }
    assert_eq!(errors, [], "no reading should fail on a healthy machine");
}
