//! `servin-guest init`: PID 1 of the VM, started by the initramfs's
//! `/init` (servin's stage 1, which mounts the read-only system disk under
//! a tmpfs overlay as the root) through `switch_root`.
//!
//! It boots the guest in this order, saying each failure on the console
//! as `servin-guest: error: ...` and then powering off:
//!
//! 1. mounts `/proc`, `/sys`, `/dev`, `/dev/pts`, `/dev/shm`, `/run`, `/tmp` and cgroup2
//!    with every controller delegated ([`system`]);
//! 2. sets the clock from `servin.epoch=` on the kernel command line, and
//!    has dirty pages written within about a second;
//! 3. loads the modules listed in `/etc/servin/modules` (those of
//!    `/etc/servin/modules.later`, for bridges, veth pairs, nftables and
//!    the balloon, load on a thread of their own while the
//!    engine starts; the engine waits for them before its first network);
//! 4. formats, checks (unless it was cleanly unmounted) and mounts the data disk `/dev/vda` on
//!    `/var/lib/servin` ([`disk`]);
//! 5. mounts the shared host folders at their host paths ([`shares`]);
//! 6. brings up `lo` and `eth0` ([`net`]);
//! 7. starts the engine (`servin-guest daemon`, state in `/var/lib/servin`,
//!    socket `/run/servin/engine.sock`, log `/var/lib/servin/engine.log`,
//!    the mounted shares in `SERVIN_VM_SHARES`, one per line, and the
//!    host's `vm-config.json` in `SERVIN_VM_CONFIG`),
//!    waits for `/_ping`, starts the channel to the host
//!    (`servin-guest channel /dev/virtio-ports/servin.channel
//!    /run/servin/engine.sock`) and prints exactly
//!    `servin-guest: engine ready`.
//!
//! Then it reaps every orphan, restarts the engine or the channel when
//! one dies, and on SIGTERM, SIGPWR, SIGINT (Ctrl-Alt-Del) or the ACPI
//! power button shuts down: SIGTERM to the engine (SIGKILL after
//! [`ENGINE_STOP`]), then to everything else, `sync`, unmount
//! `/var/lib/servin`, power off.
//!
//! The console lines the host may read are all prefixed `servin-guest: `;
//! `engine ready` and `error: ` are the ones it acts on.

pub mod disk;
pub mod net;
pub mod shares;
pub mod system;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};
use tokio::signal::unix::{SignalKind, signal};

/// Where the engine keeps its state: the data disk.
pub const STATE: &str = "/var/lib/servin";
/// The engine's socket inside the guest.
pub const ENGINE_SOCKET: &str = "/run/servin/engine.sock";
/// The virtio-serial port of the host-guest channel.
pub const CHANNEL_PORT: &str = "/dev/virtio-ports/servin.channel";
/// The guest's host name (what `docker info` shows as the engine's name).
pub const HOSTNAME: &str = "servin-vm";
/// The data disk.
pub const DISK: &str = "/dev/vda";
/// How long the engine has to answer `/_ping` after it starts.
pub const ENGINE_START: Duration = Duration::from_secs(60);
/// How long the engine has to exit after SIGTERM at shutdown.
pub const ENGINE_STOP: Duration = Duration::from_secs(10);

/// Prints `servin-guest: <line>` on the console.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "servin-guest: {line}");
    let _ = out.flush();
}

/// Runs as PID 1; returns only when not PID 1 (a mistaken start).
pub fn run() -> ExitCode {
    if rustix::process::getpid() != Pid::INIT {
        eprintln!(
            "error: servin-guest init runs as PID 1 of servin's VM (started by its initramfs)"
        );
        return ExitCode::from(2);
    }
    let began = Instant::now();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fatal(&format!("start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        if let Err(e) = boot().await {
            fatal(&e);
        }
        say(&format!("booted in {} ms", began.elapsed().as_millis()));
        supervise().await
    })
}

/// Says `message` as an error and powers off (nothing else can be done
/// without the engine: the host reads the message from the console).
fn fatal(message: &str) -> ! {
    for (i, line) in message.lines().enumerate() {
        say(&if i == 0 {
            format!("error: {line}")
        } else {
            line.to_string()
        });
    }
    halt()
}

#[expect(
    clippy::disallowed_methods,
    reason = "PID 1 ends the machine: the engine and every other process are gone by now"
)]
fn halt() -> ! {
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    // The kernel powers off; if it did not, PID 1 exiting panics the
    // kernel, which ends QEMU (`panic=-1`, `-no-reboot`).
    std::process::exit(1)
}

