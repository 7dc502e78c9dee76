//! The per-container monitor: a small process (the engine binary in monitor
//! mode) that starts the runtime, owns the container's stdio, writes its log
//! and records its exit, so containers outlive an engine restart.
//!
//! Like containerd's shim and Podman's conmon, one monitor runs per
//! container. Everything it needs and leaves behind lives in the container's
//! monitor folder `DIR`:
//!
//! | file | written by | holds |
//! |---|---|---|
//! | `monitor.json` | engine ([`spawn`]) | the [`MonitorConfig`] |
//! | `monitor.pid` | monitor | the monitor's pid ([`alive`]) |
//! | `monitor.log` | monitor (stderr) | the monitor's own diagnostics |
//! | `container.pid` | runtime | the container's init pid |
//! | `runc.log` | runtime | the runtime's JSON log, read for its errors |
//! | `attach.sock` | monitor | attach clients ([`attach`]) |
//! | `console.sock` | monitor | receives the pty master from the runtime (tty only, removed once used) |
//! | `exit.json` | monitor | the [`ExitRecord`] ([`read_exit`]) |
//!
//! The engine starts the monitor with [`spawn`], which returns once the
//! container is created; [`Created::start`] starts it. From then on the
//! monitor needs nothing from the engine: it logs the output in Docker's
//! json-file format ([`logs`]), serves attach clients and, when the
//! container's init process exits, writes `exit.json` and exits. The engine
//! runs `runc delete` afterwards. `runc exec` is run by the engine itself
//! ([`exec`]).
//!
//! The engine keeps one monitor started ahead of need ([`Standby`]: `monitor
//! --standby ROOT`, which reads the container's folder from stdin first and
//! then behaves as `monitor DIR`), so a container's start does not wait for
//! a process to be started.
//!
//! The control channel between [`spawn`] and the monitor is the monitor's
//! stdin and stdout, one JSON line per reply: `{"created":{"pid":N}}` (or
//! `{"error":"..."}`), then, after the engine writes `start`,
//! `{"started":true}` (or an error). Writing `abort`, or closing the pipe
//! before `start`, makes the monitor delete the container and exit.

pub mod attach;
mod control;
pub mod exec;
mod hub;
pub mod logs;
mod pty;
mod runc;
mod supervise;

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::control::{Created, Standby, spawn, spawn_with, wait};
pub use self::supervise::{run, standby};
use crate::error::{Error, Result};

/// The monitor's configuration, `DIR/monitor.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// The container ID, as the runtime knows it.
    pub id: String,
    /// The runtime binary (runc or crun).
    pub runtime: PathBuf,
    /// The runtime's state root (`--root`).
    pub runtime_root: PathBuf,
    /// The OCI bundle (the folder holding `config.json`).
    pub bundle: PathBuf,
    /// Whether the container gets a pseudo-terminal (`process.terminal`).
    pub tty: bool,
    /// Whether the container's stdin is open to attach clients.
    pub open_stdin: bool,
    /// Whether stdin closes once the first attach client that wrote to it
    /// goes away.
    pub stdin_once: bool,
    /// Where the output is logged.
    pub log: LogConfig,
    /// The container's memory cgroup folder, read for OOM kills.
    pub memory_cgroup: Option<PathBuf>,
}

/// Where and how the container's output is logged (Docker's json-file
/// driver).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    /// The current log file; rotated files are `<path>.1`, `<path>.2`, ...
    pub path: PathBuf,
    /// Rotate once the current file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// How many files to keep, the current one included (0 counts as 1).
    pub max_files: u32,
}

/// How the container's init process ended, `DIR/exit.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    /// The exit status, or 128 + the signal number when it was killed.
    pub code: i32,
    /// When the monitor saw it exit, RFC 3339 with nanoseconds.
    pub finished_at: String,
    /// Whether the kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// The monitor's configuration file in DIR.
