//! The dry-run actuator: logs what it would write and remembers what it "set", touching
//! nothing.

use std::collections::BTreeMap;

use gamesa_proto::Actuation;

use crate::{Actuator, Applied, HwError, RestoreReport};

/// What `Applied::previous` says for a target the dry run has never set.
pub const UNKNOWN_PREVIOUS: &str = "unknown (dry-run)";

/// Records and logs (`tracing::info`) every change it would make. A request equal to
/// what it last "set" is a no-op; restoring forgets the target and logs it.
#[derive(Debug, Default)]
pub struct DryRunActuator {
    /// Target to the value it was last "set" to.
    settings: BTreeMap<String, String>,
}

impl DryRunActuator {
    pub fn new() -> DryRunActuator {
        DryRunActuator::default()
    }

    /// What it has "set", by target.
    pub fn settings(&self) -> &BTreeMap<String, String> {
        &self.settings
    }

    fn restore(&mut self, targets: Vec<String>) -> RestoreReport {
        let mut report = RestoreReport::default();
        for target in targets {
            if let Some(value) = self.settings.remove(&target) {
                tracing::info!(target = %target, was = %value, "dry-run: would restore the original value");
                report.restored.push(target);
            }
        }
        report
    }
}

impl Actuator for DryRunActuator {
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError> {
        let target = actuation.target();
        actuation
            .validate()
            .map_err(|err| HwError::InvalidActuation {
                target: target.clone(),
                reason: err.to_string(),
            })?;
        let value = actuation.value_text();
        if let Some(current) = self
            .settings
            .get(&target)
            .filter(|current| **current == value)
        {
            return Ok(Applied {
                target,
                previous: current.clone(),
                current: value,
                changed: false,
                dry_run: true,
            });
        }
        tracing::info!(target = %target, value = %value, "dry-run: would apply");
        let previous = self
            .settings
            .insert(target.clone(), value.clone())
            .unwrap_or_else(|| UNKNOWN_PREVIOUS.to_string());
        Ok(Applied {
            target,
            previous,
            current: value,
            changed: true,
            dry_run: true,
        })
    }

    fn restore_target(&mut self, target: &str) -> RestoreReport {
        self.restore(vec![target.to_string()])
    }

    fn restore_all(&mut self) -> RestoreReport {
        let targets = self.settings.keys().cloned().collect();
        self.restore(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(limit_mw: u64) -> Actuation {
        Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw,
        }
    }

    #[test]
    fn records_what_it_would_set_and_skips_repeats() {
        let mut dry = DryRunActuator::new();
        let first = dry.apply(&limit(200_000)).unwrap();
        assert_eq!(
            first,
            Applied {
                target: "power.limit:gpu0".into(),
                previous: UNKNOWN_PREVIOUS.into(),
                current: "200000 mW".into(),
                changed: true,
                dry_run: true,
            }
        );
        let again = dry.apply(&limit(200_000)).unwrap();
        assert!(!again.changed);
        let lower = dry.apply(&limit(150_000)).unwrap();
        assert_eq!(lower.previous, "200000 mW");
        assert!(lower.changed);
    }

    #[test]
    fn restore_reports_what_would_be_restored() {
        let mut dry = DryRunActuator::new();
        dry.apply(&limit(200_000)).unwrap();
        dry.apply(&Actuation::CpufreqMax {
            cpu: 1,
            max_khz: 2_000_000,
        })
        .unwrap();
        assert_eq!(dry.restore_target("nothing"), RestoreReport::default());
        assert_eq!(
            dry.restore_target("cpufreq.max:1").restored,
            ["cpufreq.max:1"]
        );
        assert_eq!(dry.restore_all().restored, ["power.limit:gpu0"]);
        assert!(dry.settings().is_empty());
    }

    #[test]
    fn invalid_actuations_are_refused() {
        let mut dry = DryRunActuator::new();
        assert!(matches!(
            dry.apply(&limit(0)),
            Err(HwError::InvalidActuation { .. })
        ));
        assert!(dry.settings().is_empty());
    }
}
