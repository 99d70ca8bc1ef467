//! The twin's [`Actuator`]: power limits set the twin's `L`; restoring puts each
//! component's initial limit back.
//!
//! # Invariants
//! - `touched` holds exactly the targets changed since their last restore, so a restore
//!   reports only what it put back.

use std::collections::BTreeSet;

use gamesa_proto::Actuation;

use super::{SharedTwin, sensors::watts_to_mw};
use crate::{Actuator, Applied, HwError, RestoreReport};

/// Power limits for the twin. Build it with [`SharedTwin::actuator`].
#[derive(Debug, Clone)]
pub struct TwinActuator {
    twin: SharedTwin,
    /// Targets (`power.limit:gpu0`) written since their last restore, in name order.
    touched: BTreeSet<String>,
}

impl TwinActuator {
    pub fn new(twin: SharedTwin) -> TwinActuator {
        TwinActuator {
            twin,
            touched: BTreeSet::new(),
        }
    }

    /// Puts one target's initial limit back; `None` if the target is not a power limit
    /// of a twin component.
    fn restore(&mut self, target: &str) -> Option<()> {
        let component = target.strip_prefix("power.limit:")?;
        let mut twin = self.twin.lock();
        let index = twin.component_index(component)?;
        let initial_w = twin.initial_limit_w(index)?;
        twin.set_limit_w(index, initial_w)?;
        Some(())
    }
}

impl Actuator for TwinActuator {
    /// Sets a component's power limit, clamped to its `[min_w, max_w]` as a device would;
    /// `current` is the limit now in force. Nothing is dry-run: the twin is the device.
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError> {
        let Actuation::PowerLimit {
            component,
            limit_mw,
        } = actuation
        else {
            return Err(HwError::TwinUnsupported {
                target: actuation.target(),
            });
        };
        let mut twin = self.twin.lock();
        let index = twin
            .component_index(component)
            .ok_or_else(|| HwError::UnknownComponent {
                component: component.clone(),
            })?;
        let previous_mw = watts_to_mw(twin.limit_w(index).unwrap_or_default());
        let current_w = twin
            .set_limit_w(index, *limit_mw as f64 / 1000.0)
            .unwrap_or_default();
        let current_mw = watts_to_mw(current_w);
        drop(twin);
        let target = actuation.target();
        if current_mw != previous_mw {
            self.touched.insert(target.clone());
        }
        Ok(Applied {
            target,
            previous: format!("{previous_mw} mW"),
            current: format!("{current_mw} mW"),
            changed: current_mw != previous_mw,
            dry_run: false,
        })
    }

    fn restore_target(&mut self, target: &str) -> RestoreReport {
        let mut report = RestoreReport::default();
        if self.touched.remove(target) && self.restore(target).is_some() {
            report.restored.push(target.to_owned());
        }
        report
    }

    fn restore_all(&mut self) -> RestoreReport {
        let mut report = RestoreReport::default();
        for target in std::mem::take(&mut self.touched) {
            if self.restore(&target).is_some() {
                report.restored.push(target);
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::Tick;

    use super::*;
    use crate::{
        Sensors,
        twin::{Scenario, Twin},
    };

    fn shared() -> SharedTwin {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/gpu_bottleneck.toml"
        );
        SharedTwin::new(Twin::new(Scenario::load(path).unwrap()))
    }

    fn limit(component: &str, limit_mw: u64) -> Actuation {
        Actuation::PowerLimit {
            component: component.into(),
            limit_mw,
        }
    }

    #[test]
    fn a_power_limit_sets_the_twins_limit_seen_by_the_next_sample() {
        let twin = shared();
        let (mut sensors, mut actuator) = (twin.sensors(), twin.actuator());
        let applied = actuator.apply(&limit("gpu0", 340_000)).unwrap();
        assert_eq!(
            applied,
            Applied {
                target: "power.limit:gpu0".into(),
                previous: "300000 mW".into(),
                current: "340000 mW".into(),
                changed: true,
                dry_run: false,
            }
        );
        let frame = sensors.sample(Tick(1)).frame;
        let gpu = frame.component("gpu0").unwrap();
        assert_eq!(gpu.limit_mw, Some(340_000));
        // gpu_bottleneck runs the GPU at full demand: it draws its limit.
        assert_eq!(gpu.power_mw, Some(340_000));
    }

    #[test]
    fn limits_are_clamped_to_the_device_range() {
        let twin = shared();
        let mut actuator = twin.actuator();
        let high = actuator.apply(&limit("gpu0", 900_000)).unwrap();
        assert_eq!(high.current, "350000 mW");
        let low = actuator.apply(&limit("cpu", 1_000)).unwrap();
        assert_eq!(low.current, "30000 mW");
        let same = actuator.apply(&limit("cpu", 30_000)).unwrap();
        assert!(!same.changed);
    }

    #[test]
    fn unknown_components_and_other_knobs_are_typed_errors() {
        let mut actuator = shared().actuator();
        assert_eq!(
            actuator.apply(&limit("gpu7", 100_000)),
            Err(HwError::UnknownComponent {
                component: "gpu7".into()
            })
        );
        let cpufreq = Actuation::CpufreqMax {
            cpu: 0,
            max_khz: 2_000_000,
        };
        assert_eq!(
            actuator.apply(&cpufreq),
            Err(HwError::TwinUnsupported {
                target: "cpufreq.max:0".into()
            })
        );
    }

    #[test]
    fn restore_puts_the_initial_limits_back() {
        let twin = shared();
        let mut actuator = twin.actuator();
        actuator.apply(&limit("gpu0", 340_000)).unwrap();
        actuator.apply(&limit("cpu", 40_000)).unwrap();

        let one = actuator.restore_target("power.limit:gpu0");
        assert_eq!(one.restored, ["power.limit:gpu0"]);
        assert!(one.failed.is_empty());
        assert_eq!(twin.with(|twin| twin.limit_w(1)), Some(300.0));
        assert_eq!(twin.with(|twin| twin.limit_w(0)), Some(40.0));
        // Already restored: nothing more to do.
        assert!(
            actuator
                .restore_target("power.limit:gpu0")
                .restored
                .is_empty()
        );

        let all = actuator.restore_all();
        assert_eq!(all.restored, ["power.limit:cpu"]);
        assert_eq!(twin.with(|twin| twin.limit_w(0)), Some(125.0));
        assert!(actuator.restore_all().restored.is_empty());
    }
}
