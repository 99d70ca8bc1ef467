//! `gamesa probe --config`: a starter config for the machine a probe read: its
//! components, gate limits from the device ranges, safe limits at the bottom of each
//! range, a node cap from the sum of the limits now, the powercap zones and GPUs (NVML,
//! amdgpu, i915, xe) bound, dry-run actuators, and the five built-in agents.
//! `check-config` accepts it.

use std::{fmt::Write as _, path::Path};

use gamesa_hw::{PowerLimitBinding, probe::Probe};
use gamesa_proto::ComponentKind;

/// The cap written when no component's limit can be read, in mW.
const UNKNOWN_CAP_MW: u64 = 250_000;

/// The starter config for what `probe` found under `root`, as TOML text.
pub fn starter_config(probe: &Probe, root: &Path) -> String {
    let mut text = String::new();
    let ids: Vec<&str> = probe.components.iter().map(|c| c.id.as_str()).collect();
    let limits: Vec<u64> = probe.components.iter().filter_map(|c| c.limit_mw).collect();
    let (cap_mw, cap_note) = if limits.is_empty() {
        (
            UNKNOWN_CAP_MW,
            "No component's limit is readable here: set what the PSU, cooling or rack allows",
        )
    } else {
        (
            limits.iter().sum(),
            "The sum of the components' limits now: lower it to what the PSU, cooling or \
             rack allows",
        )
    };
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|item| format!("{item:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        text,
        r#"# A starting point for this machine, written by `gamesa probe --config`. Check each
# value, then `gamesa check-config FILE`. Nothing is written to the hardware until a
# target is listed under [actuators] real (see `gamesa probe` for what is writable).

[runtime]
tick_hz = 10
epoch_ticks = 10

[sensors]
source = "linux"
root = {root:?}

[guardian]
# {cap_note}.
cap_mw = {cap_mw}
components = [{components}]
allowance_per_epoch = 50_000_000
balance_cap_epochs = 3

[[guardian.contracts]]
name = "node_cap"
phase = "post"
scope = "*"
expr = "sum(power.limit_mw) <= node.cap_mw"
"#,
        root = root.display().to_string(),
        components = list(&ids),
    );
    for component in &probe.components {
        if component.t_max_mc.is_some() {
            let id = &component.id;
            let _ = write!(
                text,
                r#"
[[guardian.contracts]]
name = "{id}_thermal"
phase = "post"
scope = "power.limit:{id}"
expr = "{id}.delta_power_w <= 0 or {id}.temp_c < {id}.t_max_c - 1.5"
"#
            );
        }
    }
    for component in &probe.components {
        let id = &component.id;
        match (component.limit_min_mw, component.limit_max_mw) {
            (Some(min), Some(max)) => {
                let _ = write!(
                    text,
                    r#"
# The device's range; at most 25 W of change a tick.
[guardian.limits."power.limit:{id}"]
min = {min}
max = {max}
max_step = 25_000
"#
                );
            }
            (None, Some(max)) => {
                let _ = write!(
                    text,
                    r#"
# The device's maximum; it publishes no minimum (i915 and xe accept anything above
# 0), so add `min` and a safe limit that keep it usable. At most 25 W of change a tick.
[guardian.limits."power.limit:{id}"]
max = {max}
max_step = 25_000
"#
                );
            }
            _ => {}
        }
    }
    let safe: Vec<String> = probe
        .components
        .iter()
        .filter_map(|c| c.limit_min_mw.map(|min| format!("{} = {min}", c.id)))
        .collect();
    if !safe.is_empty() {
        let _ = write!(
            text,
            "\n# What a safety signal sets at once: the bottom of each range.\n\
             [guardian.safe_limits_mw]\n{}\n",
            safe.join("\n")
        );
    }
    let mut bindings = Vec::new();
    for knob in &probe.knobs {
        let Some(component) = knob.target.strip_prefix("power.limit:") else {
            continue;
        };
        match &knob.binding {
            Some(PowerLimitBinding::Powercap { zone, .. }) => {
                bindings.push(format!(
                    "{component} = {{ via = \"powercap\", zone = {zone:?} }}"
                ));
            }
            Some(PowerLimitBinding::Nvml { index }) => {
                bindings.push(format!(
                    "{component} = {{ via = \"nvml\", index = {index} }}"
                ));
            }
            Some(PowerLimitBinding::Hwmon { pci, file }) => {
                bindings.push(format!(
                    "{component} = {{ via = \"hwmon\", pci = {pci:?}, file = {file:?} }}"
                ));
            }
            None => {}
        }
    }
    let _ = write!(
        text,
        r#"
[actuators]
# Targets written for real, such as "power.limit:cpu"; empty: dry-run only. Originals
# are recorded in /var/lib/gamesa/actuator-state.json (state_file) before the first
# write.
real = []
power_limits = {bindings}
"#,
        bindings = if bindings.is_empty() {
            "{}".to_owned()
        } else {
            format!("{{ {} }}", bindings.join(", "))
        }
    );
    for component in &probe.components {
        let (kind, resource) = match component.kind {
            ComponentKind::Cpu => ("cpu", "cpu_cores"),
            ComponentKind::Gpu => ("gpu", "gpu_memory_mb"),
        };
        let id = &component.id;
        let _ = write!(
            text,
            r#"
[[agents]]
kind = "{kind}"
id = "{id}"
effects = ["order:power_budget_mw", "order:thermal_headroom_mc", "order:{resource}", "power.set_limit:{id}"]
params = {{ component = "{id}" }}
"#
        );
    }
    text.push_str(
        r#"
[[agents]]
kind = "memory"
id = "memory"
effects = ["order:memory_mb", "signal:efficiency"]

[[agents]]
kind = "thermal"
id = "thermal"
effects = ["order:thermal_headroom_mc", "signal:thermal", "signal:safety"]

[[agents]]
kind = "power"
id = "power"
effects = ["order:power_budget_mw", "signal:power", "signal:safety"]
"#,
    );
    text
}

