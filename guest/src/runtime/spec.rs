//! The OCI runtime spec (`config.json`) of a container, built with
//! `oci-spec` from Docker's create body and the image's config, with
//! Docker's defaults: capabilities, masked and read-only paths, device
//! rules, namespaces, mounts, limits. Values Docker refuses are refused
//! here too, as [`Error::BadRequest`] naming the value.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bollard_stubs::models::{
    ContainerCreateBody, ExecConfig, HostConfig, HostConfigCgroupnsModeEnum,
    MountBindOptionsPropagationEnum, MountType,
};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, Process,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder,
};

use super::{devices, resources, rootfs, user};
use crate::error::{Error, Result};

pub use super::resources::DEFAULT_NOFILE;

/// Where the init binary appears in the container.
pub const INIT_PATH: &str = "/sbin/servin-init";
/// `PATH` when neither the image nor the container sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Default `/dev/shm` size (Docker's): 64 MiB.
pub const DEFAULT_SHM: i64 = 64 * 1024 * 1024;
/// Name servers Docker falls back to when the host has none the container
/// can reach.
pub const FALLBACK_DNS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// Host files bind-mounted over `/etc/hosts`, `/etc/hostname` and
/// `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    /// The generated hosts file.
    pub hosts: PathBuf,
    /// The generated hostname file.
    pub hostname: PathBuf,
    /// The generated resolv.conf.
    pub resolv_conf: PathBuf,
}

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
    /// The engine's hard open-files limit.
    pub host_nofile: u64,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

fn oci<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| bad(format!("{what}: {e}"))
}

/// Docker's merge of entrypoint and command: a container entrypoint
/// replaces the image's and drops the image's command (`[""]` clears the
/// entrypoint that way too); without one (or with `[]`, which still clears
/// the image's entrypoint) an empty or missing container command takes the
/// image's.
pub fn command_line(
    config: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<String>> {
    let image_ep = image
        .and_then(|i| i.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|i| i.cmd().clone()).unwrap_or_default();
    let own_cmd = config.cmd.clone().unwrap_or_default();
    let (ep, cmd) = match config.entrypoint.as_deref() {
        Some([only]) if only.is_empty() => (Vec::new(), own_cmd),
        Some(ep) if !ep.is_empty() => (ep.to_vec(), own_cmd),
        own => {
            let ep = if own.is_some() { Vec::new() } else { image_ep };
            let cmd = if own_cmd.is_empty() {
                image_cmd
            } else {
                own_cmd
            };
            (ep, cmd)
        }
    };
    let argv: Vec<String> = ep.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(bad("no command specified"));
    }
    Ok(argv)
}

/// Merges environment lists: later lists win per name; `NAME` without `=`
/// removes the variable.
fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, Option<String>> = HashMap::new();
    for list in lists {
        for item in *list {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item.clone(), None),
            };
            if !values.contains_key(&k) {
                order.push(k.clone());
            }
            values.insert(k, v);
        }
    }
    order
        .into_iter()
        .filter_map(|k| {
            let v = values.get(&k).cloned().flatten()?;
            Some(format!("{k}={v}"))
        })
        .collect()
}

fn has_var(env: &[String], name: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
}

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, in the kernel's numbering (index = number).
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn cap_name(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn parse_cap(name: &str) -> Result<Capability> {
    let full = cap_name(name);
    Capability::from_str(&full)
        .or_else(|_| serde_json::from_value(serde_json::Value::String(full.clone())))
        .map_err(|_| bad(format!("unknown capability {name:?}")))
}

fn is_all(name: &str) -> bool {
    matches!(cap_name(name).as_str(), "CAP_ALL")
}

/// The capabilities the engine itself may hand out: its bounding set (a
/// runtime cannot give a container more), else every one the kernel knows.
fn available_caps() -> u64 {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        });
    bounding.unwrap_or_else(|| {
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(40)
            .min(63);
        u64::MAX >> (63 - last)
    })
}

/// The capabilities in `mask`, by the kernel's numbering.
fn caps_in(mask: u64) -> HashSet<Capability> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| u32::try_from(*i).is_ok_and(|i| i < 64 && mask >> i & 1 == 1))
        .filter_map(|(_, c)| parse_cap(c).ok())
        .collect()
}

/// The capability set, as Docker tweaks it: everything when privileged;
/// with `cap_add: ALL`, everything but `cap_drop`; with `cap_drop: ALL`,
/// only `cap_add`; else the defaults minus `cap_drop` plus `cap_add`.
/// Names go with or without `CAP_`, in any case. "Everything" is what the
/// engine holds (as Podman does), so a privileged container also starts
/// where the engine runs with fewer capabilities; asking for one the
/// engine lacks by name is refused.
fn capabilities(hc: &HostConfig, privileged: bool) -> Result<LinuxCapabilities> {
    let available = caps_in(available_caps());
    let set: HashSet<Capability> = if privileged {
        available
    } else {
        let adds = hc.cap_add.clone().unwrap_or_default();
        let drops = hc.cap_drop.clone().unwrap_or_default();
        let named = |list: &[String]| -> Result<HashSet<Capability>> {
            list.iter()
                .filter(|c| !is_all(c))
                .map(|c| parse_cap(c))
                .collect()
        };
        let (add, drop) = (named(&adds)?, named(&drops)?);
        if let Some(missing) = adds
            .iter()
            .filter(|c| !is_all(c))
            .find(|c| parse_cap(c).is_ok_and(|cap| !available.contains(&cap)))
        {
            return Err(bad(format!(
                "capability {} cannot be added: the engine does not hold it",
                cap_name(missing)
            )));
        }
        if adds.iter().any(|c| is_all(c)) {
            available.difference(&drop).cloned().collect()
        } else if drops.iter().any(|c| is_all(c)) {
            add
        } else {
            let defaults: HashSet<Capability> = DEFAULT_CAPS
                .iter()
                .map(|c| parse_cap(c))
                .collect::<Result<_>>()?;
            defaults
                .intersection(&available)
                .filter(|c| !drop.contains(*c))
                .cloned()
                .chain(add)
                .collect()
        }
    };
    // Inheritable and ambient stay empty, as in Docker since 20.10: a
    // non-root user gains nothing across an exec.
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(oci("capabilities"))
}

/// What `security_opt` asks for.
#[derive(Debug, Default, Clone, Copy)]
struct Security {
    no_new_privileges: bool,
    /// `systempaths=unconfined`: no masked or read-only paths.
    unconfined_paths: bool,
    /// `writable-cgroups=true`: `/sys/fs/cgroup` read-write.
    writable_cgroups: bool,
}

/// Docker's `--security-opt` values. `seccomp`, `apparmor` and `label`
/// are accepted and left to the runtime's defaults (the engine loads no
/// seccomp profile or LSM label of its own).
fn security(hc: &HostConfig) -> Result<Security> {
    let mut s = Security::default();
    for opt in hc.security_opt.iter().flatten() {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        let flag = |v: Option<&str>| -> Result<bool> {
            match v {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(_) => Err(bad(format!(
                    "invalid security option {opt:?}: want true or false"
                ))),
            }
        };
        match key {
            "no-new-privileges" => s.no_new_privileges = flag(value)?,
            "writable-cgroups" => s.writable_cgroups = flag(value)?,
            "systempaths" if value == Some("unconfined") => s.unconfined_paths = true,
            "seccomp" | "apparmor" | "label" if value.is_some() => {}
            _ => {
                return Err(bad(format!(
                    "invalid security option {opt:?}: want no-new-privileges, seccomp=, apparmor=, label=, systempaths=unconfined or writable-cgroups="
                )));
            }
        }
    }
    Ok(s)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options.iter().map(|o| (*o).to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci("mount"))
}

