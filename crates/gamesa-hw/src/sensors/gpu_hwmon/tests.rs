//! The hwmon GPU source on fake sysfs trees laid out as amdgpu, i915 and xe lay them
//! out (`drm::fake`), read through [`LinuxSensors`] as `gamesa run` reads them.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use gamesa_proto::{ComponentKind, ComponentTelemetry, SourceStatus, TelemetryFrame, Tick};

use super::GpuHwmonSource;
use crate::{HwError, LinuxSensors, LinuxSensorsOptions, Sample, drm::fake, sensors::source};

const SECOND: Duration = Duration::from_secs(1);

fn sensors(root: &Path) -> LinuxSensors {
    LinuxSensors::new(LinuxSensorsOptions {
        root: root.to_path_buf(),
        cap_mw: None,
        nvml: false,
    })
}

fn gpu<'a>(frame: &'a TelemetryFrame, id: &str) -> &'a ComponentTelemetry {
    frame
        .component(id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", frame.components))
}

/// The GPU components (a `cpu` one appears too if the sample came 200 ms after start).
fn gpus(frame: &TelemetryFrame) -> Vec<&ComponentTelemetry> {
    frame
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Gpu)
        .collect()
}

fn status(frame: &TelemetryFrame) -> &SourceStatus {
    frame
        .sources
        .iter()
        .find(|status| status.source == source::GPU_HWMON)
        .unwrap()
}

#[test]
fn an_amdgpu_card_is_gpu0_with_power_cap_range_temperature_and_utilization() {
    let root = tempfile::tempdir().unwrap();
    fake::amdgpu(root.path());
    let mut sensors = sensors(root.path());
    let Sample { frame, errors } = sensors.sample_at(Tick(1), Instant::now());
    assert_eq!(errors, []);
    assert_eq!(
        gpus(&frame),
        [&ComponentTelemetry {
            id: "gpu0".into(),
            kind: ComponentKind::Gpu,
            utilization_permille: 370,
            power_mw: Some(35_000),
            // The hottest of edge, junction and mem, with its own critical point.
            temp_mc: Some(52_000),
            t_max_mc: Some(110_000),
            limit_mw: Some(203_000),
            limit_min_mw: Some(150_000),
            limit_max_mw: Some(230_000),
            progress_micro: None,
            work_left_micro: None,
        }]
    );
    assert_eq!(
        status(&frame),
        &SourceStatus {
            source: "gpu_hwmon".into(),
            available: true,
            detail: None,
        }
    );
    // Its temperatures are listed once each, as hwmon inputs, and none is the CPU's.
    let temps: Vec<_> = frame
        .temperatures
        .iter()
        .map(|t| (t.id.as_str(), t.label.as_deref()))
        .collect();
    assert_eq!(
        temps,
        [
            ("hwmon3/temp1", Some("edge")),
            ("hwmon3/temp2", Some("junction")),
            ("hwmon3/temp3", Some("mem")),
        ]
    );
    assert_eq!(
        frame.component("cpu").and_then(|cpu| cpu.temp_mc),
        None,
        "a GPU temperature is not the CPU's"
    );
    assert!(frame.gpus.is_empty(), "frame.gpus lists NVML devices only");
    assert_eq!(frame.node.draw_mw, Some(35_000));
}

#[test]
fn a_newer_amdgpu_reports_power1_input_instead_of_the_average() {
    let root = tempfile::tempdir().unwrap();
    let dir = fake::amdgpu(root.path());
    fs::remove_file(dir.join("power1_average")).unwrap();
    fs::write(dir.join("power1_input"), "41500000\n").unwrap();
    let frame = sensors(root.path())
        .sample_at(Tick(1), Instant::now())
        .frame;
    assert_eq!(gpu(&frame, "gpu0").power_mw, Some(41_500));
}

