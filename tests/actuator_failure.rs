//! An actuator that refuses a write marks only that action failed: the runtime keeps
//! ticking, other actuations still apply, and the failure is in the tick report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_hw::{
    Actuator, Applied, HwError, RestoreReport,
    twin::{Scenario, SharedTwin, Twin},
};
use gamesa_proto::Actuation;
use gamesa_runtime::Runtime;
use support::*;

/// The twin's actuator, except that every write to the GPU's limit is refused.
struct RefusesGpu {
    inner: gamesa_hw::twin::TwinActuator,
}

impl Actuator for RefusesGpu {
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError> {
        match actuation {
            Actuation::PowerLimit { component, .. } if component == "gpu0" => Err(HwError::Write {
                path: "/sys/fake/gpu0/power_limit".into(),
                value: actuation.value_text(),
                reason: "permission denied".into(),
            }),
            _ => self.inner.apply(actuation),
        }
    }

    fn restore_target(&mut self, target: &str) -> RestoreReport {
        self.inner.restore_target(target)
    }

    fn restore_all(&mut self) -> RestoreReport {
        self.inner.restore_all()
    }
}

#[actix::test]
async fn a_refused_write_fails_only_that_action() {
    let registry = builtin();
    let scenario_path = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario_path, &registry, |_| {});
    let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario_path).unwrap()));
    let mut runtime = Runtime::start(
        &config,
        &registry,
        Box::new(twin.sensors()),
        Box::new(RefusesGpu {
            inner: twin.actuator(),
        }),
    )
    .unwrap();
    let reports = run_ticks(&mut runtime, 30).await;

    let failed: Vec<_> = reports
        .iter()
        .flat_map(|report| &report.actuations)
        .filter(|record| matches!(record.outcome, Some(Err(_))))
        .collect();
    assert!(!failed.is_empty(), "the GPU never asked for a new limit");
    assert!(
        failed
            .iter()
            .all(|record| record.requested.target() == "power.limit:gpu0")
    );
    let cpu_applied = reports
        .iter()
        .flat_map(|report| &report.actuations)
        .any(|record| {
            record.requested.target() == "power.limit:cpu" && matches!(record.outcome, Some(Ok(_)))
        });
    assert!(cpu_applied, "the CPU's own change was not applied");
    assert_eq!(reports.len(), 30);
    // The GPU keeps the limit the twin started with: nothing was written.
    let limits = twin_limits_w(&twin);
    assert_eq!(limits[1], ("gpu0".to_owned(), 300.0));
}
