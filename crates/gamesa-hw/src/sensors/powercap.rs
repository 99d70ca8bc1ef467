//! RAPL energy counters and power limits from `sys/class/powercap/intel-rapl*`, turned
//! into average power over the interval between two samples.
//!
//! # Invariants
//! - power is `None` on a zone's first reading, and whenever it cannot be computed
//!   honestly (no elapsed time, or a counter that went backwards with no known range);
//! - a counter that went backwards wrapped once at `max_energy_range_uj`.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use gamesa_proto::PowerDomainTelemetry;

use crate::{HwError, sysfs};

/// One RAPL zone's reading, with what the unified `cpu` component also needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainReading {
    pub(crate) telemetry: PowerDomainTelemetry,
    pub(crate) limit_min_mw: Option<u64>,
    pub(crate) limit_max_mw: Option<u64>,
    /// A package domain (`package-0`), whose power counts for the `cpu` component.
    pub(crate) package: bool,
}

#[derive(Debug)]
struct Zone {
    id: String,
    name: String,
    energy_path: PathBuf,
    limit_path: Option<PathBuf>,
    max_energy_range_uj: Option<u64>,
    limit_min_mw: Option<u64>,
    limit_max_mw: Option<u64>,
    /// The previous successful reading of `energy_uj`, and when it was taken.
    last: Option<(u64, Instant)>,
}

/// The RAPL zones found at start.
#[derive(Debug)]
pub(crate) struct PowercapSource {
    zones: Vec<Zone>,
}

impl PowercapSource {
    pub(crate) fn discover(
        root: &Path,
        errors: &mut Vec<HwError>,
    ) -> Result<PowercapSource, String> {
        let dir = root.join("sys/class/powercap");
        let zone_suffix = |rest: &str| {
            let numbers = rest
                .strip_prefix(':')
                .or_else(|| rest.strip_prefix("-mmio:"));
            numbers.is_some_and(|numbers| numbers.split(':').all(sysfs::is_number))
        };
        let zones: Vec<Zone> = sysfs::entries_with_prefix(&dir, "intel-rapl", zone_suffix)
            .into_iter()
            .map(|(id, path)| {
                let name = match sysfs::read_text(&path.join("name")) {
                    Ok(name) => name.trim().to_string(),
                    Err(err) => {
                        errors.push(err);
                        id.clone()
                    }
                };
                let mut optional = |file: &str| {
                    sysfs::read_optional_u64(&path.join(file))
                        .map_err(|err| errors.push(err))
                        .ok()
                        .flatten()
                };
                let max_energy_range_uj = optional("max_energy_range_uj");
                // Some firmware publishes 0 for an unknown bound.
                let limit_min_mw = optional("constraint_0_min_power_uw").map(|uw| uw / 1000);
                let limit_max_mw = optional("constraint_0_max_power_uw")
                    .filter(|uw| *uw > 0)
                    .map(|uw| uw / 1000);
                let limit_path = path.join("constraint_0_power_limit_uw");
                Zone {
                    energy_path: path.join("energy_uj"),
                    limit_path: limit_path.exists().then_some(limit_path),
                    id,
                    name,
                    max_energy_range_uj,
                    limit_min_mw,
                    limit_max_mw,
                    last: None,
                }
            })
            .collect();
        if zones.is_empty() {
            return Err(format!("no intel-rapl* zones under {}", dir.display()));
        }
        Ok(PowercapSource { zones })
    }

