//! `servin vm`: the VM that runs the engine in VM mode.

use std::io::{BufRead, IsTerminal, Read, Seek};
use std::time::Duration;

use servin::vm::machine::{Started, Status, Stopped};
use servin::vm::{Machine, MachineError, QemuMachine};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Start, stop and look at the VM that runs the engine in VM mode
///
/// In VM mode (`SERVIN_MODE=vm`, or `mode = "vm"` in
/// ~/.config/servin/config.toml) every command uses the engine in this VM
/// and starts the VM on first use. Its files are in $SERVIN_VM_DIR, else
/// ~/.servin/vm.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: VmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum VmCommand {
    /// Start the VM and wait until its engine answers
    Start,
    /// Stop the VM cleanly: containers stopped with their stop signals, then
    /// the guest powered off (killed when it takes longer than 30 s)
    Stop,
    /// Say whether the VM runs (`--format json` too)
    Status,
    /// Show the VM's accelerator, size, disk use, shared host folders,
    /// kernel, uptime and engine version (`--format json` too)
    Info,
    /// Print the guest's console
    Logs {
        /// Keep printing what the console writes
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Delete the VM's data disk (every image, container and volume in it)
    /// and its state; asks first unless --force
    Reset {
        /// Do not ask
        #[arg(long)]
        force: bool,
    },
    /// Run the VM's host supervisor (started by `vm start`)
    #[command(hide = true)]
    Supervise,
}

fn machine() -> Result<QemuMachine, Failed> {
    servin::vm::machine().map_err(vm_error)
}

fn vm_error(e: MachineError) -> Failed {
    Failed::Error(Box::new(e))
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        VmCommand::Start => start(),
        VmCommand::Stop => stop(),
        VmCommand::Status => status(cli),
        VmCommand::Info => info(cli),
        VmCommand::Logs { follow } => logs(*follow),
        VmCommand::Reset { force } => reset(*force),
        VmCommand::Supervise => supervise(),
    }
}

fn start() -> Result<(), Failed> {
    let m = machine()?;
    match m.start(&mut |line| ui::info(line)).map_err(vm_error)? {
        Started::Started { seconds } => {
            ui::info(&format!(
                "VM ready in {seconds:.1}s; its engine: unix://{}",
                m.engine_socket().display()
            ));
        }
        Started::AlreadyRunning { supervisor_pid } => ui::info(&format!(
            "the VM is already running (supervisor pid {supervisor_pid}); its engine: unix://{}",
            m.engine_socket().display()
        )),
    }
    Ok(())
}

fn stop() -> Result<(), Failed> {
    let m = machine()?;
    match m.stop(&mut |line| ui::info(line)).map_err(vm_error)? {
        Stopped::NotRunning => ui::info("the VM is not running"),
        Stopped::PoweredOff { .. } => ui::info("VM stopped"),
        Stopped::Killed { .. } => ui::warning("the VM did not power off in time and was killed"),
    }
    Ok(())
}

fn status_text(s: &Status) -> (&'static str, Option<u32>) {
    match s {
        Status::Stopped => ("stopped", None),
        Status::Starting { supervisor_pid } => ("starting", Some(*supervisor_pid)),
        Status::Running { supervisor_pid, .. } => ("running", Some(*supervisor_pid)),
    }
}

