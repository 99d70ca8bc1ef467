//! NVIDIA GPUs through NVML (`libnvidia-ml.so`, loaded at run time by `nvml-wrapper`).
//!
//! NVML is initialised once; when that fails the source is unavailable. A query a
//! device does not support (`NotSupported`) leaves the field out of the unified
//! component (`None`) and is noted once, not reported as an error on every sample; any
//! other failure is an [`HwError::Nvml`] in the sample's errors. [`GpuTelemetry`] has
//! plain integer fields, so there a failed query reads 0 — always alongside its error
//! or note, never silently.

use std::collections::BTreeSet;

use gamesa_proto::{ComponentKind, ComponentTelemetry, GpuTelemetry};
use nvml_wrapper::{
    Device, Nvml,
    enum_wrappers::device::{Clock, TemperatureSensor, TemperatureThreshold},
    error::NvmlError,
};

use crate::HwError;

const BYTES_PER_MB: u64 = 1024 * 1024;

/// What stays the same for a GPU while the process runs, read once at start.
#[derive(Debug, Clone)]
struct GpuInfo {
    index: u32,
    name: String,
    uuid: String,
    /// The slowdown temperature threshold, the component's `t_max`.
    t_max_mc: Option<i32>,
    limit_min_mw: Option<u64>,
    limit_max_mw: Option<u64>,
}

/// One sample of every GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvmlReading {
    pub gpus: Vec<GpuTelemetry>,
    /// One `gpuN` component per GPU.
    pub components: Vec<ComponentTelemetry>,
    pub errors: Vec<HwError>,
    /// Queries some device does not support, as `gpu0: power_usage`, for the source's
    /// status line.
    pub unsupported: Vec<String>,
}

