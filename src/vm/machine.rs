//! The [`Machine`] trait and its QEMU backend.
//!
//! A machine is one persistent VM: started detached (its host supervisor
//! outlives the command that started it), found again by its files in the
//! VM folder, stopped cleanly (containers stopped through the engine's API
//! with their own stop signals, then the guest powered off), and killed
//! when it does not stop in time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::MachineError;
use super::paths::VmPaths;
use super::supervisor::{self, MachineInfo, read_pid};

/// How long a VM has to answer after it was started (emulation is slow).
pub const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `stop` waits for the guest to power off before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a machine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Stopped,
    /// The supervisor runs but the engine does not answer (yet).
    Starting {
        supervisor_pid: u32,
    },
    Running {
        supervisor_pid: u32,
        info: Option<MachineInfo>,
    },
}

/// What `start` found or did.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    Started { seconds: f64 },
    AlreadyRunning { supervisor_pid: u32 },
}

/// What `stop` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    NotRunning,
    PoweredOff { containers: usize },
    Killed { containers: usize },
}

/// One VM that runs the engine; the QEMU backend is [`QemuMachine`]. A
/// macOS Virtualization.framework backend is another implementation: it
/// starts its VM in its own supervisor process and hands the same channel
/// sockets to the host.
pub trait Machine {
    /// Starts the VM (if it is not running) and waits until its engine
    /// answers; `progress` gets one line per step.
    fn start(&self, progress: &mut dyn FnMut(&str)) -> Result<Started, MachineError>;
    /// Stops containers through the engine, powers the guest off, and kills
    /// it when that takes longer than [`STOP_TIMEOUT`].
    fn stop(&self, progress: &mut dyn FnMut(&str)) -> Result<Stopped, MachineError>;
    fn status(&self) -> Status;
    /// The guest's console log.
    fn console_log(&self) -> PathBuf;
    /// The host socket of the engine's API (what servin and docker use).
    fn engine_socket(&self) -> PathBuf;
    /// Sends control commands to the guest ([`servin_guest`'s `control`
    /// stream]) and returns their answers.
    fn control(&self, commands: &[&str]) -> Result<Vec<String>, MachineError>;
}

/// The QEMU backend: a supervisor process (`servin vm supervise`) owns
/// QEMU; this side starts it and finds it by its files.
#[derive(Debug, Clone)]
pub struct QemuMachine {
    pub paths: VmPaths,
    /// The `servin` binary that runs `vm supervise`.
    pub servin: PathBuf,
}

/// Whether a process is alive (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command's closing parenthesis.
    !stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

fn kill(pid: u32, signal: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, signal);
    }
}

/// `GET /_ping` on a unix socket, with a short deadline.
pub fn ping(socket: &std::path::Path, timeout: Duration) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: servin\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.starts_with("HTTP/1.") && text.contains(" 200 ")
}

fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    let t = all[from..].join("\n");
    if t.is_empty() {
        format!("({} is empty)", path.display())
    } else {
        t
    }
}

impl QemuMachine {
    pub fn new(paths: VmPaths) -> Result<Self, MachineError> {
        let servin = std::env::current_exe().map_err(|source| MachineError::Spawn {
            what: "servin vm supervise (finding servin itself)".into(),
            source,
        })?;
        Ok(Self { paths, servin })
    }

    fn supervisor_pid(&self) -> Option<u32> {
        read_pid(&self.paths.supervisor_pid()).filter(|p| alive(*p))
    }

