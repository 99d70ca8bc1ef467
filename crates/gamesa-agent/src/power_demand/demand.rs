//! The demand side's state ([`PowerDemand`]) and its tick: find the component, learn from
//! its telemetry, resolve baseline, maximum and thermal cap, then ask for a limit and bid.

use gamesa_proto::Resource;

use super::PowerDemandParams;
use crate::{Intent, Observation, thermal_model::ThermalModel, work_model::WorkModel};

/// The demand side's state: what it learned from telemetry and what it last asked for.
#[derive(Debug, Clone)]
pub struct PowerDemand {
    pub(super) params: PowerDemandParams,
    /// The agent's weight: it scales every price.
    pub(super) weight: u32,
    /// The RC model fitted to the component's own samples.
    pub(super) thermal: ThermalModel,
    /// What a watt is worth to the component, learned from its progress.
    pub(super) work: WorkModel,
    /// The last limit asked for, compared against when telemetry has no limit reading.
    pub(super) last_limit_mw: Option<u64>,
    /// Consecutive raises that were not applied (the guardian refused them): each halves
    /// the next raise, so that a raise too large for a contract is retried smaller.
    pub(super) refused_raises: u32,
}

impl PowerDemand {
    /// Demand from validated params (see [`PowerDemandParams::validate`]) for an agent of
    /// weight `weight`, with nothing learned yet.
    pub fn new(params: PowerDemandParams, weight: u32) -> PowerDemand {
        PowerDemand {
            params,
            weight,
            thermal: ThermalModel::default(),
            work: WorkModel::default(),
            last_limit_mw: None,
            refused_raises: 0,
        }
    }

    /// The intents of one tick: at most one power limit, one power bid, one headroom bid.
    pub fn decide(&mut self, obs: &Observation<'_>) -> Vec<Intent> {
        let mut intents = Vec::new();
        let Some(component) = obs.frame.component(&self.params.component) else {
            return intents;
        };
        self.observe_heat(component, obs.frame.interval_ms);
        self.work.observe(component, obs.frame.interval_ms);
        let baseline = self.params.baseline_mw.or(component.limit_min_mw);
        let max = self.params.max_mw.or(component.limit_max_mw);
        let (Some(baseline), Some(max)) = (baseline, max) else {
            return intents;
        };
        if max <= baseline {
            return intents;
        }
        let pressure = self.signal_pressure(obs.signals);
        let held = obs.held(Resource::PowerBudgetMw);
        let floor = component.limit_min_mw.unwrap_or(baseline).min(max);
        let thermal_cap = self.thermal_cap_mw(component).map(|cap| cap.max(floor));
        let limit = baseline
            .saturating_add(held)
            .min(thermal_cap.unwrap_or(u64::MAX))
            .max(floor)
            .min(max);
        intents.extend(self.limit_change(component.limit_mw, limit, pressure.safety));
        if !pressure.safety {
            let max_wanted = thermal_cap.map_or(max, |cap| cap.min(max));
            intents.extend(self.bids(obs, component, baseline, max, max_wanted, pressure.factor));
        }
        intents
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::Quantity;

    use super::*;
    use crate::power_demand::fixtures::{bid, decide, gpu, limit, params};
    use crate::testkit::World;

    #[test]
    fn explicit_baseline_and_max_override_telemetry() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            baseline_mw: Some(120_000),
            max_mw: Some(160_000),
            ..params()
        };
        let intents = decide(params, &world);
        assert_eq!(limit(&intents), Some(120_000));
        assert_eq!(
            bid(&intents, Resource::PowerBudgetMw).map(|(_, q)| q),
            Some(Quantity(40_000))
        );
    }
}
