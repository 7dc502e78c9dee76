//! `servin doctor`.

use std::path::{Path, PathBuf};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Check that this machine can run servin, and say how to fix what is missing
///
/// Checks the pieces the engine needs to run containers natively (Linux,
/// root, overlayfs, cgroups, an OCI runtime, the static init), that the
/// engine binary is found, and whether an engine answers. Prints one line per
/// check with a fix for each problem; exits 1 when something required is
/// missing. Takes `--format json`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, serde::Serialize)]
struct Check {
    name: &'static str,
    outcome: Outcome,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(
    name: &'static str,
    outcome: Outcome,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Check {
    Check {
        name,
        outcome,
        detail: detail.into(),
        fix: fix.map(String::from),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn first_line(cmd: &Path, arg: &str) -> Option<String> {
    let out = std::process::Command::new(cmd).arg(arg).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// What VM mode needs: required in VM mode, information otherwise.
fn vm_checks(vm_mode: bool) -> Vec<Check> {
    let missing = if vm_mode {
        Outcome::Fail
    } else {
        Outcome::Warn
    };
    let mut out = Vec::new();
    out.push(match servin::vm::launch::find_qemu() {
        Some(p) => {
            let version = first_line(&p, "--version").unwrap_or_default();
            check(
                "vm qemu",
                Outcome::Ok,
                format!("{} ({version})", p.display()),
                None,
            )
        }
        None => check(
            "vm qemu",
            missing,
            "no qemu-system-x86_64 (VM mode needs it)",
            Some("install it: apt-get install qemu-system-x86 (or set SERVIN_QEMU)"),
        ),
    });
    out.push(match servin::vm::boot::kernel::find() {
        Ok(k) => check(
            "vm kernel",
            Outcome::Ok,
            format!(
                "{} ({}, modules in {})",
                k.image.display(),
                k.version,
                k.modules.display()
            ),
            None,
        ),
        Err(e) => {
            let text = e.to_string();
            let (detail, fix) = text.split_once("\nhelp: ").unwrap_or((&text, ""));
            check(
                "vm kernel",
                missing,
                detail.to_string(),
                (!fix.is_empty()).then_some(fix),
            )
        }
    });
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    out.push(check(
        "vm accelerator",
        Outcome::Ok,
        if kvm {
            "/dev/kvm opens: KVM is used when a probe guest runs under it (SERVIN_VM_ACCEL=tcg forces emulation)"
        } else {
            "no usable /dev/kvm: the VM runs under emulation (slower)"
        },
        None,
    ));
    out
}

fn checks() -> Vec<Check> {
    let mut out = Vec::new();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    out.push(match &kernel {
        Some(k) => check("linux", Outcome::Ok, format!("kernel {k}"), None),
        None => check(
            "linux",
            Outcome::Fail,
            "not a Linux host",
            Some("the native engine needs Linux; use VM mode (SERVIN_MODE=vm)"),
        ),
    });
    let root = rustix::process::geteuid().is_root();
    let vm_mode = servin::vm::Mode::from_env().is_ok_and(|m| m == servin::vm::Mode::Vm);
    out.push(if root {
        check("privileges", Outcome::Ok, "running as root", None)
    } else if vm_mode {
        check("privileges", Outcome::Ok, "not root: VM mode needs none", None)
    } else {
        check(
            "privileges",
            Outcome::Fail,
            "not root: the native engine needs root for namespaces, mounts and cgroups",
            Some("run servin as root (sudo), use an engine started by root through SERVIN_HOST, or use VM mode (SERVIN_MODE=vm)"),
        )
    });
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let in_the_vm = "not needed in VM mode: the VM's kernel has its own";
    out.push(if vm_mode {
        check("overlayfs", Outcome::Ok, in_the_vm, None)
    } else if filesystems
        .lines()
        .any(|l| l.trim_end().ends_with("overlay"))
    {
        check("overlayfs", Outcome::Ok, "the kernel has overlayfs", None)
    } else {
        check(
            "overlayfs",
            Outcome::Fail,
            "the kernel does not list overlayfs",
            Some("load it: modprobe overlay"),
        )
    });
    let v2_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    out.push(match (v2_only, v1) {
        _ if vm_mode => check("cgroups", Outcome::Ok, in_the_vm, None),
        (true, _) => check("cgroups", Outcome::Ok, "cgroup v2 (unified)", None),
        (false, true) => check("cgroups", Outcome::Ok, "cgroup v1 (or hybrid)", None),
        (false, false) => check(
            "cgroups",
            Outcome::Fail,
            "no cgroup filesystem under /sys/fs/cgroup",
            Some("mount cgroups (systemd does this at boot)"),
        ),
    });
    let wanted = std::env::var("SERVIN_RUNTIME")
        .ok()
        .filter(|v| !v.is_empty());
    let runtime = match &wanted {
        Some(w) if w.contains('/') => Some(PathBuf::from(w)).filter(|p| p.is_file()),
        Some(w) => on_path(w),
        None if v2_only => on_path("crun").or_else(|| on_path("runc")),
        None => on_path("runc").or_else(|| on_path("crun")),
    };
    out.push(match runtime {
        Some(p) => {
            let version = first_line(&p, "--version").unwrap_or_default();
            check(
                "runtime",
                Outcome::Ok,
                format!("{} ({version})", p.display()),
                None,
            )
        }
        None => check(
            "runtime",
            Outcome::Fail,
            match &wanted {
                Some(w) => format!("SERVIN_RUNTIME={w} is not found"),
                None => "no OCI runtime (runc or crun) on PATH".to_string(),
            },
            Some("install one: apt-get install runc"),
        ),
    });
    let init = std::env::var_os("SERVIN_INIT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/tini-static")))
        .filter(|p| p.is_file());
    out.push(match init {
        Some(p) => check("init", Outcome::Ok, p.display().to_string(), None),
        None => check(
            "init",
            Outcome::Fail,
            "no static init (tini-static) for PID 1 in containers",
            Some("install it: apt-get install tini (or run containers with --no-init)"),
        ),
    });
    out.push(match servin::client::start::engine_binary() {
        Some(p) => check("engine binary", Outcome::Ok, p.display().to_string(), None),
        None => check(
            "engine binary",
            Outcome::Fail,
            "servin-guest not found",
            Some("install servin-guest next to servin or on PATH, or set SERVIN_ENGINE"),
        ),
    });
    out.extend(vm_checks(vm_mode));
    let addr = servin::client::address::resolve()
        .map(|(_, a)| a)
        .unwrap_or_else(|_| servin::client::address::Address::from_env());
    out.push(match servin::client::Engine::running() {
        Some(engine) => {
            let version = engine
                .version()
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_default();
            check(
                "engine",
                Outcome::Ok,
                format!("version {version} answers on {}", addr.socket.display()),
                None,
            )
        }
        None => check(
            "engine",
            Outcome::Ok,
            format!(
                "none answers on {}; commands start one with state in {}",
                addr.socket.display(),
                addr.root.display()
            ),
            None,
        ),
    });
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if let Some(hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
    {
        let low = hard.parse::<u64>().is_ok_and(|n| n < 65_536);
        out.push(check(
            "open files",
            if low { Outcome::Warn } else { Outcome::Ok },
            format!("hard limit {hard}; containers get at most this many"),
            low.then_some(
                "raise the hard RLIMIT_NOFILE of the engine's service if containers need more",
            ),
        ));
    }
    out
}

pub fn run(cli: &Cli, _args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let checks = checks();
    let failed = checks.iter().any(|c| c.outcome == Outcome::Fail);
    if format == Format::Json {
        ui::data(&serde_json::to_string_pretty(&checks)?)?;
    } else {
        let mut lines = Vec::new();
        for c in &checks {
            let mark = match c.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
            };
            lines.push(format!("{mark}  {:<14} {}", c.name, c.detail));
            if let Some(fix) = &c.fix {
                lines.push(format!("      {:<14} fix: {fix}", ""));
            }
        }
        lines.push(if failed {
            "Some checks failed: fix them and run `servin doctor` again.".to_string()
        } else {
            "servin can run containers on this machine.".to_string()
        });
        ui::data(&lines.join("\n"))?;
    }
    if failed {
        Err(Failed::Reported)
    } else {
        Ok(())
    }
}
