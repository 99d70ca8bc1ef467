//! Where the config comes from: the system file or the built-in defaults, drop-ins,
//! `--config`, then `GAMESA__` variables, merged key by key, with the layer that set
//! each key kept for `check-config`.
//!
//! # Invariants
//! - layers merge in a fixed order (drop-ins by file name), never in directory order
//! - a table merges key by key; any other value (arrays included) replaces the lower one
//! - every key a layer set has exactly one origin: the last layer that set it or a table
//!   above it

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use super::{ConfigError, env};

/// The directory a packaged GAMESA reads: `gamesa.toml` and `gamesa.d/*.toml`.
pub const SYSTEM_DIR: &str = "/etc/gamesa";

/// The main file under a config directory.
pub const MAIN_FILE: &str = "gamesa.toml";

/// The drop-in directory under a config directory.
pub const DROP_IN_DIR: &str = "gamesa.d";

/// What to read, lowest layer first:
///
/// 1. `dir/gamesa.toml`, or `builtin` when that file does not exist;
/// 2. `dir/gamesa.d/*.toml`, in file-name order;
/// 3. `file` (`--config`);
/// 4. `GAMESA__SECTION__KEY` variables.
///
/// With `dir` unset, layers 1 and 2 are skipped: `gamesa run --config FILE` means that
/// file (and the environment), whatever `/etc` holds on the machine it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSources {
    pub builtin: Option<&'static str>,
    pub dir: Option<PathBuf>,
    pub file: Option<PathBuf>,
}

impl ConfigSources {
    /// One file and the environment.
    pub fn file(path: impl Into<PathBuf>) -> ConfigSources {
        ConfigSources {
            file: Some(path.into()),
            ..ConfigSources::default()
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Not set anywhere: the key's default.
    Default,
    /// The built-in defaults (no `gamesa.toml` in the config directory).
    Builtin,
    File(PathBuf),
    /// A `GAMESA__` variable, by name.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Builtin => f.write_str("built-in defaults"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(variable) => write!(f, "${variable}"),
        }
    }
}

/// Which layer set each key, by dotted path (`guardian.cap_mw`, `agents`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    set: BTreeMap<String, Origin>,
}

impl Provenance {
    /// The layer that set `key`, or a table above it; [`Origin::Default`] when none did.
    pub fn origin(&self, key: &str) -> &Origin {
        let mut path = key;
        loop {
            if let Some(origin) = self.set.get(path) {
                return origin;
            }
            // `agents[2].kind` is in `agents[2]`, which is in `agents`.
            let cut = match path.strip_suffix(']') {
                Some(indexed) => indexed.rfind('['),
                None => path.rfind('.'),
            };
            match cut {
                Some(at) => path = &path[..at],
                None => return &Origin::Default,
            }
        }
    }

    /// The directory of the file that set `key`: where a relative path in it is from.
    pub fn base_dir(&self, key: &str) -> Option<&Path> {
        match self.origin(key) {
            Origin::File(path) => Some(path.parent().unwrap_or(Path::new("."))),
            _ => None,
        }
    }

    fn record(&mut self, key: String, origin: &Origin) {
        self.forget(&key);
        self.set.insert(key, origin.clone());
    }

    /// Drops what was recorded at and below `key`, which a new value replaces.
    fn forget(&mut self, key: &str) {
        let below = format!("{key}.");
        self.set
            .retain(|path, _| path != key && !path.starts_with(&below));
    }
}

/// The merged table, the files read, and where each key came from.
#[derive(Debug, Clone, Default)]
pub struct Layered {
    pub table: toml::Table,
    /// Every layer that contributed, lowest first.
    pub layers: Vec<Origin>,
    pub provenance: Provenance,
    /// The only layer's text, when exactly one file and no variable made the table:
    /// parsing it again gives errors with line and column.
    pub(crate) sole_text: Option<(String, PathBuf)>,
}

