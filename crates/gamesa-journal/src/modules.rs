//! The WASM modules a run loaded, kept in the journal by digest, so that replay runs
//! the bytes that ran even after a module was rebuilt in place or removed.
//!
//! # Invariants
//! - a copy is stored only while the file still has the digest config load pinned
//!   (`module_xxh3`); a file rebuilt since is not stored, and replay then reads the
//!   path, whose digest check refuses any module but the one that ran
//! - one row per digest: a module that many runs or reloads loaded is stored once
//! - a journal of schema version 1 has no copies; replay reads the paths, as before

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

/// `(digest, path)` of every WASM agent a journaled config names.
fn named_modules(config_text: &str) -> Vec<(String, PathBuf)> {
    let Ok(config) = config_text.parse::<toml::Table>() else {
        return Vec::new();
    };
    config
        .get("agents")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|agent| {
            let agent = agent.as_table()?;
            Some((
                agent.get("module_xxh3")?.as_str()?.to_owned(),
                PathBuf::from(agent.get("module")?.as_str()?),
            ))
        })
        .collect()
}

/// Stores a copy of every module `config_text` names that the journal lacks. A file
/// that cannot be read, or no longer has its pinned digest, is logged and skipped.
pub(crate) fn store(connection: &Connection, config_text: &str) -> rusqlite::Result<()> {
    for (digest, path) in named_modules(config_text) {
        let known: bool = connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM modules WHERE digest = ?1)",
            [&digest],
            |row| row.get(0),
        )?;
        if known {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) if gamesa_config::module_digest(&bytes) == digest => {
                connection.execute(
                    "INSERT INTO modules (digest, bytes) VALUES (?1, ?2)",
                    params![digest, bytes],
                )?;
            }
            Ok(_) => tracing::warn!(
                path = %path.display(),
                %digest,
                "the WASM module was rebuilt since config load: the journal keeps no copy, \
                 and a replay reads the file"
            ),
            Err(error) => tracing::warn!(
                path = %path.display(),
                %digest,
                %error,
                "cannot read the WASM module to keep a copy: a replay reads the file"
            ),
        }
    }
    Ok(())
}

/// The journal's copy of the module with `digest`, if it kept one.
fn load(connection: &Connection, digest: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    if !crate::schema::has_table(connection, "modules")? {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT bytes FROM modules WHERE digest = ?1",
            [digest],
            |row| row.get(0),
        )
        .optional()
}

/// The journal's module copies, written out for a replay into a directory that lives
/// as long as this value.
///
/// Each path a config named gets a copy of its own, so two configs name the same copy
/// exactly when they named the same file with the same digest: a reload that moved an
/// agent to another file of the same bytes still reads as a change, as it did to the
/// daemon.
#[derive(Debug, Default)]
pub(crate) struct ModuleCopies {
    dir: Option<tempfile::TempDir>,
    /// `(path named, digest)` → its copy.
    copies: std::collections::BTreeMap<(String, String), PathBuf>,
}

impl ModuleCopies {
    /// `config_text` with each WASM agent's `module` pointed at the journal's copy of
    /// the module it ran, where the journal kept one; unchanged where it did not.
    pub(crate) fn point(
        &mut self,
        connection: &Connection,
        config_text: &str,
    ) -> Result<String, String> {
        let mut config: toml::Table = config_text
            .parse()
            .map_err(|error: toml::de::Error| error.message().to_owned())?;
        let Some(agents) = config.get_mut("agents").and_then(toml::Value::as_array_mut) else {
            return Ok(config_text.to_owned());
        };
        let mut pointed = false;
        for agent in agents.iter_mut().filter_map(toml::Value::as_table_mut) {
            let (Some(digest), Some(named)) = (
                agent.get("module_xxh3").and_then(toml::Value::as_str),
                agent.get("module").and_then(toml::Value::as_str),
            ) else {
                continue;
            };
            let Some(bytes) = load(connection, digest)
                .map_err(|error| format!("its copy of module {digest}: {error}"))?
            else {
                continue;
            };
            let path = self.write(named, digest, &bytes)?;
            agent.insert(
                "module".into(),
                toml::Value::String(path.to_string_lossy().into_owned()),
            );
            pointed = true;
        }
        if !pointed {
            return Ok(config_text.to_owned());
        }
        toml::to_string(&config).map_err(|error| error.to_string())
    }

