//! Devices: Docker's device cgroup rules, the host's devices for privileged
//! containers, `--device` mappings and `--device-cgroup-rule`s.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bollard_stubs::models::{DeviceMapping, HostConfig};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use crate::error::{Error, Result, SpecError};

fn bad(msg: impl Into<String>) -> Error {
    SpecError::Invalid(msg.into()).into()
}

/// One device cgroup rule; `None` for a major or minor is `*`.
pub fn rule(
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
    b.build()
        .map_err(|e| bad(format!("device rule {access}: {e}")))
}

/// Docker's device cgroup rules for an unprivileged container: deny
/// everything; allow the standard devices (zero, null, urandom, random,
/// tty, console, full, ptmx, the pty slaves, tun); keep fuse denied; allow
/// creating any node (`m`). runc adds the last ones and full, ptmx, pts
/// and tun by itself; they are written out so that crun behaves the same.
/// The fuse rule comes before the `m` wildcards: cgroup v1 cannot deny one
/// device inside a wildcard allowed earlier.
pub fn default_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    use LinuxDeviceType::{A, B, C};
    let mut rules = vec![rule(false, A, None, None, "rwm")?];
    for (major, minor) in [
        (1, Some(5)),    // zero
        (1, Some(3)),    // null
        (1, Some(9)),    // urandom
        (1, Some(8)),    // random
        (5, Some(0)),    // tty
        (5, Some(1)),    // console
        (1, Some(7)),    // full
        (5, Some(2)),    // ptmx
        (136, None),     // pts/*
        (10, Some(200)), // net/tun
    ] {
        rules.push(rule(true, C, Some(major), minor, "rwm")?);
    }
    rules.push(rule(false, C, Some(10), Some(229), "rwm")?); // fuse
    rules.push(rule(true, C, None, None, "m")?);
    rules.push(rule(true, B, None, None, "m")?);
    Ok(rules)
}

/// `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS`, e.g. `c 1:3 rwm` or
/// `a *:* rwm`.
pub fn parse_rule(text: &str) -> Result<LinuxDeviceCgroup> {
    let invalid = || bad(format!("invalid device cgroup rule format: '{text}'"));
    let words: Vec<&str> = text.split_whitespace().collect();
    let [typ, numbers, access] = words.as_slice() else {
        return Err(invalid());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(invalid()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let number = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            Ok(None)
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map(Some).map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    check_access(access).map_err(|_| invalid())?;
    rule(true, typ, number(major)?, number(minor)?, access)
}

/// Access letters: some of `r`, `w`, `m`.
fn check_access(access: &str) -> Result<()> {
    if !access.is_empty() && access.len() <= 3 && access.chars().all(|c| "rwm".contains(c)) {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid device permissions {access:?}: use some of r, w and m"
        )))
    }
}

/// The device at `path` (not following a final symlink), or `None` when it
/// is not a character or block device.
fn device_at(path: &Path, dest: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    LinuxDeviceBuilder::default()
        .path(dest.to_path_buf())
        .typ(typ)
        .major(i64::from(rustix::fs::major(rdev)))
        .minor(i64::from(rustix::fs::minor(rdev)))
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Folders of `/dev` that are not host devices to copy.
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Every device below `dir` (recursively), as seen at `dest` in the
/// container. Entries that vanish or cannot be read are skipped.
fn devices_below(dir: &Path, dest: &Path, top: bool, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let (path, to) = (entry.path(), dest.join(&name));
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if !(top && SKIPPED_DIRS.iter().any(|s| name == *s)) {
                devices_below(&path, &to, false, out);
            }
        } else if !(top && name == "console")
            && let Ok(Some(d)) = device_at(&path, &to)
        {
            out.push(d);
        }
    }
}

/// The host's devices for a privileged container: every character and
/// block device under `/dev` except the pty slaves, `/dev/console` and the
/// container's own `shm` and `mqueue`.
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    devices_below(Path::new("/dev"), Path::new("/dev"), true, &mut out);
    out
}

/// A `--device HOST[:CONTAINER[:PERMISSIONS]]` mapping: the devices it adds
/// (a folder adds each device below it) and the rules that allow them.
pub fn mapped(mapping: &DeviceMapping) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let host = mapping.path_on_host.clone().unwrap_or_default();
    let inside = mapping
        .path_in_container
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| host.clone());
    let access = mapping
        .cgroup_permissions
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "rwm".to_string());
    check_access(&access)?;
    if !inside.starts_with('/') {
        return Err(bad(format!(
            "invalid device path in the container {inside:?}: it must be an absolute path"
        )));
    }
    let gathering = |why: &str| {
        bad(format!(
            "error gathering device information while adding custom device {host:?}: {why}"
        ))
    };
    let resolved = std::fs::canonicalize(&host).map_err(|e| gathering(&e.to_string()))?;
    let mut devices = Vec::new();
    if resolved.is_dir() {
        devices_below(&resolved, Path::new(&inside), false, &mut devices);
    } else {
        match device_at(&resolved, &PathBuf::from(&inside)) {
            Ok(Some(d)) => devices.push(d),
            Ok(None) => return Err(gathering("not a device node")),
            Err(e) => return Err(gathering(&e.to_string())),
        }
    }
    let rules = devices
        .iter()
        .map(|d| rule(true, d.typ(), Some(d.major()), Some(d.minor()), &access))
        .collect::<Result<_>>()?;
    Ok((devices, rules))
}