    /// A QEMU left running by a supervisor that was killed: it still holds
    /// the disk. Killed only when its command line names this VM's disk.
    fn kill_orphan_qemu(&self) {
        let Some(pid) = read_pid(&self.paths.qemu_pid()).filter(|p| alive(*p)) else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let disk = self.paths.disk();
        let disk = disk.to_string_lossy();
        if String::from_utf8_lossy(&cmdline).contains(disk.as_ref()) {
            kill(pid, rustix::process::Signal::KILL);
            let began = Instant::now();
            while alive(pid) && began.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn wait_ready(
        &self,
        began: Instant,
        supervisor: &mut std::process::Child,
    ) -> Result<(), MachineError> {
        loop {
            if ping(&self.paths.engine_socket(), Duration::from_secs(5)) {
                return Ok(());
            }
            if let Ok(Some(status)) = supervisor.try_wait() {
                return Err(MachineError::SupervisorExited {
                    status: status.to_string(),
                    log: tail(&self.paths.supervisor_log(), 15),
                    console: tail(&self.paths.console_log(), 25),
                });
            }
            if began.elapsed() > START_TIMEOUT {
                return Err(MachineError::StartTimeout {
                    secs: START_TIMEOUT.as_secs(),
                    console: tail(&self.paths.console_log(), 25),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Machine for QemuMachine {
    fn start(&self, progress: &mut dyn FnMut(&str)) -> Result<Started, MachineError> {
        let dir = &self.paths.dir;
        std::fs::create_dir_all(self.paths.state()).map_err(MachineError::file(dir))?;
        // One starter at a time; a second waits, then finds the VM up.
        let lock_path = self.paths.start_lock();
        let lock = std::fs::File::create(&lock_path).map_err(MachineError::file(&lock_path))?;
        lock.lock().map_err(MachineError::file(&lock_path))?;
        let began = Instant::now();
        if let Some(pid) = self.supervisor_pid() {
            if ping(&self.paths.engine_socket(), Duration::from_secs(5)) {
                return Ok(Started::AlreadyRunning {
                    supervisor_pid: pid,
                });
            }
            // Started by someone else and still booting: wait for it.
            progress("waiting for the VM another servin started");
            loop {
                if ping(&self.paths.engine_socket(), Duration::from_secs(5)) {
                    return Ok(Started::AlreadyRunning {
                        supervisor_pid: pid,
                    });
                }
                if !alive(pid) || began.elapsed() > START_TIMEOUT {
                    return Err(MachineError::StartTimeout {
                        secs: START_TIMEOUT.as_secs(),
                        console: tail(&self.paths.console_log(), 25),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Nothing runs: whatever a killed VM left behind goes first.
        self.kill_orphan_qemu();
        supervisor::clean_state(&self.paths);
        progress("starting the VM");
        // The same checks the supervisor makes, here so that their errors
        // reach the user directly; the boot files it builds are reused.
        let (_, prepared) = super::launch::prepare(&self.paths)?;
        for folder in &prepared.unshared {
            progress(&format!(
                "{} is not shared with the VM: it is not a folder on this host (shares in {})",
                folder.display(),
                self.paths.config().display()
            ));
        }
        let log_path = self.paths.supervisor_log();
        let log = std::fs::File::create(&log_path).map_err(MachineError::file(&log_path))?;
        let log2 = log.try_clone().map_err(MachineError::file(&log_path))?;
        let mut child = Command::new(&self.servin)
            .args(["vm", "supervise"])
            .env("SERVIN_VM_DIR", dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|source| MachineError::Spawn {
                what: format!("{} vm supervise", self.servin.display()),
                source,
            })?;
        self.wait_ready(began, &mut child)?;
        Ok(Started::Started {
            seconds: began.elapsed().as_secs_f64(),
        })
    }

    fn stop(&self, progress: &mut dyn FnMut(&str)) -> Result<Stopped, MachineError> {
        let Some(pid) = self.supervisor_pid() else {
            self.kill_orphan_qemu();
            supervisor::clean_state(&self.paths);
            return Ok(Stopped::NotRunning);
        };
        let mut containers = 0;
        if ping(&self.paths.engine_socket(), Duration::from_secs(5)) {
            let engine = crate::client::Engine::at(crate::client::Address {
                socket: self.paths.engine_socket(),
                root: self.paths.dir.clone(),
            })?;
            let running = engine.containers(false)?;
            if !running.is_empty() {
                progress(&format!("stopping {} container(s)", running.len()));
            }
            for c in &running {
                if let Some(id) = &c.id {
                    // The engine sends each container's own stop signal and
                    // waits its own stop timeout.
                    engine.stop_container(id, None, None)?;
                    containers += 1;
                }
            }
        }
        progress("powering the VM off");
        let _ = self.control(&["poweroff"]);
        let began = Instant::now();
        while alive(pid) && began.elapsed() < STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !alive(pid) {
            return Ok(Stopped::PoweredOff { containers });
        }
        progress("the VM did not power off in time: killing it");
        if let Some(q) = read_pid(&self.paths.qemu_pid()) {
            kill(q, rustix::process::Signal::KILL);
        }
        let began = Instant::now();
        while alive(pid) && began.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            kill(pid, rustix::process::Signal::KILL);
        }
        self.kill_orphan_qemu();
        supervisor::clean_state(&self.paths);
        Ok(Stopped::Killed { containers })
    }

    fn status(&self) -> Status {
        match self.supervisor_pid() {
            None => Status::Stopped,
            Some(pid) if ping(&self.paths.engine_socket(), Duration::from_secs(2)) => {
                Status::Running {
                    supervisor_pid: pid,
                    info: MachineInfo::read(&self.paths),
                }
            }
            Some(pid) => Status::Starting {
                supervisor_pid: pid,
            },
        }
    }

    fn console_log(&self) -> PathBuf {
        self.paths.console_log()
    }

    fn engine_socket(&self) -> PathBuf {
        self.paths.engine_socket()
    }

    fn control(&self, commands: &[&str]) -> Result<Vec<String>, MachineError> {
        let path = self.paths.control_socket();
        let mut s = UnixStream::connect(&path).map_err(MachineError::file(&path))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut text = commands.join("\n");
        text.push('\n');
        s.write_all(text.as_bytes())
            .map_err(MachineError::file(&path))?;
        s.shutdown(std::net::Shutdown::Write)
            .map_err(MachineError::file(&path))?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .map_err(MachineError::file(&path))?;
        Ok(answer.lines().map(str::to_string).collect())
    }
}