/// A bind mount; `propagation` is `rprivate` unless asked otherwise.
fn bind_with(
    source: &Path,
    dest: &str,
    read_only: bool,
    propagation: &str,
    recursive: bool,
) -> Result<Mount> {
    let mut opts = vec![if recursive { "rbind" } else { "bind" }, propagation];
    if read_only {
        opts.push("ro");
    }
    mount(dest, "bind", &source.display().to_string(), &opts)
}

fn bind(source: &Path, dest: &str, read_only: bool) -> Result<Mount> {
    bind_with(source, dest, read_only, "rprivate", true)
}

fn check_dest(dest: &str) -> Result<()> {
    if !dest.starts_with('/') {
        return Err(bad(format!(
            "invalid mount destination {dest:?}: it must be an absolute path"
        )));
    }
    if dest.trim_end_matches('/').is_empty() {
        return Err(bad(format!(
            "invalid mount destination {dest:?}: the root cannot be a mount"
        )));
    }
    Ok(())
}

/// A host path for a bind mount: absolute and existing.
fn bind_source(src: &str) -> Result<PathBuf> {
    let p = PathBuf::from(src);
    if !src.starts_with('/') || !p.exists() {
        return Err(bad(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
        )));
    }
    Ok(p)
}

/// Docker's `-v SRC:DST[:OPTS]`: an absolute `SRC` is a host path, else a
/// named volume.
fn bind_spec(spec: &str, volume_path: &dyn Fn(&str) -> Result<PathBuf>) -> Result<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(bad(format!(
                "invalid volume specification {spec:?}: want SRC:DST[:OPTIONS]"
            )));
        }
    };
    if src.is_empty() {
        return Err(bad(format!(
            "invalid volume specification {spec:?}: the source is empty"
        )));
    }
    check_dest(dst)?;
    let mut read_only = false;
    let mut propagation = "rprivate";
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared" => propagation = o,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            other => return Err(bad(format!("invalid option {other:?} in volume {spec:?}"))),
        }
    }
    let source = if src.starts_with('/') {
        bind_source(src)?
    } else {
        volume_path(src)?
    };
    bind_with(&source, dst, read_only, propagation, true)
}

/// A tmpfs with Docker's defaults (`nosuid,nodev,noexec`) and `extra`
/// options; `exec`, `suid` and `dev` lift a default.
fn tmpfs(dest: &str, extra: &str) -> Result<Mount> {
    check_dest(dest)?;
    let mut opts: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
    for o in extra.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => opts.retain(|x| *x != "noexec"),
            "suid" => opts.retain(|x| *x != "nosuid"),
            "dev" => opts.retain(|x| *x != "nodev"),
            o => {
                if let Some((key, _)) = o.split_once('=') {
                    opts.retain(|x| !x.starts_with(&format!("{key}=")));
                }
                opts.push(o);
            }
        }
    }
    mount(dest, "tmpfs", "tmpfs", &opts)
}

/// The host folder of the anonymous volume at `dest`.
fn anonymous_at(input: &SpecInput<'_>, dest: &str) -> Result<PathBuf> {
    let key = dest.trim_end_matches('/');
    input
        .anonymous_volumes
        .iter()
        .find(|(d, _)| d.trim_end_matches('/') == key)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| bad(format!("no anonymous volume was made for {dest}")))
}

/// The mounts the user asked for: `binds`, `mounts`, then `tmpfs`, then
/// the anonymous volumes of `Volumes`.
fn user_mounts(input: &SpecInput<'_>, hc: &HostConfig) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for b in hc.binds.iter().flatten() {
        out.push(bind_spec(b, input.volume_path)?);
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        check_dest(&target)?;
        let ro = m.read_only.unwrap_or(false);
        let src = m.source.clone().unwrap_or_default();
        match m.typ {
            Some(MountType::BIND) => {
                let opts = m.bind_options.clone().unwrap_or_default();
                let propagation = match opts.propagation {
                    None | Some(MountBindOptionsPropagationEnum::EMPTY) => "rprivate".to_string(),
                    Some(p) => p.to_string(),
                };
                let recursive = !opts.non_recursive.unwrap_or(false);
                out.push(bind_with(
                    &bind_source(&src)?,
                    &target,
                    ro,
                    &propagation,
                    recursive,
                )?);
            }
            Some(MountType::VOLUME) if src.is_empty() => {
                let host = anonymous_at(input, &target)?;
                out.push(bind(&host, &target, ro)?);
            }
            Some(MountType::VOLUME) => {
                out.push(bind(&(input.volume_path)(&src)?, &target, ro)?);
            }
            Some(MountType::TMPFS) => {
                let mut extra = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    match t.size_bytes {
                        Some(s) if s < 0 => {
                            return Err(bad(format!(
                                "invalid tmpfs size {s} for {target}: it must not be negative"
                            )));
                        }
                        Some(s) if s > 0 => extra.push(format!("size={s}")),
                        _ => {}
                    }
                    match t.mode {
                        Some(mode) if !(0..=0o7777).contains(&mode) => {
                            return Err(bad(format!(
                                "invalid tmpfs mode {mode:o} for {target}: want permission bits such as 1777"
                            )));
                        }
                        Some(mode) => extra.push(format!("mode={mode:o}")),
                        None => {}
                    }
                    for kv in t.options.iter().flatten() {
                        extra.push(kv.join("="));
                    }
                }
                if ro {
                    extra.push("ro".to_string());
                }
                out.push(tmpfs(&target, &extra.join(","))?);
            }
            _ => {
                return Err(bad(format!(
                    "mount type {:?} at {target} is not supported: use bind, volume or tmpfs",
                    m.typ.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
        }
    }
    let mut tmpfs_list: Vec<(&String, &String)> = hc.tmpfs.iter().flatten().collect();
    tmpfs_list.sort();
    for (dest, opts) in tmpfs_list {
        out.push(tmpfs(dest, opts)?);
    }
    let mut seen = HashSet::new();
    for m in &out {
        let dest = m.destination().display().to_string();
        let dest = dest.trim_end_matches('/').to_string();
        if !seen.insert(dest.clone()) {
            return Err(bad(format!("duplicate mount point: {dest}")));
        }
    }
    // The container's and the image's `Volumes` give way to the user's
    // mounts at the same place.
    for (dest, host) in input.anonymous_volumes {
        let key = dest.trim_end_matches('/').to_string();
        if check_dest(dest).is_ok() && seen.insert(key) {
            out.push(bind(host, dest, false)?);
        }
    }
    // Parents before children, as Docker sorts them.
    out.sort_by_key(|m| m.destination().components().count());
    Ok(out)
}

/// All mounts: the standard file systems, the generated `/etc` files, the
/// init, then the user's; a user mount replaces a standard one at the same
/// place (and a user `/dev` replaces every standard mount below it).
fn mounts(
    input: &SpecInput<'_>,
    hc: &HostConfig,
    privileged: bool,
    sec: Security,
    ns: &Namespaces,
) -> Result<Vec<Mount>> {
    let shm = match hc.shm_size {
        Some(s) if s < 0 => {
            return Err(bad(format!(
                "invalid shm size {s}: it must not be negative"
            )));
        }
        Some(s) if s > 0 => s,
        _ => DEFAULT_SHM,
    };
    let shm_opt = format!("size={shm}");
    let sys_ro = if privileged { "rw" } else { "ro" };
    let cgroup_ro = if privileged || sec.writable_cgroups {
        "rw"
    } else {
        "ro"
    };
    let etc_ro = hc.readonly_rootfs.unwrap_or(false);
    let mut standard = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", cgroup_ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if !ns.ipc_none {
        standard.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?);
    }
    standard.push(bind(&input.etc.resolv_conf, "/etc/resolv.conf", etc_ro)?);
    standard.push(bind(&input.etc.hostname, "/etc/hostname", etc_ro)?);
    standard.push(bind(&input.etc.hosts, "/etc/hosts", etc_ro)?);
    if let Some(init) = input.init {
        standard.push(bind(init, INIT_PATH, true)?);
    }
    let user = user_mounts(input, hc)?;
    let taken: HashSet<PathBuf> = user.iter().map(|m| m.destination().clone()).collect();
    let user_dev = taken.contains(Path::new("/dev"));
    let mut out: Vec<Mount> = standard
        .into_iter()
        .filter(|m| {
            let d = m.destination();
            let under_user_dev = user_dev && d.starts_with("/dev");
            !(taken.contains(d) || under_user_dev)
        })
        .collect();
    out.extend(user);
    Ok(out)
}

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's masked paths plus each CPU's `thermal_throttle` folder on this
/// host (it leaks other containers' activity).
fn default_masked_paths() -> Vec<String> {
    let mut out: Vec<String> = MASKED_PATHS.iter().map(|p| (*p).to_string()).collect();
    let mut cpus: Vec<String> = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let digits = name.strip_prefix("cpu")?;
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| e.path().join("thermal_throttle"))
                .filter(|p| p.exists())
                .map(|p| p.display().to_string())
        })
        .collect();
    cpus.sort();
    out.extend(cpus);
    out
}

