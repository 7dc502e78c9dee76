//! The monitor process itself (`servin-guest monitor DIR`): creates the
//! container, waits for `start`, then logs its output, serves attach
//! clients, reaps its init process and records how it exited.
//!
//! It runs a current-thread tokio runtime and no other threads. Once the
//! container is started it needs nothing from the engine: SIGHUP is caught
//! (and ignored), SIGPIPE is ignored (as in every Rust program), and a
//! failed write to the control channel is logged, not fatal.

use std::io::{BufRead as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::process::{Pid, WaitOptions};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::{Hub, pump, stdin_writer};
use super::logs::{LogStream, LogWriter, format_time};
use super::pty::{self, PtyMaster};
use super::runc::{CreateStdio, Runtime};
use super::{
    ATTACH_SOCKET, CONFIG_FILE, CONSOLE_SOCKET, CONTAINER_PID_FILE, EXIT_FILE, ExitRecord,
    MonitorConfig, PID_FILE, RUNTIME_LOG, SocketPath, write_atomic,
};

/// How long output may stay open after the init process exits (processes
/// outside its pid namespace may hold it) before the monitor stops reading.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the runtime gets to send the pty master once `create` is done.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes a timestamped line to the monitor's stderr (`DIR/monitor.log`).
pub(crate) fn note(message: &str) {
    eprintln!(
        "{} monitor[{}]: {message}",
        format_time(SystemTime::now()),
        std::process::id()
    );
}

/// A reply on the control channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reply {
    /// The container is created; its init process has this pid.
    Created {
        /// The init's pid.
        pid: i32,
    },
    /// The container is started.
    Started(bool),
    /// The step failed.
    Error(String),
}

/// The control channel: commands on stdin, replies on stdout.
struct Control {
    input: std::io::StdinLock<'static>,
    output: std::io::Stdout,
}

impl Control {
    fn new() -> Self {
        Self {
            input: std::io::stdin().lock(),
            output: std::io::stdout(),
        }
    }

    fn reply(&mut self, reply: &Reply) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.output.write_all(&line)?;
        self.output.flush()
    }

    /// The next command; `None` once the engine closed the channel.
    fn command(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_owned()),
        }
    }
}

/// The container's stdio, the monitor's ends.
enum Io {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Tty {
        master: OwnedFd,
    },
}

/// The container's stdio before the runtime runs it.
enum Launch {
    /// A terminal: the runtime sends its master over this socket.
    Tty {
        console: UnixListener,
        socket: SocketPath,
    },
    /// Pipes: the monitor's ends and the container's.
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
        child: CreateStdio,
    },
}

/// Runs the container (`run --detach`) with its stdio; its init's pid and
/// the monitor's side of the stdio.
fn launch(
    dir: &Path,
    config: &MonitorConfig,
    runtime: &Runtime,
    launch: Launch,
) -> Result<(Pid, Io), String> {
    let pid_file = dir.join(CONTAINER_PID_FILE);
    let io = match launch {
        Launch::Tty { console, socket } => {
            let null = || CreateStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            };
            let ran = runtime.run_detached(
                &config.id,
                &config.bundle,
                &pid_file,
                Some(socket.path()),
                null(),
            );
            let master = ran.and_then(|()| {
                receive_console(&console).map_err(|e| format!("receive the terminal: {e}"))
            });
            let _ = std::fs::remove_file(dir.join(CONSOLE_SOCKET));
            Io::Tty { master: master? }
        }
        Launch::Pipes {
            stdin,
            stdout,
            stderr,
            child,
        } => {
            runtime.run_detached(&config.id, &config.bundle, &pid_file, None, child)?;
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            }
        }
    };
    let init = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("the runtime wrote no pid to {}", pid_file.display()))?;
    Ok((init, io))
}

/// A prepared container, not yet run.
struct Prepared {
    dir: PathBuf,
    config: MonitorConfig,
    runtime: Runtime,
    rt: tokio::runtime::Runtime,
    launch: Launch,
    log: LogWriter,
    listener: UnixListener,
    child_signal: Signal,
    _hangup: Signal,
}

