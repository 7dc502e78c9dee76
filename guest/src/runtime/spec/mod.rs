//! The OCI runtime spec (`config.json`) of a container, built with
//! `oci-spec` from Docker's create body, the image's config and the
//! host's facts, with Docker's defaults. Values Docker refuses are refused
//! here too, as [`SpecError::Invalid`](crate::error::SpecError::Invalid) naming the value.
//!
//! [`build`] reads nothing of the host: what it needs of it comes in as
//! [`HostFacts`]. It reads the container's own root (users and groups
//! from the image's `/etc/passwd` and `/etc/group`) and makes the working
//! folder there when the image lacks it. Its parts:
//!
//! - [`process`]: command line, environment, user, working folder,
//!   terminal size; with [`capabilities`] and the rlimits of
//!   [`resources`](super::resources).
//! - [`mounts`]: the standard file systems, the generated `/etc` files
//!   (written by [`etc`](super::etc)), the init, binds, volumes, tmpfs.
//! - [`namespaces`]: which namespaces the container gets of its own.
//! - [`security`]: `security_opt`, masked and read-only paths.
//! - Devices, cgroup limits and sysctls come from
//!   [`devices`](super::devices) and [`resources`](super::resources).

pub mod capabilities;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod security;

use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerCreateBody, ExecConfig};
use oci_spec::runtime::{LinuxBuilder, Process, RootBuilder, Spec, SpecBuilder};

use self::mounts::mounts;
use self::namespaces::Namespaces;
pub use self::process::{command_line, hostname_of};
use self::process::{console_size, environment, process_builder, run_as, user_of, workdir_of};
use self::security::{READONLY_PATHS, default_masked_paths, security};
use super::etc::EtcFiles;
use super::host::HostFacts;
use super::{devices, resources, rootfs};
use crate::error::{Error, Result, SpecError};

/// Where the init binary appears in the container.
pub const INIT_PATH: &str = "/sbin/servin-init";

/// Everything [`build`] needs.
pub struct SpecInput<'a> {
    /// 64-hex container ID.
    pub id: &'a str,
    /// Container name, without `/`.
    pub name: &'a str,
    /// Docker's create body, host config included.
    pub config: &'a ContainerCreateBody,
    /// The image's config.
    pub image: Option<&'a oci_spec::image::Config>,
    /// Where the root filesystem is mounted on the host.
    pub rootfs: &'a Path,
    /// The generated files.
    pub etc: &'a EtcFiles,
    /// The host's static init, when the container runs one.
    pub init: Option<&'a Path>,
    /// A network namespace to join; `None` makes a new one (or, with
    /// `network_mode: host`, shares the engine's).
    pub netns: Option<&'a Path>,
    /// Named volume to host folder.
    pub volume_path: &'a dyn Fn(&str) -> Result<PathBuf>,
    /// Anonymous volumes as (destination, host folder): the ones of
    /// `--mount type=volume` without a source, of the container's and of the
    /// image's `Volumes`. Those not otherwise mounted are mounted
    /// read-write at their destination.
    pub anonymous_volumes: &'a [(String, PathBuf)],
    /// What the host is like (read by [`HostFacts::read`]).
    pub host: &'a HostFacts,
    /// The variables of its legacy links (see
    /// [`crate::container::links`]), before the image's and its own.
    pub links_env: &'a [String],
}

/// A value Docker refuses.
fn bad(msg: impl Into<String>) -> Error {
    SpecError::Invalid(msg.into()).into()
}

/// An `oci-spec` builder's refusal, naming what was built.
fn oci<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| bad(format!("{what}: {e}"))
}

