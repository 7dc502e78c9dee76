//! The container's log in Docker's json-file format: one JSON object per
//! line, `{"log":"hi\n","stream":"stdout","time":"2026-11-29T00:00:00.123456789Z"}`,
//! rotated by size into `<path>.1`, `<path>.2`, ... (`.1` the newest).
//!
//! The monitor writes it ([`LogWriter`]); the engine reads it
//! ([`read_logs`]) and follows it ([`follow_logs`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::LogConfig;
use crate::error::{Error, Result};

/// Output lines longer than this are logged in pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// How often [`follow_logs`] looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// The most [`follow_logs`] reads of the file at a time. It reads the next
/// piece only once the previous one's entries are sent, so a follower whose
/// reader is slow holds at most this (and its channel) in memory, whatever
/// the container writes meanwhile: the rest waits in the file.
const FOLLOW_CHUNK: u64 = 256 * 1024;

/// Which output stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// The container's stdout (and, with a tty, all of its output).
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl LogStream {
    /// The name the log file uses: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Stdout => 0,
            Self::Stderr => 1,
        }
    }
}

/// One logged line (or piece of a long line).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The stream it came from.
    pub stream: LogStream,
    /// When the monitor logged it, RFC 3339 with nanoseconds, as written.
    pub time: String,
    /// The text, with its trailing newline when it had one.
    pub line: Bytes,
}

/// Which entries [`read_logs`] and [`follow_logs`] return. The default
/// selects nothing: set `stdout` and/or `stderr`.
#[derive(Debug, Default, Clone)]
pub struct LogQuery {
    /// Include stdout lines.
    pub stdout: bool,
    /// Include stderr lines.
    pub stderr: bool,
    /// Only entries logged at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries logged at or before this time.
    pub until: Option<SystemTime>,
    /// Only the last this many of the selected entries (before following).
    pub tail: Option<usize>,
}

impl LogQuery {
    fn selects(&self, entry: &LogEntry) -> bool {
        let wanted = match entry.stream {
            LogStream::Stdout => self.stdout,
            LogStream::Stderr => self.stderr,
        };
        if !wanted {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = parse_time(&entry.time) else {
            return false;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time <= until)
    }
}

/// Log stamps are the engine's nanosecond RFC 3339 times, nine fraction
/// digits always (read back with any number).
pub use crate::timefmt::{format_nanos as format_time, parse_nanos as parse_time};

#[derive(Serialize)]
struct RecordOut<'a> {
    log: &'a str,
    stream: &'static str,
    time: &'a str,
}

#[derive(Deserialize)]
struct RecordIn {
    log: String,
    stream: String,
    time: String,
}

fn parse_record(line: &[u8]) -> Option<LogEntry> {
    let record: RecordIn = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: LogStream::parse(&record.stream)?,
        time: record.time,
        line: Bytes::from(record.log),
    })
}