/// The main of a monitor on standby (`servin-guest monitor --standby
/// ROOT`): waits for the engine to write the folder of a container under
/// `ROOT` on stdin, sends its stderr to that folder's `monitor.log`, then
/// carries on as [`run`]. Exits quietly when stdin closes first.
pub fn standby(root: &Path) -> ExitCode {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(n) if n > 0 => {}
        _ => return ExitCode::SUCCESS,
    }
    let dir = PathBuf::from(line.trim_end_matches('\n'));
    if !dir.starts_with(root) || dir == root {
        let message = format!(
            "{} is not a container folder under {}",
            dir.display(),
            root.display()
        );
        let _ = Control::new().reply(&Reply::Error(message));
        return ExitCode::FAILURE;
    }
    let log = dir.join(super::MONITOR_LOG);
    match std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
    {
        Ok(file) => {
            if let Err(e) = rustix::stdio::dup2_stderr(&file) {
                let _ = Control::new().reply(&Reply::Error(format!(
                    "send the monitor's diagnostics to {}: {e}",
                    log.display()
                )));
                return ExitCode::FAILURE;
            }
        }
        Err(e) => {
            let _ = Control::new().reply(&Reply::Error(format!("open {}: {e}", log.display())));
            return ExitCode::FAILURE;
        }
    }
    run(&dir)
}

/// The monitor process's main: `servin-guest monitor DIR`.
pub fn run(dir: &Path) -> ExitCode {
    let dir = match std::path::absolute(dir) {
        Ok(dir) => dir,
        Err(e) => {
            note(&format!("resolve {}: {e}", dir.display()));
            return ExitCode::FAILURE;
        }
    };
    let mut control = Control::new();
    let prepared = match prepare(&dir) {
        Ok(prepared) => prepared,
        Err(message) => {
            note(&format!("create: {message}"));
            let _ = control.reply(&Reply::Error(message));
            return ExitCode::FAILURE;
        }
    };
    let id = prepared.config.id.clone();
    let abandon = |prepared: &Prepared| {
        prepared.runtime.delete(&id);
        let _ = std::fs::remove_file(prepared.dir.join(ATTACH_SOCKET));
    };
    // "created": the attach socket is bound and the stdio is ready; the pid
    // is known once the container runs (the engine reads container.pid).
    if let Err(e) = control.reply(&Reply::Created { pid: 0 }) {
        note(&format!(
            "report creation to the engine: {e}; deleting the container"
        ));
        abandon(&prepared);
        return ExitCode::FAILURE;
    }
    loop {
        match control.command().as_deref() {
            Some("start") => break,
            Some("abort") | None => {
                note("aborted before start; deleting the container");
                abandon(&prepared);
                return ExitCode::SUCCESS;
            }
            Some(other) => {
                let _ = control.reply(&Reply::Error(format!("unknown command {other:?}")));
            }
        }
    }
    let Prepared {
        dir,
        config,
        runtime,
        rt,
        launch: pending,
        log,
        listener,
        mut child_signal,
        _hangup,
    } = prepared;
    let (init, io) = match launch(&dir, &config, &runtime, pending) {
        Ok(ran) => ran,
        Err(message) => {
            note(&format!("start: {message}"));
            let _ = control.reply(&Reply::Error(message));
            runtime.delete(&id);
            let _ = std::fs::remove_file(dir.join(ATTACH_SOCKET));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = control.reply(&Reply::Started(true)) {
        note(&format!("report the start to the engine: {e}; carrying on"));
    }
    drop(control);
    drop(runtime);
    serve_blocking(dir, config, rt, init, io, log, listener, &mut child_signal)
}

#[allow(clippy::too_many_arguments)]
fn serve_blocking(
    dir: PathBuf,
    config: MonitorConfig,
    rt: tokio::runtime::Runtime,
    init: Pid,
    io: Io,
    log: LogWriter,
    listener: UnixListener,
    child_signal: &mut Signal,
) -> ExitCode {
    let result = rt.block_on(serve(Serve {
        dir,
        config,
        init,
        io,
        log,
        listener,
        child_signal,
    }));
    match result {
        Ok(record) => {
            note(&format!("container exited with code {}", record.code));
            ExitCode::SUCCESS
        }
        Err(message) => {
            note(&message);
            ExitCode::FAILURE
        }
    }
}

/// Everything up to a created container: config, subreaper, stdio, the
/// runtime's `create`, the attach socket.
fn prepare(dir: &Path) -> Result<Prepared, String> {
    write_atomic(
        &dir.join(PID_FILE),
        std::process::id().to_string().as_bytes(),
    )
    .map_err(|e| e.full_message())?;
    for stale in [EXIT_FILE, CONTAINER_PID_FILE, ATTACH_SOCKET, CONSOLE_SOCKET] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let config_path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read(&config_path).map_err(|e| format!("read {}: {e}", config_path.display()))?;
    let config: MonitorConfig = serde_json::from_slice(&text)
        .map_err(|e| format!("monitor config {}: {e}", config_path.display()))?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| format!("become a child subreaper: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    let (hangup, child_signal) =
        rt.block_on(async { (signal(SignalKind::hangup()), signal(SignalKind::child())) });
    let hangup = hangup.map_err(|e| format!("catch SIGHUP: {e}"))?;
    let child_signal = child_signal.map_err(|e| format!("catch SIGCHLD: {e}"))?;
    let log = LogWriter::open(config.log.clone()).map_err(|e| e.full_message())?;
    let runtime = Runtime {
        binary: config.runtime.clone(),
        root: config.runtime_root.clone(),
        log: dir.join(RUNTIME_LOG),
    };
    // A failed create is cleaned up with `delete -f`: that must never hit
    // a container this monitor did not make.
    if runtime.exists(&config.id) {
        return Err(format!(
            "container {} already exists in the runtime",
            config.id
        ));
    }
    // The container's stdio, ready for the runtime; it runs on "start".
    let launch = if config.tty {
        let socket = SocketPath::new(dir, CONSOLE_SOCKET).map_err(|e| e.full_message())?;
        let console = UnixListener::bind(socket.path())
            .map_err(|e| format!("bind {}: {e}", dir.join(CONSOLE_SOCKET).display()))?;
        Launch::Tty { console, socket }
    } else {
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| format!("make a pipe: {e}"))
        };
        let (stdout, stdout_child) = pipe()?;
        let (stderr, stderr_child) = pipe()?;
        let (stdin, stdin_child) = if config.open_stdin {
            let (read, write) = pipe()?;
            (Some(write), Stdio::from(read))
        } else {
            (None, Stdio::null())
        };
        Launch::Pipes {
            stdin,
            stdout,
            stderr,
            child: CreateStdio {
                stdin: stdin_child,
                stdout: Stdio::from(stdout_child),
                stderr: Stdio::from(stderr_child),
            },
        }
    };
    let listener = SocketPath::new(dir, ATTACH_SOCKET)
        .map_err(|e| e.full_message())
        .and_then(|socket| {
            UnixListener::bind(socket.path())
                .map_err(|e| format!("bind {}: {e}", dir.join(ATTACH_SOCKET).display()))
        });
    let listener = match listener {
        Ok(listener) => listener,
        Err(message) => {
            runtime.delete(&config.id);
            return Err(message);
        }
    };
    Ok(Prepared {
        dir: dir.to_path_buf(),
        config,
        runtime,
        rt,
        launch,
        log,
        listener,
        child_signal,
        _hangup: hangup,
    })
}

/// Takes the pty master the runtime sent while creating the container.
fn receive_console(console: &UnixListener) -> std::io::Result<OwnedFd> {
    console.set_nonblocking(true)?;
    let (stream, _) = console.accept()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CONSOLE_TIMEOUT))?;
    pty::receive_master(&stream)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the runtime connected but sent no terminal",
        )
    })
}

