//! Environment overrides: `GAMESA__SECTION__KEY=value` sets `[section] key = value`.

use super::ConfigError;

const PREFIX: &str = "GAMESA__";

/// Applies every `GAMESA__...` variable to `table`; returns each variable applied with
/// the key path it set.
///
/// The value is parsed as a TOML value (`100`, `true`, `["a", "b"]`) and taken as a
/// plain string when it does not parse. Path segments are lowercased. Variables are
/// applied in name order, so the result never depends on the environment's order.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    overrides.sort();
    let mut applied = Vec::with_capacity(overrides.len());
    for (variable, raw) in overrides {
        let path: Vec<String> = variable[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                variable,
                message: "expected GAMESA__SECTION__KEY".into(),
            });
        }
        let value = parse_value(&raw);
        set_path(table, &path, value).map_err(|message| ConfigError::Env {
            variable: variable.clone(),
            message,
        })?;
        applied.push((variable, path));
    }
    Ok(applied)
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut parsed| parsed.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut current = table;
    for segment in parents {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{segment}` is not a table"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_set_typed_values() {
        let mut table: toml::Table = "[runtime]\ntick_hz = 10\n".parse().unwrap();
        let applied = apply_env_overrides(
            &mut table,
            vars(&[
                ("GAMESA__RUNTIME__TICK_HZ", "100"),
                ("GAMESA__SENSORS__ROOT", "/tmp/fake"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(applied.len(), 2);
        assert_eq!(applied[0].1, ["runtime", "tick_hz"]);
        assert_eq!(table["runtime"]["tick_hz"].as_integer(), Some(100));
        assert_eq!(table["sensors"]["root"].as_str(), Some("/tmp/fake"));
    }

    #[test]
    fn malformed_variable_is_an_error() {
        let mut table = toml::Table::new();
        let err = apply_env_overrides(&mut table, vars(&[("GAMESA____X", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::Env { .. }));
    }
}
