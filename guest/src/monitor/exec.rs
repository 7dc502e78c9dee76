//! `runc exec`, run by the engine itself (short-lived, not through the
//! monitor): `runc exec --process FILE [--tty --console-socket SOCK] ID`
//! without `--detach` waits for the process and exits with its status.
//!
//! Without a tty the process's stdio are pipes; with one, the runtime sends
//! the pty master over a console socket made next to the process file, and
//! the master is both stdout and stdin.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::process::Child;

use super::SocketPath;
use super::pty::{self, PtyMaster};
use super::runc::last_error;
use crate::error::{Error, Result};

/// Numbers console sockets made by this process.
static CONSOLE_SERIAL: AtomicU64 = AtomicU64::new(0);

/// What to run in which container.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The runtime binary.
    pub runtime: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The container ID.
    pub id: String,
    /// The OCI process (`config.json`'s `process`) as a file; its folder
    /// also gets the runtime's log (`<file>.runc.log`) and, with a tty, the
    /// console socket for a moment.
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
    id: String,
}

impl Resizer {
    /// Sets the terminal's size.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.master.resize(rows, cols).map_err(|e| Error::Runtime {
            context: format!("container {}: exec: resize the terminal", self.id),
            message: e.to_string(),
        })
    }
}

/// A running `runc exec`.
pub struct ExecProcess {
    child: Child,
    io: Option<ExecIo>,
    master: Option<PtyMaster>,
    runtime_log: PathBuf,
    log_from: u64,
    id: String,
}

fn runtime_log(process_json: &Path) -> PathBuf {
    let mut name = process_json.as_os_str().to_owned();
    name.push(".runc.log");
    PathBuf::from(name)
}

/// Starts `runc exec`. With a tty it returns once the runtime has sent the
/// terminal (an error carries the runtime's message when it fails first);
/// without one it returns once the runtime is running: a failure to start
/// the process shows in [`ExecProcess::wait`]'s status and
/// [`ExecProcess::runtime_error`].
pub async fn exec(req: &ExecRequest) -> Result<ExecProcess> {
    let context = || format!("container {}: exec", req.id);
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
        .arg(&req.process_json);
    if !req.tty {
        command
            .arg(&req.id)
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
        return Ok(ExecProcess {
            child,
            io: Some(ExecIo {
                stdin,
                stdout,
                stderr,
            }),
            master: None,
            runtime_log: log,
            log_from,
            id: req.id.clone(),
        });
    }

    let folder = req
        .process_json
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = format!(
        ".console-{}-{}.sock",
        std::process::id(),
        CONSOLE_SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    let socket_file = folder.join(&name);
    let _ = std::fs::remove_file(&socket_file);
    let socket = SocketPath::new(&folder, &name)?;
    let listener =
        tokio::net::UnixListener::bind(socket.path()).map_err(Error::io("bind", &socket_file))?;
    command
        .arg("--tty")
        .arg("--console-socket")
        .arg(socket.path())
        .arg(&req.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_file(&socket_file);
            return Err(Error::io("run", &req.runtime)(e));
        }
    };
    let received = async {
        let (stream, _) = listener.accept().await?;
        loop {
            stream.readable().await?;
            let got = stream.try_io(Interest::READABLE, || {
                pty::receive_master(&stream)?
                    .ok_or_else(|| std::io::ErrorKind::WouldBlock.into())
            });
            match got {
                Ok(fd) => return Ok::<_, std::io::Error>(fd),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    let outcome = tokio::select! {
        master = received => Ok(master),
        status = child.wait() => Err(status),
    };
    let _ = std::fs::remove_file(&socket_file);
    drop(listener);
    let master = match outcome {
        Ok(Ok(fd)) => PtyMaster::new(fd).map_err(|e| Error::Runtime {
            context: context(),
            message: format!("set up the terminal: {e}"),
        })?,
        Ok(Err(e)) => {
            let _ = child.start_kill();
            return Err(Error::Runtime {
                context: context(),
                message: format!("receive the terminal: {e}"),
            });
        }
        Err(status) => {
            let message = last_error(&log, log_from).unwrap_or_else(|| match status {
                Ok(status) => format!("the runtime exited ({status}) before sending the terminal"),
                Err(e) => format!("wait for the runtime: {e}"),
            });
            return Err(Error::Runtime {
                context: context(),
                message,
            });
        }
    };
    let stdin = req
        .stdin
        .then(|| Box::new(master.clone()) as Box<dyn AsyncWrite + Send + Unpin>);
    Ok(ExecProcess {
        child,
        io: Some(ExecIo {
            stdin,
            stdout: Box::new(master.clone()),
            stderr: None,
        }),
        master: Some(master),
        runtime_log: log,
        log_from,
        id: req.id.clone(),
    })
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
        self.master.as_ref().map(|master| Resizer {
            master: master.clone(),
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