struct Serve<'a> {
    dir: PathBuf,
    config: MonitorConfig,
    init: Pid,
    io: Io,
    log: LogWriter,
    listener: UnixListener,
    child_signal: &'a mut Signal,
}

async fn serve(s: Serve<'_>) -> Result<ExitRecord, String> {
    let hub = Arc::new(Hub::new(s.log));
    let (stdin_tx, stdin_rx) = mpsc::channel(64);
    // Clients that connected before the start get all of the output.
    s.listener
        .set_nonblocking(true)
        .map_err(|e| format!("set up the attach socket: {e}"))?;
    loop {
        match s.listener.accept() {
            Ok((stream, _)) => match stream
                .set_nonblocking(true)
                .and_then(|()| UnixStream::from_std(stream))
            {
                Ok(stream) => hub.add_client(stream, stdin_tx.clone(), s.config.stdin_once),
                Err(e) => note(&format!("take an attach client: {e}")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                note(&format!("accept an attach client: {e}"));
                break;
            }
        }
    }
    let listener = tokio::net::UnixListener::from_std(s.listener)
        .map_err(|e| format!("set up the attach socket: {e}"))?;
    let open_stdin = s.config.open_stdin;
    let (readers, sink, pty): (Vec<(LogStream, Box<dyn AsyncRead + Send + Unpin>)>, _, _) = match s
        .io
    {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let receiver = |fd| {
                tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
                    .map_err(|e| format!("set up the container's output: {e}"))
            };
            let stdout: Box<dyn AsyncRead + Send + Unpin> = Box::new(receiver(stdout)?);
            let stderr: Box<dyn AsyncRead + Send + Unpin> = Box::new(receiver(stderr)?);
            let sink: Option<Box<dyn AsyncWrite + Send + Unpin>> = match stdin {
                Some(fd) => Some(Box::new(
                    tokio::net::unix::pipe::Sender::from_owned_fd(fd)
                        .map_err(|e| format!("set up the container's stdin: {e}"))?,
                )),
                None => None,
            };
            (
                vec![(LogStream::Stdout, stdout), (LogStream::Stderr, stderr)],
                sink,
                None,
            )
        }
        Io::Tty { master } => {
            let master = PtyMaster::new(master).map_err(|e| format!("set up the terminal: {e}"))?;
            let sink: Option<Box<dyn AsyncWrite + Send + Unpin>> = if open_stdin {
                Some(Box::new(master.clone()))
            } else {
                None
            };
            (
                vec![(LogStream::Stdout, Box::new(master.clone()) as Box<_>)],
                sink,
                Some(master),
            )
        }
    };
    tokio::spawn(stdin_writer(stdin_rx, sink, pty));
    let mut pumps: Vec<JoinHandle<()>> = readers
        .into_iter()
        .map(|(stream, reader)| tokio::spawn(pump(reader, stream, hub.clone())))
        .collect();
    let acceptor = {
        let hub = hub.clone();
        let stdin_once = s.config.stdin_once;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => hub.add_client(stream, stdin_tx.clone(), stdin_once),
                    Err(e) => {
                        note(&format!("accept an attach client: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    };

    let code = wait_init(s.init, s.child_signal).await;
    let finished_at = format_time(SystemTime::now());
    let oom_killed = s.config.memory_cgroup.as_deref().is_some_and(oom_killed);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        for pump in &mut pumps {
            let _ = pump.await;
        }
    })
    .await;
    if drained.is_err() {
        note("the container's output is still open after its init exited; no longer reading it");
        for pump in &pumps {
            pump.abort();
        }
        hub.end(LogStream::Stdout);
        hub.end(LogStream::Stderr);
    }
    reap_others();
    let record = ExitRecord {
        code,
        finished_at,
        oom_killed,
    };
    let written = serde_json::to_vec(&record)
        .map_err(|e| format!("exit record: {e}"))
        .and_then(|json| write_atomic(&s.dir.join(EXIT_FILE), &json).map_err(|e| e.full_message()));
    // Clients accepted until now get the exit frame; later ones find the
    // socket gone, or closed, and exit.json written.
    acceptor.abort();
    hub.finish(&record).await;
    let _ = std::fs::remove_file(s.dir.join(ATTACH_SOCKET));
    written.map(|()| record)
}

/// Waits for the init process to exit (reaping every other child that
/// does meanwhile); its exit status, or 128 + the signal that killed it.
async fn wait_init(init: Pid, child_signal: &mut Signal) -> i32 {
    loop {
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    if pid == init {
                        return status
                            .exit_status()
                            .or_else(|| status.terminating_signal().map(|signal| 128 + signal))
                            .unwrap_or(255);
                    }
                }
                Ok(None) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::CHILD) => return wait_foreign(init).await,
                Err(e) => {
                    note(&format!("wait for children: {e}"));
                    break;
                }
            }
        }
        if child_signal.recv().await.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits for an init process that is not the monitor's child (it should