async fn boot() -> Result<(), String> {
    system::mount_base()?;
    let cmdline =
        std::fs::read_to_string("/proc/cmdline").map_err(|e| format!("read /proc/cmdline: {e}"))?;
    system::set_clock(&cmdline)?;
    system::tune_writeback()?;
    rustix::system::sethostname(HOSTNAME.as_bytes())
        .map_err(|e| format!("set the host name to {HOSTNAME}: {e}"))?;
    let t = Instant::now();
    let loaded = system::load_modules(Path::new("/etc/servin/modules"))?;
    let modules_ms = t.elapsed().as_millis();
    if !system::wait_for(Path::new(DISK), Duration::from_secs(10)).await {
        return Err(format!(
            "no data disk: {DISK} did not appear (QEMU was started without the virtio-blk disk?)"
        ));
    }
    let disk = disk::prepare(Path::new(DISK), Path::new(STATE))?;
    say(&format!(
        "loaded {loaded} modules in {modules_ms} ms; data disk {}{}",
        if disk.formatted {
            "formatted"
        } else if disk.clean {
            "clean"
        } else {
            "checked"
        },
        if disk.repaired {
            " and repaired by e2fsck"
        } else {
            ""
        }
    ));
    if let Some(used) = disk::percent_used(Path::new(STATE))
        && used >= 95
    {
        say(&format!(
            "warning: the data disk is {used}% full: remove images or volumes (servin system prune), or make it larger in vm-config.json"
        ));
    }
    let wanted = servin_values::share::Shares::from_cmdline(&cmdline)
        .map_err(|e| format!("the shared folders on the kernel command line: {e}"))?;
    let mounted = shares::mount_all(&wanted).await;
    let _ = ENGINE_ENV.set(engine_env(&mounted, wanted.config.as_deref()));
    net::configure(Duration::from_secs(10)).await?;
    std::fs::create_dir_all("/run/servin").map_err(|e| format!("create /run/servin: {e}"))?;
    Ok(())
}

/// What the engine is told about the VM: the shares mounted (one path a
/// line) and the host's `vm-config.json`, set once at boot.
static ENGINE_ENV: OnceLock<Vec<(&'static str, OsString)>> = OnceLock::new();

fn engine_env(
    mounted: &[std::path::PathBuf],
    config: Option<&Path>,
) -> Vec<(&'static str, OsString)> {
    let mut list = OsString::new();
    for (i, p) in mounted.iter().enumerate() {
        if i > 0 {
            list.push("\n");
        }
        list.push(p.as_os_str());
    }
    let mut env = vec![
        (crate::config::VM_SHARES_ENV, list),
        (crate::network::modules::ENV, OsString::from(MODULES_DONE)),
    ];
    if let Some(c) = config {
        env.push((crate::config::VM_CONFIG_ENV, c.as_os_str().to_owned()));
    }
    env
}

/// The file the init writes once the modules of
/// `/etc/servin/modules.later` are in: empty, or the error that stopped
/// it (the engine waits for it before its first network, see
/// `servin_guest::network::modules`).
const MODULES_DONE: &str = "/run/servin/modules.done";

/// Loads `/etc/servin/modules.later` on a thread of its own while the
/// engine starts, and says so in [`MODULES_DONE`].
fn load_later_modules() {
    let spawned = std::thread::Builder::new()
        .name("modules".into())
        .spawn(move || {
            let t = Instant::now();
            let outcome = match system::load_modules(Path::new("/etc/servin/modules.later")) {
                Ok(n) => {
                    say(&format!(
                        "loaded {n} more modules in {} ms",
                        t.elapsed().as_millis()
                    ));
                    String::new()
                }
                Err(e) => {
                    say(&format!("warning: networks will not work: {e}"));
                    e
                }
            };
            write_modules_done(&outcome);
        });
    if let Err(e) = spawned {
        write_modules_done(&format!("start a thread to load them: {e}"));
    }
}

/// Writes [`MODULES_DONE`] whole (a temporary file renamed).
fn write_modules_done(text: &str) {
    let tmp = format!("{MODULES_DONE}.tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, MODULES_DONE));
    if let Err(e) = written {
        say(&format!("warning: write {MODULES_DONE}: {e}"));
    }
}

/// A process PID 1 keeps running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Engine,
    Channel,
}

struct Children {
    pids: HashMap<Role, (Pid, Instant)>,
    /// The channel subcommand is missing from this engine build.
    no_channel: bool,
}

fn exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "/usr/bin/servin-guest".into())
}

fn base_command() -> std::process::Command {
    let mut c = std::process::Command::new(exe());
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .stdin(std::process::Stdio::null());
    c
}