/// Whether a sysctl belongs to a namespace the container has of its own
/// (Docker's and runc's rule): IPC ones unless the IPC namespace is the
/// host's, `net.*` unless the network is the host's,
/// `kernel.domainname` with its own UTS namespace.
fn check_sysctl(key: &str, ns: &Namespaces) -> Result<()> {
    let ipc = matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.");
    let allowed = if ipc {
        !ns.ipc_host
    } else if key.starts_with("net.") {
        !matches!(ns.net, NetMode::Host)
    } else {
        key == "kernel.domainname" && !ns.uts_host
    };
    if allowed {
        Ok(())
    } else {
        Err(bad(format!(
            "sysctl {key:?} is not allowed: it is not namespaced to the container (or the container shares that namespace with the host)"
        )))
    }
}

/// The container's network namespace.
#[derive(Debug, Clone)]
enum NetMode {
    /// A namespace of its own.
    New,
    /// The engine's (`network_mode: host`).
    Host,
    /// An existing namespace.
    Join(PathBuf),
}

/// Which namespaces the container gets of its own.
#[derive(Debug, Clone)]
struct Namespaces {
    pid_host: bool,
    ipc_host: bool,
    /// `ipc_mode: none`: its own IPC namespace and no `/dev/shm`.
    ipc_none: bool,
    uts_host: bool,
    net: NetMode,
    cgroup_private: bool,
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
    fn of(hc: &HostConfig, netns: Option<&Path>) -> Result<Self> {
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
            _ => super::cgroup_v2_only(),
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

    fn list(&self) -> Result<Vec<LinuxNamespace>> {
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

/// The environment: Docker's `PATH` (default), `HOSTNAME` and, with a
/// terminal, `TERM=xterm`; then the image's, the container's and the
/// exec's variables, each list winning over the ones before; `HOME` from
/// `/etc/passwd` when nothing sets it (as runc does).
fn environment(
    input: &SpecInput<'_>,
    hostname: &str,
    home: Option<&str>,
    tty: bool,
    exec_env: &[String],
) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    let image_env = input
        .image
        .and_then(|i| i.env().clone())
        .unwrap_or_default();
    let own = input.config.env.clone().unwrap_or_default();
    let mut env = merge_env(&[&base, &image_env, &own, exec_env]);
    if !has_var(&env, "HOME") {
        env.push(format!("HOME={}", home.unwrap_or("/")));
    }
    env
}

fn user_of(input: &SpecInput<'_>) -> String {
    input
        .config
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| input.image.and_then(|i| i.user().clone()))
        .unwrap_or_default()
}

/// The user from the image's files, plus `group_add`.
fn run_as(input: &SpecInput<'_>, hc: &HostConfig, name: &str) -> Result<user::Resolved> {
    let mut resolved = user::resolve(input.rootfs, name)?;
    let extra = user::group_ids(input.rootfs, hc.group_add.as_deref().unwrap_or_default())?;
    resolved.additional.extend(extra);
    resolved.additional.retain(|g| *g != resolved.gid);
    resolved.additional.sort_unstable();
    resolved.additional.dedup();
    Ok(resolved)
}

fn workdir_of(input: &SpecInput<'_>) -> Result<String> {
    let wd = input
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| {
            input
                .image
                .and_then(|i| i.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".to_string());
    if !wd.starts_with('/') {
        return Err(bad(format!(
            "the working directory {wd:?} is invalid: it needs to be an absolute path"
        )));
    }
    Ok(wd)
}

/// The terminal's first size from Docker's `ConsoleSize` (`[height,
/// width]`), so a program that reads it at once does not see 0x0 before
/// the client's first resize. None without a terminal or a size.
fn console_size(tty: bool, size: Option<&[usize]>) -> Option<oci_spec::runtime::Box> {
    let [h, w] = size? else {
        return None;
    };
    if !tty || *h == 0 || *w == 0 {
        return None;
    }
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::try_from(*h).ok()?)
        .width(u64::try_from(*w).ok()?)
        .build()
        .ok()
}

/// The hostname: the container's, else the first 12 digits of its ID.
pub fn hostname_of(config: &ContainerCreateBody, id: &str) -> String {
    config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| id.chars().take(12).collect())
}

/// The parts of a process the container and its execs share.
fn process_builder(
    hc: &HostConfig,
    privileged: bool,
    resolved: &user::Resolved,
    host_nofile: u64,
) -> Result<ProcessBuilder> {
    Ok(ProcessBuilder::default()
        .user(user::oci_user(resolved)?)
        .capabilities(capabilities(hc, privileged)?)
        .rlimits(resources::rlimits(hc, host_nofile)?)
        .no_new_privileges(security(hc)?.no_new_privileges))
}

/// Builds the container's OCI runtime spec. Creates the working folder in
/// the root (owned by the container's user) when it is missing.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let hc = input.config.host_config.clone().unwrap_or_default();
    let privileged = hc.privileged.unwrap_or(false);
    let sec = security(&hc)?;
    let ns = Namespaces::of(&hc, input.netns)?;
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
    let mut process = process_builder(&hc, privileged, &resolved, input.host_nofile)?
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

    let mut sysctl = HashMap::new();
    for (k, v) in hc.sysctls.iter().flatten() {
        check_sysctl(k, &ns)?;
        sysctl.insert(k.clone(), v.clone());
    }

