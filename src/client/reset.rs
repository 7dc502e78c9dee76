//! Resetting the engine (`servin system reset`): the engine removes
//! everything it made and stops (`POST /servin/v1/reset`); then its state
//! root and its socket go. An engine that is not running is started first:
//! it finds its objects again from its records, so the reset goes through
//! the one code that knows how to remove them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::Method;
use serde::Serialize;
use servin_proto::reset::{RESET_PATH, ResetReport};

use super::{Address, Engine, Error};

/// How long the engine has to stop once it answered.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What a reset did.
#[derive(Debug, Serialize)]
pub struct Reset {
    /// What the engine removed; `None` when there was no engine and no
    /// state root (nothing to remove).
    pub engine: Option<ResetReport>,
    /// The state root, removed.
    pub root: PathBuf,
    /// The socket, removed.
    pub socket: PathBuf,
}

impl Engine {
    /// `POST /servin/v1/reset`: the engine removes everything it made,
    /// answers what, and stops.
    pub fn reset(&self) -> Result<ResetReport, Error> {
        self.json(Method::POST, RESET_PATH, "reset the engine")
    }
}

/// Resets the engine of `SERVIN_ROOT` / `SERVIN_HOST`: everything it made,
/// then the engine itself, its state root and its socket.
pub fn reset() -> Result<Reset, Error> {
    let addr = Address::from_env();
    let answers = std::os::unix::net::UnixStream::connect(&addr.socket).is_ok();
    let engine = if answers || addr.root.exists() {
        let engine = Engine::connect()?;
        let report = engine.reset()?;
        if !report.errors.is_empty() {
            // The records stay, so that a second reset can finish the job.
            return Err(Error::ResetIncomplete {
                root: addr.root.clone(),
                errors: report.errors.join("\n"),
            });
        }
        wait_for_exit(report.engine_pid)?;
        Some(report)
    } else {
        None
    };
    remove_state(&addr)?;
    Ok(Reset {
        engine,
        root: addr.root,
        socket: addr.socket,
    })
}

/// Whether process `pid` is gone (a zombie, the engine this CLI started,
/// counts as gone).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn wait_for_exit(pid: u32) -> Result<(), Error> {
    let began = Instant::now();
    while !exited(pid) {
        if began.elapsed() > STOP_TIMEOUT {
            return Err(Error::EngineStillRunning {
                pid,
                secs: STOP_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Removes the state root and the socket, once nothing is mounted below
/// the root (deleting through a mount would delete what it shows).
fn remove_state(addr: &Address) -> Result<(), Error> {
    let file = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::File { path, source }
    };
    let root = std::path::absolute(&addr.root).map_err(file(&addr.root))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(file(Path::new("/proc/self/mountinfo")))?;
    let mounted = servin_values::mountinfo::mounts_below(&mountinfo, &root);
    if !mounted.is_empty() {
        let list: Vec<String> = mounted.iter().map(|m| m.display().to_string()).collect();
        return Err(Error::StillMounted {
            root,
            mounts: list.join("\n"),
        });
    }
    match std::fs::remove_dir_all(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file(&root)(e)),
    }
    match std::fs::remove_file(&addr.socket) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file(&addr.socket)(e)),
    }
}
