//! `runc exec`, run by the engine itself (short-lived, not through the
//! monitor): `runc exec --process FILE ID` without `--detach` waits for the
//! process and exits with its status.
//!
//! Without a tty the process's stdio are pipes. With one (`terminal` in the
//! process file), runc makes the container's terminal and relays it to its
//! own stdio, which is then a terminal made here: its master is both stdout
//! and stdin, and resizing it (plus SIGWINCH to runc) resizes the
//! container's. (`--console-socket` is refused without `--detach`, and with
//! `--detach` the process would not be the engine's to wait for.)

use std::path::{Path, PathBuf};
use std::process::Stdio;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::Child;

use super::pty::{self, PtyMaster};
use super::runc::last_error;
use crate::error::{Error, Result};

/// What to run in which container.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The runtime binary.
    pub runtime: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The container ID.
    pub id: String,
    /// The OCI process (`config.json`'s `process`) as a file; the
    /// runtime's log goes next to it (`<file>.runc.log`).
    pub process_json: PathBuf,
    /// Whether the process gets a pseudo-terminal (the process file's
    /// `terminal` must agree).
    pub tty: bool,
    /// Whether the caller writes to the process's stdin.
    pub stdin: bool,
}

/// The process's stdio, taken once from [`ExecProcess::take_io`].
pub struct ExecIo {
    /// Its stdin, when asked for (with a tty, the terminal).
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// Its stdout (with a tty, all of its output).
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    /// Its stderr (none with a tty).
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
}

/// Resizes an exec's terminal; cheap to clone and send elsewhere.
#[derive(Clone)]
pub struct Resizer {
    master: PtyMaster,
    runtime: Option<Pid>,
    id: String,
}

impl Resizer {
    /// Sets the terminal's size (the runtime passes it on to the
    /// container's terminal).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.master.resize(rows, cols).map_err(|e| Error::Runtime {
            context: format!("container {}: exec: resize the terminal", self.id),
            message: e.to_string(),
        })?;
        // The terminal is not the runtime's controlling one: tell it. Gone
        // already is fine.
        if let Some(pid) = self.runtime {
            let _ = rustix::process::kill_process(pid, Signal::WINCH);
        }
        Ok(())
    }
}

/// A running `runc exec`.
pub struct ExecProcess {
    child: Child,
    io: Option<ExecIo>,
    terminal: Option<Terminal>,
    runtime_log: PathBuf,
    log_from: u64,
    id: String,
}

/// An exec's terminal: the master, and the runtime to signal on resizes.
struct Terminal {
    master: PtyMaster,
    runtime: Option<Pid>,
}

/// A started runtime, its stdio and its terminal.
type Spawned = (Child, ExecIo, Option<Terminal>);

fn runtime_log(process_json: &Path) -> PathBuf {
    let mut name = process_json.as_os_str().to_owned();
    name.push(".runc.log");
    PathBuf::from(name)
}

/// Starts `runc exec`; returns once the runtime runs. A failure to start
/// the process shows in [`ExecProcess::wait`]'s status (runc's 255) and
/// [`ExecProcess::runtime_error`].
pub async fn exec(req: &ExecRequest) -> Result<ExecProcess> {
    let log = runtime_log(&req.process_json);
    let log_from = std::fs::metadata(&log).map_or(0, |m| m.len());
    let mut command = tokio::process::Command::new(&req.runtime);
    command
        .arg("--root")
        .arg(&req.runtime_root)
        .arg("--log")
        .arg(&log)
        .arg("--log-format")
        .arg("json")
        .arg("exec")
        .arg("--process")
        .arg(&req.process_json)
        .arg(&req.id)
        // Signals for the engine's process group are not the exec's.
        .process_group(0);
    let (child, io, terminal) = if req.tty {
        spawn_with_tty(req, command)?
    } else {
        spawn_with_pipes(req, command)?
    };
    Ok(ExecProcess {
        child,
        io: Some(io),
        terminal,
        runtime_log: log,
        log_from,
        id: req.id.clone(),
    })
}

