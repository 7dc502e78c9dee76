//! The mounts of a container: the standard file systems (`/proc`, `/dev`,
//! `/sys`, cgroups, `/dev/shm`), the generated `/etc` files, the init, and
//! the user's binds, volumes and tmpfs mounts, checked as Docker checks
//! them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{HostConfig, MountBindOptionsPropagationEnum, MountType};
use oci_spec::runtime::{Mount, MountBuilder};

use super::namespaces::Namespaces;
use super::security::Security;
use super::{INIT_PATH, SpecInput, bad, oci};
use crate::error::Result;

/// Default `/dev/shm` size (Docker's): 64 MiB.
pub const DEFAULT_SHM: i64 = 64 * 1024 * 1024;

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

/// Docker's volume `Subpath`: a folder or file inside the volume, which
/// must exist there and may not lead out of it (no `..`, no absolute path,
/// no symlink out).
fn volume_subpath(volume: &Path, name: &str, sub: &str) -> Result<PathBuf> {
    let rel = Path::new(sub);
    let escapes = rel.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if escapes {
        return Err(bad(format!(
            "invalid volume subpath {sub:?} of volume {name}: it must be a relative path inside the volume"
        )));
    }
    let joined = volume.join(rel);
    let missing = || {
        bad(format!(
            "cannot access path {}: volume {name} has no {sub:?}",
            joined.display()
        ))
    };
    let real = std::fs::canonicalize(&joined).map_err(|_| missing())?;
    let root = std::fs::canonicalize(volume).map_err(|_| missing())?;
    if !real.starts_with(&root) {
        return Err(bad(format!(
            "invalid volume subpath {sub:?} of volume {name}: it leads out of the volume"
        )));
    }
    Ok(real)
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
                let mut host = (input.volume_path)(&src)?;
                let subpath = m
                    .volume_options
                    .as_ref()
                    .and_then(|v| v.subpath.as_deref())
                    .filter(|p| !p.is_empty());
                if let Some(sub) = subpath {
                    host = volume_subpath(&host, &src, sub)?;
                }
                out.push(bind(&host, &target, ro)?);
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
pub(super) fn mounts(
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
