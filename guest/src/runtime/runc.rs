//! The real OCI runtime: runc or crun, found on `PATH` (or named by
//! `SERVIN_RUNTIME`), driven by running its binary with the engine's
//! `--root`. It implements [`OciRuntime`]; the monitor runs `run` itself
//! (see [`crate::monitor`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::cgroup_v2_only;
use super::oci::{OciRuntime, RuntimeState};
use crate::error::{Error, Result};

/// The OCI runtime the engine drives.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// `runc` or `crun` (or the file name of `SERVIN_RUNTIME`).
    pub name: String,
    /// The binary.
    pub binary: PathBuf,
    /// The runtime's state folder (`--root`), under the engine's root.
    pub root: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The runtime binary: `wanted` (a path, or a name found by `find`); else
/// `crun` then `runc` on a pure cgroup v2 host, `runc` then `crun` on
/// others.
fn pick(
    wanted: Option<&str>,
    v2_only: bool,
    find: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<PathBuf> {
    let order: &[&str] = if v2_only {
        &["crun", "runc"]
    } else {
        &["runc", "crun"]
    };
    let found = match wanted {
        Some(w) if w.contains('/') => Some(PathBuf::from(w)).filter(|p| p.is_file()),
        Some(w) => find(w),
        None => order.iter().find_map(|n| find(n)),
    };
    found.ok_or_else(|| Error::Runtime {
        context: "find the OCI runtime".to_string(),
        message: match wanted {
            Some(w) if w.contains('/') => format!(
                "SERVIN_RUNTIME={w}: no such file; point it at a runc or crun binary, or unset it (apt-get install runc)"
            ),
            Some(w) => format!(
                "SERVIN_RUNTIME={w}: {w} is not on PATH; install it (apt-get install {w}), give its full path, or unset SERVIN_RUNTIME"
            ),
            None => format!(
                "neither runc nor crun is on PATH: install one (apt-get install runc{})",
                if v2_only { ", or crun" } else { "" }
            ),
        },
    })
}

impl Runtime {
    /// Picks the runtime: `SERVIN_RUNTIME` (a name on `PATH` or a path)
    /// when set; else `crun` on a pure cgroup v2 host when installed; else
    /// `runc`; else `crun`. Its state goes to `<state_root>/runtime`.
    pub fn detect(state_root: &Path) -> Result<Self> {
        let wanted = std::env::var("SERVIN_RUNTIME")
            .ok()
            .filter(|v| !v.is_empty());
        let binary = pick(wanted.as_deref(), cgroup_v2_only(), &on_path)?;
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runc".to_string());
        Ok(Self {
            name,
            binary,
            root: state_root.join("runtime"),
        })
    }

    /// The binary with `--root` set; callers add the rest.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    async fn run(&self, args: &[&str], step: &str, id: &str) -> Result<std::process::Output> {
        let mut c = tokio::process::Command::from(self.command());
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.output().await.map_err(|e| Error::Runtime {
            context: format!("container {id}: {step}"),
            message: format!("run {}: {e}", self.binary.display()),
        })
    }

    fn failure(&self, out: &std::process::Output, step: &str, id: &str) -> Error {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Error::Runtime {
            context: format!("container {id}: {step}"),
            message: format!("{} {step}: {}", self.name, clean_message(&stderr)),
        }
    }

    /// The first line of `<binary> --version`.
    pub fn version(&self) -> Option<String> {
        let out = std::process::Command::new(&self.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    }
}

impl OciRuntime for Runtime {
    async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let signal = signal.trim_start_matches("SIG");
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal]);
        let out = self.run(&args, "kill", id).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure(&out, "kill", id))
        }
    }

    async fn delete(&self, id: &str, force: bool) -> Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        let out = self.run(&args, "delete", id).await?;
        let text = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || text.contains("does not exist") || text.contains("not found") {
            Ok(())
        } else {
            Err(self.failure(&out, "delete", id))
        }
    }

    /// Without starting the runtime when it is runc: what `runc delete`
    /// does for a stopped container (remove its cgroups, then its state
    /// folder) done here, so the cleanup after each exit costs no process.
    /// Anything unexpected (another runtime, an init still alive, a cgroup
    /// still in use, a state file that does not parse) leaves it to
    /// `delete --force`.
    async fn delete_stopped(&self, id: &str) -> Result<()> {
        let dir = self.root.join(id);
        if self.name == "runc"
            && let Ok(text) = std::fs::read(dir.join("state.json"))
            && let Ok(state) = serde_json::from_slice::<RuncState>(&text)
            && state.id == id
            && !state.init_alive()
            && state.remove_cgroups()
            && std::fs::remove_dir_all(&dir).is_ok()
        {
            return Ok(());
        }
        self.delete(id, true).await
    }

    async fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
        if !self.root.join(id).exists() {
            return Ok(None);
        }
        let out = self.run(&["state", id], "state", id).await?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("does not exist") || text.contains("not found") {
                return Ok(None);
            }
            return Err(self.failure(&out, "state", id));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(Error::json(format!("{} state of {id}", self.name)))?;
        Ok(Some(RuntimeState {
            status: v["status"].as_str().unwrap_or_default().to_string(),
            pid: v["pid"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0),
        }))
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.simple(&["pause", id], "pause", id).await
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.simple(&["resume", id], "resume", id).await
    }

    async fn update(&self, id: &str, resources: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let step = "update";
        let spawn_error = |e: std::io::Error| Error::Runtime {
            context: format!("container {id}: {step}"),
            message: format!("run {}: {e}", self.binary.display()),
        };
        let mut c = tokio::process::Command::from(self.command());
        c.args(["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(resources).await.map_err(spawn_error)?;
        }
        let out = child.wait_with_output().await.map_err(spawn_error)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure(&out, step, id))
        }
    }
}