fn spawn_with_pipes(req: &ExecRequest, mut command: tokio::process::Command) -> Result<Spawned> {
    command
        .stdin(if req.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(Error::io("run", &req.runtime))?;
    let stdin = child
        .stdin
        .take()
        .map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>);
    let stdout: Box<dyn AsyncRead + Send + Unpin> = match child.stdout.take() {
        Some(stdout) => Box::new(stdout),
        None => Box::new(tokio::io::empty()),
    };
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>);
    Ok((
        child,
        ExecIo {
            stdin,
            stdout,
            stderr,
        },
        None,
    ))
}

/// `runc exec` without `--detach` refuses a console socket: it makes the
/// container's terminal itself and relays it to its own stdio, which must
/// be a terminal. So its stdio is a terminal made here; the runtime copies
/// its size on SIGWINCH.
fn spawn_with_tty(req: &ExecRequest, mut command: tokio::process::Command) -> Result<Spawned> {
    let failed = |step: &str, e: std::io::Error| Error::Runtime {
        context: format!("container {}: exec", req.id),
        message: format!("{step}: {e}"),
    };
    let (master, slave) = pty::open_pair().map_err(|e| failed("open a terminal", e))?;
    // The runtime turns output processing on in this terminal: without
    // ONLCR it passes the container's bytes unchanged, and `Onlcr` below
    // gives them Docker's line ends.
    pty::clear_onlcr(&slave).map_err(|e| failed("set up the terminal", e))?;
    let stdio = || {
        slave
            .try_clone()
            .map(Stdio::from)
            .map_err(|e| failed("open a terminal", e))
    };
    command.stdin(stdio()?).stdout(stdio()?).stderr(stdio()?);
    let spawned = command.spawn();
    // Only the runtime may hold the slave: its exit ends the output.
    drop(command);
    drop(slave);
    let child = spawned.map_err(Error::io("run", &req.runtime))?;
    let master = PtyMaster::new(master).map_err(|e| failed("set up the terminal", e))?;
    let stdin = req
        .stdin
        .then(|| Box::new(master.clone()) as Box<dyn AsyncWrite + Send + Unpin>);
    let runtime = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw);
    let io = ExecIo {
        stdin,
        stdout: Box::new(pty::Onlcr::new(master.clone())),
        stderr: None,
    };
    Ok((child, io, Some(Terminal { master, runtime })))
}

impl ExecProcess {
    /// The pid of the `runc exec` process (not of the process it runs in
    /// the container); `None` once it has been waited for.
    pub fn pid(&self) -> Option<i32> {
        self.child.id().and_then(|pid| i32::try_from(pid).ok())
    }

    /// The process's stdio; a second call gets no stdin or stderr and an
    /// empty stdout.
    pub fn take_io(&mut self) -> ExecIo {
        self.io.take().unwrap_or_else(|| ExecIo {
            stdin: None,
            stdout: Box::new(tokio::io::empty()),
            stderr: None,
        })
    }

    /// A handle that resizes the terminal; `None` without a tty.
    pub fn resizer(&self) -> Option<Resizer> {
        self.terminal.as_ref().map(|terminal| Resizer {
            master: terminal.master.clone(),
            runtime: terminal.runtime,
            id: self.id.clone(),
        })
    }

    /// Waits for the process; its exit status (128 + the signal when it was
    /// killed), as the runtime reports it.
    pub async fn wait(&mut self) -> Result<i32> {
        let status = self.child.wait().await.map_err(|e| Error::Runtime {
            context: format!("container {}: exec", self.id),
            message: format!("wait for the runtime: {e}"),
        })?;
        use std::os::unix::process::ExitStatusExt as _;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|signal| 128 + signal))
            .unwrap_or(255))
    }

    /// The runtime's own error for this exec (e.g. `exec: "x": executable
    /// file not found in $PATH`), when it failed to run the process.
    pub fn runtime_error(&self) -> Option<String> {
        last_error(&self.runtime_log, self.log_from)
    }
}