impl Layered {
    /// Reads and merges every layer of `sources`.
    pub fn read(
        sources: &ConfigSources,
        env_vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Layered, ConfigError> {
        let mut texts: Vec<(Origin, String)> = Vec::new();
        if let Some(dir) = &sources.dir {
            let main = dir.join(MAIN_FILE);
            match read_if_present(&main)? {
                Some(text) => texts.push((Origin::File(main), text)),
                None => {
                    if let Some(builtin) = sources.builtin {
                        texts.push((Origin::Builtin, builtin.to_owned()));
                    }
                }
            }
            for path in drop_ins(&dir.join(DROP_IN_DIR))? {
                let text = read(&path)?;
                texts.push((Origin::File(path), text));
            }
        }
        if let Some(file) = &sources.file {
            texts.push((Origin::File(file.clone()), read(file)?));
        }
        if texts.is_empty() {
            let wanted = sources
                .dir
                .as_deref()
                .unwrap_or(Path::new(SYSTEM_DIR))
                .join(MAIN_FILE);
            return Err(ConfigError::Read {
                path: wanted,
                reason: "no config: the file does not exist and no --config was given".into(),
            });
        }
        Layered::merge_texts(texts, env_vars)
    }

    /// One text standing for a file at `path`, and the environment.
    pub fn text(
        text: &str,
        path: &Path,
        env_vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Layered, ConfigError> {
        Layered::merge_texts(
            vec![(Origin::File(path.to_owned()), text.to_owned())],
            env_vars,
        )
    }

    fn merge_texts(
        texts: Vec<(Origin, String)>,
        env_vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Layered, ConfigError> {
        let mut layered = Layered::default();
        let sole = texts.len() == 1;
        for (origin, text) in texts {
            let table: toml::Table =
                text.parse()
                    .map_err(|error: toml::de::Error| ConfigError::Syntax {
                        path: origin_path(&origin),
                        message: error.to_string().trim_end().to_owned(),
                    })?;
            merge(
                &mut layered.table,
                table,
                "",
                &origin,
                &mut layered.provenance,
            );
            if sole {
                layered.sole_text = Some((text, origin_path(&origin)));
            }
            layered.layers.push(origin);
        }
        for (variable, path) in env::apply_env_overrides(&mut layered.table, env_vars)? {
            layered.sole_text = None;
            let origin = Origin::Env(variable);
            layered.provenance.record(path.join("."), &origin);
            layered.layers.push(origin);
        }
        Ok(layered)
    }

    /// The file errors about `key` should name: the one that set it, else the last file.
    pub fn path_for(&self, key: &str) -> PathBuf {
        match self.provenance.origin(key) {
            Origin::File(path) => path.clone(),
            Origin::Builtin => origin_path(&Origin::Builtin),
            _ => self
                .layers
                .iter()
                .rev()
                .find_map(|origin| match origin {
                    Origin::File(path) => Some(path.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| origin_path(&Origin::Builtin)),
        }
    }

    /// The layers in words: `/etc/gamesa/gamesa.toml + 2 drop-ins + $GAMESA__X`.
    pub fn describe(&self) -> String {
        self.layers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn origin_path(origin: &Origin) -> PathBuf {
    match origin {
        Origin::File(path) => path.clone(),
        other => PathBuf::from(format!("<{other}>")),
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn read_if_present(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ConfigError::Read {
            path: path.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// The `*.toml` files of a drop-in directory by name; none when it does not exist.
/// Other files (an editor's `~` backup, a `.dpkg-old`) are left alone, as systemd does.
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ConfigError::Read {
                path: dir.to_owned(),
                reason: error.to_string(),
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| ConfigError::Read {
            path: dir.to_owned(),
            reason: error.to_string(),
        })?;
        let path = entry.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Merges `upper` into `lower`: tables key by key, anything else replaced.
fn merge(
    lower: &mut toml::Table,
    upper: toml::Table,
    prefix: &str,
    origin: &Origin,
    provenance: &mut Provenance,
) {
    for (key, value) in upper {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (lower.get_mut(&key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => {
                merge(below, above, &path, origin, provenance);
            }
            (_, toml::Value::Table(above)) => {
                // A new table: its keys are recorded one by one, so a key none of the
                // layers set still reads as a default.
                provenance.forget(&path);
                let mut table = toml::Table::new();
                merge(&mut table, above, &path, origin, provenance);
                lower.insert(key, toml::Value::Table(table));
            }
            (_, value) => {
                provenance.record(path, origin);
                lower.insert(key, value);
            }
        }
    }
}

/// Every leaf of `table` (arrays are leaves) with its dotted path as
/// [`Provenance::origin`] takes it (keys joined as they are, unquoted), in key order.
pub fn leaves(table: &toml::Table) -> Vec<(String, &toml::Value)> {
    fn walk<'a>(table: &'a toml::Table, prefix: &str, out: &mut Vec<(String, &'a toml::Value)>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(inner, &path, out),
                leaf => out.push((path, leaf)),
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn drop_ins_merge_in_name_order_over_the_main_file_and_under_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "gamesa.toml",
            "[runtime]\ntick_hz = 10\nseed = 1\n[guardian]\ncap_mw = 100\n",
        );
        let late = write(dir.path(), "gamesa.d/20-late.toml", "[runtime]\nseed = 3\n");
        let early = write(
            dir.path(),
            "gamesa.d/10-early.toml",
            "[runtime]\nseed = 2\ntick_hz = 20\n",
        );
        write(
            dir.path(),
            "gamesa.d/30-ignored.toml~",
            "[runtime]\nseed = 9\n",
        );
        let layered = Layered::read(
            &ConfigSources {
                dir: Some(dir.path().to_owned()),
                ..ConfigSources::default()
            },
            vars(&[("GAMESA__GUARDIAN__CAP_MW", "200")]),
        )
        .unwrap();
        assert_eq!(layered.table["runtime"]["seed"].as_integer(), Some(3));
        assert_eq!(layered.table["runtime"]["tick_hz"].as_integer(), Some(20));
        assert_eq!(layered.table["guardian"]["cap_mw"].as_integer(), Some(200));
        let origin = |key: &str| layered.provenance.origin(key).clone();
        assert_eq!(origin("runtime.seed"), Origin::File(late.clone()));
        assert_eq!(origin("runtime.tick_hz"), Origin::File(early.clone()));
        assert_eq!(
            origin("guardian.cap_mw"),
            Origin::Env("GAMESA__GUARDIAN__CAP_MW".into())
        );
        assert_eq!(origin("runtime.epoch_ticks"), Origin::Default);
        assert_eq!(
            layered.layers,
            vec![
                Origin::File(main),
                Origin::File(early),
                Origin::File(late),
                Origin::Env("GAMESA__GUARDIAN__CAP_MW".into())
            ]
        );
    }

    #[test]
    fn arrays_are_replaced_whole_and_tables_merged() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gamesa.toml",
            "[[agents]]\nkind = \"cpu\"\nid = \"cpu\"\n[[agents]]\nkind = \"gpu\"\nid = \"gpu0\"\n\
             [guardian.limits.\"power.limit:cpu\"]\nmin = 1\nmax = 2\n",
        );
        let drop_in = write(
            dir.path(),
            "gamesa.d/agents.toml",
            "[[agents]]\nkind = \"power\"\nid = \"power\"\n\
             [guardian.limits.\"power.limit:cpu\"]\nmax = 5\n",
        );
        let layered = Layered::read(
            &ConfigSources {
                dir: Some(dir.path().to_owned()),
                ..ConfigSources::default()
            },
            Vec::new(),
        )
        .unwrap();
        let agents = layered.table["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 1);
        let limit = &layered.table["guardian"]["limits"]["power.limit:cpu"];
        assert_eq!(limit["min"].as_integer(), Some(1));
        assert_eq!(limit["max"].as_integer(), Some(5));
        assert_eq!(
            layered.provenance.origin("agents[0].kind"),
            &Origin::File(drop_in.clone())
        );
    }

    #[test]
    fn builtin_defaults_stand_in_for_a_missing_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let sources = ConfigSources {
            builtin: Some("[runtime]\ntick_hz = 5\n"),
            dir: Some(dir.path().to_owned()),
            file: None,
        };
        let layered = Layered::read(&sources, Vec::new()).unwrap();
        assert_eq!(layered.table["runtime"]["tick_hz"].as_integer(), Some(5));
        assert_eq!(
            layered.provenance.origin("runtime.tick_hz"),
            &Origin::Builtin
        );
        let none = ConfigSources {
            builtin: None,
            ..sources
        };
        let error = Layered::read(&none, Vec::new()).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    }

    #[test]
    fn a_config_file_alone_skips_the_system_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "mine.toml", "[runtime]\ntick_hz = 7\n");
        let layered = Layered::read(&ConfigSources::file(&file), Vec::new()).unwrap();
        assert_eq!(layered.layers, vec![Origin::File(file.clone())]);
        assert!(layered.sole_text.is_some());
        assert_eq!(
            layered.provenance.base_dir("runtime.tick_hz"),
            Some(dir.path())
        );
    }

    #[test]
    fn a_bad_drop_in_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gamesa.toml", "[runtime]\n");
        let bad = write(dir.path(), "gamesa.d/50-bad.toml", "[runtime\n");
        let error = Layered::read(
            &ConfigSources {
                dir: Some(dir.path().to_owned()),
                ..ConfigSources::default()
            },
            Vec::new(),
        )
        .unwrap_err();
        match error {
            ConfigError::Syntax { path, .. } => assert_eq!(path, bad),
            other => panic!("{other}"),
        }
    }
}
