//! A component's thermal behaviour learned online from its own telemetry: recursive
//! least squares on the lumped RC model `C · dT/dt = P − (T − T_amb) / R`, with the
//! ambient temperature learned too.
//!
//! Each sample gives the temperature change over one interval, the power drawn and the
//! temperature at its start; the model fits `dT/dt = a · P − b · (T − T_ref) + c` with
//! `a = 1/C`, `b = 1/(R·C)` and `c = (T_amb − T_ref) / (R·C)`, so `R = a / b` and
//! `T_amb = T_ref + c / b`. `T_ref`, the first temperature seen, centres the regressor,
//! which keeps the fit well conditioned (a temperature near 40 °C and the constant 1
//! would otherwise be nearly collinear), and makes "the ambient is where it started" the
//! prior until the data say otherwise. Unlike the
//! steady-state ratio `(T − T_amb) / P`, which reads low while a component heats up and
//! needs the ambient temperature given, the fit is right from the first seconds of a
//! transient and follows the room it is in. Old samples fade (forgetting factor), so a
//! resistance or an ambient that changes (a fan that degrades, a warmer afternoon) is
//! followed within tens of seconds.
//!
//! # Invariants
//! - `resistance()`, `time_constant_s()` and `ambient_c()` are `None` until enough
//!   samples were fitted and the fit is physical (`a > 0`, `b > 0`, an ambient within
//!   [`MIN_AMBIENT_C`, `MAX_AMBIENT_C`]), and otherwise finite; the resistance lies
//!   within `[MIN_R, MAX_R]`.

/// Samples before the fit is trusted.
const MIN_SAMPLES: u32 = 20;
/// Weight kept by the past at each sample: a memory of about 200 samples.
const FORGETTING: f64 = 0.995;
/// Initial covariance: large against the inverse square of the regressors' scale.
const INITIAL_COVARIANCE: f64 = 1.0;
/// Plausible thermal resistances, °C per W.
const MIN_R: f64 = 0.001;
const MAX_R: f64 = 10.0;
/// Plausible ambient temperatures, °C: a fit outside them is not trusted.
pub const MIN_AMBIENT_C: f64 = -40.0;
pub const MAX_AMBIENT_C: f64 = 70.0;

/// The fit and the last temperature seen.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalModel {
    /// `[1/C, 1/(R·C), (T_amb − T_ref)/(R·C)]`.
    theta: [f64; 3],
    covariance: [[f64; 3]; 3],
    samples: u32,
    last_temp_c: Option<f64>,
    /// `T_ref`: the first temperature seen.
    reference_c: Option<f64>,
}

impl Default for ThermalModel {
    fn default() -> Self {
        let mut covariance = [[0.0; 3]; 3];
        for (index, row) in covariance.iter_mut().enumerate() {
            row[index] = INITIAL_COVARIANCE;
        }
        ThermalModel {
            theta: [0.0; 3],
            covariance,
            samples: 0,
            last_temp_c: None,
            reference_c: None,
        }
    }
}

impl ThermalModel {
    /// Takes in one interval: the temperature at its end, the power drawn during it and
    /// its length. A sample with a non-finite value or no length only moves the starting
    /// temperature.
    pub fn observe(&mut self, temp_c: f64, power_w: f64, interval_s: f64) {
        let previous = self.last_temp_c.replace(temp_c);
        let Some(start_c) = previous else {
            return;
        };
        if !(temp_c.is_finite() && power_w.is_finite() && start_c.is_finite()) || interval_s <= 0.0
        {
            return;
        }
        let rate = (temp_c - start_c) / interval_s;
        let reference_c = *self.reference_c.get_or_insert(start_c);
        let x = [power_w, -(start_c - reference_c), 1.0];
        let p = self.covariance;
        let px: [f64; 3] = std::array::from_fn(|row| (0..3).map(|k| p[row][k] * x[k]).sum());
        let denominator = FORGETTING + (0..3).map(|k| x[k] * px[k]).sum::<f64>();
        if !(denominator.is_finite() && denominator > 0.0) {
            return;
        }
        let gain: [f64; 3] = std::array::from_fn(|row| px[row] / denominator);
        let error = rate - (0..3).map(|k| self.theta[k] * x[k]).sum::<f64>();
        let theta: [f64; 3] = std::array::from_fn(|row| self.theta[row] + gain[row] * error);
        let covariance: [[f64; 3]; 3] = std::array::from_fn(|row| {
            std::array::from_fn(|column| (p[row][column] - gain[row] * px[column]) / FORGETTING)
        });
        if theta
            .iter()
            .chain(covariance.iter().flatten())
            .all(|v| v.is_finite())
        {
            self.theta = theta;
            self.covariance = covariance;
            self.samples = self.samples.saturating_add(1);
        }
    }

