//! The JSON-lines file's writer: whole lines appended to `FILE`, which is rotated to
//! `FILE.1` … `FILE.<keep>` before a line would take it past its size limit.
//!
//! It runs wherever the file is written (the span export thread and the metric reader,
//! one at a time behind the file's lock), never on the tick.
//!
//! # Invariants
//! - a line is never split: it goes whole into the file that is current when it is
//!   written, and each new file starts with the header (the resource line)
//! - no line is lost to a rotation: a rotation that fails is counted and logged, the
//!   lines go on into the current file, and the next attempt waits until that file has
//!   grown by another size limit
//! - only a regular file is rotated (`/dev/null` or a pipe is written to as it is)

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use super::queue::ExportStats;

/// When the file is rotated, and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRotation {
    /// A line that would take the file past this many bytes goes into a fresh file.
    pub max_bytes: u64,
    /// Rotated files kept, `FILE.1` (the newest) to `FILE.<keep>`; at least 1.
    pub keep: u32,
}

/// A rotation that could not be completed; the current file stays in use.
#[derive(Debug, thiserror::Error)]
enum RotateError {
    #[error("flushing {path}: {source}")]
    Flush { path: PathBuf, source: io::Error },
    #[error("removing {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("renaming {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("opening a new {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
}

/// Appends lines to one file and rotates it.
#[derive(Debug)]
pub struct RotatingWriter {
    path: PathBuf,
    /// `None` when the path is not a regular file.
    rotation: Option<FileRotation>,
    /// The first line of every file, `\n` included.
    header: Vec<u8>,
    writer: BufWriter<File>,
    /// Bytes in the current file, buffered ones included.
    len: u64,
    /// The current file holds its header and nothing else.
    fresh: bool,
    /// After a failed rotation: the length the file must reach before the next try.
    retry_at: u64,
    stats: Arc<ExportStats>,
    /// Scratch space for one serialised line.
    line: Vec<u8>,
}

impl RotatingWriter {
    /// Opens `path` for appending (creating the file, not its directory) and writes
    /// `header` as its first line, rotating first when the file is already full.
    pub fn open(
        path: &Path,
        rotation: FileRotation,
        header: &[u8],
        stats: Arc<ExportStats>,
    ) -> io::Result<RotatingWriter> {
        let file = open_append(path)?;
        let metadata = file.metadata()?;
        let mut header = header.to_vec();
        header.push(b'\n');
        let mut writer = RotatingWriter {
            path: path.to_owned(),
            rotation: metadata.is_file().then_some(FileRotation {
                max_bytes: rotation.max_bytes.max(1),
                keep: rotation.keep.max(1),
            }),
            header,
            writer: BufWriter::new(file),
            len: metadata.len(),
            fresh: false,
            retry_at: 0,
            stats,
            line: Vec::new(),
        };
        let empty = writer.len == 0;
        if !(writer.due(writer.header.len()) && writer.try_rotate()) {
            writer.write_header()?;
            writer.fresh = empty;
        }
        Ok(writer)
    }

    /// Writes `value` as one JSON line (not yet flushed).
    pub fn write_json(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let result = serde_json::to_writer(&mut line, value)
            .map_err(io::Error::from)
            .and_then(|()| self.write_line(&line));
        self.line = line;
        result
    }