/// The devices of a container and the cgroup rules that allow them: the
/// host's devices (`host_devices`) and every access for a privileged one,
/// Docker's defaults for others; then the `--device` mappings (a mapping
/// replaces a host device at the same path) and the
/// `--device-cgroup-rule`s.
pub fn for_container(
    hc: &HostConfig,
    privileged: bool,
    host_devices: &[LinuxDevice],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut rules = if privileged {
        vec![rule(true, LinuxDeviceType::A, None, None, "rwm")?]
    } else {
        default_rules()?
    };
    let mut devices = if privileged {
        host_devices.to_vec()
    } else {
        Vec::new()
    };
    for mapping in hc.devices.iter().flatten() {
        let (devs, more) = mapped(mapping)?;
        devices.retain(|d| devs.iter().all(|n| n.path() != d.path()));
        devices.extend(devs);
        rules.extend(more);
    }
    for r in hc.device_cgroup_rules.iter().flatten() {
        rules.push(parse_rule(r)?);
    }
    Ok((devices, rules))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn defaults_deny_all_then_allow_the_standard_devices() {
        let v = json(&default_rules().unwrap());
        assert_eq!(
            v[0],
            serde_json::json!({"allow": false, "type": "a", "access": "rwm"})
        );
        let allowed = |major: i64, minor: Option<i64>| {
            v.as_array().unwrap().iter().any(|r| {
                r["allow"] == true
                    && r["type"] == "c"
                    && r["major"] == major
                    && minor.map_or(r.get("minor").is_none(), |m| r["minor"] == m)
            })
        };
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            assert!(allowed(major, Some(minor)), "{major}:{minor} not allowed");
        }
        assert!(allowed(136, None), "pty slaves");
        assert!(!allowed(10, Some(229)), "fuse stays denied");
        let rules = v.as_array().unwrap();
        let fuse = rules.iter().position(|r| r["minor"] == 229).unwrap();
        let wildcard = rules
            .iter()
            .position(|r| r["access"] == "m" && r.get("major").is_none())
            .unwrap();
        assert!(
            fuse < wildcard,
            "cgroup v1 cannot deny inside an earlier wildcard"
        );
    }

    #[test]
    fn parses_device_cgroup_rules() {
        let v = json(&parse_rule("c 1:3 rwm").unwrap());
        assert_eq!(
            v,
            serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
        );
        let v = json(&parse_rule("a *:* r").unwrap());
        assert!(v.get("major").is_none() && v["type"] == "a" && v["access"] == "r");
        for bad in [
            "c 1:3",
            "x 1:3 rwm",
            "c 1-3 rwm",
            "c 1:3 rwx",
            "c a:3 rw",
            "",
        ] {
            let e = parse_rule(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn maps_host_devices() {
        let m = DeviceMapping {
            path_on_host: Some("/dev/null".into()),
            path_in_container: Some("/dev/mynull".into()),
            cgroup_permissions: Some("rw".into()),
        };
        let (devs, rules) = mapped(&m).unwrap();
        let d = json(&devs);
        assert_eq!(d[0]["path"], "/dev/mynull");
        assert_eq!(
            (
                d[0]["type"].clone(),
                d[0]["major"].clone(),
                d[0]["minor"].clone()
            ),
            ("c".into(), 1.into(), 3.into())
        );
        assert_eq!(json(&rules)[0]["access"], "rw");
        let e = mapped(&DeviceMapping {
            path_on_host: Some("/dev/no-such-device".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("/dev/no-such-device"), "{e}");
        let e = mapped(&DeviceMapping {
            path_on_host: Some("/etc/hostname".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a device node"), "{e}");
        let e = mapped(&DeviceMapping {
            path_on_host: Some("/dev/null".into()),
            cgroup_permissions: Some("rwx".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("rwx"), "{e}");
    }

    #[test]
    fn host_devices_are_the_hosts_nodes() {
        let devs = json(&host_devices());
        let devs = devs.as_array().unwrap();
        let null = devs.iter().find(|d| d["path"] == "/dev/null").unwrap();
        assert_eq!(
            (null["major"].clone(), null["minor"].clone()),
            (1.into(), 3.into())
        );
        assert!(
            devs.iter().all(|d| {
                let p = d["path"].as_str().unwrap();
                !p.starts_with("/dev/pts/") && p != "/dev/console"
            }),
            "pty slaves and the console are the container's own"
        );
    }
}
