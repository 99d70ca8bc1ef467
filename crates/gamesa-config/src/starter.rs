//! `gamesa probe --config`: a starter config for the machine a probe read: its
//! components, gate limits from the device ranges, safe limits at the bottom of each
//! range, a node cap from the sum of the limits now, the powercap zones and GPUs
//! bound, dry-run actuators, and the five built-in agents. `check-config` accepts it.

use std::{fmt::Write as _, path::Path};

use gamesa_hw::probe::Probe;
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
        if let (Some(min), Some(max)) = (component.limit_min_mw, component.limit_max_mw) {
            let id = &component.id;
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
        if knob.target == "power.limit:cpu"
            && let Some(zone) = knob.at.split('/').rev().nth(1)
        {
            bindings.push(format!("cpu = {{ via = \"powercap\", zone = {zone:?} }}"));
        } else if let Some(index) = knob.at.strip_prefix("nvml:") {
            bindings.push(format!(
                "{} = {{ via = \"nvml\", index = {index} }}",
                knob.target.trim_start_matches("power.limit:")
            ));
        }
    }
    let _ = write!(
        text,
        r#"
[actuators]
# Targets written for real, such as "power.limit:cpu"; empty: dry-run only. Originals
# are recorded in actuator-state.json under the state directory (/var/lib/gamesa for
# the service) before the first write.
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