    /// Writes `line` and a `\n` (not yet flushed), rotating first when it would not fit.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.due(line.len() + 1) {
            self.try_rotate();
        }
        self.writer.write_all(line)?;
        self.writer.write_all(b"\n")?;
        self.len += line.len() as u64 + 1;
        self.fresh = false;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Whether `bytes` more would take a file with more than its header past the limit.
    fn due(&self, bytes: usize) -> bool {
        self.rotation.is_some_and(|rotation| {
            !self.fresh
                && self.len >= self.retry_at
                && self.len.saturating_add(bytes as u64) > rotation.max_bytes
        })
    }

    /// Rotates; on failure counts and logs it and keeps the current file.
    fn try_rotate(&mut self) -> bool {
        match self.rotate() {
            Ok(()) => {
                self.stats.count_rotation();
                true
            }
            Err(error) => {
                self.stats.count_failed_rotation();
                let max_bytes = self.rotation.map_or(0, |rotation| rotation.max_bytes);
                self.retry_at = self.len.saturating_add(max_bytes);
                tracing::warn!(
                    target: "gamesa_telemetry",
                    file = %self.path.display(),
                    %error,
                    failed_rotations = self.stats.failed_rotations(),
                    "could not rotate the trace file; lines go on into the current one"
                );
                false
            }
        }
    }

    fn rotate(&mut self) -> Result<(), RotateError> {
        let Some(rotation) = self.rotation else {
            return Ok(());
        };
        self.writer.flush().map_err(|source| RotateError::Flush {
            path: self.path.clone(),
            source,
        })?;
        remove_beyond(&self.path, rotation.keep)?;
        shift(&self.path, rotation.keep)?;
        // Until this succeeds the old handle writes on, into what is now `FILE.1`.
        let file = open_append(&self.path).map_err(|source| RotateError::Open {
            path: self.path.clone(),
            source,
        })?;
        self.writer = BufWriter::new(file);
        self.len = 0;
        self.retry_at = 0;
        // A header that cannot be written fails the next line's write the same way.
        let _ = self.write_header();
        self.fresh = true;
        Ok(())
    }

    fn write_header(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.header)?;
        self.len += self.header.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `FILE.<n>`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Deletes `FILE.<keep+1>`, `FILE.<keep+2>`, … (left by a larger `keep`) up to the