/// Builds the container's OCI runtime spec. Creates the working folder in
/// the root (owned by the container's user) when it is missing.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let hc = input.config.host_config.clone().unwrap_or_default();
    let privileged = hc.privileged.unwrap_or(false);
    let sec = security(&hc)?;
    let ns = Namespaces::of(&hc, input.netns, input.host.cgroup_v2_only)?;
    let hostname = hostname_of(input.config, input.id);
    let resolved = run_as(input, &hc, &user_of(input))?;
    let cwd = workdir_of(input)?;
    rootfs::ensure_dir_in_root(input.rootfs, &cwd, resolved.uid, resolved.gid)?;
    let mut args = command_line(input.config, input.image)?;
    if input.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let tty = input.config.tty.unwrap_or(false);
    let env = environment(input, &hostname, resolved.home.as_deref(), tty, &[]);
    let mut process = process_builder(&hc, privileged, &resolved, input.host)?
        .terminal(tty)
        .args(args)
        .env(env)
        .cwd(PathBuf::from(&cwd));
    if let Some(adj) = hc.oom_score_adj {
        let adj = i32::try_from(adj)
            .ok()
            .filter(|a| (-1000..=1000).contains(a))
            .ok_or_else(|| {
                bad(format!(
                    "invalid oom score adjustment {adj}: it must be between -1000 and 1000"
                ))
            })?;
        process = process.oom_score_adj(adj);
    }
    let mut process = process.build().map_err(oci("process"))?;
    process.set_console_size(console_size(
        input.config.tty.unwrap_or(false),
        hc.console_size.as_deref(),
    ));

    let sysctl = resources::sysctls(&hc, ns.shared())?;
    let (linux_devices, device_rules) =
        devices::for_container(&hc, privileged, &input.host.devices)?;
    let res = resources::linux(&hc, device_rules, input.host)?;

    let (masked, readonly) = if privileged || sec.unconfined_paths {
        (Vec::new(), Vec::new())
    } else {
        (
            hc.masked_paths
                .clone()
                .unwrap_or_else(|| default_masked_paths(&input.host.thermal_throttle)),
            hc.readonly_paths
                .clone()
                .unwrap_or_else(|| READONLY_PATHS.iter().map(|p| (*p).to_string()).collect()),
        )
    };
    let linux = LinuxBuilder::default()
        .namespaces(ns.list()?)
        .resources(res)
        .cgroups_path(PathBuf::from(format!("/servin/{}", input.id)))
        .sysctl(sysctl)
        .devices(linux_devices)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()
        .map_err(oci("linux"))?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs.to_path_buf())
                .readonly(hc.readonly_rootfs.unwrap_or(false))
                .build()
                .map_err(oci("root"))?,
        )
        .process(process)
        .mounts(mounts(input, &hc, privileged, sec, &ns)?)
        .linux(linux)
        .build()
        .map_err(oci("spec"))?;
    // With the host's UTS namespace the runtime may not set a hostname.
    spec.set_hostname((!ns.uts_host).then_some(hostname));
    Ok(spec)
}

/// The process of an exec in a running container: the exec's command; the
/// image's, the container's then the exec's environment; the exec's user
/// or the container's; the exec's working folder or the container's; the
/// container's capabilities (all of them when the container or the exec
/// is privileged), rlimits and `no-new-privileges`.
pub fn exec_process(input: &SpecInput<'_>, exec: &ExecConfig) -> Result<Process> {
    let hc = input.config.host_config.clone().unwrap_or_default();
    let privileged = hc.privileged.unwrap_or(false) || exec.privileged.unwrap_or(false);
    let args = exec
        .cmd
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("no exec command specified"))?;
    let user_name = exec
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| user_of(input));
    let resolved = run_as(input, &hc, &user_name)?;
    let hostname = hostname_of(input.config, input.id);
    let tty = exec.tty.unwrap_or(false);
    let env = environment(
        input,
        &hostname,
        resolved.home.as_deref(),
        tty,
        exec.env.as_deref().unwrap_or_default(),
    );
    let cwd = match exec.working_dir.clone().filter(|w| !w.is_empty()) {
        Some(w) if w.starts_with('/') => w,
        Some(w) => {
            return Err(bad(format!(
                "the working directory {w:?} is invalid: it needs to be an absolute path"
            )));
        }
        None => workdir_of(input)?,
    };
    let mut process = process_builder(&hc, privileged, &resolved, input.host)?
        .terminal(tty)
        .args(args)
        .env(env)
        .cwd(PathBuf::from(cwd))
        .build()
        .map_err(oci("exec process"))?;
    process.set_console_size(console_size(
        exec.tty.unwrap_or(false),
        exec.console_size.as_deref(),
    ));
    Ok(process)
}

#[cfg(test)]
mod tests;
