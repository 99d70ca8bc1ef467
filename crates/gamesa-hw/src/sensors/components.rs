//! The unified view agents trade on: the `cpu` component built from RAPL, the CPU
//! temperatures and utilization, and the node's total draw.

use gamesa_proto::{ComponentKind, ComponentTelemetry, NodeTelemetry};

use super::{TemperatureReading, powercap::DomainReading};

/// The `cpu` component, when anything about the CPU is known. Power and limits are the
/// sums over the package domains, and only when every package has the figure; the
/// temperature is the hottest CPU sensor's, with that sensor's critical point as `t_max`.
/// A utilization not measured yet reads 0 (the `cpu` source status says why).
pub(crate) fn cpu(
    utilization_permille: Option<u16>,
    domains: &[DomainReading],
    temperatures: &[TemperatureReading],
) -> Option<ComponentTelemetry> {
    let packages: Vec<&DomainReading> = domains.iter().filter(|d| d.package).collect();
    let hottest = temperatures
        .iter()
        .filter(|reading| reading.cpu)
        .max_by_key(|reading| reading.telemetry.temp_mc);
    if utilization_permille.is_none() && packages.is_empty() && hottest.is_none() {
        return None;
    }
    let sum = |figure: fn(&DomainReading) -> Option<u64>| -> Option<u64> {
        if packages.is_empty() {
            return None;
        }
        packages
            .iter()
            .map(|domain| figure(domain))
            .try_fold(0u64, |total, value| total.checked_add(value?))
    };
    Some(ComponentTelemetry {
        id: "cpu".into(),
        kind: ComponentKind::Cpu,
        utilization_permille: utilization_permille.unwrap_or(0),
        power_mw: sum(|d| d.telemetry.power_mw),
        temp_mc: hottest.map(|reading| reading.telemetry.temp_mc),
        t_max_mc: hottest.and_then(|reading| reading.telemetry.critical_mc),
        limit_mw: sum(|d| d.telemetry.limit_mw),
        limit_min_mw: sum(|d| d.limit_min_mw),
        limit_max_mw: sum(|d| d.limit_max_mw),
        progress_micro: None,
        work_left_micro: None,
    })
}

/// The node: the draw is the sum of the component powers that are known (`None` when
/// none is), and the cap comes from configuration.
pub(crate) fn node(components: &[ComponentTelemetry], cap_mw: Option<u64>) -> NodeTelemetry {
    let known: Vec<u64> = components.iter().filter_map(|c| c.power_mw).collect();
    NodeTelemetry {
        draw_mw: (!known.is_empty()).then(|| known.iter().fold(0u64, |a, b| a.saturating_add(*b))),
        cap_mw,
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{PowerDomainTelemetry, TemperatureTelemetry};

    use super::*;

    fn domain(name: &str, power_mw: Option<u64>, limit_mw: Option<u64>) -> DomainReading {
        DomainReading {
            telemetry: PowerDomainTelemetry {
                id: format!("intel-rapl:{name}"),
                name: name.into(),
                energy_uj: 0,
                power_mw,
                limit_mw,
            },
            limit_min_mw: None,
            limit_max_mw: Some(100_000),
            package: name.starts_with("package"),
        }
    }

    fn temp(id: &str, temp_mc: i32, critical_mc: Option<i32>, cpu: bool) -> TemperatureReading {
        TemperatureReading {
            telemetry: TemperatureTelemetry {
                id: id.into(),
                label: None,
                temp_mc,
                critical_mc,
            },
            cpu,
        }
    }

    #[test]
    fn cpu_sums_packages_and_takes_the_hottest_cpu_sensor() {
        let domains = [
            domain("package-0", Some(30_000), Some(65_000)),
            domain("package-1", Some(20_000), Some(65_000)),
            domain("dram", Some(5_000), None),
        ];
        let temps = [
            temp("thermal_zone0", 90_000, Some(95_000), false),
            temp("hwmon0/temp1", 61_000, Some(100_000), true),
            temp("hwmon0/temp2", 58_000, None, true),
        ];
        assert_eq!(
            cpu(Some(420), &domains, &temps),
            Some(ComponentTelemetry {
                id: "cpu".into(),
                kind: ComponentKind::Cpu,
                utilization_permille: 420,
                power_mw: Some(50_000),
                temp_mc: Some(61_000),
                t_max_mc: Some(100_000),
                limit_mw: Some(130_000),
                limit_min_mw: None,
                limit_max_mw: Some(200_000),
                progress_micro: None,
                work_left_micro: None,
            })
        );
    }

    #[test]
    fn a_package_without_power_leaves_cpu_power_unknown() {
        let domains = [
            domain("package-0", Some(30_000), Some(65_000)),
            domain("package-1", None, Some(65_000)),
        ];
        let component = cpu(None, &domains, &[]).unwrap();
        assert_eq!(component.power_mw, None);
        assert_eq!(component.limit_mw, Some(130_000));
        assert_eq!(component.temp_mc, None);
    }

    #[test]
    fn nothing_known_means_no_cpu_component() {
        assert_eq!(cpu(None, &[domain("dram", Some(1), None)], &[]), None);
    }

    #[test]
    fn node_draw_sums_known_powers_only() {
        let mut gpu = cpu(Some(0), &[], &[]).unwrap();
        gpu.id = "gpu0".into();
        gpu.power_mw = Some(200_000);
        let mut cpu_part = gpu.clone();
        cpu_part.power_mw = None;
        assert_eq!(
            node(&[cpu_part.clone(), gpu], Some(300_000)),
            NodeTelemetry {
                draw_mw: Some(200_000),
                cap_mw: Some(300_000),
            }
        );
        assert_eq!(
            node(&[cpu_part], None),
            NodeTelemetry {
                draw_mw: None,
                cap_mw: None,
            }
        );
    }
}