/// The NVML telemetry source: one initialised library and the GPUs it found.
pub struct NvmlSource {
    nvml: Nvml,
    gpus: Vec<GpuInfo>,
    /// `(gpu index, query)` pairs already found unsupported, so each is logged once.
    unsupported: BTreeSet<(u32, &'static str)>,
    discovery_errors: Vec<HwError>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("gpus", &self.gpus)
            .field("unsupported", &self.unsupported)
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Loads and initialises NVML and reads each GPU's fixed facts.
    pub fn init() -> Result<NvmlSource, HwError> {
        let nvml = Nvml::init().map_err(|err| HwError::NvmlUnavailable {
            reason: err.to_string(),
        })?;
        let count = nvml
            .device_count()
            .map_err(|err| HwError::NvmlUnavailable {
                reason: format!("device_count: {err}"),
            })?;
        let mut source = NvmlSource {
            nvml,
            gpus: Vec::new(),
            unsupported: BTreeSet::new(),
            discovery_errors: Vec::new(),
        };
        for index in 0..count {
            let info = source.gpu_info(index);
            source.gpus.push(info);
        }
        Ok(source)
    }

    pub fn gpu_count(&self) -> usize {
        self.gpus.len()
    }

    /// Problems met reading the GPUs' fixed facts at start (handed out once).
    pub fn take_discovery_errors(&mut self) -> Vec<HwError> {
        std::mem::take(&mut self.discovery_errors)
    }

    fn gpu_info(&mut self, index: u32) -> GpuInfo {
        let mut info = GpuInfo {
            index,
            name: String::new(),
            uuid: String::new(),
            t_max_mc: None,
            limit_min_mw: None,
            limit_max_mw: None,
        };
        let mut errors = Vec::new();
        let device = match self.nvml.device_by_index(index) {
            Ok(device) => device,
            Err(err) => {
                self.discovery_errors
                    .push(nvml_error(index, "device_by_index", &err));
                return info;
            }
        };
        let mut noted = Vec::new();
        let mut queries = Queries {
            index,
            errors: &mut errors,
            noted: &mut noted,
        };
        info.name = queries.get("name", device.name()).unwrap_or_default();
        info.uuid = queries.get("uuid", device.uuid()).unwrap_or_default();
        info.t_max_mc = queries
            .get(
                "temperature_threshold",
                device.temperature_threshold(TemperatureThreshold::Slowdown),
            )
            .and_then(celsius_to_millicelsius);
        if let Some(constraints) = queries.get(
            "power_management_limit_constraints",
            device.power_management_limit_constraints(),
        ) {
            info.limit_min_mw = Some(u64::from(constraints.min_limit));
            info.limit_max_mw = Some(u64::from(constraints.max_limit));
        }
        self.discovery_errors.extend(errors);
        self.unsupported.extend(noted);
        info
    }

    /// Reads every GPU once.
    pub fn read(&mut self) -> NvmlReading {
        let mut reading = NvmlReading::default();
        for info in &self.gpus {
            let device = match self.nvml.device_by_index(info.index) {
                Ok(device) => device,
                Err(err) => {
                    reading
                        .errors
                        .push(nvml_error(info.index, "device_by_index", &err));
                    continue;
                }
            };
            let mut noted = Vec::new();
            let (gpu, component) = read_gpu(info, &device, &mut reading.errors, &mut noted);
            for (index, call) in noted {
                if self.unsupported.insert((index, call)) {
                    tracing::warn!(gpu = index, query = call, "NVML query not supported");
                }
            }
            reading.gpus.push(gpu);
            reading.components.push(component);
        }
        reading.unsupported = self
            .unsupported
            .iter()
            .map(|(index, call)| format!("gpu{index}: {call}"))
            .collect();
        reading
    }
}

fn read_gpu(
    info: &GpuInfo,
    device: &Device<'_>,
    errors: &mut Vec<HwError>,
    noted: &mut Vec<(u32, &'static str)>,
) -> (GpuTelemetry, ComponentTelemetry) {
    let index = info.index;
    let mut queries = Queries {
        index,
        errors,
        noted,
    };
    let utilization_pct = queries
        .get("utilization_rates", device.utilization_rates())
        .map(|rates| rates.gpu);
    let memory = queries.get("memory_info", device.memory_info());
    let temp_mc = queries
        .get("temperature", device.temperature(TemperatureSensor::Gpu))
        .and_then(celsius_to_millicelsius);
    let power_mw = queries
        .get("power_usage", device.power_usage())
        .map(u64::from);
    let limit_mw = queries
        .get("enforced_power_limit", device.enforced_power_limit())
        .map(u64::from);
    let sm_clock_mhz = queries.get("clock_info(SM)", device.clock_info(Clock::SM));
    let memory_clock_mhz = queries.get("clock_info(Memory)", device.clock_info(Clock::Memory));

    let gpu = GpuTelemetry {
        index,
        name: info.name.clone(),
        uuid: info.uuid.clone(),
        utilization_pct: utilization_pct.unwrap_or(0),
        memory_used_mb: memory.as_ref().map_or(0, |m| m.used / BYTES_PER_MB),
        memory_total_mb: memory.as_ref().map_or(0, |m| m.total / BYTES_PER_MB),
        temp_mc: temp_mc.unwrap_or(0),
        power_mw: power_mw.unwrap_or(0),
        limit_mw: limit_mw.unwrap_or(0),
        limit_min_mw: info.limit_min_mw.unwrap_or(0),
        limit_max_mw: info.limit_max_mw.unwrap_or(0),
        sm_clock_mhz: sm_clock_mhz.unwrap_or(0),
        memory_clock_mhz: memory_clock_mhz.unwrap_or(0),
    };
    let component = ComponentTelemetry {
        id: format!("gpu{index}"),
        kind: ComponentKind::Gpu,
        utilization_permille: utilization_pct
            .map_or(0, |pct| u16::try_from(pct.min(100) * 10).unwrap_or(1000)),
        power_mw,
        temp_mc,
        t_max_mc: info.t_max_mc,
        limit_mw,
        limit_min_mw: info.limit_min_mw,
        limit_max_mw: info.limit_max_mw,
        progress_micro: None,
        work_left_micro: None,
    };
    (gpu, component)
}

/// Runs NVML queries for one GPU: an unsupported query is noted, any other failure is
/// an error, and either way the value is `None`.
struct Queries<'a> {
    index: u32,
    errors: &'a mut Vec<HwError>,
    noted: &'a mut Vec<(u32, &'static str)>,
}

impl Queries<'_> {
    fn get<T>(&mut self, call: &'static str, result: Result<T, NvmlError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(NvmlError::NotSupported) => {
                self.noted.push((self.index, call));
                None
            }
            Err(err) => {
                self.errors.push(nvml_error(self.index, call, &err));
                None
            }
        }
    }
}

fn celsius_to_millicelsius(celsius: u32) -> Option<i32> {
    i32::try_from(celsius).ok()?.checked_mul(1000)
}

pub(crate) fn nvml_error(index: u32, call: &'static str, err: &NvmlError) -> HwError {
    HwError::Nvml {
        device: format!("gpu{index}"),
        call,
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run it with `cargo test -- --ignored` on a machine with an NVIDIA driver.
    #[test]
    #[ignore = "needs an NVIDIA driver (NVML)"]
    fn reads_every_gpu() {
        let mut source = NvmlSource::init().expect("NVML, which this test needs");
        let reading = source.read();
        assert_eq!(reading.gpus.len(), source.gpu_count());
        assert_eq!(reading.components.len(), source.gpu_count());
        for (gpu, component) in reading.gpus.iter().zip(&reading.components) {
            assert_eq!(component.id, format!("gpu{}", gpu.index));
            assert!(gpu.memory_total_mb > 0, "{gpu:?}");
            assert!(!gpu.uuid.is_empty(), "{gpu:?}");
            if let (Some(min), Some(max)) = (component.limit_min_mw, component.limit_max_mw) {
                assert!(min <= max, "{component:?}");
            }
        }
        assert_eq!(reading.errors, [], "NVML errors on a healthy GPU");
    }
}
