//! The OCI runtime spec (`config.json`) of a container, built with
//! `oci-spec` from Docker's create body and the image's config, with
//! Docker's defaults: capabilities, masked and read-only paths, device
//! rules, mounts, limits.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bollard_stubs::models::{ContainerCreateBody, ExecConfig, HostConfig, MountType};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
};

use super::user;
use crate::error::{Error, Result};

/// Where the init binary appears in the container.
pub const INIT_PATH: &str = "/sbin/servin-init";
/// `PATH` when neither the image nor the container sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Default `/dev/shm` size (Docker's): 64 MiB.
pub const DEFAULT_SHM: i64 = 64 * 1024 * 1024;
/// The open-files limit containers get when the host allows it.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

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
    /// A network namespace to join; `None` makes a new one.
    pub netns: Option<&'a Path>,
    /// Named volume to host folder.
    pub volume_path: &'a dyn Fn(&str) -> Result<PathBuf>,
    /// The engine's hard open-files limit.
    pub host_nofile: u64,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

fn oci<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| bad(format!("{what}: {e}"))
}

/// Docker's merge of entrypoint and command.
pub fn command_line(
    config: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<String>> {
    let image_ep = image
        .and_then(|i| i.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|i| i.cmd().clone()).unwrap_or_default();
    let (ep, cmd) = match &config.entrypoint {
        Some(ep) => {
            let ep = if ep.len() == 1 && ep[0].is_empty() {
                Vec::new()
            } else {
                ep.clone()
            };
            (ep, config.cmd.clone().unwrap_or_default())
        }
        None => (image_ep, config.cmd.clone().unwrap_or(image_cmd)),
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

fn all_caps() -> HashSet<Capability> {
    [
        "CAP_AUDIT_CONTROL",
        "CAP_AUDIT_READ",
        "CAP_AUDIT_WRITE",
        "CAP_BLOCK_SUSPEND",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_KILL",
        "CAP_LEASE",
        "CAP_LINUX_IMMUTABLE",
        "CAP_MAC_ADMIN",
        "CAP_MAC_OVERRIDE",
        "CAP_MKNOD",
        "CAP_NET_ADMIN",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_RAW",
        "CAP_PERFMON",
        "CAP_SETGID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_CHROOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_NICE",
        "CAP_SYS_PACCT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
    ]
    .iter()
    .filter_map(|c| parse_cap(c).ok())
    .collect()
}

/// The capability set: Docker's defaults, plus `cap_add`, minus `cap_drop`
/// (`ALL` in either), or everything when privileged.
fn capabilities(hc: &HostConfig, privileged: bool) -> Result<LinuxCapabilities> {
    let set: HashSet<Capability> = if privileged {
        all_caps()
    } else {
        let adds = hc.cap_add.clone().unwrap_or_default();
        let drops = hc.cap_drop.clone().unwrap_or_default();
        let mut set: HashSet<Capability> = if drops.iter().any(|d| d.eq_ignore_ascii_case("all")) {
            HashSet::new()
        } else {
            DEFAULT_CAPS
                .iter()
                .map(|c| parse_cap(c))
                .collect::<Result<_>>()?
        };
        for d in drops.iter().filter(|d| !d.eq_ignore_ascii_case("all")) {
            set.remove(&parse_cap(d)?);
        }
        if adds.iter().any(|a| a.eq_ignore_ascii_case("all")) {
            set = all_caps();
        } else {
            for a in &adds {
                set.insert(parse_cap(a)?);
            }
        }
        set
    };
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(oci("capabilities"))
}

fn rlimit_type(name: &str) -> Result<PosixRlimitType> {
    Ok(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        "as" => PosixRlimitType::RlimitAs,
        other => return Err(bad(format!("unknown ulimit {other:?}"))),
    })
}

fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<PosixRlimit> {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(oci("ulimit"))
}

/// The rlimits: the default open-files limit, then `ulimits`, never above
/// the host's hard open-files limit, never soft above hard.
fn rlimits(hc: &HostConfig, host_nofile: u64) -> Result<Vec<PosixRlimit>> {
    let nofile = DEFAULT_NOFILE.min(host_nofile);
    let mut out: Vec<(String, u64, u64)> = vec![("nofile".to_string(), nofile, nofile)];
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        let soft = u.soft.unwrap_or(0);
        let hard = u.hard.unwrap_or(soft);
        if soft < 0 || hard < 0 {
            return Err(bad(format!(
                "invalid ulimit {name}={soft}:{hard}: values must not be negative"
            )));
        }
        let (mut soft, mut hard) = (soft.unsigned_abs(), hard.unsigned_abs());
        if soft > hard {
            return Err(bad(format!(
                "invalid ulimit {name}={soft}:{hard}: the soft limit is above the hard limit"
            )));
        }
        if name == "nofile" {
            hard = hard.min(host_nofile);
            soft = soft.min(hard);
        }
        rlimit_type(&name)?;
        out.retain(|(n, _, _)| *n != name);
        out.push((name, soft, hard));
    }
    out.into_iter()
        .map(|(n, s, h)| rlimit(rlimit_type(&n)?, s, h))
        .collect()
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

fn bind(source: &Path, dest: &str, read_only: bool) -> Result<Mount> {
    let mut opts = vec!["rbind", "rprivate"];
    if read_only {
        opts.push("ro");
    }
    mount(dest, "bind", &source.display().to_string(), &opts)
}

fn check_dest(dest: &str) -> Result<()> {
    if !dest.starts_with('/') {
        return Err(bad(format!(
            "invalid mount destination {dest:?}: it must be an absolute path"
        )));
    }
    if dest == "/" {
        return Err(bad(
            "invalid mount destination \"/\": the root cannot be a mount",
        ));
    }
    Ok(())
}

/// Docker's `-v SRC:DST[:OPTS]`.
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
    check_dest(dst)?;
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "rshared"
            | "shared" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            other => return Err(bad(format!("invalid option {other:?} in volume {spec:?}"))),
        }
    }
    let source = if src.starts_with('/') {
        let p = PathBuf::from(src);
        if !p.exists() {
            return Err(bad(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            )));
        }
        p
    } else {
        volume_path(src)?
    };
    bind(&source, dst, read_only)
}

