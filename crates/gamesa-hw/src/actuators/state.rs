//! The durable record of original values: a small JSON file, written atomically
//! before any knob is changed, so a crashed run can be reverted by the next one.
//!
//! # Invariants
//! - on disk, a target's record lists every knob changed for it (in write order) with
//!   the value it had before GAMESA first wrote it;
//! - the file is replaced atomically (temp file in the same directory, fsync, rename,
//!   fsync of the directory): a crash leaves the old file or the new one, never half;
//! - the in-memory records equal the file's after every successful call; a call whose
//!   save fails changes nothing in memory either;
//! - a file that cannot be understood is never deleted: it is renamed
//!   `<name>.corrupt-<n>` and reported.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::knob::Knob;
use crate::HwError;

/// The state file format version this code writes and reads.
const VERSION: u32 = 1;

/// One knob's value from before GAMESA touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Original {
    pub(crate) knob: Knob,
    /// The value exactly as read: a sysfs file's whole content, newline included.
    pub(crate) value: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// Target (as `Actuation::target` names it) to its originals, in write order.
    records: BTreeMap<String, Vec<Original>>,
}

/// The records, and the file that keeps them.
#[derive(Debug)]
pub(crate) struct StateStore {
    path: PathBuf,
    records: BTreeMap<String, Vec<Original>>,
}