impl Runtime {
    /// Runs `args` and turns a failure into the runtime's message.
    async fn simple(&self, args: &[&str], step: &str, id: &str) -> Result<()> {
        let out = self.run(args, step, id).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure(&out, step, id))
        }
    }
}

/// runc writes `time="..." level=error msg="..."`; keep the message.
pub fn clean_message(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let msg = line
        .split_once("msg=\"")
        .map_or(line, |(_, rest)| rest.strip_suffix('"').unwrap_or(rest));
    msg.replace("\\\"", "\"").trim().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_runc_messages() {
        assert_eq!(
            clean_message("time=\"x\" level=error msg=\"container \\\"a\\\" does not exist\"\n"),
            "container \"a\" does not exist"
        );
        assert_eq!(clean_message("plain failure\n"), "plain failure");
    }

    #[test]
    fn picks_by_cgroup_version_and_override() {
        let both = |n: &str| Some(PathBuf::from(format!("/x/{n}")));
        let only_runc = |n: &str| (n == "runc").then(|| PathBuf::from("/x/runc"));
        let none = |_: &str| None;
        assert_eq!(pick(None, false, &both).unwrap(), Path::new("/x/runc"));
        assert_eq!(pick(None, true, &both).unwrap(), Path::new("/x/crun"));
        assert_eq!(pick(None, true, &only_runc).unwrap(), Path::new("/x/runc"));
        assert_eq!(
            pick(Some("crun"), false, &both).unwrap(),
            Path::new("/x/crun")
        );
        assert_eq!(
            pick(Some("/usr/bin/runc"), true, &none).unwrap(),
            Path::new("/usr/bin/runc"),
            "a path is taken as it is"
        );
        let e = pick(None, false, &none).unwrap_err().to_string();
        assert!(
            e.contains("neither runc nor crun") && e.contains("apt-get install runc"),
            "{e}"
        );
        let e = pick(Some("youki"), false, &only_runc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SERVIN_RUNTIME=youki") && e.contains("not on PATH"),
            "{e}"
        );
        let e = pick(Some("/no/such/runc"), false, &both)
            .unwrap_err()
            .full_message();
        assert!(
            e.contains("/no/such/runc") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn finds_a_runtime_or_says_how_to_install_one() {
        let dir = tempfile::tempdir().unwrap();
        match Runtime::detect(dir.path()) {
            Ok(rt) => {
                assert!(rt.binary.is_file());
                assert_eq!(rt.root, dir.path().join("runtime"));
                assert!(rt.version().is_some());
            }
            Err(e) => assert!(e.to_string().contains("apt-get install runc")),
        }
    }
}

/// The part of runc's `state.json` that [`Runtime::delete_stopped`] reads.
#[derive(Debug, serde::Deserialize)]
struct RuncState {
    id: String,
    init_process_pid: i32,
    /// The init's start time in clock ticks (field 22 of `/proc/PID/stat`).
    init_process_start: u64,
    #[serde(default)]
    cgroup_paths: std::collections::BTreeMap<String, PathBuf>,
}

impl RuncState {
    /// Whether the init (the same process: its start time matches) lives.
    fn init_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.init_process_pid))
        else {
            return false;
        };
        // The command name may hold spaces and parentheses: fields start
        // after the last ')'. The start time is field 22, the 20th after it.
        let started = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19))
            .and_then(|f| f.parse::<u64>().ok());
        match started {
            Some(t) => t == self.init_process_start,
            // Unreadable: assume it lives, so runc decides.
            None => true,
        }
    }

    /// Removes the container's cgroups (only folders under a cgroup
    /// mount); false when one is left.
    fn remove_cgroups(&self) -> bool {
        self.cgroup_paths.values().all(|path| {
            if !path.starts_with("/sys/fs/cgroup/") {
                return false;
            }
            match std::fs::remove_dir(path) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            }
        })
    }
}