    /// Reads every zone; `now` is when the readings are taken (injected for tests).
    pub(crate) fn read(&mut self, now: Instant, errors: &mut Vec<HwError>) -> Vec<DomainReading> {
        let mut readings = Vec::with_capacity(self.zones.len());
        for zone in &mut self.zones {
            let energy_uj = match sysfs::read_u64(&zone.energy_path) {
                Ok(energy) => energy,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let power_mw = zone.last.and_then(|(previous_uj, then)| {
                average_power_mw(
                    previous_uj,
                    energy_uj,
                    zone.max_energy_range_uj,
                    now.saturating_duration_since(then),
                )
            });
            zone.last = Some((energy_uj, now));
            let limit_mw = zone.limit_path.as_ref().and_then(|path| {
                sysfs::read_u64(path)
                    .map(|uw| uw / 1000)
                    .map_err(|err| errors.push(err))
                    .ok()
            });
            readings.push(DomainReading {
                telemetry: PowerDomainTelemetry {
                    id: zone.id.clone(),
                    name: zone.name.clone(),
                    energy_uj,
                    power_mw,
                    limit_mw,
                },
                limit_min_mw: zone.limit_min_mw,
                limit_max_mw: zone.limit_max_mw,
                package: zone.name.starts_with("package"),
            });
        }
        readings
    }
}

/// Average power in mW between two readings of an energy counter taken `elapsed`
/// apart. A counter lower than before wrapped once at `max_energy_range_uj`; without
/// that range, or with no elapsed time, there is no honest figure and this is `None`.
pub(crate) fn average_power_mw(
    previous_uj: u64,
    current_uj: u64,
    max_energy_range_uj: Option<u64>,
    elapsed: Duration,
) -> Option<u64> {
    let elapsed_us = elapsed.as_micros();
    if elapsed_us == 0 {
        return None;
    }
    let consumed_uj = if current_uj >= previous_uj {
        current_uj - previous_uj
    } else {
        let range = max_energy_range_uj?;
        range.checked_sub(previous_uj)?.checked_add(current_uj)?
    };
    // µJ per µs is W; times 1000 is mW. u128 cannot overflow here.
    let power_mw = u128::from(consumed_uj) * 1000 / elapsed_us;
    u64::try_from(power_mw).ok()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use proptest::prelude::*;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn power_is_energy_over_time() {
        assert_eq!(
            average_power_mw(1_000_000, 66_000_000, None, SECOND),
            Some(65_000)
        );
        assert_eq!(
            average_power_mw(0, 5_000_000, None, Duration::from_millis(100)),
            Some(50_000)
        );
        assert_eq!(average_power_mw(7, 7, None, SECOND), Some(0));
    }

    #[test]
    fn counter_wrap_at_max_energy_range() {
        let max = 262_143_328_850;
        // 10 J before the wrap, 20 J after: 30 J in one second.
        assert_eq!(
            average_power_mw(max - 10_000_000, 20_000_000, Some(max), SECOND),
            Some(30_000)
        );
    }

    #[test]
    fn no_honest_figure_gives_none() {
        assert_eq!(
            average_power_mw(10, 5, None, SECOND),
            None,
            "wrap, range unknown"
        );
        assert_eq!(
            average_power_mw(10, 5, Some(8), SECOND),
            None,
            "previous above range"
        );
        assert_eq!(
            average_power_mw(0, 5, None, Duration::ZERO),
            None,
            "no time passed"
        );
    }

    proptest! {
        #[test]
        fn wrapped_and_unwrapped_counts_agree(
            range in 1_000_000u64..=u64::from(u32::MAX) * 1000,
            previous_seed: u64,
            consumed in 0u64..1_000_000_000,
            elapsed_ms in 1u64..10_000,
        ) {
            let previous = previous_seed % range;
            let consumed = consumed % range;
            let current = (previous + consumed) % range;
            let wrapped = previous + consumed >= range;
            let elapsed = Duration::from_millis(elapsed_ms);
            let expected_uj = if wrapped { consumed } else { current - previous };
            prop_assert_eq!(
                average_power_mw(previous, current, Some(range), elapsed),
                Some(expected_uj * 1000 / (elapsed_ms * 1000))
            );
        }
    }

    fn rapl_zone(root: &Path, id: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = root.join("sys/class/powercap").join(id);
        fs::create_dir_all(&dir).unwrap();
        for (file, content) in files {
            fs::write(dir.join(file), content).unwrap();
        }
        dir
    }

    #[test]
    fn reads_zones_and_computes_power_across_a_wrap() {
        let root = tempfile::tempdir().unwrap();
        // The control type directory itself is not a zone.
        rapl_zone(root.path(), "intel-rapl", &[("enabled", "1\n")]);
        let package = rapl_zone(
            root.path(),
            "intel-rapl:0",
            &[
                ("name", "package-0\n"),
                ("energy_uj", "990000000\n"),
                ("max_energy_range_uj", "1000000000\n"),
                ("constraint_0_power_limit_uw", "65000000\n"),
                ("constraint_0_max_power_uw", "95000000\n"),
            ],
        );
        let dram = rapl_zone(
            root.path(),
            "intel-rapl:0:0",
            &[("name", "dram\n"), ("energy_uj", "100\n")],
        );
        let mut errors = Vec::new();
        let mut source = PowercapSource::discover(root.path(), &mut errors).unwrap();
        assert_eq!(errors, []);
        let start = Instant::now();
        let first = source.read(start, &mut errors);
        assert_eq!(
            first[0],
            DomainReading {
                telemetry: PowerDomainTelemetry {
                    id: "intel-rapl:0".into(),
                    name: "package-0".into(),
                    energy_uj: 990_000_000,
                    power_mw: None,
                    limit_mw: Some(65_000),
                },
                limit_min_mw: None,
                limit_max_mw: Some(95_000),
                package: true,
            }
        );
        assert_eq!(first[1].telemetry.name, "dram");
        assert!(!first[1].package);

        // The package counter wraps: 10 J to the top, then 40 J: 50 J over 2 s.
        fs::write(package.join("energy_uj"), "40000000\n").unwrap();
        fs::write(dram.join("energy_uj"), "4000100\n").unwrap();
        let second = source.read(start + 2 * SECOND, &mut errors);
        assert_eq!(errors, []);
        assert_eq!(second[0].telemetry.power_mw, Some(25_000));
        assert_eq!(second[1].telemetry.power_mw, Some(2_000));
    }

    #[test]
    fn an_unreadable_counter_is_an_error_and_power_resumes_after() {
        let root = tempfile::tempdir().unwrap();
        let zone = rapl_zone(
            root.path(),
            "intel-rapl:0",
            &[("name", "package-0\n"), ("energy_uj", "1000000\n")],
        );
        let mut errors = Vec::new();
        let mut source = PowercapSource::discover(root.path(), &mut errors).unwrap();
        let start = Instant::now();
        source.read(start, &mut errors);
        fs::write(zone.join("energy_uj"), "\u{1}\u{2}junk").unwrap();
        assert!(source.read(start + SECOND, &mut errors).is_empty());
        assert_eq!(
            errors,
            [HwError::Parse {
                path: zone.join("energy_uj"),
                content: "\u{1}\u{2}junk".into(),
                expected: "an unsigned integer",
            }]
        );
        fs::write(zone.join("energy_uj"), "5000000\n").unwrap();
        let later = source.read(start + 2 * SECOND, &mut errors);
        assert_eq!(later[0].telemetry.power_mw, Some(2_000), "4 J over 2 s");
    }

    #[test]
    fn no_zones_is_unavailable() {
        let root = tempfile::tempdir().unwrap();
        let reason = PowercapSource::discover(root.path(), &mut Vec::new()).unwrap_err();
        assert!(reason.starts_with("no intel-rapl* zones"), "{reason}");
    }
}