/// `<path>.<n>`, the n-th newest rotated file.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Where a piece of output may be cut without splitting a UTF-8 sequence:
/// `buf.len()`, or the start of an incomplete sequence at its end.
fn utf8_cut(buf: &[u8]) -> usize {
    for back in 1..=3.min(buf.len()) {
        let byte = buf[buf.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back {
            buf.len() - back
        } else {
            buf.len()
        };
    }
    buf.len()
}

/// Appends output to the log file, a line (or [`MAX_LINE`] bytes) per
/// entry, rotating it by size. Used by the monitor.
pub struct LogWriter {
    config: LogConfig,
    file: File,
    size: u64,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating it and its folder) the log file for appending.
    pub fn open(config: LogConfig) -> Result<Self> {
        if let Some(parent) = config.path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        let file = Self::open_file(&config.path).map_err(Error::io("open", &config.path))?;
        let size = file
            .metadata()
            .map_err(Error::io("inspect", &config.path))?
            .len();
        Ok(Self {
            config,
            file,
            size,
            pending: [Vec::new(), Vec::new()],
        })
    }

    fn open_file(path: &Path) -> std::io::Result<File> {
        File::options().create(true).append(true).open(path)
    }

    /// Logs `data`, read from `stream`: every complete line, and pieces of
    /// [`MAX_LINE`] bytes of an overlong one. The rest waits for more data
    /// or [`flush`](Self::flush).
    pub fn append(&mut self, stream: LogStream, data: &[u8]) -> std::io::Result<()> {
        let index = stream.index();
        let mut rest = data;
        let mut result = Ok(());
        while !rest.is_empty() {
            let room = MAX_LINE.saturating_sub(self.pending[index].len()).max(1);
            let window = &rest[..room.min(rest.len())];
            if let Some(newline) = window.iter().position(|&b| b == b'\n') {
                self.pending[index].extend_from_slice(&window[..=newline]);
                rest = &rest[newline + 1..];
                let line = std::mem::take(&mut self.pending[index]);
                result = result.and(self.write_entry(stream, &line));
            } else {
                self.pending[index].extend_from_slice(window);
                rest = &rest[window.len()..];
                if self.pending[index].len() >= MAX_LINE {
                    let cut = match utf8_cut(&self.pending[index]) {
                        0 => self.pending[index].len(),
                        cut => cut,
                    };
                    let tail = self.pending[index].split_off(cut);
                    let piece = std::mem::replace(&mut self.pending[index], tail);
                    result = result.and(self.write_entry(stream, &piece));
                }
            }
        }
        result
    }

    /// Logs what is left of `stream`'s last line (at its end of file).
    pub fn flush(&mut self, stream: LogStream) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.pending[stream.index()]);
        if line.is_empty() {
            return Ok(());
        }
        self.write_entry(stream, &line)
    }

    fn write_entry(&mut self, stream: LogStream, line: &[u8]) -> std::io::Result<()> {
        let time = format_time(SystemTime::now());
        let text = String::from_utf8_lossy(line);
        let mut record = serde_json::to_vec(&RecordOut {
            log: &text,
            stream: stream.as_str(),
            time: &time,
        })
        .map_err(std::io::Error::other)?;
        record.push(b'\n');
        let len = record.len() as u64;
        if self.config.max_size > 0 && self.size > 0 && self.size + len > self.config.max_size {
            self.rotate()?;
        }
        self.file.write_all(&record)?;
        self.size += len;
        Ok(())
    }

    /// Shifts `<path>.k` to `<path>.k+1`, dropping the oldest, and starts
    /// a new current file; with one file, empties it.
    fn rotate(&mut self) -> std::io::Result<()> {
        let path = self.config.path.clone();
        let keep = self.config.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let ignore_missing = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        ignore_missing(std::fs::remove_file(rotated(&path, keep - 1)))?;
        for n in (1..keep - 1).rev() {
            ignore_missing(std::fs::rename(rotated(&path, n), rotated(&path, n + 1)))?;
        }
        std::fs::rename(&path, rotated(&path, 1))?;
        self.file = Self::open_file(&path)?;
        self.size = 0;
        Ok(())
    }
}

/// Reads complete lines from `reader` into `out` (selected ones only);
/// returns a trailing incomplete line.
fn read_entries(
    reader: &mut impl BufRead,
    query: &LogQuery,
    out: &mut impl FnMut(LogEntry),
) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(Vec::new());
        }
        if line.last() != Some(&b'\n') {
            return Ok(line);
        }
        if let Some(entry) = parse_record(&line)
            && query.selects(&entry)
        {
            out(entry);
        }
    }
}

/// Where [`follow_logs`] is in the current log file.
struct Cursor {
    file: File,
    ino: u64,
    partial: Vec<u8>,
}

/// The selected entries of every file, oldest first, and the open current
/// file positioned after them.
fn read_initial(log: &LogConfig, query: &LogQuery) -> Result<(Vec<LogEntry>, Option<Cursor>)> {
    let mut older = Vec::new();
    for n in 1.. {
        let path = rotated(&log.path, n);
        if !path.exists() {
            break;
        }
        older.push(path);
    }
    let mut entries = VecDeque::new();
    let mut push = |entry: LogEntry| {
        entries.push_back(entry);
        if let Some(tail) = query.tail
            && entries.len() > tail
        {
            entries.pop_front();
        }
    };
    for path in older.iter().rev() {
        match File::open(path) {
            Ok(file) => {
                read_entries(&mut BufReader::new(file), query, &mut push)
                    .map_err(Error::io("read", path))?;
            }
            // Rotated away meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open", path)(e)),
        }
    }
    let cursor = match File::open(&log.path) {
        Ok(file) => {
            let ino = file
                .metadata()
                .map_err(Error::io("inspect", &log.path))?
                .ino();
            let partial = read_entries(&mut BufReader::new(&file), query, &mut push)
                .map_err(Error::io("read", &log.path))?;
            Some(Cursor { file, ino, partial })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("open", &log.path)(e)),
    };
    Ok((entries.into(), cursor))
}

