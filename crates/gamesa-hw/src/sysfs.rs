//! Reading and writing the small text files of sysfs and procfs, with typed errors that
//! name the file and what it held.
//!
//! # Invariants
//! - a read never panics and never turns bad content into a zero: it returns
//!   [`HwError::Read`] (the file could not be read) or [`HwError::Parse`] (it held
//!   something else than expected, quoted in the error);
//! - a write is one `write` call of the whole value, to a file that must already exist
//!   (sysfs attributes are never created).

use std::{
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use crate::HwError;

/// How much of a bad file's content an error quotes.
const QUOTE_LIMIT: usize = 80;

/// Reads a whole file as UTF-8 text, exactly as it is (trailing newline included).
pub(crate) fn read_text(path: &Path) -> Result<String, HwError> {
    let bytes = fs::read(path).map_err(|err| read_error(path, &err))?;
    String::from_utf8(bytes).map_err(|err| HwError::Parse {
        path: path.to_path_buf(),
        content: quote(&String::from_utf8_lossy(err.as_bytes())),
        expected: "UTF-8 text",
    })
}

/// Like [`read_text`], but a file that does not exist is `Ok(None)`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, HwError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|err| HwError::Parse {
                path: path.to_path_buf(),
                content: quote(&String::from_utf8_lossy(err.as_bytes())),
                expected: "UTF-8 text",
            }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(read_error(path, &err)),
    }
}

/// Reads a small file (an attribute) and hands its text to `parse`, without a heap
/// allocation when it fits the stack buffer, as sysfs attributes do. This is the
/// per-sample read path.
pub(crate) fn with_text<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, HwError>,
) -> Result<T, HwError> {
    let mut file = fs::File::open(path).map_err(|err| read_error(path, &err))?;
    let mut buf = [0u8; 256];
    let mut len = 0;
    loop {
        if len == buf.len() {
            let mut bytes = buf.to_vec();
            file.read_to_end(&mut bytes)
                .map_err(|err| read_error(path, &err))?;
            return parse(utf8(path, &bytes)?);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_error(path, &err)),
        }
    }
    parse(utf8(path, &buf[..len])?)
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, HwError> {
    std::str::from_utf8(bytes).map_err(|_| HwError::Parse {
        path: path.to_path_buf(),
        content: quote(&String::from_utf8_lossy(bytes)),
        expected: "UTF-8 text",
    })
}

/// Reads a file holding one unsigned integer.
pub(crate) fn read_u64(path: &Path) -> Result<u64, HwError> {
    with_text(path, |text| parse_u64(path, text))
}

/// Like [`read_u64`], but a file that does not exist is `Ok(None)`.
pub(crate) fn read_optional_u64(path: &Path) -> Result<Option<u64>, HwError> {
    read_optional(path)?
        .map(|text| parse_u64(path, &text))
        .transpose()
}

pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, HwError> {
    text.trim()
        .parse()
        .map_err(|_| parse_error(path, text, "an unsigned integer"))
}

pub(crate) fn parse_i64(path: &Path, text: &str) -> Result<i64, HwError> {
    text.trim()
        .parse()
        .map_err(|_| parse_error(path, text, "an integer"))
}

pub(crate) fn parse_error(path: &Path, text: &str, expected: &'static str) -> HwError {
    HwError::Parse {
        path: path.to_path_buf(),
        content: quote(text),
        expected,
    }
}

/// Writes `value` to an existing attribute file in a single `write` call.
pub(crate) fn write_text(path: &Path, value: &str) -> Result<(), HwError> {
    let write_error = |err: io::Error| HwError::Write {
        path: path.to_path_buf(),
        value: quote(value),
        reason: err.to_string(),
    };
    #[cfg(test)]
    if let Some(err) = fault::injected(path) {
        return Err(write_error(err));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(value.as_bytes()).map_err(write_error)
}

/// The entries of `dir` whose name starts with `prefix` and continues with what
/// `rest_ok` accepts, sorted by the number they end with (`hwmon2` before `hwmon10`).
/// A directory that does not exist or cannot be listed has no entries.
pub(crate) fn entries_with_prefix(
    dir: &Path,
    prefix: &str,
    rest_ok: impl Fn(&str) -> bool,
) -> Vec<(String, PathBuf)> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(String, PathBuf)> = listing
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix(prefix)?;
            rest_ok(rest).then(|| (name.clone(), entry.path()))
        })
        .collect();
    entries.sort_by_key(|(name, _)| natural_key(name));
    entries
}