#[cfg(test)]
mod tests {
    use gamesa_hw::probe::Knob;
    use gamesa_proto::ComponentTelemetry;

    use super::*;
    use crate::{Config, GateLimitConfig};

    fn gpu(
        id: &str,
        limit_mw: Option<u64>,
        min: Option<u64>,
        max: Option<u64>,
    ) -> ComponentTelemetry {
        ComponentTelemetry {
            id: id.into(),
            kind: ComponentKind::Gpu,
            utilization_permille: 0,
            power_mw: Some(20_000),
            temp_mc: None,
            t_max_mc: None,
            limit_mw,
            limit_min_mw: min,
            limit_max_mw: max,
            progress_micro: None,
            work_left_micro: None,
        }
    }

    fn hwmon_knob(id: &str, pci: &str, file: &str) -> Knob {
        Knob {
            target: format!("power.limit:{id}"),
            at: format!("/sys/bus/pci/devices/{pci}/hwmon/hwmon3/{file}"),
            current: None,
            min: None,
            max: None,
            unit: "mW",
            missing: None,
            binding: Some(PowerLimitBinding::Hwmon {
                pci: pci.into(),
                file: file.into(),
            }),
        }
    }

    /// An i915 card (no published minimum) and an amdgpu card: both bound by PCI
    /// address, with gate limits from what each publishes.
    #[test]
    fn hwmon_gpus_are_bound_and_gated_from_their_ranges() {
        let probe = Probe {
            sources: Vec::new(),
            components: vec![
                gpu("gpu0", Some(190_000), None, Some(225_000)),
                gpu("gpu1", Some(203_000), Some(150_000), Some(230_000)),
            ],
            knobs: vec![
                hwmon_knob("gpu0", "0000:02:00.0", "power1_max"),
                hwmon_knob("gpu1", "0000:03:00.0", "power1_cap"),
            ],
        };
        let text = starter_config(&probe, Path::new("/"));
        let config: Config = toml::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(
            config.actuators.power_limits["gpu0"],
            PowerLimitBinding::Hwmon {
                pci: "0000:02:00.0".into(),
                file: "power1_max".into()
            }
        );
        assert_eq!(
            config.actuators.power_limits["gpu1"],
            PowerLimitBinding::Hwmon {
                pci: "0000:03:00.0".into(),
                file: "power1_cap".into()
            }
        );
        assert_eq!(
            config.guardian.limits["power.limit:gpu0"],
            GateLimitConfig {
                max: Some(225_000),
                max_step: Some(25_000),
                ..GateLimitConfig::default()
            }
        );
        assert_eq!(
            config.guardian.limits["power.limit:gpu1"],
            GateLimitConfig {
                min: Some(150_000),
                max: Some(230_000),
                max_step: Some(25_000),
                ..GateLimitConfig::default()
            }
        );
        assert_eq!(
            config
                .guardian
                .safe_limits_mw
                .into_iter()
                .collect::<Vec<_>>(),
            [("gpu1".to_owned(), 150_000)],
            "no safe limit is made up for a device without a minimum"
        );
        assert_eq!(config.guardian.cap_mw, Some(393_000));
        assert!(text.contains("publishes no minimum"), "{text}");
    }
}
