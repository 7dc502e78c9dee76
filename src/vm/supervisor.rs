//! The host supervisor (`servin vm supervise`, started detached by `servin
//! vm start`): owns the QEMU process of one VM and everything the host
//! needs of it while it runs.
//!
//! It holds `vm-state/supervisor.lock` for its whole life (so there is
//! never a second one for the same VM), starts QEMU, keeps the channel
//! session up ([`super::channel`]), serves `engine.sock` and `control.sock`,
//! forwards published ports ([`super::ports`]) and keeps the guest's clock
//! ([`super::clock`]). When QEMU exits, for whatever reason, it removes the
//! sockets and pid files and exits too; the disk is left as QEMU left it,
//! and the next start checks it.
//!
//! SIGTERM asks the guest to power off (the engine stops first), waits a
//! bounded time, then kills QEMU.

use std::fs::File;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::channel::{self, Session};
use super::paths::VmPaths;
use super::{MachineError, clock, ports};

/// How long the guest has to power off before QEMU is killed.
pub const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);

/// How the running VM was started (`vm-state/machine.json`), for `servin
/// vm info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub accelerator: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub kernel: String,
    /// Unix seconds.
    pub started_at: u64,
    pub qemu_pid: u32,
    pub supervisor_pid: u32,
    /// The host folders shared into the guest.
    #[serde(default)]
    pub shares: Vec<std::path::PathBuf>,
    /// The folders of `vm-config.json`'s `shares` missing on the host when
    /// the VM started: not shared.
    #[serde(default)]
    pub unshared: Vec<std::path::PathBuf>,
}

impl MachineInfo {
    pub fn read(paths: &VmPaths) -> Option<Self> {
        let text = std::fs::read_to_string(paths.machine_json()).ok()?;
        serde_json::from_str(&text).ok()
    }
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), MachineError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(MachineError::file(&tmp))?;
    std::fs::rename(&tmp, path).map_err(MachineError::file(path))
}

/// Runs the supervisor until QEMU exits; returns QEMU's exit code.
pub fn supervise(
    paths: &VmPaths,
    mut qemu: Command,
    mut info: MachineInfo,
) -> Result<i32, MachineError> {
    let state = paths.state();
    std::fs::create_dir_all(&state).map_err(MachineError::file(&state))?;
    let lock_path = paths.supervisor_lock();
    let lock = File::create(&lock_path).map_err(MachineError::file(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(MachineError::AlreadyRunning {
            pid: read_pid(&paths.supervisor_pid()).unwrap_or(0),
        });
    }
    info.supervisor_pid = std::process::id();
    write_file(
        &paths.supervisor_pid(),
        &format!("{}\n", info.supervisor_pid),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(MachineError::Runtime)?;
    let result = rt.block_on(async move {
        let mut child = tokio::process::Command::from({
            qemu.stdout(std::process::Stdio::inherit());
            qemu
        })
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| MachineError::Spawn {
            what: "QEMU".into(),
            source,
        })?;
        info.qemu_pid = child.id().unwrap_or(0);
        write_file(&paths.qemu_pid(), &format!("{}\n", info.qemu_pid))?;
        let json = serde_json::to_string_pretty(&info).unwrap_or_default();
        write_file(&paths.machine_json(), &json)?;
        channel::log(&format!(
            "QEMU started (pid {}, {}, {} cpus, {} MiB)",
            info.qemu_pid, info.accelerator, info.cpus, info.memory_mib
        ));

        let (tx, session): (watch::Sender<Option<servin_mux::Mux>>, Session) = watch::channel(None);
        tokio::spawn(channel::keep_session(paths.channel(), tx));
        let engine = channel::bind_private(&paths.engine_socket())
            .map_err(MachineError::file(&paths.engine_socket()))?;
        let control = channel::bind_private(&paths.control_socket())
            .map_err(MachineError::file(&paths.control_socket()))?;
        tokio::spawn(channel::serve_socket(engine, session.clone(), "engine"));
        tokio::spawn(channel::serve_socket(control, session.clone(), "control"));
        tokio::spawn(ports::follow(session.clone()));
        tokio::spawn(clock::keep(session.clone()));
        {
            let mut s = session.clone();
            tokio::spawn(async move {
                if s.wait_for(Option::is_some).await.is_ok() {
                    channel::log("channel session up: the engine is ready");
                }
            });
        }

        let mut term = signal(SignalKind::terminate()).map_err(MachineError::Runtime)?;
        let mut hup = signal(SignalKind::hangup()).map_err(MachineError::Runtime)?;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = hup.recv() => {}
                _ = term.recv() => {
                    channel::log("SIGTERM: powering the guest off");
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        channel::control(&session, &["poweroff".to_string()]),
                    ).await;
                    match tokio::time::timeout(POWEROFF_TIMEOUT, child.wait()).await {
                        Ok(status) => break status,
                        Err(_) => {
                            channel::log("the guest did not power off in time: killing QEMU");
                            let _ = child.start_kill();
                            break child.wait().await;
                        }
                    }
                }
            }
        };
        let code = match status {
            Ok(s) => {
                channel::log(&format!("QEMU exited ({s})"));
                s.code().unwrap_or(1)
            }
            Err(e) => {
                channel::log(&format!("waiting for QEMU: {e}"));
                1
            }
        };
        Ok::<i32, MachineError>(code)
    });
    // Only this supervisor's files: a VM folder removed and made again
    // meanwhile belongs to another one.
    if read_pid(&paths.supervisor_pid()) == Some(std::process::id()) {
        clean_state(paths);
    }
    drop(lock);
    result
}

/// Removes what only a running VM has (sockets, pid files); the console
/// and supervisor logs stay for `servin vm logs`.
pub fn clean_state(paths: &VmPaths) {
    for p in [
        paths.engine_socket(),
        paths.control_socket(),
        paths.channel(),
        paths.qemu_pid(),
        paths.supervisor_pid(),
        paths.machine_json(),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

/// A pid file's pid.
pub fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
