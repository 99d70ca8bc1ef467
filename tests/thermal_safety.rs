//! End to end on the twin: a GPU driven towards its temperature limit. The guardian
//! vetoes or clamps raises with the contract clause as the reason, and a thermal safety
//! signal outranks a performance signal injected in the same tick and holds the GPU at
//! its safe limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_guardian::{Reason, Verdict};
use gamesa_proto::{Actuation, Domain};
use support::*;

#[actix::test]
async fn heat_makes_the_guardian_veto_and_safety_outranks_performance() {
    let registry = builtin();
    let scenario = scenario("hot_gpu.toml");
    let config = sim_config(&scenario, &registry, |_| {});
    let (mut runtime, twin) = start_on_twin(&config, &scenario, &registry);

    let mut contract_vetoes = Vec::new();
    let mut safety_tick = None;
    for _ in 0..400 {
        runtime.inject(performance_signal());
        let report = runtime.tick().await.unwrap();
        for record in &report.actuations {
            if let (Some(_), Verdict::Deny { reason } | Verdict::Clamp { reason, .. }) =
                (record.requester, &record.verdict)
                && matches!(reason, Reason::Contract { .. })
            {
                contract_vetoes.push((report.tick, reason.to_string()));
            }
        }
        if safety_tick.is_none() && !report.preempting.is_empty() {
            safety_tick = Some(report);
        }
    }

    let (tick, reason) = contract_vetoes
        .first()
        .expect("no contract veto while heating");
    assert!(reason.contains("gpu0_thermal"), "tick {tick}: {reason}");

    let report = safety_tick.expect("the thermal agent never raised a safety signal");
    let ranks: Vec<Domain> = report.signals.iter().map(|signal| signal.domain).collect();
    assert_eq!(ranks.first(), Some(&Domain::Safety), "{ranks:?}");
    let performance_at = ranks
        .iter()
        .position(|domain| *domain == Domain::Performance);
    assert!(
        performance_at.is_some_and(|at| at > 0),
        "the injected performance signal is missing or first: {ranks:?}"
    );
    assert!(
        report
            .preempting
            .iter()
            .any(|signal| signal.kind.as_str() == "thermal_critical.gpu0")
    );
    let safe = report
        .actuations
        .iter()
        .find(|record| record.requester.is_none())
        .expect("no safety actuation");
    assert_eq!(
        safe.requested,
        Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw: 100_000
        }
    );
    assert!(matches!(safe.outcome, Some(Ok(_))));
    assert!(
        twin.report()
            .components
            .iter()
            .all(|component| component.throttled_s == 0.0),
        "{:?}",
        twin.report()
    );
}
