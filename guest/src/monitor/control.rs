//! The engine's side of a monitor: starting it, driving its control
//! channel until the container is started, and waiting for the container
//! to exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::attach::{self, Frame};
use super::supervise::Reply;
use super::{CONFIG_FILE, ExitRecord, MONITOR_LOG, MonitorConfig, alive, read_exit, write_atomic};
use crate::error::{Error, Result};

/// The longest control line read from a monitor.
const MAX_REPLY: u64 = 64 * 1024;

/// Makes a configured path absolute (the monitor runs in `/`); a bare
/// program name is left to the `PATH` lookup.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.components().count() == 1 && path.is_relative() {
        return Ok(path.to_path_buf());
    }
    std::path::absolute(path).map_err(Error::io("resolve", path))
}

/// Writes `DIR/monitor.json`, starts `exe monitor DIR` in its own process
/// group (stderr appended to `DIR/monitor.log`) and waits until it has
/// created the container.
///
/// An error names the container and the step; its message is the
/// runtime's (e.g. runc's `exec: "x": executable file not found in $PATH`).
pub async fn spawn(exe: &Path, dir: &Path, config: &MonitorConfig) -> Result<Created> {
    spawn_with(exe, dir, config, None).await
}

/// A monitor started ahead of need (`exe monitor --standby ROOT`), waiting
/// on its stdin for the folder of the container it is to run. Handing one
/// to [`spawn_with`] saves starting a process on the container's start.
/// Dropping it closes its stdin, and it exits.
pub struct Standby {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Standby {
    /// Starts a standby monitor for containers under `root` (its stderr
    /// goes nowhere until it is given a folder, then to the folder's
    /// `monitor.log`).
    pub fn start(exe: &Path, root: &Path) -> Result<Self> {
        let mut child = tokio::process::Command::new(exe)
            .arg("monitor")
            .arg(super::STANDBY_FLAG)
            .arg(root)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(Error::io("run", exe))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Runtime {
                context: "standby monitor".into(),
                message: "its control pipes are missing".into(),
            });
        };
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Whether the process still waits.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends the waiting monitor (its stdin closed, it exits with no
    /// container to run) and waits for it.
    pub async fn end(self) -> Result<()> {
        let Self {
            mut child,
            stdin,
            stdout,
        } = self;
        drop((stdin, stdout));
        child
            .wait()
            .await
            .map(drop)
            .map_err(Error::io("wait for", Path::new("the standby monitor")))
    }
}

/// [`spawn`], handing the container to `standby` when one is given and
/// still alive (a fresh monitor is started otherwise).
pub async fn spawn_with(
    exe: &Path,
    dir: &Path,
    config: &MonitorConfig,
    standby: Option<Standby>,
) -> Result<Created> {
    let dir = std::path::absolute(dir).map_err(Error::io("resolve", dir))?;
    let mut config = config.clone();
    config.runtime = absolute(&config.runtime)?;
    config.runtime_root = std::path::absolute(&config.runtime_root)
        .map_err(Error::io("resolve", &config.runtime_root))?;
    config.bundle =
        std::path::absolute(&config.bundle).map_err(Error::io("resolve", &config.bundle))?;
    config.log.path =
        std::path::absolute(&config.log.path).map_err(Error::io("resolve", &config.log.path))?;
    if let Some(cgroup) = &config.memory_cgroup {
        config.memory_cgroup =
            Some(std::path::absolute(cgroup).map_err(Error::io("resolve", cgroup))?);
    }
    let json = serde_json::to_vec_pretty(&config).map_err(Error::json(format!(
        "monitor config of container {}",
        config.id
    )))?;
    write_atomic(&dir.join(CONFIG_FILE), &json)?;
    if let Some(mut standby) = standby.filter(|_| dir.to_str().is_some_and(|d| !d.contains('\n')))
        && standby.alive()
        && standby
            .stdin
            .write_all(format!("{}\n", dir.display()).as_bytes())
            .await
            .is_ok()
        && standby.stdin.flush().await.is_ok()
    {
        let monitor_pid = standby
            .child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_default();
        let channel = Channel {
            id: config.id.clone(),
            dir,
            child: standby.child,
            stdin: standby.stdin,
            stdout: BufReader::new(standby.stdout),
        };
        return created(channel, monitor_pid).await;
    }
    let log_path = dir.join(MONITOR_LOG);
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::io("open", &log_path))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("monitor")
        .arg(&dir)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(Error::io("run", exe))?;
    let monitor_pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .unwrap_or_default();
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::Runtime {
            context: format!("container {}: create", config.id),
            message: "the monitor's control pipes are missing".into(),
        });
    };
    let channel = Channel {
        id: config.id.clone(),
        dir,
        child,
        stdin,
        stdout: BufReader::new(stdout),
    };
    created(channel, monitor_pid).await
}

