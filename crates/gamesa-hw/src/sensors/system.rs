//! CPU utilization and memory figures, through one long-lived `sysinfo::System`.
//!
//! Only `refresh_cpu_usage` and `refresh_memory` run per sample (a full refresh costs
//! milliseconds). sysinfo always reads the host's `/proc/stat` and `/proc/meminfo`,
//! whatever root the sensors were given.
//!
//! # The first sample
//! CPU utilization is a difference of two `/proc/stat` readings, and sysinfo refreshes
//! it at most once per [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux),
//! keeping the last figure in between. The constructor takes the first reading; until
//! that interval has passed since, no utilization has been measured, so
//! [`SystemSource::utilization`] is `None` (the frame has no `cpu` and says it is
//! warming up) rather than a made-up zero.

use std::time::Instant;

use gamesa_proto::MemoryTelemetry;
use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, System};

const BYTES_PER_MB: u64 = 1024 * 1024;

/// CPU utilization in permille: the whole machine and each core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Utilization {
    pub(crate) total_permille: u16,
    pub(crate) per_core_permille: Vec<u16>,
}

pub(crate) struct SystemSource {
    system: System,
    /// When the priming CPU reading was taken; utilization exists once
    /// `MINIMUM_CPU_UPDATE_INTERVAL` has passed since (sysinfo's own gate).
    primed_at: Instant,
}

impl std::fmt::Debug for SystemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSource")
            .field("cpus", &self.system.cpus().len())
            .field("primed_at", &self.primed_at)
            .finish()
    }
}

impl SystemSource {
    /// Creates the `System` and takes the priming CPU reading.
    pub(crate) fn new() -> Result<SystemSource, String> {
        let mut system = System::new().map_err(|err| format!("sysinfo: {err}"))?;
        system.refresh_cpu_usage();
        Ok(SystemSource {
            system,
            primed_at: Instant::now(),
        })
    }

    /// Refreshes CPU usage (sysinfo skips it within 200 ms of the last) and memory.
    pub(crate) fn refresh(&mut self) {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
    }

    pub(crate) fn cpu_count(&self) -> usize {
        self.system.cpus().len()
    }

    /// The measured utilization, or why there is none.
    pub(crate) fn utilization(&self) -> Result<Utilization, String> {
        let cpus = self.system.cpus();
        if cpus.is_empty() {
            return Err("sysinfo found no cpu in /proc/stat".into());
        }
        if self.primed_at.elapsed() < MINIMUM_CPU_UPDATE_INTERVAL {
            return Err(format!(
                "warming up: utilization needs two /proc/stat readings {} ms apart",
                MINIMUM_CPU_UPDATE_INTERVAL.as_millis()
            ));
        }
        Ok(Utilization {
            total_permille: percent_to_permille(self.system.global_cpu_usage()),
            per_core_permille: cpus
                .iter()
                .map(|cpu| percent_to_permille(cpu.usage()))
                .collect(),
        })
    }

    pub(crate) fn memory(&self) -> Result<MemoryTelemetry, String> {
        let total = self.system.total_memory();
        if total == 0 {
            return Err("sysinfo read no memory total from /proc/meminfo".into());
        }
        Ok(MemoryTelemetry {
            total_mb: total / BYTES_PER_MB,
            used_mb: self.system.used_memory() / BYTES_PER_MB,
            available_mb: self.system.available_memory() / BYTES_PER_MB,
            swap_total_mb: self.system.total_swap() / BYTES_PER_MB,
            swap_used_mb: self.system.used_swap() / BYTES_PER_MB,
        })
    }
}

/// sysinfo's percent (a float) as integer permille, clamped to `0..=1000`.
pub(crate) fn percent_to_permille(percent: f32) -> u16 {
    if percent.is_nan() {
        return 0;
    }
    // The clamp bounds the value to 0..=1000, so the cast cannot truncate.
    (percent * 10.0).round().clamp(0.0, 1000.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_becomes_clamped_permille() {
        assert_eq!(percent_to_permille(0.0), 0);
        assert_eq!(percent_to_permille(12.34), 123);
        assert_eq!(percent_to_permille(100.0), 1000);
        assert_eq!(percent_to_permille(140.0), 1000);
        assert_eq!(percent_to_permille(-3.0), 0);
        assert_eq!(percent_to_permille(f32::NAN), 0);
    }
}