fn spawn(role: Role) -> Result<Pid, String> {
    let mut c = base_command();
    match role {
        Role::Engine => {
            let log_path = Path::new(STATE).join("engine.log");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| format!("open {}: {e}", log_path.display()))?;
            let log2 = log
                .try_clone()
                .map_err(|e| format!("open {}: {e}", log_path.display()))?;
            c.envs(ENGINE_ENV.get().into_iter().flatten().map(|(k, v)| (k, v)));
            c.arg("daemon")
                .env("SERVIN_ROOT", STATE)
                .env("SERVIN_HOST", format!("unix://{ENGINE_SOCKET}"))
                .stdout(log)
                .stderr(log2);
        }
        Role::Channel => {
            c.args(["channel", CHANNEL_PORT, ENGINE_SOCKET]);
        }
    }
    let child = c
        .spawn()
        .map_err(|e| format!("start the {role:?} ({}): {e}", exe().display()))?;
    let pid =
        Pid::from_raw(child.id() as i32).ok_or_else(|| format!("start the {role:?}: no pid"))?;
    // PID 1 reaps it (see `reap`); the handle is not waited on.
    drop(child);
    Ok(pid)
}

/// Whether the engine answers `GET /_ping` on its socket.
async fn ping() -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::UnixStream::connect(ENGINE_SOCKET).await else {
        return false;
    };
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut head)).await;
    matches!(read, Ok(Ok(_))) && head.ends_with(b"200")
}

