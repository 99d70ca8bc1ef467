//! What the twin's sensors report about a component, as opposed to what it does: the
//! true temperature and power of some steps ago, plus Gaussian noise, the temperature
//! quantized to the sensor's step. Only the telemetry frame reads these; the physics,
//! the report and the trace use the true values.
//!
//! # Invariants
//! - with no noise, no lag and no quantization a reading is exactly the true value, so
//!   scenarios without these keys report what they always did, to the bit;
//! - the reported power is never negative;
//! - each noisy quantity draws once per step from its own stream, however many frames
//!   are built, so the readings are a pure function of the scenario's seed and the true
//!   values, and turning on one kind of noise does not change the other's draws.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::{
    rng::{Stream, rng_for},
    scenario::ComponentSpec,
};

/// A temperature and a power, true or as reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Reading {
    pub temp_c: f64,
    pub power_w: f64,
}

/// One component's sensors: lag, noise and quantization, as its scenario sets them.
#[derive(Debug, Clone)]
pub(super) struct SensorModel {
    temp_noise: Option<Noise>,
    power_noise: Option<Noise>,
    /// 0 for none.
    temp_step_c: f64,
    /// The true readings of the last `sensor_lag_ticks` steps, oldest first; always that
    /// long between calls to [`SensorModel::observe`].
    history: VecDeque<Reading>,
}

#[derive(Debug, Clone)]
struct Noise {
    rng: ChaCha8Rng,
    normal: Normal<f64>,
}

impl Noise {
    /// `None` for a standard deviation of 0 (the scenario checked it is finite and not
    /// negative, the only values `Normal` refuses).
    fn new(std_dev: f64, seed: u64, stream: Stream) -> Option<Noise> {
        if std_dev <= 0.0 {
            return None;
        }
        Some(Noise {
            rng: rng_for(seed, stream),
            normal: Normal::new(0.0, std_dev).ok()?,
        })
    }

    fn draw(&mut self) -> f64 {
        self.normal.sample(&mut self.rng)
    }
}

impl SensorModel {
    /// The sensors of component `index` of a scenario with `seed`, which before the
    /// first step (and for the first `sensor_lag_ticks` steps) report `initial`.
    pub fn new(spec: &ComponentSpec, seed: u64, index: usize, initial: Reading) -> SensorModel {
        SensorModel {
            temp_noise: Noise::new(spec.temp_noise_c, seed, Stream::TempNoise(index)),
            power_noise: Noise::new(spec.power_noise_w, seed, Stream::PowerNoise(index)),
            temp_step_c: spec.temp_step_c,
            history: std::iter::repeat_n(initial, spec.sensor_lag_ticks as usize).collect(),
        }
    }

