//! The cgroup `gamesa exec --cores` puts its command in: created under a cgroup v2
//! directory, its `cpuset.cpus` following the cores the client's `cpu_cores` leases
//! hold, removed when the command ends.

use std::{
    io,
    path::{Path, PathBuf},
};

/// The command's own cgroup.
#[derive(Debug)]
pub struct CoreScope {
    dir: PathBuf,
    /// What `cpuset.cpus` holds now, as written.
    written: Option<String>,
}

impl CoreScope {
    /// Creates `root/name` with the cpuset controller enabled for it (`+cpuset` in the
    /// parent's `cgroup.subtree_control`). Nothing is in it yet ([`CoreScope::admit`]).
    pub fn create(root: &Path, name: &str) -> io::Result<CoreScope> {
        let control = root.join("cgroup.subtree_control");
        if !control.exists() {
            return Err(io::Error::other(format!(
                "{} is not a cgroup v2 directory (no cgroup.subtree_control)",
                root.display()
            )));
        }
        std::fs::write(&control, "+cpuset")
            .map_err(|error| with_path(error, "enabling cpuset in", &control))?;
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|error| with_path(error, "creating", &dir))?;
        Ok(CoreScope { dir, written: None })
    }

    /// Moves `pid` into the cgroup.
    pub fn admit(&self, pid: u32) -> io::Result<()> {
        let procs = self.procs();
        std::fs::write(&procs, format!("{pid}\n"))
            .map_err(|error| with_path(error, "moving the command into", &procs))
    }

    /// The cgroup's member list, which the command's trampoline waits to be in.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `cpuset.cpus` the given cores (any order); no cores is an empty cpuset,
    /// which cgroup v2 reads as the parent's. Writes only on a change; returns the
    /// list when it wrote one.
    pub fn follow(&mut self, cores: &[u32]) -> io::Result<Option<String>> {
        let list = cpu_list(cores);
        if self.written.as_deref() == Some(list.as_str()) {
            return Ok(None);
        }
        let file = self.dir.join("cpuset.cpus");
        std::fs::write(&file, &list).map_err(|error| with_path(error, "writing", &file))?;
        self.written = Some(list.clone());
        Ok(Some(list))
    }

    /// Removes the cgroup once the command has ended. A process the command left
    /// behind keeps it busy: that is an error, and the cgroup stays.
    pub fn remove(self) -> io::Result<()> {
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            // Not on cgroupfs (a fake tree in tests), the files written into it are
            // plain files. On cgroupfs this means the command left child cgroups: the
            // removals below fail as they should, and so does the second rmdir.
            Err(error) if error.kind() == io::ErrorKind::DirectoryNotEmpty => {
                for file in ["cgroup.procs", "cpuset.cpus"] {
                    let path = self.dir.join(file);
                    if path.is_file() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                std::fs::remove_dir(&self.dir)
                    .map_err(|error| with_path(error, "removing", &self.dir))
            }
            Err(error) => Err(with_path(error, "removing", &self.dir)),
        }
    }
}

fn with_path(error: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{doing} {}: {error}", path.display()))
}

/// `0-3,6,8-9`: the kernel's cpu list syntax, runs collapsed.
pub fn cpu_list(cores: &[u32]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut index = 0;
    while index < sorted.len() {
        let start = sorted[index];
        let mut end = start;
        while index + 1 < sorted.len() && end.checked_add(1) == Some(sorted[index + 1]) {
            index += 1;
            end = sorted[index];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        index += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cpu_lists_collapse_runs() {
        assert_eq!(cpu_list(&[]), "");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6, 9, 8, 8]), "0-3,6,8-9");
        assert_eq!(
            cpu_list(&[u32::MAX, u32::MAX - 1]),
            format!("{}-{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn a_scope_holds_the_command_follows_the_cores_and_goes_away() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        let mut scope = CoreScope::create(root.path(), "gamesa-exec-42").unwrap();
        scope.admit(4242).unwrap();
        let dir = scope.dir().to_owned();
        assert_eq!(
            std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
            "+cpuset"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
            "4242\n"
        );
        assert_eq!(scope.follow(&[2, 3]).unwrap().as_deref(), Some("2-3"));
        assert_eq!(
            scope.follow(&[3, 2]).unwrap(),
            None,
            "unchanged: not written"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap(),
            "2-3"
        );
        assert_eq!(scope.follow(&[]).unwrap().as_deref(), Some(""));
        scope.remove().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn a_directory_that_is_not_cgroup_v2_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let error = CoreScope::create(root.path(), "x").unwrap_err();
        assert!(error.to_string().contains("not a cgroup v2"), "{error}");
        assert!(!root.path().join("x").exists());
    }

    /// On the real hierarchy: the kernel pins the process to the cpuset written.
    #[test]
    #[ignore = "needs root and /sys/fs/cgroup as cgroup v2 with the cpuset controller \
                (this build machine has cgroup v1); run with --ignored where it does"]
    fn on_real_cgroup_v2_the_kernel_pins_the_command() {
        let mut child = std::process::Command::new("sleep")
            .arg("2")
            .spawn()
            .unwrap();
        let root = Path::new("/sys/fs/cgroup");
        let mut scope = CoreScope::create(root, &format!("gamesa-test-{}", child.id())).unwrap();
        scope.admit(child.id()).unwrap();
        scope.follow(&[0]).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let allowed = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned();
        child.kill().unwrap();
        child.wait().unwrap();
        scope.remove().unwrap();
        assert_eq!(allowed, "0");
    }
}
