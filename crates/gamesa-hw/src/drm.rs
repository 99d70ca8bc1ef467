//! GPUs whose DRM driver (`amdgpu`, `i915`, `xe`) reports power through hwmon: where
//! they sit in sysfs, which of their files is the power limit, and what bounds it.
//!
//! The layout (docs/hardware.md, "AMD and Intel GPUs", says where it comes from):
//! `sys/class/drm/cardN/device` is the card's PCI device, and the driver's hwmon
//! directory is `<PCI device>/hwmon/hwmonM`, which is also `sys/class/hwmon/hwmonM` and
//! `sys/bus/pci/devices/<PCI address>/hwmon/hwmonM`. `cardN` and `hwmonM` are numbered
//! in probe order and can change across boots; the PCI address does not, so bindings
//! and actuator records name a GPU by it.
//!
//! # Invariants
//! - the sensors and the actuator number the same devices the same way: [`find`] sorts
//!   by PCI address, and both keep the devices [`GpuHwmon::is_component`] accepts;
//! - a limit file a binding names is one of [`LIMIT_FILES`], and a PCI address is checked
//!   by [`is_pci_address`] before it becomes part of a path.
//!
//! # Why not libmedium
//! libmedium (0.13) is a well-kept hwmon crate with a small dependency tree, but it does
//! not fit here: it parses `/sys/class/hwmon` unless built with its
//! `unrestricted_parsing` feature; one hwmon directory it cannot parse fails the whole
//! parse; `Hwmon::device_path()` unwraps a `canonicalize`, a panic on a directory
//! without a `device` link; and its typed readings lose the file's exact text, which the
//! actuator records to restore byte for byte. The handful of files read here go through
//! [`crate::sysfs`], whose errors name the file and quote its content.

use std::path::{Path, PathBuf};

use crate::{HwError, sysfs};

/// The limit files a `via = "hwmon"` binding may name: amdgpu's `power1_cap`, and i915's
/// and xe's `power1_max` (their sustained limit PL1, not the generic hwmon alarm).
pub(crate) const LIMIT_FILES: [&str; 2] = ["power1_cap", "power1_max"];

/// The drivers whose hwmon directory makes a GPU a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    Amdgpu,
    I915,
    Xe,
}

impl Driver {
    /// The driver an hwmon `name` file names, if it is one of these.
    pub(crate) fn from_hwmon_name(name: &str) -> Option<Driver> {
        match name.trim() {
            "amdgpu" => Some(Driver::Amdgpu),
            "i915" => Some(Driver::I915),
            "xe" => Some(Driver::Xe),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Driver::Amdgpu => "amdgpu",
            Driver::I915 => "i915",
            Driver::Xe => "xe",
        }
    }

    /// The file holding the writable sustained power limit, in µW.
    pub(crate) fn limit_file(self) -> &'static str {
        match self {
            Driver::Amdgpu => "power1_cap",
            Driver::I915 | Driver::Xe => "power1_max",
        }
    }

    /// The step a written limit takes effect in, in µW: amdgpu divides what is written
    /// by 1 000 000 and keeps whole watts; i915 and xe take µW.
    pub(crate) fn limit_step_uw(self) -> u64 {
        match self {
            Driver::Amdgpu => 1_000_000,
            Driver::I915 | Driver::Xe => 1,
        }
    }
}

/// The files that bound a limit file: `(minimum, maximum)`. i915 and xe publish no
/// minimum (any value above 0 is accepted) and call the maximum `power1_rated_max`.
pub(crate) fn limit_bound_files(limit_file: &str) -> Option<(Option<&'static str>, &'static str)> {
    match limit_file {
        "power1_cap" => Some((Some("power1_cap_min"), "power1_cap_max")),
        "power1_max" => Some((None, "power1_rated_max")),
        _ => None,
    }
}

/// A bound of a limit, in µW: `None` when the file is absent or reads 0 (amdgpu reports
/// a minimum it does not know as 0; i915 and xe a maximum they do not know).
pub(crate) fn read_bound_uw(path: &Path) -> Result<Option<u64>, HwError> {
    Ok(sysfs::read_optional_u64(path)?.filter(|uw| *uw > 0))
}

