//! The namespaces of a container: which ones it gets of its own, which
//! it shares with the host (`pid_mode`, `ipc_mode`, `uts_mode`,
//! `network_mode: host`, `cgroupns_mode`) and which one it joins (the
//! network namespace the engine made for it).

use std::path::{Path, PathBuf};

use bollard_stubs::models::{HostConfig, HostConfigCgroupnsModeEnum};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

use super::{bad, oci};
use crate::error::Result;
use crate::runtime::resources;

/// The container's network namespace.
#[derive(Debug, Clone)]
pub(super) enum NetMode {
    /// A namespace of its own.
    New,
    /// The engine's (`network_mode: host`).
    Host,
    /// An existing namespace.
    Join(PathBuf),
}

/// Which namespaces the container gets of its own.
#[derive(Debug, Clone)]
pub(super) struct Namespaces {
    pub(super) pid_host: bool,
    pub(super) ipc_host: bool,
    /// `ipc_mode: none`: its own IPC namespace and no `/dev/shm`.
    pub(super) ipc_none: bool,
    pub(super) uts_host: bool,
    pub(super) net: NetMode,
    pub(super) cgroup_private: bool,
}

/// `host` or a private namespace for `what`; `allowed` lists the other
/// values meaning private.
fn host_mode(what: &str, mode: Option<&str>, allowed: &[&str]) -> Result<bool> {
    match mode.unwrap_or_default() {
        "host" => Ok(true),
        m if m.is_empty() || allowed.contains(&m) => Ok(false),
        m if m.starts_with("container:") => Err(bad(format!(
            "{what} mode {m:?} is not supported: sharing another container's {what} namespace needs a network or namespace the engine has not set up; use host or leave it empty"
        ))),
        m => Err(bad(format!("invalid {what} mode {m:?}"))),
    }
}

impl Namespaces {
    /// The namespaces `hc` asks for; `netns` is one to join; without a
    /// `cgroupns_mode` the cgroup namespace is private on a pure cgroup v2
    /// host, as in Docker.
    pub(super) fn of(hc: &HostConfig, netns: Option<&Path>, cgroup_v2_only: bool) -> Result<Self> {
        let net = match (netns, hc.network_mode.as_deref()) {
            (Some(p), _) => NetMode::Join(p.to_path_buf()),
            (None, Some("host")) => NetMode::Host,
            (None, Some(m)) if m.starts_with("container:") => {
                return Err(bad(format!(
                    "network mode {m:?} needs the other container's network namespace, which was not given"
                )));
            }
            (None, _) => NetMode::New,
        };
        let cgroup_private = match hc.cgroupns_mode {
            Some(HostConfigCgroupnsModeEnum::PRIVATE) => true,
            Some(HostConfigCgroupnsModeEnum::HOST) => false,
            _ => cgroup_v2_only,
        };
        Ok(Self {
            pid_host: host_mode("pid", hc.pid_mode.as_deref(), &["private"])?,
            ipc_host: host_mode(
                "ipc",
                hc.ipc_mode.as_deref(),
                &["private", "shareable", "none"],
            )?,
            ipc_none: hc.ipc_mode.as_deref() == Some("none"),
            uts_host: host_mode("uts", hc.uts_mode.as_deref(), &["private"])?,
            net,
            cgroup_private,
        })
    }

    /// Which namespaces the container shares with the host, as the sysctl
    /// rule needs them.
    pub(super) fn shared(&self) -> resources::SharedNamespaces {
        resources::SharedNamespaces {
            ipc: self.ipc_host,
            net: matches!(self.net, NetMode::Host),
            uts: self.uts_host,
        }
    }

    /// The namespaces of the spec: the runtime makes the new ones, joins
    /// the one given by path, and leaves out the host's.
    pub(super) fn list(&self) -> Result<Vec<LinuxNamespace>> {
        let mut out = vec![namespace(LinuxNamespaceType::Mount, None)?];
        match &self.net {
            NetMode::New => out.push(namespace(LinuxNamespaceType::Network, None)?),
            NetMode::Join(p) => out.push(namespace(LinuxNamespaceType::Network, Some(p))?),
            NetMode::Host => {}
        }
        for (typ, host) in [
            (LinuxNamespaceType::Uts, self.uts_host),
            (LinuxNamespaceType::Pid, self.pid_host),
            (LinuxNamespaceType::Ipc, self.ipc_host),
        ] {
            if !host {
                out.push(namespace(typ, None)?);
            }
        }
        if self.cgroup_private {
            out.push(namespace(LinuxNamespaceType::Cgroup, None)?);
        }
        Ok(out)
    }
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p.to_path_buf());
    }
    b.build().map_err(oci("namespace"))
}