/// always be: the monitor is a subreaper); its status is unknown.
async fn wait_foreign(init: Pid) -> i32 {
    note(&format!(
        "the container's init {} is not a child of the monitor; its exit status will be unknown",
        init.as_raw_nonzero()
    ));
    while rustix::process::test_kill_process(init).is_ok() && !zombie(init) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    255
}

/// Whether `pid` has exited and waits to be reaped (by someone else).
fn zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(") ")?;
            after_name.chars().next()
        })
        .is_some_and(|state| state == 'Z')
}

/// Reaps children that exited and nobody waits for.
fn reap_others() {
    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
}

/// Whether the memory cgroup counted an OOM kill (v1 `memory.oom_control`,
/// v2 `memory.events`).
fn oom_killed(cgroup: &Path) -> bool {
    for file in ["memory.oom_control", "memory.events"] {
        if let Ok(text) = std::fs::read_to_string(cgroup.join(file)) {
            return text.lines().any(|line| {
                let mut fields = line.split_whitespace();
                fields.next() == Some("oom_kill")
                    && fields
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
            });
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replies_are_one_json_object_each() {
        let json = |r: &Reply| serde_json::to_string(r).unwrap();
        assert_eq!(
            json(&Reply::Created { pid: 42 }),
            r#"{"created":{"pid":42}}"#
        );
        assert_eq!(json(&Reply::Started(true)), r#"{"started":true}"#);
        assert_eq!(json(&Reply::Error("no".into())), r#"{"error":"no"}"#);
    }

    #[test]
    fn oom_kills_are_read_from_v1_and_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!oom_killed(dir.path()));
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        assert!(!oom_killed(dir.path()));
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert!(oom_killed(dir.path()));
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(
            v2.path().join("memory.events"),
            "low 0\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(oom_killed(v2.path()));
    }
}
