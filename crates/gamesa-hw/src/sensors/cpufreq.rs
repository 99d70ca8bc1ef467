//! Current CPU frequencies from `sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq`.

use std::path::{Path, PathBuf};

use crate::{HwError, sysfs};

/// The cpus that expose cpufreq, found once at start.
#[derive(Debug)]
pub(crate) struct CpufreqSource {
    /// `(cpu number, path of its scaling_cur_freq)`, by cpu number.
    cpus: Vec<(usize, PathBuf)>,
}

impl CpufreqSource {
    pub(crate) fn discover(root: &Path) -> Result<CpufreqSource, String> {
        let dir = root.join("sys/devices/system/cpu");
        let cpus: Vec<(usize, PathBuf)> = sysfs::entries_with_prefix(&dir, "cpu", sysfs::is_number)
            .into_iter()
            .filter_map(|(name, path)| {
                let number = name.strip_prefix("cpu")?.parse().ok()?;
                let file = path.join("cpufreq/scaling_cur_freq");
                file.exists().then_some((number, file))
            })
            .collect();
        if cpus.is_empty() {
            return Err(format!(
                "no cpu*/cpufreq/scaling_cur_freq under {}",
                dir.display()
            ));
        }
        Ok(CpufreqSource { cpus })
    }

    /// One entry per cpu, `cpu_count` at least: `None` for a cpu without cpufreq or
    /// whose reading failed (the failure goes to `errors`).
    pub(crate) fn read(&self, cpu_count: usize, errors: &mut Vec<HwError>) -> Vec<Option<u64>> {
        let highest = self.cpus.last().map_or(0, |(number, _)| number + 1);
        let mut khz = vec![None; cpu_count.max(highest)];
        for (number, path) in &self.cpus {
            match sysfs::read_u64(path) {
                Ok(value) => khz[*number] = Some(value),
                Err(err) => errors.push(err),
            }
        }
        khz
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn reads_each_cpu_that_has_cpufreq() {
        let root = tempfile::tempdir().unwrap();
        let cpu = root.path().join("sys/devices/system/cpu");
        for (n, khz) in [(0, Some("2400000\n")), (1, None), (2, Some("garbage"))] {
            let dir = cpu.join(format!("cpu{n}"));
            fs::create_dir_all(&dir).unwrap();
            if let Some(khz) = khz {
                fs::create_dir_all(dir.join("cpufreq")).unwrap();
                fs::write(dir.join("cpufreq/scaling_cur_freq"), khz).unwrap();
            }
        }
        fs::create_dir_all(cpu.join("cpufreq")).unwrap(); // not a cpu
        let source = CpufreqSource::discover(root.path()).unwrap();
        let mut errors = Vec::new();
        assert_eq!(
            source.read(4, &mut errors),
            [Some(2_400_000), None, None, None]
        );
        assert_eq!(
            errors,
            [HwError::Parse {
                path: cpu.join("cpu2/cpufreq/scaling_cur_freq"),
                content: "garbage".into(),
                expected: "an unsigned integer",
            }]
        );
    }

    #[test]
    fn no_cpufreq_is_unavailable_with_the_path_searched() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("sys/devices/system/cpu/cpu0")).unwrap();
        let reason = CpufreqSource::discover(root.path()).unwrap_err();
        assert!(reason.contains("scaling_cur_freq"), "{reason}");
    }
}