pub const CONFIG_FILE: &str = "monitor.json";
/// The argument that starts a monitor on standby ([`Standby`]).
pub const STANDBY_FLAG: &str = "--standby";
/// The attach socket in DIR.
pub const ATTACH_SOCKET: &str = "attach.sock";
/// The exit record in DIR.
pub const EXIT_FILE: &str = "exit.json";
/// The monitor's pid file in DIR.
pub const PID_FILE: &str = "monitor.pid";
/// The monitor's own diagnostics (its stderr) in DIR.
pub const MONITOR_LOG: &str = "monitor.log";
/// The container init's pid file in DIR, written by the runtime.
pub const CONTAINER_PID_FILE: &str = "container.pid";
/// The runtime's JSON log in DIR.
pub const RUNTIME_LOG: &str = "runc.log";
/// The console socket in DIR (tty containers, while being created).
pub const CONSOLE_SOCKET: &str = "console.sock";

/// Reads `DIR/exit.json`; `None` while the container has not exited (or
/// its monitor died without recording it).
pub fn read_exit(dir: &Path) -> Result<Option<ExitRecord>> {
    let path = dir.join(EXIT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(Error::json(format!("exit record {}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path)(e)),
    }
}

/// Whether the monitor of DIR is alive: `DIR/monitor.pid` names a process
/// whose command line is `... monitor DIR`.
pub fn alive(dir: &Path) -> bool {
    let Ok(dir) = std::path::absolute(dir) else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(dir.join(PID_FILE)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    args.windows(2)
        .any(|pair| pair[0] == b"monitor" && Path::new(std::ffi::OsStr::from_bytes(pair[1])) == dir)
}

/// Writes `bytes` to `path` atomically: a temporary file, then a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        // No fsync: the rename is what keeps a killed process from leaving
        // half a file, and these files (config, pid, exit record) mean
        // nothing after a power loss, which ends every container too.
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp)(e));
    }
    // Nor the folder: syncing it costs a disk write on the start and exit
    // paths of every container, for the same nothing.
    std::fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
}

/// `sun_path` holds 108 bytes, the terminating NUL included.
const SUN_PATH_MAX: usize = 107;

/// A unix socket path that fits in `sun_path`: `DIR/NAME` itself when short
/// enough, else `/proc/<pid>/fd/<n>/NAME` through a handle this value keeps
/// open on DIR. Other processes (the runtime) may use the path while this
/// value lives.
pub(crate) struct SocketPath {
    path: PathBuf,
    _dir: Option<OwnedFd>,
}

impl SocketPath {
    /// The path of socket `name` in `dir`.
    pub(crate) fn new(dir: &Path, name: &str) -> Result<Self> {
        let plain = dir.join(name);
        if plain.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(Self {
                path: plain,
                _dir: None,
            });
        }
        let handle = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io("open", dir)(e.into()))?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}/{name}",
            std::process::id(),
            handle.as_raw_fd()
        ));
        Ok(Self {
            path,
            _dir: Some(handle),
        })
    }

    /// The path to bind or connect to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exit_record_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let record = ExitRecord {
            code: 137,
            finished_at: "2026-11-29T00:00:00.123456789Z".into(),
            oom_killed: false,
        };
        write_atomic(
            &dir.path().join(EXIT_FILE),
            &serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(record));
        std::fs::write(dir.path().join(EXIT_FILE), b"{garbage").unwrap();
        assert!(read_exit(dir.path()).is_err());
    }

    #[test]
    fn long_socket_paths_go_through_proc() {
        let dir = tempfile::tempdir().unwrap();
        let short = SocketPath::new(dir.path(), "a.sock").unwrap();
        assert_eq!(short.path(), dir.path().join("a.sock"));
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let long = SocketPath::new(&deep, "a.sock").unwrap();
        assert!(long.path().as_os_str().len() <= SUN_PATH_MAX);
        let listener = std::os::unix::net::UnixListener::bind(long.path()).unwrap();
        assert!(deep.join("a.sock").exists());
        std::os::unix::net::UnixStream::connect(long.path()).unwrap();
        drop(listener);
    }

    #[test]
    fn alive_needs_a_monitor_command_line() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!alive(dir.path()));
        // This test process is alive but is not a monitor of dir.
        std::fs::write(dir.path().join(PID_FILE), std::process::id().to_string()).unwrap();
        assert!(!alive(dir.path()));
        std::fs::write(dir.path().join(PID_FILE), "not a pid").unwrap();
        assert!(!alive(dir.path()));
    }
}
