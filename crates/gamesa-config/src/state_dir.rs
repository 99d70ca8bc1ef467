//! Where a relative file of the config (`telemetry.file`, `journal.file`) goes: under
//! the state directory, as systemd and the XDG base directory specification define it;
//! an absolute path is used as it is.
//!
//! The environment is passed in as a lookup, so resolution is pure and testable.

use std::path::{Path, PathBuf};

/// A relative path, and no state directory to put it under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} is relative and there is no state directory for it: set STATE_DIRECTORY, \
     XDG_STATE_HOME or HOME, or make the path absolute",
    file.display()
)]
pub struct NoStateDirectory {
    pub file: PathBuf,
}

/// The variables [`resolve_file`] reads, in the order it tries them.
pub const STATE_VARIABLES: [&str; 3] = ["STATE_DIRECTORY", "XDG_STATE_HOME", "HOME"];

/// `file` if it is absolute; otherwise `file` under the first of
///
/// 1. `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first of a `:` list),
/// 2. `$XDG_STATE_HOME/gamesa`,
/// 3. `$HOME/.local/state/gamesa`,
///
/// skipping a variable that is unset, empty or not an absolute path (the XDG
/// specification says to ignore relative ones). Nothing is created here.
pub fn resolve_file<'a>(
    file: &Path,
    var: impl Fn(&str) -> Option<&'a str>,
) -> Result<PathBuf, NoStateDirectory> {
    if file.is_absolute() {
        return Ok(file.to_owned());
    }
    state_directory(var)
        .map(|directory| directory.join(file))
        .ok_or_else(|| NoStateDirectory {
            file: file.to_owned(),
        })
}

/// The directory a relative trace file goes into, if the environment names one.
pub fn state_directory<'a>(var: impl Fn(&str) -> Option<&'a str>) -> Option<PathBuf> {
    let absolute = |value: &str| Some(PathBuf::from(value)).filter(|path| path.is_absolute());
    var("STATE_DIRECTORY")
        .and_then(|list| list.split(':').next())
        .and_then(absolute)
        .or_else(|| {
            var("XDG_STATE_HOME")
                .and_then(absolute)
                .map(|state| state.join("gamesa"))
        })
        .or_else(|| {
            var("HOME")
                .and_then(absolute)
                .map(|home| home.join(".local/state/gamesa"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: &str, env: &[(&'static str, &'static str)]) -> Option<PathBuf> {
        resolve_file(Path::new(file), |name| {
            env.iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| *value)
        })
        .ok()
    }

    const ALL: [(&str, &str); 3] = [
        ("STATE_DIRECTORY", "/var/lib/gamesa"),
        ("XDG_STATE_HOME", "/home/u/.state"),
        ("HOME", "/home/u"),
    ];

    #[test]
    fn an_absolute_path_is_used_as_it_is() {
        assert_eq!(
            resolve("/var/log/trace.jsonl", &[]),
            Some(PathBuf::from("/var/log/trace.jsonl"))
        );
    }

    #[test]
    fn systemds_state_directory_comes_first() {
        assert_eq!(
            resolve("trace.jsonl", &ALL),
            Some(PathBuf::from("/var/lib/gamesa/trace.jsonl"))
        );
        let listed = [("STATE_DIRECTORY", "/var/lib/gamesa:/var/lib/other")];
        assert_eq!(
            resolve("t/trace.jsonl", &listed),
            Some(PathBuf::from("/var/lib/gamesa/t/trace.jsonl"))
        );
    }

    #[test]
    fn then_xdg_state_home() {
        assert_eq!(
            resolve("trace.jsonl", &ALL[1..]),
            Some(PathBuf::from("/home/u/.state/gamesa/trace.jsonl"))
        );
    }

    #[test]
    fn then_home() {
        assert_eq!(
            resolve("trace.jsonl", &ALL[2..]),
            Some(PathBuf::from("/home/u/.local/state/gamesa/trace.jsonl"))
        );
    }

    #[test]
    fn empty_and_relative_values_are_skipped() {
        let env = [
            ("STATE_DIRECTORY", ""),
            ("XDG_STATE_HOME", "relative/state"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            resolve("trace.jsonl", &env),
            Some(PathBuf::from("/home/u/.local/state/gamesa/trace.jsonl"))
        );
    }

    #[test]
    fn without_any_a_relative_file_is_an_error_that_says_what_to_set() {
        let error = resolve_file(Path::new("trace.jsonl"), |_| None).unwrap_err();
        assert_eq!(
            error,
            NoStateDirectory {
                file: PathBuf::from("trace.jsonl")
            }
        );
        let message = error.to_string();
        for variable in STATE_VARIABLES {
            assert!(message.contains(variable), "{message}");
        }
    }
}
