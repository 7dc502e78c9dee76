//! Where the engine keeps its state and where it listens.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Default state root of a native engine.
pub const DEFAULT_ROOT: &str = "/var/lib/servin";
/// Default socket of a native engine.
pub const DEFAULT_SOCKET: &str = "/run/servin/engine.sock";

/// The engine's settings, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// State root (`SERVIN_ROOT`).
    pub root: PathBuf,
    /// Unix socket path (`SERVIN_HOST`, `unix:///path` or a bare path).
    pub socket: PathBuf,
    /// Registries reached over plain `http://` besides loopback ones
    /// (`SERVIN_INSECURE_REGISTRIES`, comma separated `host[:port]`).
    pub insecure_registries: Vec<String>,
    /// Home folder holding `.servin/auth.json` and `.docker/config.json`.
    pub home: Option<PathBuf>,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Self {
        let root = std::env::var_os("SERVIN_ROOT")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from);
        let socket = std::env::var("SERVIN_HOST")
            .ok()
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), |v| socket_path(&v));
        let insecure_registries = std::env::var("SERVIN_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self {
            root,
            socket,
            insecure_registries,
            home,
        }
    }
}

/// The host folders shared into servin's VM, one path a line, set by the
/// VM's init when it starts the engine there (never set natively).
pub const VM_SHARES_ENV: &str = "SERVIN_VM_SHARES";
/// The host's `vm-config.json`, set by the VM's init, for help text.
pub const VM_CONFIG_ENV: &str = "SERVIN_VM_CONFIG";

/// The host folders the VM shares, when the engine runs in servin's VM: a
/// bind source outside them names a folder of the VM, not of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmShares {
    /// Mounted at their host paths.
    pub folders: Vec<PathBuf>,
    /// The host's `vm-config.json`, where `shares` is changed.
    pub config: Option<PathBuf>,
}

impl VmShares {
    /// From [`VM_SHARES_ENV`] and [`VM_CONFIG_ENV`]; `None` natively.
    pub fn from_env() -> Option<Self> {
        Self::from_values(
            std::env::var_os(VM_SHARES_ENV),
            std::env::var_os(VM_CONFIG_ENV),
        )
    }

    pub fn from_values(shares: Option<OsString>, config: Option<OsString>) -> Option<Self> {
        let shares = shares?;
        let folders = shares
            .as_bytes()
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"/"))
            .map(|l| PathBuf::from(OsStr::from_bytes(l)))
            .collect();
        Some(Self {
            folders,
            config: config.filter(|c| !c.is_empty()).map(PathBuf::from),
        })
    }

    /// Refuses a bind source outside every shared folder, naming it, what
    /// is shared, and how to share it. The VM's kernel folders (`/proc`,
    /// `/sys`, `/dev`) are the VM's own, as on a Linux host.
    pub fn check_bind(&self, source: &str) -> Result<(), String> {
        match self.not_shared(source) {
            None => Ok(()),
            Some(why) => Err(format!(
                "invalid mount config for type \"bind\": bind source path {why}"
            )),
        }
    }

    /// `"PATH is not shared with servin's VM (...)\nhelp: ..."` when the
    /// absolute `path` is outside every share and the VM's kernel folders.
    pub fn not_shared(&self, path: &str) -> Option<String> {
        let p = Path::new(path);
        if !path.starts_with('/')
            || servin_values::share::covering(p, &self.folders).is_some()
            || servin_values::share::is_kernel_folder(p)
        {
            return None;
        }
        let shared = if self.folders.is_empty() {
            "no host folder is shared".to_string()
        } else {
            format!(
                "shared: {}",
                self.folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let config = self.config.as_ref().map_or_else(
            || "vm-config.json (in ~/.servin/vm)".to_string(),
            |c| c.display().to_string(),
        );
        Some(format!(
            "{path} is not shared with servin's VM ({shared})\nhelp: add it, or a folder above it, to \"shares\" in {config}, then restart the VM (servin vm stop; servin vm start)"
        ))
    }
}

/// Turns a `SERVIN_HOST` value (`unix:///path` or a bare path) into a path.
pub fn socket_path(host: &str) -> PathBuf {
    PathBuf::from(host.strip_prefix("unix://").unwrap_or(host))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_url_and_bare_path_give_the_same_socket() {
        assert_eq!(
            socket_path("unix:///tmp/x/engine.sock"),
            PathBuf::from("/tmp/x/engine.sock")
        );
        assert_eq!(
            socket_path("/tmp/x/engine.sock"),
            PathBuf::from("/tmp/x/engine.sock")
        );
    }

    #[test]
    fn vm_shares_refuse_a_bind_outside_them() {
        assert_eq!(VmShares::from_values(None, None), None);
        let s = VmShares::from_values(
            Some("/home/u\n/tmp\n".into()),
            Some("/home/u/.servin/vm/vm-config.json".into()),
        )
        .unwrap();
        assert_eq!(s.folders, [PathBuf::from("/home/u"), PathBuf::from("/tmp")]);
        assert!(s.check_bind("/home/u/proj").is_ok());
        assert!(s.check_bind("/tmp").is_ok());
        assert!(s.check_bind("/proc/self").is_ok());
        // A volume name is not a host path.
        assert!(s.check_bind("data").is_ok());
        let e = s.check_bind("/opt/data").unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"bind\": bind source path /opt/data is not shared with servin's VM (shared: /home/u, /tmp)\nhelp: add it, or a folder above it, to \"shares\" in /home/u/.servin/vm/vm-config.json, then restart the VM (servin vm stop; servin vm start)"
        );
        assert!(s.check_bind("/home/u/../x").is_err());
        let none = VmShares::from_values(Some("".into()), None).unwrap();
        let e = none.check_bind("/home/u").unwrap_err();
        assert!(e.contains("(no host folder is shared)"), "{e}");
        assert!(e.contains("vm-config.json (in ~/.servin/vm)"), "{e}");
    }
}
