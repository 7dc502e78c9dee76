//! Starting a native engine on demand: find the binary, spawn it detached in
//! its own session with its output in `$SERVIN_ROOT/engine.log`, and wait
//! for it to answer. When two CLIs race, the second engine fails to bind the
//! socket and exits; both CLIs then see the first one answer.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Engine, Error};

/// How long a starting engine has to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The engine binary: `SERVIN_ENGINE`, else `servin-guest` next to the
/// current executable, else on `PATH`.
pub fn engine_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERVIN_ENGINE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join("servin-guest");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("servin-guest"))
            .find(|p| p.is_file())
    })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    let tail = lines[from..].join("\n");
    if tail.is_empty() {
        format!("({} is empty)", path.display())
    } else {
        tail
    }
}

/// Starts the engine and waits until it answers `/_ping`.
pub fn start(engine: &Engine) -> Result<(), Error> {
    let addr = &engine.addr;
    let binary = engine_binary().ok_or(Error::NoEngineBinary)?;
    let file = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::File { path, source }
    };
    let needs_root = |path: &Path| {
        let what = format!("{} is not writable by this user", path.display());
        let socket = addr.socket.clone();
        let path = path.to_path_buf();
        move |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::PermissionDenied => Error::NativeNeedsRoot { what, socket },
            _ => Error::File { path, source },
        }
    };
    std::fs::create_dir_all(&addr.root).map_err(needs_root(&addr.root))?;
    if let Some(dir) = addr.socket.parent() {
        std::fs::create_dir_all(dir).map_err(needs_root(dir))?;
    }
    // One starter at a time per state root: a second CLI waits here and
    // then finds the first one's engine answering.
    let lock_path = addr.root.join("engine.start.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied => Error::NativeNeedsRoot {
                what: format!("{} is not writable by this user", addr.root.display()),
                socket: addr.socket.clone(),
            },
            _ => Error::File {
                path: lock_path.clone(),
                source,
            },
        })?;
    lock.lock().map_err(file(&lock_path))?;
    if engine.ping().is_ok() {
        return Ok(());
    }
    let log_path = addr.root.join("engine.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(file(&log_path))?;
    let log2 = log.try_clone().map_err(file(&log_path))?;
    let mut child = Command::new(&binary)
        .arg("daemon")
        .env("SERVIN_ROOT", &addr.root)
        .env("SERVIN_HOST", addr.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            binary: binary.clone(),
            source,
        })?;
    let began = Instant::now();
    let mut exited = None;
    loop {
        if engine.ping().is_ok() {
            return Ok(());
        }
        if exited.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            exited = Some(status);
        }
        // An engine that lost the race to bind exits early; keep waiting
        // for the winner for a short while before giving up.
        if let Some(status) = exited
            && began.elapsed() > Duration::from_secs(2)
        {
            return Err(Error::EngineExited {
                addr: addr.to_string(),
                status: status.to_string(),
                log: log_tail(&log_path),
            });
        }
        if began.elapsed() > START_TIMEOUT {
            return Err(Error::StartTimeout {
                addr: addr.to_string(),
                secs: START_TIMEOUT.as_secs(),
                log: log_tail(&log_path),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