/// first that is missing.
fn remove_beyond(path: &Path, keep: u32) -> Result<(), RotateError> {
    for n in keep.saturating_add(1).. {
        let stale = rotated_path(path, n);
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(RotateError::Remove {
                    path: stale,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// `FILE.<keep-1>` → `FILE.<keep>` (replacing the oldest), …, `FILE` → `FILE.1`.
/// A file that is missing is skipped.
fn shift(path: &Path, keep: u32) -> Result<(), RotateError> {
    for n in (0..keep).rev() {
        let from = match n {
            0 => path.to_owned(),
            n => rotated_path(path, n),
        };
        let to = rotated_path(path, n + 1);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(RotateError::Rename { from, to, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = br#"{"type":"resource"}"#;

    fn writer(path: &Path, max_bytes: u64, keep: u32) -> (RotatingWriter, Arc<ExportStats>) {
        let stats = Arc::new(ExportStats::default());
        let rotation = FileRotation { max_bytes, keep };
        let writer = RotatingWriter::open(path, rotation, HEADER, Arc::clone(&stats)).unwrap();
        (writer, stats)
    }

    /// `{"n":<n>}` padded to exactly 20 bytes with its `\n`.
    fn line(n: u32) -> Vec<u8> {
        format!(r#"{{"n":{n:<13}}}"#).into_bytes()
    }

    fn lines_of(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every file's lines, oldest file first.
    fn all_lines(path: &Path, keep: u32) -> Vec<Vec<String>> {
        let mut files: Vec<_> = (1..=keep)
            .rev()
            .map(|n| rotated_path(path, n))
            .filter(|rotated| rotated.exists())
            .collect();
        files.push(path.to_owned());
        files.iter().map(|file| lines_of(file)).collect()
    }

    #[test]
    fn rotates_before_a_line_would_pass_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        // The header (20 bytes with its newline) and three lines of 20 bytes fit in 80.
        let (mut writer, stats) = writer(&path, 80, 3);
        for n in 0..3 {
            writer.write_line(&line(n)).unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
        assert!(!rotated_path(&path, 1).exists());
        writer.write_line(&line(3)).unwrap();
        writer.flush().unwrap();
        assert_eq!(stats.rotations(), 1);
        assert_eq!(std::fs::metadata(rotated_path(&path, 1)).unwrap().len(), 80);
        let current = lines_of(&path);
        assert_eq!(current[0].as_bytes(), HEADER);
        assert_eq!(current[1].as_bytes(), line(3));
    }

    #[test]
    fn keeps_only_the_newest_files_and_every_line_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let (mut writer, stats) = writer(&path, 80, 2);
        for n in 0..20 {
            writer.write_line(&line(n)).unwrap();
        }
        writer.flush().unwrap();
        assert!(
            !rotated_path(&path, 3).exists(),
            "file_keep = 2 kept a third"
        );
        let files = all_lines(&path, 2);
        assert_eq!(files.len(), 3);
        // 20 lines at three a file: six rotations; the oldest files (0..12) are gone.
        assert_eq!(stats.rotations(), 6);
        let mut expected = 12..20;
        for file in &files {
            assert_eq!(file[0].as_bytes(), HEADER);
            for text in &file[1..] {
                let n = expected.next().unwrap();
                assert_eq!(text.as_bytes(), line(n), "out of order or split");
            }
        }
        assert_eq!(expected.next(), None);
    }

    #[test]
    fn a_line_longer_than_the_limit_goes_whole_into_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let (mut writer, _) = writer(&path, 30, 3);
        let long = vec![b'x'; 100];
        writer.write_line(&line(0)).unwrap();
        writer.write_line(&long).unwrap();
        writer.write_line(&line(1)).unwrap();
        writer.flush().unwrap();
        let files = all_lines(&path, 3);
        assert_eq!(files[1][1].as_bytes(), long.as_slice());
        assert_eq!(files[1].len(), 2);
        assert_eq!(files[2][1].as_bytes(), line(1));
    }

    #[test]
    fn a_full_file_is_rotated_when_it_is_opened_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        std::fs::write(&path, vec![b'\n'; 100]).unwrap();
        // Left by an earlier run with file_keep = 4.
        for n in 1..=4 {
            std::fs::write(rotated_path(&path, n), format!("{n}\n")).unwrap();
        }
        let (mut writer, stats) = writer(&path, 50, 2);
        writer.flush().unwrap();
        assert_eq!(stats.rotations(), 1);
        assert_eq!(lines_of(&path), [String::from_utf8_lossy(HEADER)]);
        assert_eq!(
            std::fs::metadata(rotated_path(&path, 1)).unwrap().len(),
            100
        );
        assert_eq!(lines_of(&rotated_path(&path, 2)), ["1"]);
        assert!(!rotated_path(&path, 3).exists());
        assert!(!rotated_path(&path, 4).exists());
    }

    #[test]
    fn a_failed_rotation_is_counted_loses_nothing_and_is_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        // A directory in the way: `FILE` cannot be renamed to `FILE.1`.
        let blocker = rotated_path(&path, 1);
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("inside"), b"").unwrap();
        let (mut writer, stats) = writer(&path, 80, 1);
        for n in 0..6 {
            writer.write_line(&line(n)).unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(stats.failed_rotations(), 1);
        assert_eq!(stats.rotations(), 0);
        // Every line is in the current file, in order.
        let current = lines_of(&path);
        assert_eq!(current.len(), 7);
        for (n, text) in (0..6).zip(&current[1..]) {
            assert_eq!(text.as_bytes(), line(n));
        }
        // Retried once the file grew by another limit (80 bytes past 80: at 160).
        std::fs::remove_dir_all(&blocker).unwrap();
        for n in 6..9 {
            writer.write_line(&line(n)).unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(stats.failed_rotations(), 1);
        assert_eq!(stats.rotations(), 1);
        // The header and lines 0 to 6 were rotated; 7 found the limit passed.
        assert_eq!(lines_of(&rotated_path(&path, 1)).len(), 8);
        assert_eq!(lines_of(&path)[1].as_bytes(), line(7));
    }

    #[test]
    fn a_device_is_never_rotated() {
        let null = Path::new("/dev/null");
        if !null.exists() {
            return;
        }
        let (mut writer, stats) = writer(null, 1, 1);
        for n in 0..10 {
            writer.write_line(&line(n)).unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(stats.rotations() + stats.failed_rotations(), 0);
    }
}