#[test]
fn an_i915_card_has_power_from_its_energy_counter_after_two_samples() {
    let root = tempfile::tempdir().unwrap();
    let dir = fake::i915(root.path());
    let mut sensors = sensors(root.path());
    let start = Instant::now();
    let first = sensors.sample_at(Tick(1), start);
    assert_eq!(first.errors, []);
    let component = gpu(&first.frame, "gpu0");
    assert_eq!(component.power_mw, None, "one reading: no power yet");
    assert_eq!(
        (
            component.limit_mw,
            component.limit_min_mw,
            component.limit_max_mw
        ),
        (Some(190_000), None, Some(225_000)),
        "power1_max is the limit, power1_rated_max its maximum, no minimum"
    );
    assert_eq!((component.temp_mc, component.t_max_mc), (None, None));
    assert_eq!(component.utilization_permille, 0);
    assert_eq!(
        status(&first.frame).detail.as_deref(),
        Some("utilization not published by gpu0 (i915) (reads 0)")
    );

    // 60 J over two seconds.
    fs::write(dir.join("energy1_input"), "1060000000\n").unwrap();
    let second = sensors.sample_at(Tick(2), start + 2 * SECOND);
    assert_eq!(second.errors, []);
    assert_eq!(gpu(&second.frame, "gpu0").power_mw, Some(30_000));

    // A counter that went backwards (a driver reload) gives no figure, then resumes.
    fs::write(dir.join("energy1_input"), "1000\n").unwrap();
    let third = sensors.sample_at(Tick(3), start + 3 * SECOND);
    assert_eq!(gpu(&third.frame, "gpu0").power_mw, None);
    fs::write(dir.join("energy1_input"), "20001000\n").unwrap();
    let fourth = sensors.sample_at(Tick(4), start + 4 * SECOND);
    assert_eq!(gpu(&fourth.frame, "gpu0").power_mw, Some(20_000));
}

#[test]
fn an_xe_card_reads_channel_1_and_a_disabled_limit_is_none() {
    let root = tempfile::tempdir().unwrap();
    let dir = fake::xe(root.path());
    let mut sensors = sensors(root.path());
    let start = Instant::now();
    sensors.sample_at(Tick(1), start);
    fs::write(dir.join("energy1_input"), "15000000\n").unwrap();
    // The package channel moves too, and must not count.
    fs::write(dir.join("energy2_input"), "904000000\n").unwrap();
    let Sample { frame, errors } = sensors.sample_at(Tick(2), start + SECOND);
    assert_eq!(errors, []);
    let component = gpu(&frame, "gpu0");
    assert_eq!(component.power_mw, Some(10_000), "10 J of channel 1 in 1 s");
    assert_eq!(component.limit_mw, None, "power1_max reads 0: PL1 disabled");
    assert_eq!(component.limit_max_mw, Some(190_000));
}

#[test]
fn a_mixed_machine_numbers_by_pci_address_not_by_card_or_hwmon() {
    let root = tempfile::tempdir().unwrap();
    // The amdgpu card probed first (card0, hwmon0) sits at the higher PCI address.
    fake::gpu(
        root.path(),
        0,
        "0000:03:00.0",
        0,
        fake::AMDGPU,
        &[("gpu_busy_percent", "5\n")],
    );
    fake::gpu(root.path(), 1, "0000:02:00.0", 4, fake::I915, &[]);
    let mut sensors = sensors(root.path());
    let frame = sensors.sample_at(Tick(1), Instant::now()).frame;
    let ids: Vec<_> = gpus(&frame)
        .into_iter()
        .map(|c| (c.id.as_str(), c.limit_mw))
        .collect();
    assert_eq!(ids, [("gpu0", Some(190_000)), ("gpu1", Some(203_000))]);
    let devices: Vec<_> = sensors
        .hwmon_gpus()
        .iter()
        .map(|gpu| (gpu.id, gpu.device.pci.as_str(), gpu.limit_file))
        .collect();
    assert_eq!(
        devices,
        [
            ("gpu0", "0000:02:00.0", Some("power1_max")),
            ("gpu1", "0000:03:00.0", Some("power1_cap")),
        ]
    );
}

#[test]
fn hwmon_gpus_are_numbered_after_the_nvml_ones() {
    let root = tempfile::tempdir().unwrap();
    fake::amdgpu(root.path());
    let mut errors = Vec::new();
    let mut source = GpuHwmonSource::discover(root.path(), 2, &mut errors).unwrap();
    let components = source.read(Instant::now(), &[], &mut errors);
    assert_eq!(errors, []);
    assert_eq!(components[0].id, "gpu2");
}