/// `true` for a non-empty string of ASCII digits.
pub(crate) fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Splits a name into text and numbers so that `zone2` sorts before `zone10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut number: Option<u64> = None;
    for ch in name.chars() {
        if let Some(digit) = ch.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(u64::from(digit)),
            );
        } else {
            if let Some(value) = number.take() {
                key.push((std::mem::take(&mut text), value));
            }
            text.push(ch);
        }
    }
    key.push((text, number.unwrap_or(0)));
    key
}

fn read_error(path: &Path, err: &io::Error) -> HwError {
    HwError::Read {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// The content as an error quotes it: trimmed, and cut at [`QUOTE_LIMIT`] characters.
fn quote(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

/// Test-only write faults: as root, file modes cannot make a write fail, so tests name
/// the paths whose next writes must fail with "permission denied".
#[cfg(test)]
pub(crate) mod fault {
    use std::{
        cell::RefCell,
        io,
        path::{Path, PathBuf},
    };

    thread_local! {
        static FAILING: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    /// Every later write to `path` on this thread fails with "permission denied".
    pub(crate) fn fail_writes_to(path: &Path) {
        FAILING.with(|failing| failing.borrow_mut().push(path.to_path_buf()));
    }

    /// Writes to every path succeed again.
    pub(crate) fn clear() {
        FAILING.with(|failing| failing.borrow_mut().clear());
    }

    pub(super) fn injected(path: &Path) -> Option<io::Error> {
        FAILING.with(|failing| {
            failing
                .borrow()
                .iter()
                .any(|failing| failing == path)
                .then(|| io::Error::from(io::ErrorKind::PermissionDenied))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_integer_names_the_file_and_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        fs::write(&path, "abc\n").unwrap();
        assert_eq!(
            read_u64(&path),
            Err(HwError::Parse {
                path: path.clone(),
                content: "abc".into(),
                expected: "an unsigned integer",
            })
        );
    }

    #[test]
    fn invalid_utf8_is_a_parse_error_quoting_the_bytes_lossily() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("name");
        fs::write(&path, [0xff, 0xfe, b'x']).unwrap();
        assert_eq!(
            read_text(&path),
            Err(HwError::Parse {
                path: path.clone(),
                content: "\u{fffd}\u{fffd}x".into(),
                expected: "UTF-8 text",
            })
        );
    }

    #[test]
    fn a_directory_where_a_file_is_expected_is_a_read_error() {
        // As root, chmod 000 does not stop a read; a directory in place of the file does.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy_uj");
        fs::create_dir(&path).unwrap();
        assert!(matches!(read_u64(&path), Err(HwError::Read { path: p, .. }) if p == path));
        assert!(matches!(read_optional(&path), Err(HwError::Read { .. })));
    }

    #[test]
    fn a_missing_optional_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_optional_u64(&dir.path().join("absent")), Ok(None));
        assert!(matches!(
            read_u64(&dir.path().join("absent")),
            Err(HwError::Read { .. })
        ));
    }

    #[test]
    fn long_garbage_is_quoted_shortened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        fs::write(&path, "x".repeat(500)).unwrap();
        let Err(HwError::Parse { content, .. }) = read_u64(&path) else {
            panic!("expected a parse error");
        };
        assert_eq!(content.chars().count(), QUOTE_LIMIT + 1);
    }

    #[test]
    fn attributes_longer_than_the_stack_buffer_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long");
        let text = format!("{}7\n", "0".repeat(1000));
        fs::write(&path, &text).unwrap();
        assert_eq!(read_u64(&path), Ok(7));
        assert_eq!(with_text(&path, |t| Ok(t.len())), Ok(text.len()));
    }

    #[test]
    fn writes_never_create_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scaling_max_freq");
        assert!(matches!(
            write_text(&path, "1000"),
            Err(HwError::Write { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn entries_sort_by_their_number() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["hwmon10", "hwmon2", "hwmon1", "other", "hwmonx"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        let names: Vec<String> = entries_with_prefix(dir.path(), "hwmon", is_number)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["hwmon1", "hwmon2", "hwmon10"]);
    }
}