    /// `(a, b, T_amb)` once the fit is trusted and physical.
    fn fitted(&self) -> Option<(f64, f64, f64)> {
        let [a, b, c] = self.theta;
        let reference_c = self.reference_c?;
        if self.samples < MIN_SAMPLES || a <= 0.0 || b <= 0.0 {
            return None;
        }
        let ambient_c = reference_c + c / b;
        (ambient_c.is_finite() && (MIN_AMBIENT_C..=MAX_AMBIENT_C).contains(&ambient_c))
            .then_some((a, b, ambient_c))
    }

    /// The fitted time constant `R · C` in seconds, once trusted.
    pub fn time_constant_s(&self) -> Option<f64> {
        let (_, b, _) = self.fitted()?;
        let tau = 1.0 / b;
        tau.is_finite().then_some(tau)
    }

    /// The fitted resistance in °C per W, once trusted.
    pub fn resistance(&self) -> Option<f64> {
        let (a, b, _) = self.fitted()?;
        let r = a / b;
        r.is_finite().then(|| r.clamp(MIN_R, MAX_R))
    }

    /// The fitted ambient temperature in °C, once trusted.
    pub fn ambient_c(&self) -> Option<f64> {
        let (_, _, ambient_c) = self.fitted()?;
        Some(ambient_c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `seconds` of the RC model (explicit Euler, as the twin does) at `power_w`
    /// from `temp_c` in a room at `ambient_c`, feeding the model; returns the final
    /// temperature.
    fn heat(
        model: &mut ThermalModel,
        mut temp_c: f64,
        power_w: f64,
        (r, c, ambient_c): (f64, f64, f64),
        seconds: f64,
    ) -> f64 {
        let dt = 0.1;
        for _ in 0..(seconds / dt) as u32 {
            temp_c += dt * (power_w - (temp_c - ambient_c) / r) / c;
            // Telemetry rounds to m°C.
            let reported = (temp_c * 1000.0).round() / 1000.0;
            model.observe(reported, power_w, dt);
        }
        temp_c
    }

    #[test]
    fn resistance_and_ambient_are_right_while_still_heating() {
        // A GPU with R = 0.35 °C/W and C = 150 J/°C in a 31 °C room; idle at 30 W for
        // a few seconds, then at 300 W it heads for 136 °C; after 5 s it is only about
        // 41 °C, where (T − T_amb) / P would say 0.03 °C/W.
        let mut model = ThermalModel::default();
        model.observe(31.0, 30.0, 0.1);
        let temp_c = heat(&mut model, 31.0, 30.0, (0.35, 150.0, 31.0), 3.0);
        let temp_c = heat(&mut model, temp_c, 300.0, (0.35, 150.0, 31.0), 5.0);
        assert!(temp_c < 45.0, "{temp_c}");
        let r = model.resistance().unwrap();
        assert!((r - 0.35).abs() < 0.02, "{r}");
        let ambient_c = model.ambient_c().unwrap();
        assert!((ambient_c - 31.0).abs() < 1.0, "{ambient_c}");
    }

    #[test]
    fn a_changed_resistance_is_followed() {
        let mut model = ThermalModel::default();
        model.observe(25.0, 30.0, 0.1);
        let temp_c = heat(&mut model, 25.0, 30.0, (0.2, 150.0, 25.0), 3.0);
        let temp_c = heat(&mut model, temp_c, 200.0, (0.2, 150.0, 25.0), 60.0);
        assert!((model.resistance().unwrap() - 0.2).abs() < 0.01);
        // The fan degrades: R grows by half, and the load changes with it (a constant
        // load alone cannot tell a new R from a new ambient).
        let temp_c = heat(&mut model, temp_c, 120.0, (0.3, 150.0, 25.0), 45.0);
        heat(&mut model, temp_c, 200.0, (0.3, 150.0, 25.0), 45.0);
        let r = model.resistance().unwrap();
        assert!((r - 0.3).abs() < 0.03, "{r}");
    }

    #[test]
    fn too_few_or_bad_samples_give_no_estimate() {
        let mut model = ThermalModel::default();
        assert_eq!(model.resistance(), None);
        for _ in 0..100 {
            model.observe(f64::NAN, 100.0, 0.1);
            model.observe(30.0, f64::INFINITY, 0.1);
            model.observe(30.0, 100.0, 0.0);
        }
        assert_eq!(model.resistance(), None);
        assert_eq!(model.ambient_c(), None);
    }
}