/// The last lines of the engine's log, for the console when it dies.
fn engine_log_tail() -> String {
    let text = std::fs::read_to_string(Path::new(STATE).join("engine.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Reaps every exited child; returns the roles that ended, with the
/// status.
fn reap(children: &mut Children) -> Vec<(Role, rustix::process::WaitStatus)> {
    let mut ended = Vec::new();
    while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
        if let Some(role) = children
            .pids
            .iter()
            .find(|(_, (p, _))| *p == pid)
            .map(|(r, _)| *r)
        {
            children.pids.remove(&role);
            ended.push((role, status));
        }
    }
    ended
}

fn start_channel(children: &mut Children) {
    if children.no_channel || !Path::new(CHANNEL_PORT).exists() {
        return;
    }
    match spawn(Role::Channel) {
        Ok(pid) => {
            children.pids.insert(Role::Channel, (pid, Instant::now()));
        }
        Err(e) => say(&format!("error: {e}")),
    }
}

/// Starts the engine and waits for it to answer.
async fn start_engine(children: &mut Children) -> Result<(), String> {
    let pid = spawn(Role::Engine)?;
    children.pids.insert(Role::Engine, (pid, Instant::now()));
    let began = Instant::now();
    loop {
        if ping().await {
            return Ok(());
        }
        for (role, status) in reap(children) {
            if role == Role::Engine {
                return Err(format!(
                    "the engine exited before answering ({status:?}); the end of {STATE}/engine.log:\n{}",
                    engine_log_tail()
                ));
            }
        }
        if began.elapsed() > ENGINE_START {
            return Err(format!(
                "the engine did not answer on {ENGINE_SOCKET} within {}s; the end of {STATE}/engine.log:\n{}",
                ENGINE_START.as_secs(),
                engine_log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn supervise() -> ExitCode {
    let (Ok(mut chld), Ok(mut term), Ok(mut pwr), Ok(mut int)) = (
        signal(SignalKind::child()),
        signal(SignalKind::terminate()),
        signal(SignalKind::from_raw(Signal::POWER.as_raw())),
        signal(SignalKind::interrupt()),
    ) else {
        fatal("install the signal handlers");
    };
    let (button_tx, mut button) = tokio::sync::mpsc::channel::<()>(1);
    power_button(button_tx);
    load_later_modules();
    let mut children = Children {
        pids: HashMap::new(),
        no_channel: false,
    };
    let began = Instant::now();
    if let Err(e) = start_engine(&mut children).await {
        fatal(&e);
    }
    say(&format!(
        "the engine answered in {} ms",
        began.elapsed().as_millis()
    ));
    let _ = system::link_virtio_ports();
    start_channel(&mut children);
    // What the boot wrote (a fresh file system, the engine's first state)
    // survives a kill from here on.
    rustix::fs::sync();
    say("engine ready");
    // What booting read and no longer needs (modules, e2fsck, the data
    // disk's metadata) leaves the page cache, so free page reporting can
    // give that memory back to the host.
    tokio::task::spawn_blocking(system::drop_caches);
    let mut restart_at: Option<Instant> = None;
    loop {
        let wait = restart_at
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = chld.recv() => {}
            _ = term.recv() => break,
            _ = pwr.recv() => break,
            _ = int.recv() => break,
            Some(()) = button.recv() => break,
            () = tokio::time::sleep(wait) => {}
        }
        for (role, status) in reap(&mut children) {
            match role {
                Role::Engine => {
                    say(&format!(
                        "the engine exited ({status:?}); restarting it. The end of its log:\n{}",
                        engine_log_tail()
                    ));
                    restart_at = Some(Instant::now() + Duration::from_secs(1));
                }
                Role::Channel => {
                    // Exit code 2 right away: this build has no channel.
                    if status.exit_status() == Some(2) {
                        say("this engine has no channel command: the host cannot reach it");
                        children.no_channel = true;
                    } else {
                        start_channel(&mut children);
                    }
                }
            }
        }
        if restart_at.is_some_and(|t| Instant::now() >= t) {
            restart_at = None;
            match start_engine(&mut children).await {
                Ok(()) => say("engine ready"),
                Err(e) => {
                    say(&format!("error: {e}"));
                    restart_at = Some(Instant::now() + Duration::from_secs(5));
                }
            }
        }
    }
    shutdown(&mut children).await;
    halt()
}

/// Stops everything and leaves the data disk clean.
async fn shutdown(children: &mut Children) {
    say("shutting down");
    if let Some((pid, _)) = children.pids.get(&Role::Engine).copied() {
        let _ = rustix::process::kill_process(pid, Signal::TERM);
        let began = Instant::now();
        while children.pids.contains_key(&Role::Engine) && began.elapsed() < ENGINE_STOP {
            tokio::time::sleep(Duration::from_millis(20)).await;
            reap(children);
        }
        if children.pids.contains_key(&Role::Engine) {
            say("the engine did not stop in time: killing it");
        }
    }
    for signal in [Signal::TERM, Signal::KILL] {
        let pids = all_other_pids();
        for pid in &pids {
            let _ = rustix::process::kill_process(*pid, signal);
        }
        let began = Instant::now();
        while !all_other_pids().is_empty() && began.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            reap(children);
        }
    }
    rustix::fs::sync();
    unmount_under(Path::new(STATE));
    rustix::fs::sync();
    say("powering off");
}

/// Every process but PID 1 and kernel threads.
fn all_other_pids() -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&n| n > 1)
        // Kernel threads have an empty command line.
        .filter(|n| std::fs::read(format!("/proc/{n}/cmdline")).is_ok_and(|c| !c.is_empty()))
        .filter_map(Pid::from_raw)
        .collect()
}

/// Unmounts everything at and below `root`, deepest first.
fn unmount_under(root: &Path) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(root))
        .collect();
    points.reverse();
    for point in points {
        if let Err(e) = rustix::mount::unmount(point, rustix::mount::UnmountFlags::empty()) {
            say(&format!("unmount {point}: {e}; detaching it"));
            let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// Watches the ACPI power button (QEMU's `system_powerdown`) and sends on
/// `tx` when it is pressed. Quietly does nothing without one.
fn power_button(tx: tokio::sync::mpsc::Sender<()>) {
    let Ok(entries) = std::fs::read_dir("/sys/class/input") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("event") {
            continue;
        }
        let is_button = std::fs::read_to_string(entry.path().join("device/name"))
            .is_ok_and(|n| n.trim() == "Power Button");
        if !is_button {
            continue;
        }
        let path = format!("/dev/input/{name}");
        let tx = tx.clone();
        let _ = std::thread::Builder::new()
            .name("power-button".into())
            .spawn(move || watch_button(&path, &tx));
    }
}

/// `struct input_event` on 64-bit: 16 bytes of time, type, code, value.
const EVENT_SIZE: usize = 24;
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

fn watch_button(path: &str, tx: &tokio::sync::mpsc::Sender<()>) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let mut event = [0u8; EVENT_SIZE];
    while file.read_exact(&mut event).is_ok() {
        if is_power_press(&event) {
            let _ = tx.blocking_send(());
        }
    }
}

fn is_power_press(event: &[u8; EVENT_SIZE]) -> bool {
    let kind = u16::from_ne_bytes([event[16], event[17]]);
    let code = u16::from_ne_bytes([event[18], event[19]]);
    let value = i32::from_ne_bytes([event[20], event[21], event[22], event[23]]);
    kind == EV_KEY && code == KEY_POWER && value == 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_power_key_press_counts() {
        let mut e = [0u8; EVENT_SIZE];
        e[16..18].copy_from_slice(&EV_KEY.to_ne_bytes());
        e[18..20].copy_from_slice(&KEY_POWER.to_ne_bytes());
        e[20..24].copy_from_slice(&1i32.to_ne_bytes());
        assert!(is_power_press(&e));
        e[20..24].copy_from_slice(&0i32.to_ne_bytes());
        assert!(!is_power_press(&e));
        e[20..24].copy_from_slice(&1i32.to_ne_bytes());
        e[18..20].copy_from_slice(&30u16.to_ne_bytes());
        assert!(!is_power_press(&e));
    }
}