fn tmpfs(dest: &str, extra: &str) -> Result<Mount> {
    check_dest(dest)?;
    let mut opts: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
    for o in extra.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => opts.retain(|x| *x != "noexec"),
            "suid" => opts.retain(|x| *x != "nosuid"),
            "dev" => opts.retain(|x| *x != "nodev"),
            o => opts.push(o),
        }
    }
    mount(dest, "tmpfs", "tmpfs", &opts)
}

fn mounts(input: &SpecInput<'_>, hc: &HostConfig) -> Result<Vec<Mount>> {
    let shm = hc.shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM);
    let shm_opt = format!("size={shm}");
    let mut out = vec![
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
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?,
        bind(&input.etc.resolv_conf, "/etc/resolv.conf", false)?,
        bind(&input.etc.hostname, "/etc/hostname", false)?,
        bind(&input.etc.hosts, "/etc/hosts", false)?,
    ];
    if let Some(init) = input.init {
        out.push(bind(init, INIT_PATH, true)?);
    }
    for b in hc.binds.iter().flatten() {
        out.push(bind_spec(b, input.volume_path)?);
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        check_dest(&target)?;
        let ro = m.read_only.unwrap_or(false);
        match m.typ {
            Some(MountType::BIND) => {
                let src = m.source.clone().unwrap_or_default();
                if !src.starts_with('/') || !Path::new(&src).exists() {
                    return Err(bad(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                out.push(bind(Path::new(&src), &target, ro)?);
            }
            Some(MountType::VOLUME) => {
                let src = m.source.clone().unwrap_or_default();
                out.push(bind(&(input.volume_path)(&src)?, &target, ro)?);
            }
            Some(MountType::TMPFS) => {
                let mut extra = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
                        extra.push(format!("size={s}"));
                    }
                    if let Some(mode) = t.mode {
                        extra.push(format!("mode={mode:o}"));
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
    Ok(out)
}

fn device(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access.to_string());
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(oci("device rule"))
}

/// Docker's device cgroup rules: deny everything, then allow the standard
/// devices (or everything when privileged).
fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    use LinuxDeviceType::{A, B, C};
    if privileged {
        return Ok(vec![device(true, A, None, None, "rwm")?]);
    }
    Ok(vec![
        device(false, A, None, None, "rwm")?,
        device(true, C, None, None, "m")?,
        device(true, B, None, None, "m")?,
        device(true, C, Some(1), Some(3), "rwm")?,
        device(true, C, Some(1), Some(5), "rwm")?,
        device(true, C, Some(1), Some(7), "rwm")?,
        device(true, C, Some(1), Some(8), "rwm")?,
        device(true, C, Some(1), Some(9), "rwm")?,
        device(true, C, Some(5), Some(0), "rwm")?,
        device(true, C, Some(5), Some(1), "rwm")?,
        device(true, C, Some(5), Some(2), "rwm")?,
        device(true, C, Some(136), None, "rwm")?,
        device(true, C, Some(10), Some(200), "rwm")?,
    ])
}

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
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

/// Whether a sysctl belongs to the container's own namespaces.
fn namespaced_sysctl(key: &str, own_netns: bool) -> bool {
    matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.")
        || (own_netns && key.starts_with("net."))
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p.to_path_buf());
    }
    b.build().map_err(oci("namespace"))
}

fn no_new_privileges(hc: &HostConfig) -> bool {
    hc.security_opt.iter().flatten().any(|o| {
        matches!(
            o.as_str(),
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
        )
    })
}

/// The container's environment: the image's, then the container's, with
/// `PATH`, `HOSTNAME`, `HOME` and (with a terminal) `TERM` filled in.
fn environment(input: &SpecInput<'_>, hostname: &str, home: Option<&str>) -> Vec<String> {
    let image_env = input
        .image
        .and_then(|i| i.env().clone())
        .unwrap_or_default();
    let own = input.config.env.clone().unwrap_or_default();
    let mut env = merge_env(&[&image_env, &own]);
    if !has_var(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has_var(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if input.config.tty.unwrap_or(false) && !has_var(&env, "TERM") {
        env.push("TERM=xterm".to_string());
    }
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

/// Builds the container's OCI runtime spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let hc = input.config.host_config.clone().unwrap_or_default();
    let privileged = hc.privileged.unwrap_or(false);
    let hostname = hostname_of(input.config, input.id);
    let resolved = user::resolve(input.rootfs, &user_of(input))?;
    let cwd = workdir_of(input)?;
    super::rootfs::ensure_dir_in_root(input.rootfs, &cwd, resolved.uid, resolved.gid)?;
    let mut args = command_line(input.config, input.image)?;
    if input.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let env = environment(input, &hostname, resolved.home.as_deref());
    let mut process = ProcessBuilder::default()
        .terminal(input.config.tty.unwrap_or(false))
        .user(user::oci_user(&resolved)?)
        .args(args)
        .env(env)
        .cwd(PathBuf::from(&cwd))
        .capabilities(capabilities(&hc, privileged)?)
        .rlimits(rlimits(&hc, input.host_nofile)?)
        .no_new_privileges(no_new_privileges(&hc));
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

    let own_netns = input.netns.is_none() && hc.network_mode.as_deref() != Some("host");
    let mut sysctl = HashMap::new();
    for (k, v) in hc.sysctls.iter().flatten() {
        if !privileged && !namespaced_sysctl(k, own_netns) {
            return Err(bad(format!(
                "sysctl {k:?} is not allowed: it is not namespaced to the container"
            )));
        }
        sysctl.insert(k.clone(), v.clone());
    }

    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, None)?,
        namespace(LinuxNamespaceType::Uts, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Network, input.netns)?,
    ];
    if super::cgroup_v2_only() {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }

    let mut memory = LinuxMemoryBuilder::default();
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        memory = memory.limit(m);
        let swap = match hc.memory_swap {
            None | Some(0) => m * 2,
            Some(-1) => -1,
            Some(s) if s < m => {
                return Err(bad(format!(
                    "invalid memory swap limit {s}: it must be at least the memory limit {m} (or -1 for no limit)"
                )));
            }
            Some(s) => s,
        };
        memory = memory.swap(swap);
    }
    if let Some(r) = hc.memory_reservation.filter(|r| *r > 0) {
        memory = memory.reservation(r);
    }
    if let Some(d) = hc.oom_kill_disable {
        memory = memory.disable_oom_killer(d);
    }
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        let period: u64 = 100_000;
        cpu = cpu.period(period).quota(n / 10_000);
    } else {
        if let Some(p) = hc.cpu_period.filter(|p| *p > 0) {
            cpu = cpu.period(p.unsigned_abs());
        }
        if let Some(q) = hc.cpu_quota.filter(|q| *q > 0) {
            cpu = cpu.quota(q);
        }
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu = cpu.shares(s.unsigned_abs());
    }
    if let Some(c) = hc.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        cpu = cpu.cpus(c);
    }
    if let Some(m) = hc.cpuset_mems.clone().filter(|m| !m.is_empty()) {
        cpu = cpu.mems(m);
    }
    let mut resources = LinuxResourcesBuilder::default()
        .devices(device_rules(privileged)?)
        .memory(memory.build().map_err(oci("memory"))?)
        .cpu(cpu.build().map_err(oci("cpu"))?);
    if let Some(p) = hc.pids_limit.filter(|p| *p > 0) {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(oci("pids"))?,
        );
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(oci("resources"))?)
        .cgroups_path(PathBuf::from(format!("/servin/{}", input.id)))
        .sysctl(sysctl);
    let (masked, readonly): (&[&str], &[&str]) = if privileged {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    linux = linux
        .masked_paths(masked.iter().map(|p| (*p).to_string()).collect::<Vec<_>>())
        .readonly_paths(
            readonly
                .iter()
                .map(|p| (*p).to_string())
                .collect::<Vec<_>>(),
        );

    SpecBuilder::default()
        .version("1.0.2")
        .hostname(hostname)
        .root(
            RootBuilder::default()
                .path(input.rootfs.to_path_buf())
                .readonly(hc.readonly_rootfs.unwrap_or(false))
                .build()
                .map_err(oci("root"))?,
        )
        .process(process)
        .mounts(mounts(input, &hc)?)
        .linux(linux.build().map_err(oci("linux"))?)
        .build()
        .map_err(oci("spec"))
}