/// Waits for the monitor's "created".
async fn created(mut channel: Channel, monitor_pid: i32) -> Result<Created> {
    match channel.reply("create").await? {
        Reply::Created { pid } => Ok(Created {
            monitor_pid,
            pid,
            channel,
        }),
        Reply::Error(message) => {
            let _ = channel.child.wait().await;
            Err(channel.error("create", message))
        }
        Reply::Started(_) => Err(channel.error("create", "the monitor replied out of turn".into())),
    }
}

/// The control pipes of a monitor that has not started its container yet.
struct Channel {
    id: String,
    dir: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Channel {
    fn error(&self, step: &str, message: String) -> Error {
        Error::Runtime {
            context: format!("container {}: {step}", self.id),
            message,
        }
    }

    async fn send(&mut self, command: &str) -> std::io::Result<()> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await
    }

    /// The monitor's next reply; an error when it died instead.
    async fn reply(&mut self, step: &str) -> Result<Reply> {
        let mut line = String::new();
        let read = (&mut self.stdout)
            .take(MAX_REPLY)
            .read_line(&mut line)
            .await;
        if let Ok(n) = read
            && n > 0
        {
            return serde_json::from_str(line.trim()).map_err(Error::json(format!(
                "reply of the monitor of container {}",
                self.id
            )));
        }
        let status = match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("status unknown: {e}"),
        };
        let last = std::fs::read_to_string(self.dir.join(MONITOR_LOG))
            .ok()
            .and_then(|log| log.lines().last().map(str::to_owned))
            .unwrap_or_default();
        Err(self.error(step, format!("the monitor exited ({status}): {last}")))
    }
}

/// A container created by its monitor, waiting to be started. Dropping it
/// closes the control channel, which makes the monitor delete the
/// container.
pub struct Created {
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The container's init pid.
    pub pid: i32,
    channel: Channel,
}

impl Created {
    /// Starts the container. Clients attached before this get all of its
    /// output. When it fails the monitor deletes the container and exits.
    pub async fn start(mut self) -> Result<()> {
        if let Err(e) = self.channel.send("start").await {
            return Err(self
                .channel
                .error("start", format!("tell the monitor: {e}")));
        }
        match self.channel.reply("start").await? {
            Reply::Started(_) => Ok(()),
            Reply::Error(message) => {
                let _ = self.channel.child.wait().await;
                Err(self.channel.error("start", message))
            }
            Reply::Created { .. } => Err(self
                .channel
                .error("start", "the monitor replied out of turn".into())),
        }
    }

    /// Has the monitor delete the container and exit; waits for it.
    pub async fn abort(mut self) -> Result<()> {
        // A monitor that is already gone has nothing left to abort.
        let _ = self.channel.send("abort").await;
        let status = self.channel.child.wait().await.map_err(|e| {
            self.channel
                .error("abort", format!("wait for the monitor: {e}"))
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(self
                .channel
                .error("abort", format!("the monitor exited ({status})")))
        }
    }
}

/// Waits until the container of the monitor of `dir` has exited; its exit
/// record, or `None` when the monitor is gone without writing one. Returns
/// at once for a container that already exited.
pub async fn wait(dir: &Path) -> Result<Option<ExitRecord>> {
    loop {
        if let Ok((mut reader, _writer)) = attach::connect(dir).await {
            while let Ok(Some(frame)) = reader.next().await {
                if let Frame::Exit(record) = frame {
                    return Ok(Some(record));
                }
            }
        }
        if let Some(record) = read_exit(dir)? {
            return Ok(Some(record));
        }
        if !alive(dir) {
            // It may have written the record just before going.
            return read_exit(dir);
        }
        // Connected between the monitor's last accept and its exit.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