impl StateStore {
    /// Loads the records. A missing file is an empty store (nothing is created until
    /// the first record); a corrupt one is moved aside, and the error saying where is
    /// returned with the empty store.
    pub(crate) fn open(path: &Path) -> Result<(StateStore, Option<HwError>), HwError> {
        let mut store = StateStore {
            path: path.to_path_buf(),
            records: BTreeMap::new(),
        };
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((store, None)),
            Err(err) => return Err(store.error(&err)),
        };
        let parsed = serde_json::from_slice::<StateFile>(&bytes)
            .map_err(|err| err.to_string())
            .and_then(|file| {
                if file.version == VERSION {
                    Ok(file.records)
                } else {
                    Err(format!(
                        "unknown version {} (expected {VERSION})",
                        file.version
                    ))
                }
            });
        match parsed {
            Ok(records) => {
                store.records = records;
                Ok((store, None))
            }
            Err(reason) => {
                let moved_to = store.quarantine()?;
                let err = HwError::CorruptState {
                    path: path.to_path_buf(),
                    moved_to,
                    reason,
                };
                tracing::error!(error = %err, "actuator state file corrupt: its originals cannot be restored automatically");
                Ok((store, Some(err)))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn record(&self, target: &str) -> Option<&[Original]> {
        self.records.get(target).map(Vec::as_slice)
    }

    pub(crate) fn targets(&self) -> Vec<String> {
        self.records.keys().cloned().collect()
    }

    /// Adds the originals of knobs not yet recorded for `target` and saves, before any
    /// of them is written. Knobs already recorded keep their first original.
    pub(crate) fn add(&mut self, target: &str, originals: Vec<Original>) -> Result<(), HwError> {
        let mut records = self.records.clone();
        let record = records.entry(target.to_string()).or_default();
        let before = record.len();
        for original in originals {
            if !record.iter().any(|kept| kept.knob == original.knob) {
                record.push(original);
            }
        }
        if record.len() == before && self.records.contains_key(target) {
            return Ok(());
        }
        self.replace(records)
    }

    /// Forgets `target`'s record and saves.
    pub(crate) fn remove(&mut self, target: &str) -> Result<(), HwError> {
        if !self.records.contains_key(target) {
            return Ok(());
        }
        let mut records = self.records.clone();
        records.remove(target);
        self.replace(records)
    }

    fn replace(&mut self, records: BTreeMap<String, Vec<Original>>) -> Result<(), HwError> {
        save(&self.path, &records)?;
        self.records = records;
        Ok(())
    }

    /// Renames the file `<name>.corrupt-<n>`, with the first `n` not taken.
    fn quarantine(&self) -> Result<PathBuf, HwError> {
        let name = self.path.file_name().map_or_else(
            || "state".into(),
            |name| name.to_string_lossy().into_owned(),
        );
        for n in 1..10_000u32 {
            let moved_to = self.path.with_file_name(format!("{name}.corrupt-{n}"));
            if moved_to.symlink_metadata().is_err() {
                fs::rename(&self.path, &moved_to).map_err(|err| self.error(&err))?;
                return Ok(moved_to);
            }
        }
        Err(HwError::State {
            path: self.path.clone(),
            reason: "no free name to move the corrupt file aside".into(),
        })
    }

    fn error(&self, err: &io::Error) -> HwError {
        HwError::State {
            path: self.path.clone(),
            reason: err.to_string(),
        }
    }
}

/// Writes the records durably: temp file in the same directory, fsync, rename over the
/// state file, fsync the directory.
fn save(path: &Path, records: &BTreeMap<String, Vec<Original>>) -> Result<(), HwError> {
    let error = |what: &str, err: io::Error| HwError::State {
        path: path.to_path_buf(),
        reason: format!("{what}: {err}"),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|err| error("create directory", err))?;
    let name = path.file_name().map_or_else(
        || "state".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let temp = dir.join(format!(".{name}.tmp"));
    let file = StateFile {
        version: VERSION,
        records: records.clone(),
    };
    let mut json = serde_json::to_vec_pretty(&file).map_err(|err| HwError::State {
        path: path.to_path_buf(),
        reason: format!("serialise: {err}"),
    })?;
    json.push(b'\n');
    let mut out = fs::File::create(&temp).map_err(|err| error("create temp file", err))?;
    out.write_all(&json)
        .and_then(|()| out.sync_all())
        .map_err(|err| error("write temp file", err))?;
    drop(out);
    fs::rename(&temp, path).map_err(|err| error("rename temp file", err))?;
    fs::File::open(&dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| error("sync directory", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(path: &str, value: &str) -> Original {
        Original {
            knob: Knob::Sysfs {
                path: PathBuf::from(path),
            },
            value: value.into(),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_keep_the_first_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let (mut store, corrupt) = StateStore::open(&path).unwrap();
        assert_eq!(corrupt, None);
        assert!(!path.exists(), "nothing is written before the first record");
        store
            .add("cpufreq.max:0", vec![original("/a", "3000000\n")])
            .unwrap();
        store
            .add(
                "cpufreq.max:0",
                vec![original("/a", "2000000\n"), original("/b", "x")],
            )
            .unwrap();
        let (reopened, _) = StateStore::open(&path).unwrap();
        assert_eq!(
            reopened.record("cpufreq.max:0").unwrap(),
            [original("/a", "3000000\n"), original("/b", "x")]
        );
        assert!(!dir.path().join("sub/.state.json.tmp").exists());
    }

    #[test]
    fn removing_the_last_record_leaves_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (mut store, _) = StateStore::open(&path).unwrap();
        store.add("t", vec![original("/a", "1")]).unwrap();
        store.remove("t").unwrap();
        let (reopened, _) = StateStore::open(&path).unwrap();
        assert!(reopened.targets().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_under_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(dir.path().join("state.json.corrupt-1"), "older").unwrap();
        fs::write(&path, "{ not json").unwrap();
        let (store, corrupt) = StateStore::open(&path).unwrap();
        assert!(store.targets().is_empty());
        let moved_to = dir.path().join("state.json.corrupt-2");
        assert!(
            matches!(&corrupt, Some(HwError::CorruptState { moved_to: m, .. }) if *m == moved_to),
            "{corrupt:?}"
        );
        assert_eq!(fs::read_to_string(&moved_to).unwrap(), "{ not json");
        assert_eq!(
            fs::read_to_string(dir.path().join("state.json.corrupt-1")).unwrap(),
            "older"
        );
        assert!(!path.exists());
    }

    #[test]
    fn an_unknown_version_is_corrupt_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, r#"{"version": 7, "records": {}}"#).unwrap();
        let (_, corrupt) = StateStore::open(&path).unwrap();
        let Some(HwError::CorruptState { reason, .. }) = corrupt else {
            panic!("expected a corrupt state report");
        };
        assert!(reason.contains("unknown version 7"), "{reason}");
    }

    #[test]
    fn an_unreadable_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::create_dir(&path).unwrap();
        assert!(matches!(
            StateStore::open(&path),
            Err(HwError::State { path: p, .. }) if p == path
        ));
    }

    #[test]
    fn a_failed_save_changes_nothing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocker/state.json");
        let (mut store, _) = StateStore::open(&path).unwrap();
        // The state file's directory is now a regular file: nothing can be saved.
        fs::write(dir.path().join("blocker"), "").unwrap();
        assert!(matches!(
            store.add("t", vec![original("/a", "1")]),
            Err(HwError::State { .. })
        ));
        assert!(store.record("t").is_none());
    }
}