/// The log's entries across the rotated files, oldest first, filtered by
/// `query`, the last `tail` of them. A missing log has no entries.
pub fn read_logs(log: &LogConfig, query: &LogQuery) -> Result<Vec<LogEntry>> {
    read_initial(log, query).map(|(entries, _)| entries)
}

/// The entries appended since the cursor last read, at most
/// [`FOLLOW_CHUNK`] bytes of the file, and whether more is there already;
/// follows the current file through rotation (one rotation per call is
/// seen; a writer rotating twice between calls loses the reader the file
/// in between).
fn read_new(
    log: &LogConfig,
    cursor: &mut Option<Cursor>,
    query: &LogQuery,
) -> Result<(Vec<LogEntry>, bool)> {
    let mut out = Vec::new();
    loop {
        let Some(current) = cursor.as_mut() else {
            match File::open(&log.path) {
                Ok(file) => {
                    let ino = file
                        .metadata()
                        .map_err(Error::io("inspect", &log.path))?
                        .ino();
                    *cursor = Some(Cursor {
                        file,
                        ino,
                        partial: Vec::new(),
                    });
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((out, false)),
                Err(e) => return Err(Error::io("open", &log.path)(e)),
            }
        };
        // With a single file the writer empties it in place.
        let position = current
            .file
            .stream_position()
            .map_err(Error::io("read", &log.path))?;
        let len = current
            .file
            .metadata()
            .map_err(Error::io("inspect", &log.path))?
            .len();
        if len < position {
            current
                .file
                .seek(SeekFrom::Start(0))
                .map_err(Error::io("read", &log.path))?;
            current.partial.clear();
        }
        let mut data = std::mem::take(&mut current.partial);
        let read = (&current.file)
            .take(FOLLOW_CHUNK)
            .read_to_end(&mut data)
            .map_err(Error::io("read", &log.path))?;
        current.partial = read_entries(&mut data.as_slice(), query, &mut |e| out.push(e))
            .map_err(Error::io("read", &log.path))?;
        if read as u64 == FOLLOW_CHUNK {
            // Not at the end: a rotation, if any, is seen at the end.
            return Ok((out, true));
        }
        let now_ino = match std::fs::metadata(&log.path) {
            Ok(meta) => Some(meta.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("inspect", &log.path)(e)),
        };
        match now_ino {
            Some(ino) if ino != current.ino => {
                // Rotated: the old file (read to its end above, after the
                // writer moved on) is done; continue with the new one.
                let data = std::mem::take(&mut current.partial);
                if let Some(entry) = parse_record(&data).filter(|e| query.selects(e)) {
                    out.push(entry);
                }
                *cursor = None;
            }
            _ => return Ok((out, false)),
        }
    }
}

/// Sends the entries [`read_logs`] gives, then new ones as they are
/// appended (through rotation), until `stop` completes (after which the
/// lines logged so far are still sent) or the receiver is dropped. With
/// `query.until` it also ends once that time has passed. Errors end it
/// (logged as a warning): the receiver sees the channel close.
pub async fn follow_logs(
    log: LogConfig,
    query: LogQuery,
    tx: tokio::sync::mpsc::Sender<LogEntry>,
    stop: impl std::future::Future<Output = ()>,
) {
    let initial = {
        let (log, query) = (log.clone(), query.clone());
        tokio::task::spawn_blocking(move || read_initial(&log, &query)).await
    };
    let (entries, mut cursor) = match initial {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!("follow the log: {}", e.full_message());
            return;
        }
        Err(e) => {
            tracing::warn!("follow the log {}: {e}", log.path.display());
            return;
        }
    };
    for entry in entries {
        if tx.send(entry).await.is_err() {
            return;
        }
    }
    let query = LogQuery {
        tail: None,
        ..query
    };
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        // Small reads of a local file: done inline.
        match read_new(&log, &mut cursor, &query) {
            Ok((entries, more)) => {
                // Sent at the reader's pace: a full channel waits here.
                for entry in entries {
                    if tx.send(entry).await.is_err() {
                        return;
                    }
                }
                if more {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!("follow the log: {}", e.full_message());
                return;
            }
        }
        if stopping || query.until.is_some_and(|until| SystemTime::now() > until) {
            return;
        }
        tokio::select! {
            () = &mut stop => stopping = true,
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::UNIX_EPOCH;

    use super::*;

    fn config(dir: &Path, max_size: u64, max_files: u32) -> LogConfig {
        LogConfig {
            path: dir.join("ctr.log"),
            max_size,
            max_files,
        }
    }

    fn both() -> LogQuery {
        LogQuery {
            stdout: true,
            stderr: true,
            ..LogQuery::default()
        }
    }

    fn lines(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect()
    }

    #[test]
    fn times_round_trip_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_709_209_815, 123_456_789);
        let text = format_time(t);
        assert_eq!(text, "2024-02-29T12:30:15.123456789Z");
        assert_eq!(parse_time(&text), Some(t));
        assert_eq!(
            parse_time("2024-02-29T12:30:15.5Z"),
            Some(UNIX_EPOCH + Duration::new(1_709_209_815, 500_000_000))
        );
        assert_eq!(
            parse_time("2024-02-29T12:30:15Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_209_815))
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn lines_split_at_newlines_and_at_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 0, 1);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        writer.append(LogStream::Stdout, b"one\ntw").unwrap();
        writer.append(LogStream::Stderr, b"err\n").unwrap();
        writer.append(LogStream::Stdout, b"o\nthree").unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        writer.append(LogStream::Stderr, &long).unwrap();
        writer.flush(LogStream::Stdout).unwrap();
        writer.flush(LogStream::Stderr).unwrap();
        let entries = read_logs(&log, &both()).unwrap();
        // Long lines are shown by their length.
        let short: Vec<String> = lines(&entries)
            .into_iter()
            .map(|l| {
                if l.len() > 20 {
                    format!("{} bytes", l.len())
                } else {
                    l
                }
            })
            .collect();
        let max = format!("{MAX_LINE} bytes");
        assert_eq!(
            short,
            ["one\n", "err\n", "two\n", &max, "three", "xxxxxxxxxx"]
        );
        let streams: Vec<_> = entries.iter().map(|e| e.stream).collect();
        use LogStream::{Stderr, Stdout};
        assert_eq!(streams, [Stdout, Stderr, Stdout, Stderr, Stdout, Stderr]);
        assert!(entries.iter().all(|e| parse_time(&e.time).is_some()));
        let raw = std::fs::read_to_string(&log.path).unwrap();
        let first = raw.lines().next().unwrap();
        assert!(
            first.starts_with(r#"{"log":"one\n","stream":"stdout","time":""#),
            "{first}"
        );
    }

    #[test]
    fn pieces_do_not_split_utf8_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 0, 1);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        let mut data = vec![b'a'; MAX_LINE - 1];
        data.extend_from_slice("é\n".as_bytes());
        writer.append(LogStream::Stdout, &data).unwrap();
        let entries = read_logs(&log, &both()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line.len(), MAX_LINE - 1);
        assert_eq!(&entries[1].line[..], "é\n".as_bytes());
        assert_eq!(utf8_cut(b"ab"), 2);
        assert_eq!(utf8_cut(&[b'a', 0xE2, 0x82]), 1);
        assert_eq!(utf8_cut(&[0xE2, 0x82, 0xAC]), 3);
    }

    #[test]
    fn rotation_keeps_max_files_and_reads_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 300, 3);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        for i in 0..40 {
            writer
                .append(LogStream::Stdout, format!("line {i:02}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&log.path, 1).exists());
        assert!(rotated(&log.path, 2).exists());
        assert!(!rotated(&log.path, 3).exists());
        for path in [
            log.path.clone(),
            rotated(&log.path, 1),
            rotated(&log.path, 2),
        ] {
            assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        }
        let got = lines(&read_logs(&log, &both()).unwrap());
        // Three files of a few lines each, in order, ending with the last.
        assert!(got.len() > 6 && got.len() < 40, "{got:?}");
        let first: usize = got[0][5..7].parse().unwrap();
        let expected: Vec<String> = (first..40).map(|i| format!("line {i:02}\n")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn one_file_is_emptied_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 200, 1);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        for i in 0..20 {
            writer
                .append(LogStream::Stdout, format!("line {i:02}\n").as_bytes())
                .unwrap();
        }
        assert!(!rotated(&log.path, 1).exists());
        let got = lines(&read_logs(&log, &both()).unwrap());
        assert_eq!(got.last().unwrap(), "line 19\n");
        assert!(got.len() < 20);
    }

    #[test]
    fn filters_by_stream_time_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 0, 1);
        let mut text = String::new();
        for (i, stream) in ["stdout", "stderr", "stdout", "stdout"].iter().enumerate() {
            text.push_str(&format!(
                "{{\"log\":\"l{i}\\n\",\"stream\":\"{stream}\",\"time\":\"2026-01-01T00:00:0{i}.5Z\"}}\n"
            ));
        }
        text.push_str("not json\n{\"log\":\"cut");
        std::fs::write(&log.path, text).unwrap();
        let all = read_logs(&log, &both()).unwrap();
        assert_eq!(lines(&all), ["l0\n", "l1\n", "l2\n", "l3\n"]);
        let stdout = LogQuery {
            stdout: true,
            ..LogQuery::default()
        };
        assert_eq!(
            lines(&read_logs(&log, &stdout).unwrap()),
            ["l0\n", "l2\n", "l3\n"]
        );
        let tail = LogQuery {
            tail: Some(2),
            ..both()
        };
        assert_eq!(lines(&read_logs(&log, &tail).unwrap()), ["l2\n", "l3\n"]);
        let window = LogQuery {
            since: parse_time("2026-01-01T00:00:01.5Z"),
            until: parse_time("2026-01-01T00:00:02.9Z"),
            ..both()
        };
        assert_eq!(lines(&read_logs(&log, &window).unwrap()), ["l1\n", "l2\n"]);
        assert!(read_logs(&log, &LogQuery::default()).unwrap().is_empty());
        let missing = config(&dir.path().join("nope"), 0, 1);
        assert!(read_logs(&missing, &both()).unwrap().is_empty());
    }

    #[tokio::test]
    async fn follow_sends_old_then_new_lines_through_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 400, 3);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        writer.append(LogStream::Stdout, b"old 1\nold 2\n").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let query = LogQuery {
            tail: Some(1),
            ..both()
        };
        let follower = tokio::spawn(follow_logs(log.clone(), query, tx, async {
            let _ = stop_rx.await;
        }));
        assert_eq!(&rx.recv().await.unwrap().line[..], b"old 2\n");
        // Enough lines to rotate a few times; sent one by one, each waited
        // for, so the follower sees every rotation.
        for i in 0..15 {
            let line = format!("new {i:02}\n");
            writer.append(LogStream::Stderr, line.as_bytes()).unwrap();
            let got = rx.recv().await.unwrap();
            assert_eq!(got.line, line.as_bytes());
            assert_eq!(got.stream, LogStream::Stderr);
        }
        assert!(rotated(&log.path, 2).exists());
        writer.append(LogStream::Stdout, b"last\n").unwrap();
        stop_tx.send(()).unwrap();
        assert_eq!(&rx.recv().await.unwrap().line[..], b"last\n");
        assert!(rx.recv().await.is_none());
        follower.await.unwrap();
    }

    #[tokio::test]
    async fn a_slow_follower_reads_in_pieces_and_sees_every_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = config(dir.path(), 0, 1);
        let mut writer = LogWriter::open(log.clone()).unwrap();
        writer.append(LogStream::Stdout, b"start\n").unwrap();
        // A reader that takes its time, one entry in the channel at most.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let follower = tokio::spawn(follow_logs(log.clone(), both(), tx, async {
            let _ = stop_rx.await;
        }));
        assert_eq!(&rx.recv().await.unwrap().line[..], b"start\n");
        // Much more than one piece arrives while the reader is busy.
        let count = 20_000;
        for i in 0..count {
            let line = format!("line {i:05} {}\n", "x".repeat(64));
            writer.append(LogStream::Stdout, line.as_bytes()).unwrap();
        }
        let size = std::fs::metadata(&log.path).unwrap().len();
        assert!(size > 4 * FOLLOW_CHUNK, "{size}");
        // What one read holds is a piece of the file, not all that is new.
        let mut cursor = Some(Cursor {
            file: File::open(&log.path).unwrap(),
            ino: std::fs::metadata(&log.path).unwrap().ino(),
            partial: Vec::new(),
        });
        let (first, more) = read_new(&log, &mut cursor, &both()).unwrap();
        assert!(more);
        let held: usize = first.iter().map(|e| e.line.len() + e.time.len()).sum();
        assert!(held as u64 <= FOLLOW_CHUNK, "{held}");
        assert!(!first.is_empty() && first.len() < count);
        let mut stop_tx = Some(stop_tx);
        for i in 0..count + 1 {
            if i % 5_000 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if i == count {
                writer.append(LogStream::Stderr, b"after\n").unwrap();
                if let Some(stop) = stop_tx.take() {
                    stop.send(()).unwrap();
                }
                assert_eq!(&rx.recv().await.unwrap().line[..], b"after\n");
                break;
            }
            let got = rx.recv().await.unwrap();
            assert!(
                got.line.starts_with(format!("line {i:05} ").as_bytes()),
                "{i}"
            );
        }
        assert!(rx.recv().await.is_none());
        follower.await.unwrap();
    }
}
