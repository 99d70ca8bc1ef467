//! Where a relative file of the config goes: state (`telemetry.file`, `journal.file`,
//! `actuators.state_file`) under the state directory, the ingress socket under the
//! runtime directory, as systemd and the XDG base directory specification define them;
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
    first_directory(
        &var,
        [
            ("STATE_DIRECTORY", ""),
            ("XDG_STATE_HOME", "gamesa"),
            ("HOME", ".local/state/gamesa"),
        ],
    )
}

/// The directory the daemon's socket goes into: `$RUNTIME_DIRECTORY` (systemd's
/// `RuntimeDirectory=`), then `$XDG_RUNTIME_DIR/gamesa`, then `/run/gamesa`.
pub fn runtime_directory<'a>(var: impl Fn(&str) -> Option<&'a str>) -> PathBuf {
    first_directory(
        &var,
        [("RUNTIME_DIRECTORY", ""), ("XDG_RUNTIME_DIR", "gamesa")],
    )
    .unwrap_or_else(|| PathBuf::from(SYSTEM_RUNTIME_DIRECTORY))
}

/// The first `(variable, below)` whose variable is set to an absolute path, joined with
/// `below`; of a `:` list (as systemd sets its directories), the first entry.
fn first_directory<'a, const N: usize>(
    var: &impl Fn(&str) -> Option<&'a str>,
    candidates: [(&str, &str); N],
) -> Option<PathBuf> {
    candidates.into_iter().find_map(|(variable, below)| {
        let value = var(variable)?.split(':').next()?;
        let path = PathBuf::from(value);
        match below {
            _ if !path.is_absolute() => None,
            "" => Some(path),
            below => Some(path.join(below)),
        }
    })
}

/// The runtime directory of the packaged service (`RuntimeDirectory=gamesa`).
pub const SYSTEM_RUNTIME_DIRECTORY: &str = "/run/gamesa";

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
    fn the_socket_goes_to_systemds_runtime_directory_then_xdg_then_run() {
        let lookup = |env: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                env.iter()
                    .find(|(variable, _)| *variable == name)
                    .map(|(_, value)| *value)
            }
        };
        let both = &[
            ("RUNTIME_DIRECTORY", "/run/gamesa-unit"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ];
        assert_eq!(
            runtime_directory(lookup(both)),
            PathBuf::from("/run/gamesa-unit")
        );
        assert_eq!(
            runtime_directory(lookup(&both[1..])),
            PathBuf::from("/run/user/1000/gamesa")
        );
        assert_eq!(
            runtime_directory(lookup(&[("XDG_RUNTIME_DIR", "relative")])),
            PathBuf::from("/run/gamesa")
        );
    }

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