    let mut device_rules = if privileged {
        vec![devices::rule(
            true,
            oci_spec::runtime::LinuxDeviceType::A,
            None,
            None,
            "rwm",
        )?]
    } else {
        devices::default_rules()?
    };
    let mut linux_devices = if privileged {
        devices::host_devices()
    } else {
        Vec::new()
    };
    for mapping in hc.devices.iter().flatten() {
        let (devs, rules) = devices::mapped(mapping)?;
        linux_devices.retain(|d| devs.iter().all(|n| n.path() != d.path()));
        linux_devices.extend(devs);
        device_rules.extend(rules);
    }
    for r in hc.device_cgroup_rules.iter().flatten() {
        device_rules.push(devices::parse_rule(r)?);
    }
    let mut res = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .memory(resources::memory(&hc)?)
        .cpu(resources::cpu(&hc)?);
    if let Some(p) = resources::pids(&hc)? {
        res = res.pids(p);
    }

    let (masked, readonly) = if privileged || sec.unconfined_paths {
        (Vec::new(), Vec::new())
    } else {
        (
            hc.masked_paths.clone().unwrap_or_else(default_masked_paths),
            hc.readonly_paths
                .clone()
                .unwrap_or_else(|| READONLY_PATHS.iter().map(|p| (*p).to_string()).collect()),
        )
    };
    let linux = LinuxBuilder::default()
        .namespaces(ns.list()?)
        .resources(res.build().map_err(oci("resources"))?)
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
    let mut process = process_builder(&hc, privileged, &resolved, input.host_nofile)?
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

/// The generated `/etc/hosts` (no host gateway known: an extra host
/// `NAME:host-gateway` is refused).
pub fn hosts_file(hostname: &str, extra_hosts: &[String], addresses: &[IpAddr]) -> Result<String> {
    hosts_file_with_gateway(hostname, extra_hosts, addresses, None)
}

/// The generated `/etc/hosts`: localhost, the IPv6 names, the extra hosts
/// (`NAME:IP` or `NAME=IP`, IPv6 optionally in brackets; `host-gateway`
/// is `gateway`), then the container's addresses (`127.0.1.1` without
/// any) under its hostname.
pub fn hosts_file_with_gateway(
    hostname: &str,
    extra_hosts: &[String],
    addresses: &[IpAddr],
    gateway: Option<IpAddr>,
) -> Result<String> {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for entry in extra_hosts {
        let (name, ip) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .ok_or_else(|| bad(format!("invalid extra host {entry:?}: want NAME:IP")))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad(format!(
                "invalid extra host {entry:?}: the name {name:?} is not a host name"
            )));
        }
        let addr: IpAddr = if ip == "host-gateway" {
            gateway.ok_or_else(|| {
                bad(format!(
                    "invalid extra host {entry:?}: the container's network has no host gateway"
                ))
            })?
        } else {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            ip.parse().map_err(|_| {
                bad(format!(
                    "invalid extra host {entry:?}: {ip:?} is not an IP address"
                ))
            })?
        };
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    if addresses.is_empty() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for a in addresses {
        out.push_str(&format!("{a}\t{hostname}\n"));
    }
    Ok(out)
}

/// The host's resolver configuration as Docker reads it: `/etc/resolv.conf`,
/// or systemd-resolved's upstream file when the former only names the
/// local stub (127.0.0.53), which a container cannot reach.
pub fn host_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<&str> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    let only_stub = !servers.is_empty() && servers.iter().all(|s| *s == "127.0.0.53");
    if only_stub && let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
        return upstream;
    }
    main
}

