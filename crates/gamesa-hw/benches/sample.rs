//! Benchmarks of the Linux sensors: one `LinuxSensors::sample` on this machine's real
//! root, and one on a fake tree with the sources this machine lacks (RAPL, thermal
//! zones, hwmon, cpufreq) so their parsing cost is measured too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{fs, hint::black_box, path::Path};

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_hw::{LinuxSensors, LinuxSensorsOptions, Sensors};
use gamesa_proto::Tick;

fn write(root: &Path, file: &str, content: &str) {
    let path = root.join(file);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A desktop-like tree: 2 RAPL domains, 2 thermal zones, 6 hwmon inputs, 16 cpus with
/// cpufreq, and memory PSI.
fn fake_desktop(root: &Path) {
    for (id, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")] {
        let dir = format!("sys/class/powercap/{id}");
        write(root, &format!("{dir}/name"), &format!("{name}\n"));
        write(root, &format!("{dir}/energy_uj"), "123456789\n");
        write(
            root,
            &format!("{dir}/max_energy_range_uj"),
            "262143328850\n",
        );
        write(
            root,
            &format!("{dir}/constraint_0_power_limit_uw"),
            "65000000\n",
        );
    }
    for (n, kind) in [(0, "acpitz"), (1, "x86_pkg_temp")] {
        let dir = format!("sys/class/thermal/thermal_zone{n}");
        write(root, &format!("{dir}/type"), &format!("{kind}\n"));
        write(root, &format!("{dir}/temp"), "45000\n");
        write(root, &format!("{dir}/trip_point_0_type"), "critical\n");
        write(root, &format!("{dir}/trip_point_0_temp"), "100000\n");
    }
    write(root, "sys/class/hwmon/hwmon0/name", "coretemp\n");
    for n in 1..=6 {
        write(
            root,
            &format!("sys/class/hwmon/hwmon0/temp{n}_input"),
            "47000\n",
        );
        write(
            root,
            &format!("sys/class/hwmon/hwmon0/temp{n}_label"),
            &format!("Core {n}\n"),
        );
    }
    for cpu in 0..16 {
        write(
            root,
            &format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq"),
            "3200000\n",
        );
    }
    write(
        root,
        "proc/pressure/memory",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
}

fn linux_sensors(c: &mut Criterion) {
    let mut group = c.benchmark_group("linux_sensors");

    let mut real = LinuxSensors::system();
    let mut tick = 0u64;
    group.bench_function("sample (this machine, real root)", |b| {
        b.iter(|| {
            tick += 1;
            black_box(real.sample(Tick(tick)))
        });
    });

    let root = tempfile::tempdir().unwrap();
    fake_desktop(root.path());
    let mut fake = LinuxSensors::new(LinuxSensorsOptions {
        root: root.path().to_path_buf(),
        cap_mw: Some(200_000),
        nvml: false,
    });
    group.bench_function("sample (fake desktop tree)", |b| {
        b.iter(|| {
            tick += 1;
            black_box(fake.sample(Tick(tick)))
        });
    });
    group.finish();
}

criterion_group!(benches, linux_sensors);
criterion_main!(benches);