    /// Writes `bytes`, the module `named` ran, out as a copy of its own, once.
    fn write(&mut self, named: &str, digest: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let key = (named.to_owned(), digest.to_owned());
        if let Some(path) = self.copies.get(&key) {
            return Ok(path.clone());
        }
        if self.dir.is_none() {
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix("gamesa-replay-modules.")
                    .tempdir()
                    .map_err(|error| format!("cannot make a directory for its modules: {error}"))?,
            );
        }
        let Some(dir) = &self.dir else {
            return Err("no directory for its modules".to_owned());
        };
        let path = dir
            .path()
            .join(format!("{}-{digest}.wasm", self.copies.len()));
        std::fs::write(&path, bytes)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        self.copies.insert(key, path.clone());
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn journal() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE modules (digest TEXT PRIMARY KEY, bytes BLOB NOT NULL);")
            .unwrap();
        connection
    }

    fn config(module: &Path, digest: &str) -> String {
        format!(
            "[[agents]]\nkind = \"wasm\"\nid = \"w\"\nmodule = {:?}\nmodule_xxh3 = \"{digest}\"\n\
             [[agents]]\nkind = \"cpu\"\nid = \"c\"\n",
            module.display().to_string()
        )
    }

    #[test]
    fn a_copy_is_kept_once_and_replay_points_at_it_after_the_file_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("agent.wasm");
        std::fs::write(&module, b"the module that ran").unwrap();
        let digest = gamesa_config::module_digest(b"the module that ran");
        let journal = journal();
        let text = config(&module, &digest);
        store(&journal, &text).unwrap();
        store(&journal, &text).unwrap();
        let rows: i64 = journal
            .query_row("SELECT COUNT(*) FROM modules", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);

        std::fs::write(&module, b"rebuilt in place").unwrap();
        let mut copies = ModuleCopies::default();
        let pointed: toml::Table = copies.point(&journal, &text).unwrap().parse().unwrap();
        let agents = pointed["agents"].as_array().unwrap();
        let copy = PathBuf::from(agents[0]["module"].as_str().unwrap());
        assert_ne!(copy, module);
        assert_eq!(std::fs::read(&copy).unwrap(), b"the module that ran");
        assert_eq!(agents[1].get("module"), None, "other agents are left alone");
        // The same file again gets the same copy; another file of the same bytes, its own.
        let again: toml::Table = copies.point(&journal, &text).unwrap().parse().unwrap();
        assert_eq!(
            again["agents"][0]["module"].as_str(),
            Some(copy.to_str().unwrap())
        );
        let moved = config(&dir.path().join("moved.wasm"), &digest);
        let moved: toml::Table = copies.point(&journal, &moved).unwrap().parse().unwrap();
        assert_ne!(
            moved["agents"][0]["module"].as_str(),
            Some(copy.to_str().unwrap())
        );
        drop(copies);
        assert!(!copy.exists(), "the copies go with the replay");
    }

    #[test]
    fn a_file_rebuilt_before_it_was_kept_or_an_old_journal_leaves_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("agent.wasm");
        std::fs::write(&module, b"rebuilt before the journal read it").unwrap();
        let text = config(
            &module,
            &gamesa_config::module_digest(b"what config load read"),
        );
        let journal = journal();
        store(&journal, &text).unwrap();
        store(&journal, &config(&dir.path().join("missing.wasm"), "00")).unwrap();
        let rows: i64 = journal
            .query_row("SELECT COUNT(*) FROM modules", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        let mut copies = ModuleCopies::default();
        assert_eq!(copies.point(&journal, &text).unwrap(), text);
        let version_1 = Connection::open_in_memory().unwrap();
        assert_eq!(copies.point(&version_1, &text).unwrap(), text);
        assert_eq!(copies.point(&journal, "not toml [").map(|_| ()).ok(), None);
    }
}
