//! A component's thermal resistance learned online from its own telemetry: recursive
//! least squares on the lumped RC model `C · dT/dt = P − (T − T_amb) / R`.
//!
//! Each sample gives the temperature change over one interval, the power drawn and the
//! temperature at its start; the model fits `dT/dt = a · P − b · (T − T_amb)` with
//! `a = 1/C` and `b = 1/(R·C)`, so `R = a / b`. Unlike the steady-state ratio
//! `(T − T_amb) / P`, which reads low while a component heats up, the fit is right from
//! the first seconds of a transient; at steady state it reduces to that ratio.
//! Old samples fade (forgetting factor), so a resistance that changes (a fan that
//! degrades) is followed within tens of seconds.
//!
//! # Invariants
//! - `resistance()` is `None` until enough samples were fitted, and otherwise finite,
//!   positive and within `[MIN_R, MAX_R]`.

/// Samples before the fit is trusted.
const MIN_SAMPLES: u32 = 20;
/// Weight kept by the past at each sample: a memory of about 200 samples.
const FORGETTING: f64 = 0.995;
/// Initial covariance: large against the inverse square of the regressors' scale.
const INITIAL_COVARIANCE: f64 = 1.0;
/// Plausible thermal resistances, °C per W.
const MIN_R: f64 = 0.001;
const MAX_R: f64 = 10.0;

/// The fit and the last temperature seen.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalModel {
    /// `[1/C, 1/(R·C)]`.
    theta: [f64; 2],
    covariance: [[f64; 2]; 2],
    samples: u32,
    last_temp_c: Option<f64>,
}

impl Default for ThermalModel {
    fn default() -> Self {
        ThermalModel {
            theta: [0.0, 0.0],
            covariance: [[INITIAL_COVARIANCE, 0.0], [0.0, INITIAL_COVARIANCE]],
            samples: 0,
            last_temp_c: None,
        }
    }
}

impl ThermalModel {
    /// Takes in one interval: the temperature at its end, the power drawn during it,
    /// the ambient temperature and its length. A sample with a non-finite value or no
    /// length only moves the starting temperature.
    pub fn observe(&mut self, temp_c: f64, power_w: f64, ambient_c: f64, interval_s: f64) {
        let previous = self.last_temp_c.replace(temp_c);
        let Some(start_c) = previous else {
            return;
        };
        if !(temp_c.is_finite() && power_w.is_finite() && start_c.is_finite()) || interval_s <= 0.0
        {
            return;
        }
        let rate = (temp_c - start_c) / interval_s;
        let x = [power_w, -(start_c - ambient_c)];
        let p = self.covariance;
        let px = [
            p[0][0] * x[0] + p[0][1] * x[1],
            p[1][0] * x[0] + p[1][1] * x[1],
        ];
        let denominator = FORGETTING + x[0] * px[0] + x[1] * px[1];
        if !(denominator.is_finite() && denominator > 0.0) {
            return;
        }
        let gain = [px[0] / denominator, px[1] / denominator];
        let error = rate - (self.theta[0] * x[0] + self.theta[1] * x[1]);
        let theta = [
            self.theta[0] + gain[0] * error,
            self.theta[1] + gain[1] * error,
        ];
        let mut covariance = [[0.0; 2]; 2];
        for (row, gain_row) in gain.iter().enumerate() {
            for (column, px_column) in px.iter().enumerate() {
                covariance[row][column] = (p[row][column] - gain_row * px_column) / FORGETTING;
            }
        }
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

    /// The fitted time constant `R · C` in seconds, once trusted.
    pub fn time_constant_s(&self) -> Option<f64> {
        self.resistance()?;
        let tau = 1.0 / self.theta[1];
        tau.is_finite().then_some(tau)
    }

    /// The fitted resistance in °C per W, once trusted.
    pub fn resistance(&self) -> Option<f64> {
        let [a, b] = self.theta;
        if self.samples < MIN_SAMPLES || a <= 0.0 || b <= 0.0 {
            return None;
        }
        let r = a / b;
        (r.is_finite()).then(|| r.clamp(MIN_R, MAX_R))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `seconds` of the RC model (explicit Euler, as the twin does) at `power_w`
    /// from `temp_c`, feeding the model; returns the final temperature.
    fn heat(
        model: &mut ThermalModel,
        mut temp_c: f64,
        power_w: f64,
        r: f64,
        c: f64,
        seconds: f64,
    ) -> f64 {
        let dt = 0.1;
        for _ in 0..(seconds / dt) as u32 {
            temp_c += dt * (power_w - (temp_c - 25.0) / r) / c;
            // Telemetry rounds to m°C.
            let reported = (temp_c * 1000.0).round() / 1000.0;
            model.observe(reported, power_w, 25.0, dt);
        }
        temp_c
    }

    #[test]
    fn the_resistance_is_right_while_still_heating() {
        // A GPU with R = 0.35 °C/W and C = 150 J/°C at 300 W heads for 130 °C; after 5 s
        // it is only 34.5 °C, where (T − T_amb) / P would say 0.03 °C/W.
        let mut model = ThermalModel::default();
        model.observe(25.0, 300.0, 25.0, 0.1);
        let temp_c = heat(&mut model, 25.0, 300.0, 0.35, 150.0, 5.0);
        assert!(temp_c < 40.0);
        let r = model.resistance().unwrap();
        assert!((r - 0.35).abs() < 0.02, "{r}");
    }

    #[test]
    fn a_changed_resistance_is_followed() {
        let mut model = ThermalModel::default();
        model.observe(25.0, 200.0, 25.0, 0.1);
        let temp_c = heat(&mut model, 25.0, 200.0, 0.2, 150.0, 60.0);
        assert!((model.resistance().unwrap() - 0.2).abs() < 0.01);
        // The fan degrades: R grows by half. Under constant power the fit needs about a
        // time constant of the new dynamics to settle.
        heat(&mut model, temp_c, 200.0, 0.3, 150.0, 90.0);
        let r = model.resistance().unwrap();
        assert!((r - 0.3).abs() < 0.02, "{r}");
    }

    #[test]
    fn too_few_or_bad_samples_give_no_estimate() {
        let mut model = ThermalModel::default();
        assert_eq!(model.resistance(), None);
        for _ in 0..100 {
            model.observe(f64::NAN, 100.0, 25.0, 0.1);
            model.observe(30.0, f64::INFINITY, 25.0, 0.1);
            model.observe(30.0, 100.0, 25.0, 0.0);
        }
        assert_eq!(model.resistance(), None);
    }
}
