//! Builds the sensors and the actuator a config asks for: this Linux machine (with
//! dry-run actuators unless real ones are enabled) or the simulated twin.

use std::path::Path;

use gamesa_hw::{
    Actuator, ActuatorConfig, DryRunActuator, LinuxActuator, LinuxSensors, LinuxSensorsOptions,
    Sensors, StartReport,
    twin::{Scenario, SharedTwin, Twin},
};

use crate::{
    RuntimeError,
    config::{Config, SensorSource},
};

/// The machine the runtime drives.
pub struct Hardware {
    pub sensors: Box<dyn Sensors>,
    pub actuator: Box<dyn Actuator>,
    /// The twin, when the config runs one: the caller reads its report at the end.
    pub twin: Option<SharedTwin>,
    /// What the real actuator restored at start (records left by a crashed run).
    pub start_report: Option<StartReport>,
}

impl std::fmt::Debug for Hardware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hardware")
            .field("twin", &self.twin.is_some())
            .field("start_report", &self.start_report)
            .finish_non_exhaustive()
    }
}

/// Builds the hardware for `config`; relative scenario paths are resolved against
/// `config_dir` (the directory of the config file).
pub fn hardware_for(config: &Config, config_dir: &Path) -> Result<Hardware, RuntimeError> {
    match config.sensors.source {
        SensorSource::Linux => {
            let sensors = LinuxSensors::new(LinuxSensorsOptions {
                root: config.sensors.root.clone(),
                cap_mw: config.guardian.cap_mw,
                nvml: true,
            });
            // A state file left by a run with real actuators is restored even when this
            // config enables none: the real actuator opens it and reverts it at start.
            let (actuator, start_report): (Box<dyn Actuator>, _) =
                if config.actuators.real.is_empty() && !config.actuators.state_file.exists() {
                    (Box::new(DryRunActuator::new()), None)
                } else {
                    let actuator = LinuxActuator::new(ActuatorConfig {
                        root: config.sensors.root.clone(),
                        state_file: config.actuators.state_file.clone(),
                        enabled_targets: config.actuators.real.clone(),
                        power_limits: config.actuators.power_limits.clone(),
                    })
                    .map_err(|error| RuntimeError::Hardware(error.to_string()))?
                    .with_gpu_numbering(sensors.gpu_numbering());
                    let report = actuator.start_report().clone();
                    (Box::new(actuator), Some(report))
                };
            Ok(Hardware {
                sensors: Box::new(sensors),
                actuator,
                twin: None,
                start_report,
            })
        }
        SensorSource::Twin => {
            let scenario = load_scenario(config, config_dir)?;
            let twin = SharedTwin::new(Twin::new(scenario));
            Ok(Hardware {
                sensors: Box::new(twin.sensors()),
                actuator: Box::new(twin.actuator()),
                twin: Some(twin),
                start_report: None,
            })
        }
    }
}

/// The scenario `sensors.scenario` names, resolved against `config_dir`.
pub fn load_scenario(config: &Config, config_dir: &Path) -> Result<Scenario, RuntimeError> {
    let Some(path) = &config.sensors.scenario else {
        return Err(RuntimeError::Config {
            key: "sensors.scenario".into(),
            message: "required when sensors.source = \"twin\"".into(),
        });
    };
    let path = config_dir.join(path);
    Scenario::load(&path).map_err(|error| RuntimeError::Config {
        key: "sensors.scenario".into(),
        message: error.to_string(),
    })
}
