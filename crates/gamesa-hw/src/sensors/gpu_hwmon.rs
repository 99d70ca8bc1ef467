//! AMD and Intel GPUs through their driver's hwmon directory (`amdgpu`, `i915`, `xe`):
//! one `gpuN` component each, numbered after the NVML GPUs in PCI address order.
//!
//! # Invariants
//! - power is the driver's `power1_average` (else `power1_input`) in µW; without either
//!   it comes from `energy1_input` (µJ) over two samples: `None` on the first, and when
//!   the counter went backwards (the drivers extend it to 64 bits, so no wrap range is
//!   known and a drop means a reset);
//! - a limit reading 0 is `None`: i915 and xe read 0 when PL1 is disabled;
//! - a file that cannot be read or parsed leaves its field `None` and is an error of
//!   the sample; the component is still listed, so agents never see a GPU vanish;
//! - only channel 1 is read: xe's channel 2 (`power2_*`, `energy2_input`) is the
//!   package, which the CPU's RAPL package already counts.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use gamesa_proto::{ComponentKind, ComponentTelemetry};

use super::{TemperatureReading, powercap::average_power_mw};
use crate::{
    HwError,
    drm::{self, GpuHwmon},
    sysfs,
};

#[derive(Debug)]
enum Power {
    /// A file in µW.
    Reading(PathBuf),
    /// An energy counter in µJ, with its previous reading and when it was taken.
    Energy {
        path: PathBuf,
        last: Option<(u64, Instant)>,
    },
    Unknown,
}

#[derive(Debug)]
struct Gpu {
    id: String,
    device: GpuHwmon,
    power: Power,
    limit_path: Option<PathBuf>,
    limit_min_mw: Option<u64>,
    limit_max_mw: Option<u64>,
    /// amdgpu's `device/gpu_busy_percent`.
    busy_path: Option<PathBuf>,
}

/// A GPU this source made a component, for `gamesa probe`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GpuDevice<'a> {
    /// `gpu1`.
    pub(crate) id: &'a str,
    pub(crate) device: &'a GpuHwmon,
    /// The limit file's name, when the device has one.
    pub(crate) limit_file: Option<&'static str>,
}

/// The hwmon GPUs found at start; ranges are read once then.
#[derive(Debug)]
pub(crate) struct GpuHwmonSource {
    gpus: Vec<Gpu>,
    /// What the status line says on every sample: devices skipped, figures not known.
    note: Option<String>,
}

impl GpuHwmonSource {
    /// Finds the GPUs under `root` and numbers them from `gpu<first_index>`.
    pub(crate) fn discover(
        root: &Path,
        first_index: usize,
        errors: &mut Vec<HwError>,
    ) -> Result<GpuHwmonSource, String> {
        let (devices, skipped): (Vec<GpuHwmon>, Vec<GpuHwmon>) = drm::find(root, errors)
            .into_iter()
            .partition(GpuHwmon::is_component);
        let skipped: Vec<String> = skipped.iter().map(GpuHwmon::describe).collect();
        let skipped_note = (!skipped.is_empty()).then(|| {
            format!(
                "skipped (no power reading, energy counter or limit on channel 1): {}",
                skipped.join(", ")
            )
        });
        if devices.is_empty() {
            let mut reason = format!(
                "no amdgpu, i915 or xe hwmon under {}/card*/device/hwmon",
                root.join("sys/class/drm").display()
            );
            if let Some(note) = skipped_note {
                reason = format!("{reason}; {note}");
            }
            return Err(reason);
        }
        let gpus: Vec<Gpu> = devices
            .into_iter()
            .enumerate()
            .map(|(n, device)| Gpu::discover(format!("gpu{}", first_index + n), device, errors))
            .collect();
        let idle: Vec<String> = gpus
            .iter()
            .filter(|gpu| gpu.busy_path.is_none())
            .map(|gpu| format!("{} ({})", gpu.id, gpu.device.driver.name()))
            .collect();
        let idle_note = (!idle.is_empty())
            .then(|| format!("utilization not published by {} (reads 0)", idle.join(", ")));
        let note = match (idle_note, skipped_note) {
            (Some(idle), Some(skipped)) => Some(format!("{idle}; {skipped}")),
            (idle, skipped) => idle.or(skipped),
        };
        Ok(GpuHwmonSource { gpus, note })
    }

    pub(crate) fn note(&self) -> Option<String> {
        self.note.clone()
    }

