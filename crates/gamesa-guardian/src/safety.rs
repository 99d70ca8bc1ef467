//! The guardian's answer to a pre-empting (safety) signal: which components go to
//! their safe limit at once, bypassing the market.
//!
//! A signal kind may name its component after a dot (`thermal_critical.gpu0`); one
//! that names none (`power_over_cap`) concerns every managed component. The safe limit
//! is the configured one, else the component's lowest allowed limit from telemetry.

use std::collections::BTreeMap;

use gamesa_proto::{Actuation, AgentId, Signal, TelemetryFrame, Tick};

use crate::{Guardian, Verdict};

/// Where the safe limits come from, and whose power leases a hold takes away.
#[derive(Debug, Clone, Default)]
pub struct SafetyPolicy {
    /// Configured safe limits, component → mW.
    pub safe_limits_mw: BTreeMap<String, u64>,
    /// Which agents' power leases raise which component's limit.
    pub power_holders: BTreeMap<String, Vec<AgentId>>,
}

/// The guardian's answer to the live pre-empting signals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetyResponse {
    /// Safe-limit actuations with the guardian's verdict (device bounds only).
    pub actions: Vec<(Actuation, Verdict)>,
    /// Agents whose power leases are revoked because their component is held safe.
    pub revoke_power_of: Vec<AgentId>,
    /// Components under a safety hold: agents' own actuations of them are pre-empted.
    pub held: Vec<String>,
    /// Components with no known safe limit.
    pub unknown: Vec<String>,
}

impl SafetyPolicy {
    /// Puts every component a pre-empting signal names at its safe limit, through the
    /// gate's device bounds only ([`Guardian::check_safety_actuation`]), and names the
    /// agents whose power leases on those components must go.
    pub fn respond(
        &self,
        guardian: &mut Guardian,
        tick: Tick,
        preempting: &[Signal],
        frame: &TelemetryFrame,
    ) -> SafetyResponse {
        let (actuations, unknown) = safe_limits_for(preempting, frame, &self.safe_limits_mw);
        let mut response = SafetyResponse {
            unknown,
            ..SafetyResponse::default()
        };
        for actuation in actuations {
            if let Actuation::PowerLimit { component, .. } = &actuation {
                response.held.push(component.clone());
                if let Some(holders) = self.power_holders.get(component) {
                    response.revoke_power_of.extend(holders.iter().copied());
                }
            }
            let verdict = guardian.check_safety_actuation(tick, &actuation);
            response.actions.push((actuation, verdict));
        }
        response.revoke_power_of.sort();
        response.revoke_power_of.dedup();
        response
    }
}

/// The safe-limit actuations for the live pre-empting signals, one per component, in
/// component order. Components with no known safe limit are skipped and named in the
/// second list, so the caller can report them.
pub fn safe_limits_for(
    preempting: &[Signal],
    frame: &TelemetryFrame,
    configured_mw: &BTreeMap<String, u64>,
) -> (Vec<Actuation>, Vec<String>) {
    let mut components: BTreeMap<&str, ()> = BTreeMap::new();
    for signal in preempting {
        match signal.kind.as_str().split_once('.') {
            Some((_, component)) if !component.is_empty() => {
                components.insert(component, ());
            }
            _ => {
                for component in &frame.components {
                    components.insert(&component.id, ());
                }
            }
        }
    }
    let mut actuations = Vec::new();
    let mut unknown = Vec::new();
    for component in components.into_keys() {
        let safe = configured_mw.get(component).copied().or_else(|| {
            frame
                .component(component)
                .and_then(|telemetry| telemetry.limit_min_mw)
        });
        match safe {
            Some(limit_mw) => actuations.push(Actuation::PowerLimit {
                component: component.to_owned(),
                limit_mw,
            }),
            None => unknown.push(component.to_owned()),
        }
    }
    (actuations, unknown)
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, ComponentKind, ComponentTelemetry, Domain, SignalKind, Strength};

    use super::*;

    fn signal(kind: &str) -> Signal {
        Signal {
            kind: SignalKind::new(kind).unwrap(),
            domain: Domain::Safety,
            strength: Strength::MAX,
            source: AgentId(1),
            ttl_ticks: 5,
            correlation: None,
        }
    }

    fn component(id: &str, min_mw: Option<u64>) -> ComponentTelemetry {
        ComponentTelemetry {
            id: id.into(),
            kind: ComponentKind::Gpu,
            utilization_permille: 0,
            power_mw: None,
            temp_mc: None,
            t_max_mc: None,
            limit_mw: None,
            limit_min_mw: min_mw,
            limit_max_mw: None,
            progress_micro: None,
            work_left_micro: None,
        }
    }

    #[test]
    fn a_named_component_goes_to_its_configured_safe_limit() {
        let frame = TelemetryFrame {
            components: vec![
                component("cpu", Some(30_000)),
                component("gpu0", Some(100_000)),
            ],
            ..TelemetryFrame::default()
        };
        let configured = BTreeMap::from([("gpu0".to_owned(), 150_000)]);
        let (actuations, unknown) =
            safe_limits_for(&[signal("thermal_critical.gpu0")], &frame, &configured);
        assert_eq!(
            actuations,
            vec![Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 150_000
            }]
        );
        assert!(unknown.is_empty());
    }

    #[test]
    fn an_unnamed_signal_covers_every_component() {
        let frame = TelemetryFrame {
            components: vec![component("gpu0", Some(100_000)), component("cpu", None)],
            ..TelemetryFrame::default()
        };
        let (actuations, unknown) =
            safe_limits_for(&[signal("power_over_cap")], &frame, &BTreeMap::new());
        assert_eq!(
            actuations,
            vec![Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 100_000
            }]
        );
        assert_eq!(unknown, vec!["cpu".to_owned()]);
    }
}