/// One GPU hwmon directory found through its DRM card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpuHwmon {
    /// `card1`.
    pub(crate) card: String,
    /// The PCI address, such as `0000:03:00.0`: the name of the card's device directory.
    pub(crate) pci: String,
    pub(crate) driver: Driver,
    /// `hwmon3`.
    pub(crate) hwmon: String,
    /// `<root>/sys/class/drm/card1/device`.
    pub(crate) device_dir: PathBuf,
    /// `<root>/sys/class/drm/card1/device/hwmon/hwmon3`.
    pub(crate) dir: PathBuf,
}

impl GpuHwmon {
    /// `card1 (amdgpu at 0000:03:00.0)`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} ({} at {})", self.card, self.driver.name(), self.pci)
    }

    /// Whether the device becomes a `gpuN` component: it has a power reading, an
    /// energy counter or a power limit on channel 1.
    pub(crate) fn is_component(&self) -> bool {
        ["power1_average", "power1_input", "energy1_input"]
            .into_iter()
            .chain([self.driver.limit_file()])
            .any(|file| self.dir.join(file).exists())
    }
}

/// Every amdgpu, i915 and xe hwmon directory under `root/sys/class/drm/card*/device/`,
/// sorted by PCI address (then card). Unreadable `name` files and devices whose PCI
/// address cannot be found go to `errors` and are skipped.
pub(crate) fn find(root: &Path, errors: &mut Vec<HwError>) -> Vec<GpuHwmon> {
    let drm = root.join("sys/class/drm");
    let mut found = Vec::new();
    for (card, card_path) in sysfs::entries_with_prefix(&drm, "card", sysfs::is_number) {
        let device_dir = card_path.join("device");
        let hwmons =
            sysfs::entries_with_prefix(&device_dir.join("hwmon"), "hwmon", sysfs::is_number);
        for (hwmon, dir) in hwmons {
            let driver = match sysfs::read_optional(&dir.join("name")) {
                Ok(name) => name.as_deref().and_then(Driver::from_hwmon_name),
                Err(err) => {
                    errors.push(err);
                    None
                }
            };
            let Some(driver) = driver else {
                continue;
            };
            match pci_address(&device_dir) {
                Ok(pci) => found.push(GpuHwmon {
                    card: card.clone(),
                    pci,
                    driver,
                    hwmon,
                    device_dir: device_dir.clone(),
                    dir,
                }),
                Err(err) => errors.push(err),
            }
        }
    }
    // Stable: cards of one device keep their natural order.
    found.sort_by(|a, b| a.pci.cmp(&b.pci));
    found.dedup_by(|later, earlier| later.pci == earlier.pci && later.hwmon == earlier.hwmon);
    found
}

/// The name of the directory `device_dir` resolves to: the PCI address.
fn pci_address(device_dir: &Path) -> Result<String, HwError> {
    let resolved = std::fs::canonicalize(device_dir).map_err(|err| HwError::Read {
        path: device_dir.to_path_buf(),
        reason: err.to_string(),
    })?;
    resolved
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| is_pci_address(name))
        .map(str::to_owned)
        .ok_or_else(|| {
            sysfs::parse_error(
                device_dir,
                &resolved.display().to_string(),
                "a link to a PCI device",
            )
        })
}