fn status(cli: &Cli) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let m = machine()?;
    let s = m.status();
    let (state, pid) = status_text(&s);
    if format == Format::Json {
        let out = serde_json::json!({
            "status": state,
            "supervisor_pid": pid,
            "dir": m.paths.dir,
            "engine": format!("unix://{}", m.engine_socket().display()),
        });
        return ui::data(&serde_json::to_string_pretty(&out)?);
    }
    ui::data(state)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn info(cli: &Cli) -> Result<(), Failed> {
    use std::os::unix::fs::MetadataExt;
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let m = machine()?;
    let s = m.status();
    let (state, _) = status_text(&s);
    let Status::Running { info, .. } = &s else {
        return Err(vm_error(MachineError::NotRunning));
    };
    let config =
        servin::vm::VmConfig::load_or_create(&m.paths.config()).map_err(|e| vm_error(e.into()))?;
    let disk = std::fs::metadata(m.paths.disk()).ok();
    let disk_used = disk.as_ref().map_or(0, |d| d.blocks() * 512);
    let disk_size = disk.as_ref().map_or(0, |d| d.len());
    let uptime = m
        .control(&["uptime"])
        .ok()
        .and_then(|l| {
            l.first()
                .and_then(|l| l.strip_prefix("ok "))
                .map(str::to_string)
        })
        .and_then(|u| u.parse::<f64>().ok());
    let engine = servin::client::Engine::at(servin::client::Address {
        socket: m.engine_socket(),
        root: m.paths.dir.clone(),
    })?;
    let engine_version = engine
        .servin_info()
        .ok()
        .and_then(|v| {
            v.get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    let accel = info
        .as_ref()
        .map_or("unknown".to_string(), |i| i.accelerator.clone());
    let kernel = info
        .as_ref()
        .map_or("unknown".to_string(), |i| i.kernel.clone());
    let (cpus, memory) = info
        .as_ref()
        .map_or((config.cpus, config.memory_mib), |i| (i.cpus, i.memory_mib));
    let host_uptime = info
        .as_ref()
        .map(|i| now_secs().saturating_sub(i.started_at));
    // What the running VM shares, and what vm-config.json asks for now
    // (a change takes effect at the next start).
    let (shares, unshared) = info.as_ref().map_or((Vec::new(), Vec::new()), |i| {
        (i.shares.clone(), i.unshared.clone())
    });
    let configured = config.shares();
    let mut started_with: Vec<_> = shares.iter().chain(&unshared).cloned().collect();
    let mut wanted = configured.clone();
    started_with.sort();
    wanted.sort();
    let shares_changed = info.is_some() && started_with != wanted;
    if format == Format::Json {
        let out = serde_json::json!({
            "status": state,
            "shares": shares,
            "shares_missing": unshared,
            "shares_configured": configured,
            "shares_changed": shares_changed,
            "accelerator": accel,
            "cpus": cpus,
            "memory_mib": memory,
            "disk_bytes_used": disk_used,
            "disk_bytes_size": disk_size,
            "kernel": kernel,
            "uptime_seconds": uptime.or(host_uptime.map(|u| u as f64)),
            "engine_version": engine_version,
            "engine": format!("unix://{}", m.engine_socket().display()),
            "dir": m.paths.dir,
        });
        return ui::data(&serde_json::to_string_pretty(&out)?);
    }
    let uptime = uptime.map_or_else(|| "unknown".to_string(), |u| format!("{u:.0}s"));
    let list = |paths: &[std::path::PathBuf]| {
        if paths.is_empty() {
            "none".to_string()
        } else {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut shares_row = format!("Shares:        {} (9p, same path in the VM)", list(&shares));
    if !unshared.is_empty() {
        shares_row.push_str(&format!(
            "\n               not shared, missing on the host: {}",
            list(&unshared)
        ));
    }
    if shares_changed {
        shares_row.push_str(&format!(
            "\n               {} now shares {}: takes effect at the next `servin vm start`",
            m.paths.config().display(),
            list(&configured)
        ));
    }
    let rows = [
        format!("Status:        {state}"),
        format!("Accelerator:   {accel}"),
        format!("CPUs:          {cpus}"),
        format!("Memory:        {memory} MiB"),
        format!(
            "Disk:          {} used of {} ({})",
            human_bytes(disk_used),
            human_bytes(disk_size),
            m.paths.disk().display()
        ),
        shares_row,
        format!("Kernel:        {kernel}"),
        format!("Uptime:        {uptime}"),
        format!(
            "Engine:        {engine_version} (unix://{})",
            m.engine_socket().display()
        ),
    ];
    ui::data(&rows.join("\n"))
}

fn logs(follow: bool) -> Result<(), Failed> {
    let m = machine()?;
    let path = m.console_log();
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ui::info(&format!("no console log yet ({})", path.display()));
            return Ok(());
        }
        Err(e) => return Err(vm_error(MachineError::file(&path)(e))),
    };
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        file.read_to_end(&mut buf)
            .map_err(|e| vm_error(MachineError::file(&path)(e)))?;
        if !buf.is_empty() {
            text.clear();
            text.push_str(&String::from_utf8_lossy(&buf));
            ui::data(text.trim_end_matches('\n'))?;
        }
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        // QEMU truncates the log when the VM starts again.
        let pos = file.stream_position().unwrap_or(0);
        if std::fs::metadata(&path).map_or(0, |m| m.len()) < pos {
            file =
                std::fs::File::open(&path).map_err(|e| vm_error(MachineError::file(&path)(e)))?;
        }
    }
}

fn reset(force: bool) -> Result<(), Failed> {
    let m = machine()?;
    if !force {
        if !std::io::stdin().is_terminal() {
            return Err(Failed::Usage(
                "`servin vm reset` deletes every image, container and volume in the VM; it asks first, and stdin is not a terminal: add --force".into(),
            ));
        }
        ui::prompt(&format!(
            "Delete the VM's disk {} with every image, container and volume in it? [y/N] ",
            m.paths.disk().display()
        ));
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            ui::info("nothing deleted");
            return Ok(());
        }
    }
    if m.status() != Status::Stopped {
        m.stop(&mut |line| ui::info(line)).map_err(vm_error)?;
    }
    let disk = m.paths.disk();
    match std::fs::remove_file(&disk) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(vm_error(MachineError::file(&disk)(e))),
    }
    let state = m.paths.state();
    match std::fs::remove_dir_all(&state) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(vm_error(MachineError::file(&state)(e))),
    }
    ui::info("VM reset: its disk is deleted; the next start begins with an empty one");
    Ok(())
}

fn supervise() -> Result<(), Failed> {
    let paths = servin::vm::VmPaths::from_env().ok_or(vm_error(MachineError::NoVmDir))?;
    let (qemu, info) = servin::vm::launch::prepare(&paths).map_err(vm_error)?;
    let code = servin::vm::supervisor::supervise(&paths, qemu, info).map_err(vm_error)?;
    if code == 0 {
        Ok(())
    } else {
        Err(Failed::Code(u8::try_from(code).unwrap_or(1)))
    }
}