/// The process of an exec in a running container.
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
    let resolved = user::resolve(input.rootfs, &user_name)?;
    let hostname = hostname_of(input.config, input.id);
    let mut env = environment(input, &hostname, resolved.home.as_deref());
    env = merge_env(&[&env, &exec.env.clone().unwrap_or_default()]);
    if exec.tty.unwrap_or(false) && !has_var(&env, "TERM") {
        env.push("TERM=xterm".to_string());
    }
    let cwd = match exec.working_dir.clone().filter(|w| !w.is_empty()) {
        Some(w) if w.starts_with('/') => w,
        Some(w) => {
            return Err(bad(format!(
                "the working directory {w:?} is invalid: it needs to be an absolute path"
            )));
        }
        None => workdir_of(input)?,
    };
    let mut process = ProcessBuilder::default()
        .terminal(exec.tty.unwrap_or(false))
        .user(user::oci_user(&resolved)?)
        .args(args)
        .env(env)
        .cwd(PathBuf::from(cwd))
        .capabilities(capabilities(&hc, privileged)?)
        .rlimits(rlimits(&hc, input.host_nofile)?)
        .no_new_privileges(no_new_privileges(&hc))
        .build()
        .map_err(oci("exec process"))?;
    process.set_console_size(console_size(
        exec.tty.unwrap_or(false),
        exec.console_size.as_deref(),
    ));
    Ok(process)
}