#[test]
fn garbage_in_a_cards_files_is_an_error_naming_each_file_and_the_card_stays() {
    let root = tempfile::tempdir().unwrap();
    fake::amdgpu(root.path());
    // The path the sensors read through, which errors name.
    let dir = root.path().join("sys/class/drm/card1/device/hwmon/hwmon3");
    fs::write(dir.join("power1_cap_max"), "lots\n").unwrap();
    fs::write(dir.join("power1_average"), "\u{1}junk").unwrap();
    fs::write(dir.join("power1_cap"), [0xff, 0xfe]).unwrap();
    let busy = root
        .path()
        .join("sys/devices/pci0000:00/0000:03:00.0/gpu_busy_percent");
    fs::remove_file(&busy).unwrap();
    fs::create_dir(&busy).unwrap(); // present but unreadable
    let mut sensors = sensors(root.path());
    for tick in 1..=2 {
        let Sample { frame, errors } = sensors.sample_at(Tick(tick), Instant::now());
        let component = gpu(&frame, "gpu0");
        assert_eq!(
            (
                component.power_mw,
                component.limit_mw,
                component.limit_min_mw,
                component.limit_max_mw,
                component.utilization_permille
            ),
            (None, None, Some(150_000), None, 0)
        );
        assert_eq!(
            component.temp_mc,
            Some(52_000),
            "the temperatures still arrive"
        );
        let mut expected = vec![
            HwError::Parse {
                path: dir.join("power1_average"),
                content: "\u{1}junk".into(),
                expected: "an unsigned integer",
            },
            HwError::Parse {
                path: dir.join("power1_cap"),
                content: "\u{fffd}\u{fffd}".into(),
                expected: "UTF-8 text",
            },
        ];
        if tick == 1 {
            // Discovery's problem comes once, with the first sample.
            expected.insert(
                0,
                HwError::Parse {
                    path: dir.join("power1_cap_max"),
                    content: "lots".into(),
                    expected: "an unsigned integer",
                },
            );
        }
        let (known, busy_error) = errors.split_at(expected.len());
        assert_eq!(known, expected);
        assert!(
            matches!(busy_error, [HwError::Read { path, .. }] if path.ends_with("gpu_busy_percent")),
            "{busy_error:?}"
        );
        let detail = status(&frame).detail.clone().unwrap_or_default();
        assert!(detail.contains("3 readings failed"), "{detail}");
    }
}

#[test]
fn a_card_with_only_a_reading_is_a_component_without_a_limit() {
    let root = tempfile::tempdir().unwrap();
    let dir = fake::amdgpu(root.path());
    for file in ["power1_cap", "power1_cap_min", "power1_cap_max"] {
        fs::remove_file(dir.join(file)).unwrap();
    }
    let mut sensors = sensors(root.path());
    let frame = sensors.sample_at(Tick(1), Instant::now()).frame;
    let component = gpu(&frame, "gpu0");
    assert_eq!(component.power_mw, Some(35_000));
    assert_eq!(
        (
            component.limit_mw,
            component.limit_min_mw,
            component.limit_max_mw
        ),
        (None, None, None)
    );
    assert_eq!(sensors.hwmon_gpus()[0].limit_file, None);
}

#[test]
fn a_card_with_nothing_on_channel_1_is_skipped_and_said_so() {
    let root = tempfile::tempdir().unwrap();
    // An integrated xe GPU: only the package channel, which RAPL already counts.
    fake::gpu(
        root.path(),
        0,
        "0000:00:02.0",
        2,
        &[
            ("name", "xe\n"),
            ("power2_max", "28000000\n"),
            ("energy2_input", "1000\n"),
        ],
        &[],
    );
    let mut sensors = sensors(root.path());
    let frame = sensors.sample_at(Tick(1), Instant::now()).frame;
    assert_eq!(gpus(&frame), Vec::<&ComponentTelemetry>::new());
    let status = status(&frame);
    assert!(!status.available);
    let detail = status.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("skipped (no power reading, energy counter or limit on channel 1): card0 (xe at 0000:00:02.0)"),
        "{detail}"
    );
}

#[test]
fn no_gpu_leaves_the_source_unavailable_with_why() {
    let root = tempfile::tempdir().unwrap();
    let sensors = sensors(root.path());
    let reason = sensors
        .unavailable_sources()
        .into_iter()
        .find(|(name, _)| *name == source::GPU_HWMON)
        .map(|(_, reason)| reason)
        .unwrap();
    assert!(
        reason.starts_with("no amdgpu, i915 or xe hwmon under"),
        "{reason}"
    );
}