/// `true` for a PCI address such as `0000:03:00.0`: hex digits, `:` and `.`, nothing
/// that could leave the directory it names.
pub(crate) fn is_pci_address(text: &str) -> bool {
    text.contains(':')
        && !text.contains("..")
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// `<root>/sys/bus/pci/devices/<pci>/hwmon`: where the hwmon directories of a PCI
/// device are, by a path that no renumbering of cards or hwmons changes.
pub(crate) fn stable_hwmon_parent(root: &Path, pci: &str) -> PathBuf {
    root.join("sys/bus/pci/devices").join(pci).join("hwmon")
}

/// The hwmon directory of PCI device `pci` that holds `limit_file`, by its stable path,
/// with its driver: the first `hwmon*` there named amdgpu, i915 or xe that has the file.
/// `Ok(None)` when there is none.
pub(crate) fn bound_hwmon(
    root: &Path,
    pci: &str,
    limit_file: &str,
) -> Result<Option<(Driver, PathBuf)>, HwError> {
    let parent = stable_hwmon_parent(root, pci);
    for (_, dir) in sysfs::entries_with_prefix(&parent, "hwmon", sysfs::is_number) {
        let Some(name) = sysfs::read_optional(&dir.join("name"))? else {
            continue;
        };
        if let Some(driver) = Driver::from_hwmon_name(&name)
            && dir.join(limit_file).exists()
        {
            return Ok(Some((driver, dir)));
        }
    }
    Ok(None)
}

/// Fake sysfs trees of GPUs, laid out as the kernel lays them out: the device directory
/// under `sys/devices/pci0000:00/`, and `sys/class/drm/cardN`, `sys/class/hwmon/hwmonM`
/// and `sys/bus/pci/devices/<address>` as relative links to it. Shared by the sensor,
/// actuator and probe tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::{
        fs,
        os::unix::fs::symlink,
        path::{Path, PathBuf},
    };

    /// An amdgpu card (a Radeon RX 6000-class dGPU as its hwmon shows it): average
    /// power, the cap and its range, edge, junction and memory temperatures, and
    /// `gpu_busy_percent` on the device.
    pub(crate) const AMDGPU: &[(&str, &str)] = &[
        ("name", "amdgpu\n"),
        ("power1_label", "PPT\n"),
        ("power1_average", "35000000\n"),
        ("power1_cap", "203000000\n"),
        ("power1_cap_default", "203000000\n"),
        ("power1_cap_min", "150000000\n"),
        ("power1_cap_max", "230000000\n"),
        ("temp1_input", "45000\n"),
        ("temp1_label", "edge\n"),
        ("temp1_crit", "100000\n"),
        ("temp2_input", "52000\n"),
        ("temp2_label", "junction\n"),
        ("temp2_crit", "110000\n"),
        ("temp3_input", "50000\n"),
        ("temp3_label", "mem\n"),
        ("temp3_crit", "105000\n"),
        ("fan1_input", "0\n"),
        ("freq1_input", "500000000\n"),
    ];

    /// An i915 discrete card (Arc A-series): the PL1 limit as `power1_max`, its rated
    /// maximum, the energy counter, no temperature.
    pub(crate) const I915: &[(&str, &str)] = &[
        ("name", "i915\n"),
        ("power1_max", "190000000\n"),
        ("power1_rated_max", "225000000\n"),
        ("power1_crit", "400000000\n"),
        ("power1_max_interval", "1000\n"),
        ("energy1_input", "1000000000\n"),
        ("in0_input", "700\n"),
    ];

    /// An xe discrete card (Arc B-series, newer kernel): card channel 1 and package
    /// channel 2, each with a limit and an energy counter.
    pub(crate) const XE: &[(&str, &str)] = &[
        ("name", "xe\n"),
        ("power1_label", "card\n"),
        ("power1_max", "0\n"),
        ("power1_rated_max", "190000000\n"),
        ("power1_max_interval", "1000\n"),
        ("energy1_input", "5000000\n"),
        ("power2_label", "pkg\n"),
        ("power2_max", "150000000\n"),
        ("power2_rated_max", "150000000\n"),
        ("energy2_input", "4000000\n"),
        ("in1_input", "800\n"),
    ];

    /// Adds a GPU at PCI address `pci` as DRM `card<card>` with `hwmon<hwmon>` holding
    /// `files`, and `device_files` in the PCI device directory. Returns the hwmon
    /// directory's real path.
    pub(crate) fn gpu(
        root: &Path,
        card: u32,
        pci: &str,
        hwmon: u32,
        files: &[(&str, &str)],
        device_files: &[(&str, &str)],
    ) -> PathBuf {
        let device = root.join("sys/devices/pci0000:00").join(pci);
        let card_dir = device.join(format!("drm/card{card}"));
        let hwmon_dir = device.join(format!("hwmon/hwmon{hwmon}"));
        fs::create_dir_all(&card_dir).unwrap();
        fs::create_dir_all(&hwmon_dir).unwrap();
        for (file, content) in files {
            fs::write(hwmon_dir.join(file), content).unwrap();
        }
        for (file, content) in device_files {
            fs::write(device.join(file), content).unwrap();
        }
        symlink(format!("../../../{pci}"), card_dir.join("device")).unwrap();
        link(
            root,
            &format!("sys/class/drm/card{card}"),
            &format!("../../devices/pci0000:00/{pci}/drm/card{card}"),
        );
        link(
            root,
            &format!("sys/class/hwmon/hwmon{hwmon}"),
            &format!("../../devices/pci0000:00/{pci}/hwmon/hwmon{hwmon}"),
        );
        link(
            root,
            &format!("sys/bus/pci/devices/{pci}"),
            &format!("../../../devices/pci0000:00/{pci}"),
        );
        hwmon_dir
    }

    /// One amdgpu card at `0000:03:00.0` (card1, hwmon3), 37 % busy.
    pub(crate) fn amdgpu(root: &Path) -> PathBuf {
        gpu(
            root,
            1,
            "0000:03:00.0",
            3,
            AMDGPU,
            &[("gpu_busy_percent", "37\n")],
        )
    }

    /// One i915 card at `0000:02:00.0` (card0, hwmon5).
    pub(crate) fn i915(root: &Path) -> PathBuf {
        gpu(root, 0, "0000:02:00.0", 5, I915, &[])
    }

    /// One xe card at `0000:04:00.0` (card2, hwmon1).
    pub(crate) fn xe(root: &Path) -> PathBuf {
        gpu(root, 2, "0000:04:00.0", 1, XE, &[])
    }

    fn link(root: &Path, at: &str, target: &str) {
        let at = root.join(at);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(target, at).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_gpus_by_pci_address_whatever_their_card_and_hwmon_numbers() {
        let root = tempfile::tempdir().unwrap();
        fake::amdgpu(root.path());
        fake::i915(root.path());
        fake::xe(root.path());
        // Another driver's hwmon on a card, and a connector entry, are not GPUs here.
        fake::gpu(
            root.path(),
            3,
            "0000:05:00.0",
            0,
            &[("name", "nouveau\n"), ("power1_input", "1\n")],
            &[],
        );
        std::fs::create_dir_all(root.path().join("sys/class/drm/card1-DP-1")).unwrap();
        let mut errors = Vec::new();
        let found = find(root.path(), &mut errors);
        assert_eq!(errors, []);
        let seen: Vec<_> = found
            .iter()
            .map(|gpu| {
                (
                    gpu.card.as_str(),
                    gpu.pci.as_str(),
                    gpu.driver,
                    gpu.hwmon.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("card0", "0000:02:00.0", Driver::I915, "hwmon5"),
                ("card1", "0000:03:00.0", Driver::Amdgpu, "hwmon3"),
                ("card2", "0000:04:00.0", Driver::Xe, "hwmon1"),
            ]
        );
        assert_eq!(
            found[1].dir,
            root.path().join("sys/class/drm/card1/device/hwmon/hwmon3")
        );
        assert!(found.iter().all(GpuHwmon::is_component));
    }

    #[test]
    fn the_stable_path_finds_the_hwmon_holding_the_limit() {
        let root = tempfile::tempdir().unwrap();
        fake::amdgpu(root.path());
        let found = bound_hwmon(root.path(), "0000:03:00.0", "power1_cap").unwrap();
        assert_eq!(
            found,
            Some((
                Driver::Amdgpu,
                root.path()
                    .join("sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon3")
            ))
        );
        assert_eq!(
            bound_hwmon(root.path(), "0000:03:00.0", "power1_max").unwrap(),
            None
        );
        assert_eq!(
            bound_hwmon(root.path(), "0000:09:00.0", "power1_cap").unwrap(),
            None
        );
    }

    #[test]
    fn pci_addresses_cannot_leave_their_directory() {
        assert!(is_pci_address("0000:03:00.0"));
        assert!(!is_pci_address("../../../etc"));
        assert!(!is_pci_address("0000:03:00.0/.."));
        assert!(!is_pci_address("0000:03:00..0"));
        assert!(!is_pci_address("card1"));
        assert!(!is_pci_address(""));
    }

    #[test]
    fn a_garbled_name_is_an_error_and_the_device_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        let dir = fake::amdgpu(root.path());
        std::fs::write(dir.join("name"), [0xff, 0xfe]).unwrap();
        let mut errors = Vec::new();
        assert_eq!(find(root.path(), &mut errors), []);
        assert!(
            matches!(&errors[..], [HwError::Parse { path, .. }] if path.ends_with("hwmon3/name")),
            "{errors:?}"
        );
    }

    #[test]
    fn bounds_of_zero_are_unknown() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("power1_cap_min");
        std::fs::write(&path, "0\n").unwrap();
        assert_eq!(read_bound_uw(&path), Ok(None));
        std::fs::write(&path, "150000000\n").unwrap();
        assert_eq!(read_bound_uw(&path), Ok(Some(150_000_000)));
        assert_eq!(read_bound_uw(&root.path().join("absent")), Ok(None));
        assert_eq!(
            limit_bound_files("power1_cap"),
            Some((Some("power1_cap_min"), "power1_cap_max"))
        );
        assert_eq!(
            limit_bound_files("power1_max"),
            Some((None, "power1_rated_max"))
        );
        assert_eq!(limit_bound_files("power1_crit"), None);
    }
}