/// The generated `/etc/hosts`.
pub fn hosts_file(hostname: &str, extra_hosts: &[String], addresses: &[IpAddr]) -> Result<String> {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for entry in extra_hosts {
        let (name, ip) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .ok_or_else(|| bad(format!("invalid extra host {entry:?}: want NAME:IP")))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = ip.parse().map_err(|_| {
            bad(format!(
                "invalid extra host {entry:?}: {ip:?} is not an IP address"
            ))
        })?;
        if name.is_empty() {
            return Err(bad(format!(
                "invalid extra host {entry:?}: the name is empty"
            )));
        }
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

/// The generated `/etc/resolv.conf`: the given servers, search domains and
/// options, else the host's, without loopback servers (a container cannot
/// reach the host's loopback).
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
            Some("search") => host_search = words.map(String::from).collect(),
            Some("options") => host_options.extend(words.map(String::from)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        servers = dns.to_vec();
    }
    let search = if search.is_empty() {
        host_search
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
    use bollard_stubs::models::ResourcesUlimits;

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
        assert_eq!(
            command_line(&body(None, None), Some(&img)).unwrap(),
            ["/ep", "default"]
        );
        assert_eq!(
            command_line(&body(None, Some(vec!["x"])), Some(&img)).unwrap(),
            ["/ep", "x"]
        );
        assert_eq!(
            command_line(&body(Some(vec!["/other"]), None), Some(&img)).unwrap(),
            ["/other"]
        );
        assert_eq!(
            command_line(&body(Some(vec![""]), Some(vec!["sh"])), Some(&img)).unwrap(),
            ["sh"]
        );
        assert!(command_line(&body(Some(vec![""]), None), Some(&img)).is_err());
        assert!(command_line(&body(None, None), None).is_err());
    }

    #[test]
    fn environment_lists_merge_and_remove() {
        let env = merge_env(&[
            &["A=1".to_string(), "B=2".to_string()],
            &["A=3".to_string(), "B".to_string(), "C=4".to_string()],
        ]);
        assert_eq!(env, ["A=3", "C=4"]);
    }

    fn fixture() -> (tempfile::TempDir, EtcFiles) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        let etc = EtcFiles {
            hosts: d.path().join("hosts"),
            hostname: d.path().join("hostname"),
            resolv_conf: d.path().join("resolv.conf"),
        };
        (d, etc)
    }

    fn spec_of(
        d: &tempfile::TempDir,
        etc: &EtcFiles,
        config: &ContainerCreateBody,
    ) -> Result<Spec> {
        let img = image(None, Some(vec!["sh"]));
        let root = d.path().join("rootfs");
        let no_vol = |n: &str| -> Result<PathBuf> { Err(bad(format!("no such volume: {n}"))) };
        build(&SpecInput {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            name: "web",
            config,
            image: Some(&img),
            rootfs: &root,
            etc,
            init: Some(Path::new("/usr/bin/tini-static")),
            netns: None,
            volume_path: &no_vol,
            host_nofile: 20_000,
        })
    }

    #[test]
    fn builds_docker_defaults() {
        let (d, etc) = fixture();
        let config = ContainerCreateBody {
            user: Some("app".to_string()),
            working_dir: Some("/srv/app".to_string()),
            env: Some(vec!["A=mine".to_string()]),
            host_config: Some(HostConfig {
                memory: Some(16 * 1024 * 1024),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(10),
                cap_drop: Some(vec!["NET_RAW".to_string()]),
                cap_add: Some(vec!["sys_ptrace".to_string()]),
                security_opt: Some(vec!["no-new-privileges".to_string()]),
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(50_000),
                    hard: Some(90_000),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = spec_of(&d, &etc, &config).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v["process"]["args"],
            serde_json::json!(["/sbin/servin-init", "--", "sh"])
        );
        assert_eq!(v["process"]["user"]["uid"], 1000);
        assert_eq!(v["process"]["cwd"], "/srv/app");
        assert!(
            d.path().join("rootfs/srv/app").is_dir(),
            "the workdir was created"
        );
        let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
        assert!(
            env.contains(&"A=mine".to_string()) && env.contains(&"HOME=/home/app".to_string()),
            "{env:?}"
        );
        assert_eq!(v["hostname"], "0123456789ab");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 16 * 1024 * 1024);
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], 32 * 1024 * 1024);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["cpu"]["period"], 100_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
        assert_eq!(
            v["linux"]["cgroupsPath"],
            "/servin/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        let caps: Vec<String> =
            serde_json::from_value(v["process"]["capabilities"]["bounding"].clone()).unwrap();
        assert!(
            caps.contains(&"CAP_SYS_PTRACE".to_string())
                && !caps.contains(&"CAP_NET_RAW".to_string())
        );
        assert!(caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let nofile = &v["process"]["rlimits"][0];
        assert_eq!(nofile["hard"], 20_000, "clamped to the host's hard limit");
        assert_eq!(nofile["soft"], 20_000);
        let masked: Vec<String> =
            serde_json::from_value(v["linux"]["maskedPaths"].clone()).unwrap();
        assert!(masked.contains(&"/proc/kcore".to_string()));
        let dests: Vec<String> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect();
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            INIT_PATH,
        ] {
            assert!(dests.contains(&d.to_string()), "{d} missing from {dests:?}");
        }
    }

    #[test]
    fn refuses_bad_values_by_name() {
        let (d, etc) = fixture();
        let with = |hc: HostConfig| ContainerCreateBody {
            host_config: Some(hc),
            ..Default::default()
        };
        let e = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                cap_add: Some(vec!["FLY".into()]),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("FLY"));
        let e = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                binds: Some(vec!["/no/such:/x".into()]),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("bind source path does not exist: /no/such")
        );
        let e = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                sysctls: Some([("kernel.pid_max".to_string(), "1".to_string())].into()),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("kernel.pid_max"));
        let ok = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                sysctls: Some([("net.ipv4.ip_forward".to_string(), "1".to_string())].into()),
                ..Default::default()
            }),
        );
        assert!(ok.is_ok());
        let e = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                memory: Some(10 << 20),
                memory_swap: Some(1 << 20),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("swap"));
        let e = spec_of(
            &d,
            &etc,
            &ContainerCreateBody {
                user: Some("ghost".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("ghost"));
        let priv_spec = spec_of(
            &d,
            &etc,
            &with(HostConfig {
                privileged: Some(true),
                ..Default::default()
            }),
        )
        .unwrap();
        let v = serde_json::to_value(&priv_spec).unwrap();
        assert_eq!(v["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], true);
    }

    #[test]
    fn a_terminal_starts_at_the_client_size() {
        let (d, etc) = fixture();
        let config = ContainerCreateBody {
            tty: Some(true),
            host_config: Some(HostConfig {
                console_size: Some(vec![40, 100]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(spec_of(&d, &etc, &config).unwrap()).unwrap();
        assert_eq!(
            v["process"]["consoleSize"],
            serde_json::json!({"height": 40, "width": 100})
        );
        let no_tty = ContainerCreateBody {
            host_config: config.host_config.clone(),
            ..Default::default()
        };
        let v = serde_json::to_value(spec_of(&d, &etc, &no_tty).unwrap()).unwrap();
        assert!(v["process"]["consoleSize"].is_null());
    }

    #[test]
    fn generated_files() {
        let h = hosts_file(
            "box",
            &["db:10.0.0.5".to_string(), "v6=::1".to_string()],
            &[],
        )
        .unwrap();
        assert!(
            h.contains("10.0.0.5\tdb\n")
                && h.contains("::1\tv6\n")
                && h.contains("127.0.1.1\tbox\n")
        );
        assert!(hosts_file("box", &["nonsense".to_string()], &[]).is_err());
        assert!(hosts_file("box", &["db:not-an-ip".to_string()], &[]).is_err());
        let r = resolv_conf(
            "nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan\noptions edns0\n",
            &[],
            &[],
            &[],
        );
        assert_eq!(r, "nameserver 10.0.0.1\nsearch lan\noptions edns0\n");
        let r = resolv_conf(
            "nameserver 10.0.0.1\n",
            &["1.1.1.1".to_string()],
            &["x.test".to_string()],
            &[],
        );
        assert_eq!(r, "nameserver 1.1.1.1\nsearch x.test\n");
    }
}