    pub(crate) fn devices(&self) -> impl Iterator<Item = GpuDevice<'_>> {
        self.gpus.iter().map(|gpu| GpuDevice {
            id: &gpu.id,
            device: &gpu.device,
            limit_file: gpu
                .limit_path
                .is_some()
                .then(|| gpu.device.driver.limit_file()),
        })
    }

    /// Reads every GPU as of `now`. Temperatures are the hwmon source's readings of the
    /// GPU's hwmon directory (`hwmon3/temp2`): the hottest, with its critical point.
    pub(crate) fn read(
        &mut self,
        now: Instant,
        temperatures: &[TemperatureReading],
        errors: &mut Vec<HwError>,
    ) -> Vec<ComponentTelemetry> {
        self.gpus
            .iter_mut()
            .map(|gpu| gpu.read(now, temperatures, errors))
            .collect()
    }
}

impl Gpu {
    fn discover(id: String, device: GpuHwmon, errors: &mut Vec<HwError>) -> Gpu {
        let dir = &device.dir;
        let power = ["power1_average", "power1_input"]
            .into_iter()
            .map(|file| dir.join(file))
            .find(|path| path.exists())
            .map(Power::Reading)
            .or_else(|| {
                let path = dir.join("energy1_input");
                path.exists().then_some(Power::Energy { path, last: None })
            })
            .unwrap_or(Power::Unknown);
        let limit_file = device.driver.limit_file();
        let limit_path = Some(dir.join(limit_file)).filter(|path| path.exists());
        let mut bound = |file: Option<&str>| {
            let path = dir.join(file?);
            drm::read_bound_uw(&path)
                .map_err(|err| errors.push(err))
                .ok()
                .flatten()
                .map(|uw| uw / 1000)
        };
        let (limit_min_mw, limit_max_mw) = match (&limit_path, drm::limit_bound_files(limit_file)) {
            (Some(_), Some((min, max))) => (bound(min), bound(Some(max))),
            _ => (None, None),
        };
        let busy_path =
            Some(device.device_dir.join("gpu_busy_percent")).filter(|path| path.exists());
        Gpu {
            id,
            device,
            power,
            limit_path,
            limit_min_mw,
            limit_max_mw,
            busy_path,
        }
    }

    fn read(
        &mut self,
        now: Instant,
        temperatures: &[TemperatureReading],
        errors: &mut Vec<HwError>,
    ) -> ComponentTelemetry {
        let mut read_u64 = |path: &Path| sysfs::read_u64(path).map_err(|err| errors.push(err)).ok();
        let power_mw = match &mut self.power {
            Power::Reading(path) => read_u64(path).map(|uw| uw / 1000),
            Power::Energy { path, last } => read_u64(path).and_then(|energy_uj| {
                let power = last.and_then(|(previous_uj, then)| {
                    average_power_mw(
                        previous_uj,
                        energy_uj,
                        None,
                        now.saturating_duration_since(then),
                    )
                });
                *last = Some((energy_uj, now));
                power
            }),
            Power::Unknown => None,
        };
        let limit_mw = self
            .limit_path
            .as_deref()
            .and_then(&mut read_u64)
            .filter(|uw| *uw > 0)
            .map(|uw| uw / 1000);
        let utilization_permille =
            self.busy_path
                .as_deref()
                .and_then(&mut read_u64)
                .map_or(0, |pct| {
                    // At most 100 × 10 after `min`, so it fits.
                    u16::try_from(pct.min(100) * 10).unwrap_or(1000)
                });
        let own = |reading: &&TemperatureReading| {
            reading
                .telemetry
                .id
                .split_once('/')
                .is_some_and(|(chip, _)| chip == self.device.hwmon)
        };
        let hottest = temperatures
            .iter()
            .filter(own)
            .max_by_key(|reading| reading.telemetry.temp_mc);
        ComponentTelemetry {
            id: self.id.clone(),
            kind: ComponentKind::Gpu,
            utilization_permille,
            power_mw,
            temp_mc: hottest.map(|reading| reading.telemetry.temp_mc),
            t_max_mc: hottest.and_then(|reading| reading.telemetry.critical_mc),
            limit_mw,
            limit_min_mw: self.limit_min_mw,
            limit_max_mw: self.limit_max_mw,
            progress_micro: None,
            work_left_micro: None,
        }
    }
}

#[cfg(test)]
mod tests;