/// The generated `/etc/resolv.conf`: the given servers, search domains and
/// options, else the host's. Loopback servers are dropped (a container
/// cannot reach the host's loopback); with none left, Docker's fallback
/// servers are used. A search list of `.` means none.
pub fn resolv_conf(
    host_resolv: &str,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let mut servers: Vec<String> = Vec::new();
    let mut host_search: Vec<String> = Vec::new();
    let mut host_options: Vec<String> = Vec::new();
    for line in host_resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(s) = words.next()
                    && s.parse::<IpAddr>().is_ok_and(|ip| !ip.is_loopback())
                {
                    servers.push(s.to_string());
                }
            }
            Some("search" | "domain") => host_search = words.map(String::from).collect(),
            Some("options") => host_options.extend(words.map(String::from)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        servers = dns.to_vec();
    }
    if servers.is_empty() {
        servers = FALLBACK_DNS.iter().map(|s| (*s).to_string()).collect();
    }
    let search = if search.is_empty() {
        host_search
    } else if search.iter().all(|s| s == ".") {
        Vec::new()
    } else {
        search.to_vec()
    };
    let options = if options.is_empty() {
        host_options
    } else {
        options.to_vec()
    };
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bollard_stubs::models::{
        DeviceMapping, MountBindOptions, MountTmpfsOptions, ResourcesUlimits,
    };
    use serde_json::{Value, json};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(ep: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> oci_spec::image::Config {
        let mut c = oci_spec::image::Config::default();
        c.set_entrypoint(ep.map(|v| v.into_iter().map(String::from).collect()));
        c.set_cmd(cmd.map(|v| v.into_iter().map(String::from).collect()));
        c.set_env(Some(vec!["PATH=/bin".to_string(), "A=image".to_string()]));
        c
    }

    fn body(ep: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> ContainerCreateBody {
        ContainerCreateBody {
            entrypoint: ep.map(|v| v.into_iter().map(String::from).collect()),
            cmd: cmd.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn merges_entrypoint_and_command_like_docker() {
        let img = image(Some(vec!["/ep"]), Some(vec!["default"]));
        let line = |b: ContainerCreateBody, i: Option<&oci_spec::image::Config>| {
            command_line(&b, i).map_err(|e| e.to_string())
        };
        assert_eq!(
            line(body(None, None), Some(&img)).unwrap(),
            ["/ep", "default"]
        );
        assert_eq!(
            line(body(None, Some(vec!["x"])), Some(&img)).unwrap(),
            ["/ep", "x"]
        );
        assert_eq!(
            line(body(Some(vec!["/other"]), None), Some(&img)).unwrap(),
            ["/other"],
            "a new entrypoint drops the image's command"
        );
        assert_eq!(
            line(body(Some(vec!["/other"]), Some(vec!["a"])), Some(&img)).unwrap(),
            ["/other", "a"]
        );
        assert_eq!(
            line(body(Some(vec![""]), Some(vec!["sh"])), Some(&img)).unwrap(),
            ["sh"],
            "[\"\"] clears the entrypoint"
        );
        let cmd_only = image(None, Some(vec!["sh", "-c", "x"]));
        assert_eq!(
            line(body(None, None), Some(&cmd_only)).unwrap(),
            ["sh", "-c", "x"]
        );
        assert_eq!(
            line(body(None, Some(vec!["ls"])), Some(&cmd_only)).unwrap(),
            ["ls"]
        );
        assert_eq!(line(body(None, Some(vec!["ls"])), None).unwrap(), ["ls"]);
        assert_eq!(
            line(body(Some(vec![""]), None), Some(&img)).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            line(body(None, None), None).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            line(body(None, Some(vec![])), Some(&cmd_only)).unwrap(),
            ["sh", "-c", "x"],
            "an empty command is no command: the image's"
        );
        assert_eq!(
            line(body(Some(vec![]), None), Some(&img)).unwrap(),
            ["default"],
            "[] clears the image's entrypoint but keeps its command"
        );
        assert_eq!(
            line(body(Some(vec![]), Some(vec!["y"])), Some(&img)).unwrap(),
            ["y"]
        );
    }

    #[test]
    fn environment_lists_merge_and_remove() {
        let env = merge_env(&[
            &["A=1".to_string(), "B=2".to_string()],
            &["A=3".to_string(), "B".to_string(), "C=4".to_string()],
        ]);
        assert_eq!(env, ["A=3", "C=4"]);
    }

    struct Fixture {
        dir: tempfile::TempDir,
        etc: EtcFiles,
        anon: Vec<(String, PathBuf)>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("rootfs");
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(
                root.join("etc/passwd"),
                "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            )
            .unwrap();
            std::fs::write(
                root.join("etc/group"),
                "root:x:0:\nstaff:x:50:app\naudio:x:29:\n",
            )
            .unwrap();
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            let etc = EtcFiles {
                hosts: dir.path().join("hosts"),
                hostname: dir.path().join("hostname"),
                resolv_conf: dir.path().join("resolv.conf"),
            };
            Self {
                dir,
                etc,
                anon: Vec::new(),
            }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("rootfs")
        }

        fn data(&self) -> String {
            self.dir.path().join("data").display().to_string()
        }

        fn input_with<'a>(
            &'a self,
            config: &'a ContainerCreateBody,
            img: &'a oci_spec::image::Config,
            root: &'a Path,
            netns: Option<&'a Path>,
            vol: &'a dyn Fn(&str) -> Result<PathBuf>,
        ) -> SpecInput<'a> {
            SpecInput {
                id: ID,
                name: "web",
                config,
                image: Some(img),
                rootfs: root,
                etc: &self.etc,
                init: Some(Path::new("/usr/bin/tini-static")),
                netns,
                volume_path: vol,
                anonymous_volumes: &self.anon,
                host_nofile: 20_000,
            }
        }

        fn spec_netns(&self, config: &ContainerCreateBody, netns: Option<&Path>) -> Result<Value> {
            let img = image(None, Some(vec!["sh"]));
            let root = self.root();
            let vols = self.dir.path().join("volumes");
            let vol = move |n: &str| -> Result<PathBuf> {
                if n == "cache" {
                    Ok(vols.join(n))
                } else {
                    Err(bad(format!("no such volume: {n}")))
                }
            };
            build(&self.input_with(config, &img, &root, netns, &vol))
                .map(|s| serde_json::to_value(&s).unwrap())
        }

        fn spec(&self, config: &ContainerCreateBody) -> Result<Value> {
            self.spec_netns(config, None)
        }

        fn host(&self, hc: HostConfig) -> Result<Value> {
            self.spec(&ContainerCreateBody {
                host_config: Some(hc),
                ..Default::default()
            })
        }

        fn refused(&self, hc: HostConfig) -> String {
            self.host(hc).unwrap_err().to_string()
        }

        fn exec(&self, config: &ContainerCreateBody, exec: &ExecConfig) -> Result<Value> {
            let img = image(None, Some(vec!["sh"]));
            let root = self.root();
            let vol = |n: &str| -> Result<PathBuf> { Err(bad(format!("no such volume: {n}"))) };
            exec_process(&self.input_with(config, &img, &root, None, &vol), exec)
                .map(|p| serde_json::to_value(&p).unwrap())
        }
    }

    fn strings(v: &Value) -> Vec<String> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    fn mount_at<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    fn options(v: &Value, dest: &str) -> Vec<String> {
        strings(&mount_at(v, dest).unwrap_or_else(|| panic!("no mount at {dest}"))["options"])
    }

    fn namespaces(v: &Value) -> Vec<String> {
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn process_user_env_workdir_and_init() {
        let f = Fixture::new();
        let config = ContainerCreateBody {
            user: Some("app".to_string()),
            working_dir: Some("/srv/app".to_string()),
            env: Some(vec!["A=mine".to_string(), "B=2".to_string()]),
            tty: Some(true),
            host_config: Some(HostConfig {
                group_add: Some(vec!["audio".into(), "4000".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = f.spec(&config).unwrap();
        assert_eq!(
            v["process"]["args"],
            json!(["/sbin/servin-init", "--", "sh"])
        );
        assert_eq!(v["process"]["terminal"], true);
        assert_eq!(
            v["process"]["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 50, 4000]})
        );
        assert_eq!(v["process"]["cwd"], "/srv/app");
        let made = std::fs::metadata(f.root().join("srv/app")).unwrap();
        assert!(made.is_dir(), "the workdir was created");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&made), 1000);
        let env = strings(&v["process"]["env"]);
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOSTNAME=0123456789ab",
                "TERM=xterm",
                "A=mine",
                "B=2",
                "HOME=/home/app"
            ]
        );
        assert_eq!(v["hostname"], "0123456789ab");
        let init = mount_at(&v, INIT_PATH).unwrap();
        assert_eq!(init["source"], "/usr/bin/tini-static");
        assert!(strings(&init["options"]).contains(&"ro".to_string()));
        assert_eq!(v["root"]["path"], json!(f.root()));
        assert_eq!(v["linux"]["cgroupsPath"], format!("/servin/{ID}"));

        let v = f
            .spec(&ContainerCreateBody {
                hostname: Some("box".into()),
                env: Some(vec!["PATH=/mine".into(), "HOME=/h".into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v["hostname"], "box");
        assert_eq!(v["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(v["process"]["cwd"], "/");
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(
            strings(&v["process"]["env"]),
            ["PATH=/mine", "HOSTNAME=box", "A=image", "HOME=/h"]
        );
    }

    #[test]
    fn the_default_path_fills_in() {
        let f = Fixture::new();
        let mut img = image(None, Some(vec!["sh"]));
        img.set_env(None);
        img.set_working_dir(Some("/from/image".into()));
        img.set_user(Some("1000".into()));
        let root = f.root();
        let config = ContainerCreateBody::default();
        let vol = |n: &str| -> Result<PathBuf> { Err(bad(n.to_string())) };
        let mut input = f.input_with(&config, &img, &root, None, &vol);
        input.init = None;
        let v = serde_json::to_value(build(&input).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], json!(["sh"]));
        assert!(mount_at(&v, INIT_PATH).is_none());
        assert_eq!(v["process"]["env"][0], format!("PATH={DEFAULT_PATH}"));
        assert_eq!(v["process"]["cwd"], "/from/image");
        assert_eq!(v["process"]["user"]["uid"], 1000, "the image's user");
        assert!(
            f.spec(&ContainerCreateBody {
                working_dir: Some("rel".into()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
            .contains("\"rel\"")
        );
    }

    #[test]
    fn standard_mounts() {
        let f = Fixture::new();
        let v = f.spec(&ContainerCreateBody::default()).unwrap();
        let dests: Vec<String> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts",
                INIT_PATH
            ]
        );
        assert_eq!(mount_at(&v, "/dev").unwrap()["type"], "tmpfs");
        assert!(options(&v, "/sys").contains(&"ro".to_string()));
        assert!(options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
        assert!(options(&v, "/dev/shm").contains(&format!("size={DEFAULT_SHM}")));
        let hosts = mount_at(&v, "/etc/hosts").unwrap();
        assert_eq!(hosts["source"], json!(f.etc.hosts));
        assert_eq!(hosts["type"], "bind");
        assert!(!options(&v, "/etc/hosts").contains(&"ro".to_string()));

        let v = f
            .host(HostConfig {
                shm_size: Some(1 << 20),
                readonly_rootfs: Some(true),
                ..Default::default()
            })
            .unwrap();
        assert!(options(&v, "/dev/shm").contains(&"size=1048576".to_string()));
        assert_eq!(v["root"]["readonly"], true);
        assert!(
            options(&v, "/etc/hosts").contains(&"ro".to_string()),
            "read-only root: read-only generated files, as Docker"
        );
        let v = f
            .host(HostConfig {
                ipc_mode: Some("none".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(mount_at(&v, "/dev/shm").is_none());
        assert!(
            f.refused(HostConfig {
                shm_size: Some(-1),
                ..Default::default()
            })
            .contains("-1")
        );
    }

    #[test]
    fn anonymous_volumes_give_way_to_user_mounts() {
        let mut f = Fixture::new();
        let vols = f.dir.path().join("volumes");
        f.anon = vec![
            ("/anon".to_string(), vols.join("a1/_data")),
            ("/m/anon".to_string(), vols.join("a2/_data")),
            ("/cache/".to_string(), vols.join("a3/_data")),
        ];
        let v = f
            .host(HostConfig {
                binds: Some(vec!["cache:/cache:ro".into()]),
                mounts: Some(vec![bollard_stubs::models::Mount {
                    typ: Some(MountType::VOLUME),
                    target: Some("/m/anon".into()),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            mount_at(&v, "/anon").unwrap()["source"],
            json!(vols.join("a1/_data"))
        );
        assert_eq!(options(&v, "/anon"), ["rbind", "rprivate"]);
        assert_eq!(
            mount_at(&v, "/m/anon").unwrap()["source"],
            json!(vols.join("a2/_data"))
        );
        assert_eq!(options(&v, "/m/anon"), ["rbind", "rprivate", "ro"]);
        assert_eq!(
            mount_at(&v, "/cache").unwrap()["source"],
            json!(vols.join("cache")),
            "the user's volume wins over the image's"
        );
        assert!(mount_at(&v, "/cache/").is_none());
        let err = f
            .host(HostConfig {
                mounts: Some(vec![bollard_stubs::models::Mount {
                    typ: Some(MountType::VOLUME),
                    target: Some("/elsewhere".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("/elsewhere"), "{err}");
    }

    #[test]
    fn binds_volumes_and_tmpfs() {
        let f = Fixture::new();
        let data = f.data();
        let v = f
            .host(HostConfig {
                binds: Some(vec![
                    format!("{data}:/data/ro:ro,z"),
                    format!("{data}:/data:rshared"),
                    "cache:/cache".into(),
                ]),
                mounts: Some(vec![
                    bollard_stubs::models::Mount {
                        typ: Some(MountType::BIND),
                        source: Some(data.clone()),
                        target: Some("/m/bind".into()),
                        read_only: Some(true),
                        bind_options: Some(MountBindOptions {
                            non_recursive: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    bollard_stubs::models::Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some("cache".into()),
                        target: Some("/m/vol".into()),
                        ..Default::default()
                    },
                    bollard_stubs::models::Mount {
                        typ: Some(MountType::TMPFS),
                        target: Some("/m/tmp".into()),
                        tmpfs_options: Some(MountTmpfsOptions {
                            size_bytes: Some(1 << 20),
                            mode: Some(0o1770),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                tmpfs: Some([("/run".to_string(), "exec,size=64k".to_string())].into()),
                ..Default::default()
            })
            .unwrap();
        let ro = mount_at(&v, "/data/ro").unwrap();
        assert_eq!(ro["source"], json!(data));
        assert_eq!(strings(&ro["options"]), ["rbind", "rprivate", "ro"]);
        assert_eq!(options(&v, "/data"), ["rbind", "rshared"]);
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        let at = |d: &str| dests.iter().position(|x| *x == d).unwrap();
        assert!(at("/data") < at("/data/ro"), "parents first: {dests:?}");
        assert_eq!(
            mount_at(&v, "/cache").unwrap()["source"],
            json!(f.dir.path().join("volumes/cache"))
        );
        assert_eq!(options(&v, "/m/bind"), ["bind", "rprivate", "ro"]);
        assert_eq!(
            mount_at(&v, "/m/vol").unwrap()["source"],
            json!(f.dir.path().join("volumes/cache"))
        );
        assert_eq!(
            options(&v, "/m/tmp"),
            ["nosuid", "nodev", "noexec", "size=1048576", "mode=1770"]
        );
        assert_eq!(options(&v, "/run"), ["nosuid", "nodev", "size=64k"]);

        let e = f.refused(HostConfig {
            binds: Some(vec!["/no/such:/x".into()]),
            ..Default::default()
        });
        assert_eq!(
            e,
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such"
        );
        let e = f.refused(HostConfig {
            mounts: Some(vec![bollard_stubs::models::Mount {
                typ: Some(MountType::BIND),
                source: Some("/no/where".into()),
                target: Some("/x".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(
            e.contains("bind source path does not exist: /no/where"),
            "{e}"
        );
        assert!(
            f.refused(HostConfig {
                binds: Some(vec!["ghost:/x".into()]),
                ..Default::default()
            })
            .contains("no such volume: ghost")
        );
        assert!(
            f.refused(HostConfig {
                binds: Some(vec![format!("{data}:relative")]),
                ..Default::default()
            })
            .contains("\"relative\"")
        );
        assert!(
            f.refused(HostConfig {
                binds: Some(vec![format!("{data}:/x:bogus")]),
                ..Default::default()
            })
            .contains("\"bogus\"")
        );
        assert!(
            f.refused(HostConfig {
                binds: Some(vec![format!("{data}:/x"), "cache:/x".into()]),
                ..Default::default()
            })
            .contains("duplicate mount point: /x")
        );
        assert!(
            f.refused(HostConfig {
                mounts: Some(vec![bollard_stubs::models::Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some("/t".into()),
                    tmpfs_options: Some(MountTmpfsOptions {
                        size_bytes: Some(-5),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .contains("-5")
        );
    }

    #[test]
    fn user_mounts_replace_standard_ones() {
        let f = Fixture::new();
        let data = f.data();
        let v = f
            .host(HostConfig {
                binds: Some(vec![format!("{data}:/etc/hosts"), format!("{data}:/dev")]),
                tmpfs: Some([("/dev/shm".to_string(), String::new())].into()),
                ..Default::default()
            })
            .unwrap();
        let hosts: Vec<&Value> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/etc/hosts")
            .collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0]["source"], json!(data));
        let dev: Vec<&Value> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"].as_str().unwrap().starts_with("/dev"))
            .collect();
        assert_eq!(dev.len(), 2, "only the user's /dev and /dev/shm: {dev:?}");
    }

    #[test]
    fn capabilities_like_docker() {
        let f = Fixture::new();
        let caps = |add: &[&str], drop: &[&str]| -> Result<Vec<String>> {
            let v = f.host(HostConfig {
                cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
                cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            })?;
            let mut b = strings(&v["process"]["capabilities"]["bounding"]);
            b.sort();
            let mut e = strings(&v["process"]["capabilities"]["effective"]);
            e.sort();
            assert_eq!(b, e);
            assert_eq!(v["process"]["capabilities"]["inheritable"], json!([]));
            Ok(b)
        };
        let mut defaults: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        defaults.sort();
        assert_eq!(caps(&[], &[]).unwrap(), defaults);
        let c = caps(&["sys_ptrace", "CAP_NET_ADMIN"], &["net_raw"]).unwrap();
        assert!(c.contains(&"CAP_SYS_PTRACE".into()) && c.contains(&"CAP_NET_ADMIN".into()));
        assert!(!c.contains(&"CAP_NET_RAW".into()) && c.contains(&"CAP_CHOWN".into()));
        assert_eq!(caps(&[], &["ALL"]).unwrap(), Vec::<String>::new());
        assert_eq!(caps(&["kill"], &["all"]).unwrap(), ["CAP_KILL"]);
        let all_but = caps(&["ALL"], &["SYS_ADMIN"]).unwrap();
        assert!(all_but.contains(&"CAP_SYS_MODULE".into()));
        assert!(
            !all_but.contains(&"CAP_SYS_ADMIN".into()),
            "add ALL still drops"
        );
        assert_eq!(
            caps(&["FLY"], &[]).unwrap_err().to_string(),
            "unknown capability \"FLY\""
        );
        assert!(
            caps(&[], &["CAP_NOPE"])
                .unwrap_err()
                .to_string()
                .contains("CAP_NOPE")
        );
        let missing = ALL_CAPS
            .iter()
            .enumerate()
            .find(|(i, _)| available_caps() >> i & 1 == 0)
            .map(|(_, c)| *c);
        if let Some(missing) = missing {
            let e = caps(&[missing], &[]).unwrap_err().to_string();
            assert!(e.contains(missing) && e.contains("does not hold"), "{e}");
            assert!(!caps(&["ALL"], &[]).unwrap().contains(&missing.to_string()));
        }
    }

    #[test]
    fn privileged_gets_everything() {
        let f = Fixture::new();
        let v = f
            .host(HostConfig {
                privileged: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                ..Default::default()
            })
            .unwrap();
        let caps = strings(&v["process"]["capabilities"]["bounding"]);
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()) && caps.len() > 30);
        assert_eq!(v["linux"]["maskedPaths"], json!([]));
        assert_eq!(v["linux"]["readonlyPaths"], json!([]));
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "type": "a", "access": "rwm"}])
        );
        let devs = v["linux"]["devices"].as_array().unwrap();
        assert!(
            devs.iter().any(|d| d["path"] == "/dev/null"),
            "host devices"
        );
        assert!(!options(&v, "/sys").contains(&"ro".to_string()));
        assert!(!options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
    }

    #[test]
    fn masked_readonly_and_devices_by_default() {
        let f = Fixture::new();
        let v = f.spec(&ContainerCreateBody::default()).unwrap();
        let masked = strings(&v["linux"]["maskedPaths"]);
        for p in MASKED_PATHS {
            assert!(masked.contains(&p.to_string()), "{p} not masked");
        }
        assert_eq!(strings(&v["linux"]["readonlyPaths"]), READONLY_PATHS);
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(
            rules[0],
            json!({"allow": false, "type": "a", "access": "rwm"})
        );
        assert!(
            rules
                .iter()
                .any(|r| r["major"] == 1 && r["minor"] == 3 && r["allow"] == true)
        );
        assert!(v["linux"]["devices"].as_array().is_none_or(Vec::is_empty));

        let v = f
            .host(HostConfig {
                security_opt: Some(vec!["systempaths=unconfined".into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v["linux"]["maskedPaths"], json!([]));
        let v = f
            .host(HostConfig {
                masked_paths: Some(vec!["/proc/mine".into()]),
                readonly_paths: Some(vec![]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v["linux"]["maskedPaths"], json!(["/proc/mine"]));
        assert_eq!(v["linux"]["readonlyPaths"], json!([]));

        let v = f
            .host(HostConfig {
                devices: Some(vec![DeviceMapping {
                    path_on_host: Some("/dev/zero".into()),
                    path_in_container: Some("/dev/z".into()),
                    cgroup_permissions: Some("r".into()),
                }]),
                device_cgroup_rules: Some(vec!["c 10:229 rwm".into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/z");
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        let n = rules.len();
        assert_eq!(
            rules[n - 2],
            json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"})
        );
        assert_eq!(
            rules[n - 1]["minor"],
            229,
            "fuse allowed by the rule, after the defaults"
        );
        assert!(
            f.refused(HostConfig {
                device_cgroup_rules: Some(vec!["c x rwm".into()]),
                ..Default::default()
            })
            .contains("c x rwm")
        );
    }

    #[test]
    fn security_options() {
        let f = Fixture::new();
        for (opt, want) in [
            ("no-new-privileges", true),
            ("no-new-privileges:true", true),
            ("no-new-privileges=true", true),
            ("no-new-privileges:false", false),
        ] {
            let v = f
                .host(HostConfig {
                    security_opt: Some(vec![opt.into()]),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(v["process"]["noNewPrivileges"], want, "{opt}");
        }
        let v = f.spec(&ContainerCreateBody::default()).unwrap();
        assert_eq!(v["process"]["noNewPrivileges"], false);
        let v = f
            .host(HostConfig {
                security_opt: Some(vec![
                    "seccomp=unconfined".into(),
                    "apparmor=unconfined".into(),
                    "label=disable".into(),
                    "writable-cgroups=true".into(),
                ]),
                ..Default::default()
            })
            .unwrap();
        assert!(!options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
        assert!(
            f.refused(HostConfig {
                security_opt: Some(vec!["fly=high".into()]),
                ..Default::default()
            })
            .contains("fly=high")
        );
        assert!(
            f.refused(HostConfig {
                security_opt: Some(vec!["no-new-privileges:maybe".into()]),
                ..Default::default()
            })
            .contains("maybe")
        );
    }

    #[test]
    fn namespaces_and_sysctls() {
        let f = Fixture::new();
        let v = f.spec(&ContainerCreateBody::default()).unwrap();
        let mut want = vec!["mount", "network", "uts", "pid", "ipc"];
        if super::super::cgroup_v2_only() {
            want.push("cgroup");
        }
        assert_eq!(namespaces(&v), want);
        let v = f
            .spec_netns(
                &ContainerCreateBody::default(),
                Some(Path::new("/run/netns/x")),
            )
            .unwrap();
        let net = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/x");
        let v = f
            .host(HostConfig {
                network_mode: Some("host".into()),
                pid_mode: Some("host".into()),
                ipc_mode: Some("host".into()),
                uts_mode: Some("host".into()),
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(namespaces(&v), ["mount", "cgroup"]);
        assert!(
            v.get("hostname").is_none(),
            "no hostname in the host's UTS namespace"
        );
        assert!(
            f.refused(HostConfig {
                pid_mode: Some("container:abc".into()),
                ..Default::default()
            })
            .contains("container:abc")
        );
        assert!(
            f.refused(HostConfig {
                network_mode: Some("container:abc".into()),
                ..Default::default()
            })
            .contains("container:abc")
        );

        let sysctls = |pairs: &[(&str, &str)], network: Option<&str>| {
            f.host(HostConfig {
                sysctls: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                network_mode: network.map(String::from),
                ..Default::default()
            })
        };
        let v = sysctls(
            &[
                ("net.ipv4.ip_forward", "1"),
                ("kernel.shmmax", "1000"),
                ("fs.mqueue.msg_max", "20"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(v["linux"]["sysctl"]["kernel.shmmax"], "1000");
        let e = sysctls(&[("kernel.pid_max", "1")], None).unwrap_err();
        assert!(e.to_string().contains("kernel.pid_max"));
        let e = sysctls(&[("net.core.somaxconn", "1")], Some("host")).unwrap_err();
        assert!(e.to_string().contains("net.core.somaxconn"), "host network");
        let e = f
            .host(HostConfig {
                privileged: Some(true),
                sysctls: Some([("vm.swappiness".to_string(), "1".to_string())].into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            e.to_string().contains("vm.swappiness"),
            "runc refuses it even then"
        );
    }

    #[test]
    fn resources_and_limits() {
        let f = Fixture::new();
        let v = f
            .host(HostConfig {
                memory: Some(16 << 20),
                memory_reservation: Some(8 << 20),
                nano_cpus: Some(500_000_000),
                cpu_shares: Some(512),
                cpuset_cpus: Some("0".into()),
                pids_limit: Some(10),
                oom_kill_disable: Some(true),
                oom_score_adj: Some(500),
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(50_000),
                    hard: Some(90_000),
                }]),
                ..Default::default()
            })
            .unwrap();
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 16 << 20);
        assert_eq!(r["memory"]["reservation"], 8 << 20);
        assert_eq!(r["memory"]["disableOOMKiller"], true);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], 10);
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert_eq!(
            v["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 20_000, "hard": 20_000}]),
            "clamped to the host's hard limit"
        );
        let v = f.spec(&ContainerCreateBody::default()).unwrap();
        assert_eq!(
            v["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 20_000, "hard": 20_000}])
        );
        assert!(v["linux"]["resources"].get("pids").is_none());
        assert!(
            f.refused(HostConfig {
                memory: Some(-1),
                ..Default::default()
            })
            .contains("memory limit -1")
        );
        assert!(
            f.refused(HostConfig {
                memory: Some(10 << 20),
                memory_swap: Some(1 << 20),
                ..Default::default()
            })
            .contains("swap")
        );
        assert!(
            f.refused(HostConfig {
                oom_score_adj: Some(2000),
                ..Default::default()
            })
            .contains("2000")
        );
        assert!(
            f.refused(HostConfig {
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nproc".into()),
                    soft: Some(10),
                    hard: Some(1),
                }]),
                ..Default::default()
            })
            .contains("nproc")
        );
    }

    #[test]
    fn unknown_users_are_refused() {
        let f = Fixture::new();
        let e = f
            .spec(&ContainerCreateBody {
                user: Some("ghost".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert!(
            f.host(HostConfig {
                group_add: Some(vec!["nogroup".into()]),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
            .contains("nogroup")
        );
    }

    #[test]
    fn exec_processes() {
        let f = Fixture::new();
        let config = ContainerCreateBody {
            user: Some("app".into()),
            working_dir: Some("/srv".into()),
            env: Some(vec!["A=container".into(), "B=1".into()]),
            host_config: Some(HostConfig {
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                group_add: Some(vec!["audio".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = f
            .exec(
                &config,
                &ExecConfig {
                    cmd: Some(vec!["id".into()]),
                    env: Some(vec!["B=exec".into()]),
                    tty: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(p["args"], json!(["id"]));
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 50]})
        );
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(p["terminal"], true);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["capabilities"]["bounding"], json!([]));
        assert_eq!(
            strings(&p["env"]),
            [
                "PATH=/bin",
                "HOSTNAME=0123456789ab",
                "TERM=xterm",
                "A=container",
                "B=exec",
                "HOME=/home/app"
            ]
        );
        let p = f
            .exec(
                &config,
                &ExecConfig {
                    cmd: Some(vec!["sh".into()]),
                    user: Some("0:0".into()),
                    working_dir: Some("/tmp".into()),
                    privileged: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            p["user"],
            json!({"uid": 0, "gid": 0, "additionalGids": [29]})
        );
        assert_eq!(p["cwd"], "/tmp");
        assert!(strings(&p["capabilities"]["bounding"]).contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!strings(&p["env"]).iter().any(|e| e.starts_with("TERM=")));
        let no_cmd = f.exec(&config, &ExecConfig::default()).unwrap_err();
        assert_eq!(no_cmd.to_string(), "no exec command specified");
        let e = f
            .exec(
                &config,
                &ExecConfig {
                    cmd: Some(vec!["id".into()]),
                    user: Some("ghost".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("ghost"));
    }

    #[test]
    fn hosts_files() {
        let h = hosts_file(
            "box",
            &[
                "db:10.0.0.5".to_string(),
                "v6=::1".to_string(),
                "six:[fe80::1]".to_string(),
                "bare6:::2".to_string(),
            ],
            &[],
        )
        .unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.contains("10.0.0.5\tdb\n"), "{h}");
        assert!(
            h.contains("::1\tv6\n") && h.contains("fe80::1\tsix\n") && h.contains("::2\tbare6\n")
        );
        assert!(h.ends_with("127.0.1.1\tbox\n"));
        let h = hosts_file("box", &[], &["172.17.0.2".parse().unwrap()]).unwrap();
        assert!(h.ends_with("172.17.0.2\tbox\n") && !h.contains("127.0.1.1"));
        for (entry, named) in [
            ("nonsense", "nonsense"),
            ("db:not-an-ip", "not-an-ip"),
            (":1.2.3.4", ":1.2.3.4"),
            ("host.docker.internal:host-gateway", "host-gateway"),
        ] {
            let e = hosts_file("box", &[entry.to_string()], &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{entry}: {e}");
        }
        let h = hosts_file_with_gateway(
            "box",
            &["host.docker.internal:host-gateway".to_string()],
            &[],
            Some("172.17.0.1".parse().unwrap()),
        )
        .unwrap();
        assert!(h.contains("172.17.0.1\thost.docker.internal\n"));
    }

    #[test]
    fn resolv_confs() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\nsearch lan corp\noptions edns0 trust-ad\n";
        assert_eq!(
            resolv_conf(host, &[], &[], &[]),
            "nameserver 10.0.0.1\nsearch lan corp\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf(
                host,
                &["1.1.1.1".into()],
                &["x.test".into()],
                &["ndots:2".into()]
            ),
            "nameserver 1.1.1.1\nsearch x.test\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n", &[], &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
            "only loopback servers: Docker's fallback"
        );
        assert_eq!(
            resolv_conf(host, &[], &[".".into()], &[]),
            "nameserver 10.0.0.1\noptions edns0 trust-ad\n"
        );
        assert!(host_resolv_conf().len() < 1 << 20);
    }

    #[test]
    fn a_terminal_starts_at_the_client_size() {
        let f = Fixture::new();
        let config = ContainerCreateBody {
            tty: Some(true),
            host_config: Some(HostConfig {
                console_size: Some(vec![40, 100]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = f.spec(&config).unwrap();
        assert_eq!(
            v["process"]["consoleSize"],
            serde_json::json!({"height": 40, "width": 100})
        );
        let no_tty = ContainerCreateBody {
            host_config: config.host_config.clone(),
            ..Default::default()
        };
        let v = f.spec(&no_tty).unwrap();
        assert!(v["process"]["consoleSize"].is_null());
    }
}