    /// Takes the true reading of the step just done and returns what the sensors report
    /// for it: the true reading of `sensor_lag_ticks` steps ago, plus noise, then the
    /// temperature rounded to a multiple of `temp_step_c`, and the power at least 0.
    pub fn observe(&mut self, truth: Reading) -> Reading {
        self.history.push_back(truth);
        // Never empty: `truth` was just pushed.
        let mut reading = self.history.pop_front().unwrap_or(truth);
        if let Some(noise) = &mut self.temp_noise {
            reading.temp_c += noise.draw();
        }
        if let Some(noise) = &mut self.power_noise {
            reading.power_w = (reading.power_w + noise.draw()).max(0.0);
        }
        if self.temp_step_c > 0.0 {
            reading.temp_c = (reading.temp_c / self.temp_step_c).round() * self.temp_step_c;
        }
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::Scenario;

    /// A one-GPU component spec with these sensor keys.
    fn spec(sensor_keys: &str) -> ComponentSpec {
        let scenario = Scenario::from_toml_str(&format!(
            "name = \"sensors\"\nseed = 1\nduration_s = 10\nstep_ms = 100\nambient_c = 25\n\
             node = {{ cap_w = 400 }}\n\
             [components.gpu0]\nkind = \"gpu\"\ntdp_w = 300\nidle_w = 30\nmin_w = 100\n\
             max_w = 350\nr_c_per_w = 0.2\nc_j_per_c = 150\nt_max_c = 87\n{sensor_keys}"
        ))
        .unwrap_or_else(|error| panic!("{error}"));
        scenario.components()[0].clone()
    }

    const INITIAL: Reading = Reading {
        temp_c: 25.0,
        power_w: 30.0,
    };

    fn truth(step: u32) -> Reading {
        Reading {
            temp_c: 25.0 + f64::from(step) * 0.123_456_789,
            power_w: 100.0 + f64::from(step),
        }
    }

    #[test]
    fn without_keys_a_reading_is_the_truth_to_the_bit() {
        let mut sensors = SensorModel::new(&spec(""), 1, 0, INITIAL);
        for step in 0..50 {
            let reading = sensors.observe(truth(step));
            assert_eq!(reading.temp_c.to_bits(), truth(step).temp_c.to_bits());
            assert_eq!(reading.power_w.to_bits(), truth(step).power_w.to_bits());
        }
    }

    #[test]
    fn a_lag_reports_the_truth_of_n_steps_ago() {
        let mut sensors = SensorModel::new(&spec("sensor_lag_ticks = 3"), 1, 0, INITIAL);
        let readings: Vec<Reading> = (0..10).map(|step| sensors.observe(truth(step))).collect();
        assert_eq!(readings[..3], [INITIAL; 3]);
        for step in 3..10 {
            assert_eq!(readings[step as usize], truth(step - 3));
        }
    }

    #[test]
    fn the_temperature_is_quantized_to_its_step() {
        let mut sensors = SensorModel::new(&spec("temp_step_c = 0.5"), 1, 0, INITIAL);
        let reading = sensors.observe(Reading {
            temp_c: 61.3,
            power_w: 99.9,
        });
        assert_eq!(
            reading,
            Reading {
                temp_c: 61.5,
                power_w: 99.9
            }
        );
        let mut whole = SensorModel::new(&spec("temp_step_c = 1"), 1, 0, INITIAL);
        assert_eq!(
            whole
                .observe(Reading {
                    temp_c: 61.3,
                    power_w: 1.0
                })
                .temp_c,
            61.0
        );
    }

    #[test]
    fn noise_has_the_asked_spread_is_reproducible_and_never_makes_power_negative() {
        let spec = spec("temp_noise_c = 2\npower_noise_w = 50");
        let run = |seed| {
            let mut sensors = SensorModel::new(&spec, seed, 0, INITIAL);
            (0..4_000)
                .map(|_| {
                    sensors.observe(Reading {
                        temp_c: 60.0,
                        power_w: 20.0,
                    })
                })
                .collect::<Vec<_>>()
        };
        let readings = run(5);
        assert_eq!(readings, run(5));
        assert_ne!(readings, run(6));
        let temps: Vec<f64> = readings.iter().map(|reading| reading.temp_c).collect();
        let mean = temps.iter().sum::<f64>() / temps.len() as f64;
        let spread =
            (temps.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / temps.len() as f64).sqrt();
        assert!((mean - 60.0).abs() < 0.2, "{mean}");
        assert!((spread - 2.0).abs() < 0.2, "{spread}");
        assert!(readings.iter().all(|reading| reading.power_w >= 0.0));
        assert!(readings.iter().any(|reading| reading.power_w == 0.0));
    }

    #[test]
    fn each_noise_has_its_own_stream() {
        let temps = |keys: &str| {
            let mut sensors = SensorModel::new(&spec(keys), 5, 0, INITIAL);
            (0..100)
                .map(|step| sensors.observe(truth(step)).temp_c)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            temps("temp_noise_c = 1"),
            temps("temp_noise_c = 1\npower_noise_w = 3")
        );
    }

    proptest::proptest! {
        /// Whatever the true readings and settings: the power reported is never below 0,
        /// the temperature is a multiple of its step, a lag of `N` reports the start
        /// for `N` steps, and without noise the lagged truth comes through unchanged
        /// (but for the quantization).
        #[test]
        fn readings_stay_honest_to_their_settings(
            truths in proptest::collection::vec((-20.0..150.0_f64, 0.0..800.0_f64), 1..200),
            lag in 0_u32..5,
            power_noise_w in proptest::prop_oneof![proptest::strategy::Just(0.0), 0.0..50.0_f64],
            temp_step_c in proptest::prop_oneof![proptest::strategy::Just(0.0), 0.1..2.0_f64],
            seed in proptest::prelude::any::<u32>(),
        ) {
            let spec = spec(&format!(
                "sensor_lag_ticks = {lag}\npower_noise_w = {power_noise_w}\ntemp_step_c = {temp_step_c}"
            ));
            let mut sensors = SensorModel::new(&spec, u64::from(seed), 0, INITIAL);
            let truths: Vec<Reading> = truths
                .into_iter()
                .map(|(temp_c, power_w)| Reading { temp_c, power_w })
                .collect();
            for (step, truth) in truths.iter().enumerate() {
                let reading = sensors.observe(*truth);
                proptest::prop_assert!(reading.power_w >= 0.0);
                let source = if step < lag as usize { INITIAL } else { truths[step - lag as usize] };
                if temp_step_c > 0.0 {
                    let steps = reading.temp_c / temp_step_c;
                    proptest::prop_assert!((steps - steps.round()).abs() < 1e-9);
                    proptest::prop_assert!((reading.temp_c - source.temp_c).abs() <= temp_step_c / 2.0 + 1e-9);
                } else {
                    proptest::prop_assert_eq!(reading.temp_c, source.temp_c);
                }
                if power_noise_w == 0.0 {
                    proptest::prop_assert_eq!(reading.power_w, source.power_w);
                }
            }
        }
    }
}
