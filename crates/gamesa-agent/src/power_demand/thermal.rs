//! The thermal side of the demand: the thermal resistance and ambient in use (params or
//! the RC model learned from telemetry) and the thermal cap they put on the limit. The
//! headroom bid for the heat of the power is part of the ladder, in `strategy`.

use gamesa_proto::ComponentTelemetry;

use super::PowerDemand;

/// How far ahead the thermal cap looks: the limit may exceed the steady-state bound
/// while the component is cool, as long as it stays below target over this horizon.
pub const THERMAL_HORIZON_S: f64 = 5.0;

impl PowerDemand {
    /// Thermal resistance in use: the param, else the RC model fitted to telemetry
    /// (`None` until that fit is trusted, a couple of seconds after the start).
    pub fn thermal_resistance(&self) -> Option<f64> {
        self.params.r_c_per_w.or(self.thermal.resistance())
    }

    /// The ambient temperature in use, °C: the param, else the fitted one.
    pub fn ambient_c(&self) -> Option<f64> {
        self.params
            .ambient_mc
            .map(|ambient_mc| f64::from(ambient_mc) / 1000.0)
            .or(self.thermal.ambient_c())
    }

    /// The highest limit that keeps the component below `t_max − thermal_margin`: at
    /// steady state (`T_amb + R · P`), relaxed while it is still cool by what its time
    /// constant lets it heat within [`THERMAL_HORIZON_S`]. `None` without a `t_max`, a
    /// temperature or a resistance.
    pub fn thermal_cap_mw(&self, component: &ComponentTelemetry) -> Option<u64> {
        let t_max_mc = component.t_max_mc?;
        let temp_c = f64::from(component.temp_mc?) / 1000.0;
        let r = self.thermal_resistance()?;
        let target_c = f64::from(t_max_mc.saturating_sub(self.params.thermal_margin_mc)) / 1000.0;
        let ambient_c = self.ambient_c()?;
        // T(H) = T_ss + (T − T_ss) · e^(−H/τ) ≤ target  ⇔  T_ss ≤ (target − T·e) / (1 − e).
        let decay = match (self.params.r_c_per_w, self.thermal.time_constant_s()) {
            (None, Some(tau)) if tau > 0.0 => (-THERMAL_HORIZON_S / tau).exp(),
            _ => 0.0,
        };
        let steady_max_c = if temp_c >= target_c {
            target_c
        } else {
            (target_c - temp_c * decay) / (1.0 - decay)
        };
        let cap_w = (steady_max_c - ambient_c) / r;
        // `as` saturates: a huge cap is no cap, a negative one is zero.
        cap_w.is_finite().then(|| (cap_w * 1000.0).max(0.0) as u64)
    }

    pub(super) fn observe_heat(&mut self, component: &ComponentTelemetry, interval_ms: u64) {
        if self.params.r_c_per_w.is_some() {
            return;
        }
        let (Some(temp_mc), Some(power_mw)) = (component.temp_mc, component.power_mw) else {
            return;
        };
        self.thermal.observe(
            f64::from(temp_mc) / 1000.0,
            power_mw as f64 / 1000.0,
            interval_ms as f64 / 1000.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::Resource;

    use super::*;
    use crate::power_demand::PowerDemandParams;
    use crate::power_demand::fixtures::{ME, bid, gpu, limit, params};
    use crate::testkit::{World, lease};

    #[test]
    fn the_limit_and_the_bids_stay_under_the_thermal_cap() {
        // R = 0.225 °C/W with t_max 90 °C: t_max − 4 °C = 86 °C allows
        // (86 − 25) / 0.225 = 271.1 W at steady state.
        let mut world = World::with_components(vec![ComponentTelemetry {
            temp_mc: Some(70_000),
            ..gpu(1000, 200_000)
        }]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            190_000,
            world.tick.plus(5),
        )];
        let mut demand = PowerDemand::new(
            PowerDemandParams {
                r_c_per_w: Some(0.225),
                ..params()
            },
            1,
        );
        let intents = demand.decide(&world.observation(ME));
        let cap = demand.thermal_cap_mw(&world.frame.components[0]).unwrap();
        assert_eq!(cap, 271_111);
        // It holds 290 W of budget, but asks for no more than the cap...
        assert_eq!(limit(&intents), Some(271_111));
        // ...and bids for nothing more.
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }

    #[test]
    fn thermal_resistance_and_ambient_are_learned_from_telemetry() {
        // Without a t_max the thermal cap does not bind. The GPU (R = 0.4 °C/W,
        // C = 100 J/°C) sits in a 30 °C room: 3 s at 100 W, then 3 s at 140 W.
        let mut world = World::with_components(vec![ComponentTelemetry {
            temp_mc: Some(30_000),
            t_max_mc: None,
            ..gpu(1000, 100_000)
        }]);
        let mut demand = PowerDemand::new(
            PowerDemandParams {
                r_c_per_w: None,
                ambient_mc: None,
                ..params()
            },
            1,
        );
        world.frame.interval_ms = 100;
        let mut temp_c = 30.0;
        let mut intents = Vec::new();
        for tick in 0..60 {
            let power_w = if tick < 30 { 100.0 } else { 140.0 };
            temp_c += 0.1 * (power_w - (temp_c - 30.0) / 0.4) / 100.0;
            let gpu0 = &mut world.components_mut()[0];
            gpu0.temp_mc = Some((temp_c * 1000.0_f64).round() as i32);
            gpu0.power_mw = Some((power_w * 1000.0) as u64);
            gpu0.limit_mw = gpu0.power_mw;
            intents = demand.decide(&world.observation(ME));
        }
        let r = demand.thermal_resistance().unwrap();
        assert!((r - 0.4).abs() < 0.02, "{r}");
        let ambient_c = demand.ambient_c().unwrap();
        assert!((ambient_c - 30.0).abs() < 1.0, "{ambient_c}");
        // The headroom bid covers the heat of the power bid: R m°C per mW.
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let (_, heat) = bid(&intents, Resource::ThermalHeadroomMc).unwrap();
        assert_eq!(heat.0, (power.0 as f64 * r).ceil() as u64);
    }
}
