//! The capability sets of a container's processes, as Docker computes
//! them from `privileged`, `cap_add` and `cap_drop` and what the engine
//! holds.

use std::collections::HashSet;
use std::str::FromStr;

use bollard_stubs::models::HostConfig;
use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::{bad, oci};
use crate::error::Result;

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
pub(super) const ALL_CAPS: &[&str] = &[
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
/// engine holds (as Podman does: `held`, its bounding set), so a
/// privileged container also starts where the engine runs with fewer
/// capabilities; asking for one the engine lacks by name is refused.
pub(super) fn capabilities(
    hc: &HostConfig,
    privileged: bool,
    held: u64,
) -> Result<LinuxCapabilities> {
    let available = caps_in(held);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(set: &Option<HashSet<Capability>>) -> Vec<String> {
        let mut out: Vec<String> = set
            .iter()
            .flatten()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        out.sort();
        out
    }

    fn bit(name: &str) -> u64 {
        let at = ALL_CAPS.iter().position(|c| *c == name).unwrap();
        1 << at
    }

    #[test]
    fn what_the_engine_lacks_is_neither_given_nor_added() {
        let held = (bit("CAP_SYS_ADMIN") | bit("CAP_CHOWN") | bit("CAP_KILL")) & !bit("CAP_KILL");
        let all = capabilities(&HostConfig::default(), true, held).unwrap();
        assert_eq!(names(all.bounding()), ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
        let defaults = capabilities(&HostConfig::default(), false, held).unwrap();
        assert_eq!(names(defaults.effective()), ["CAP_CHOWN"]);
        let add_kill = HostConfig {
            cap_add: Some(vec!["kill".into()]),
            ..Default::default()
        };
        let e = capabilities(&add_kill, false, held)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CAP_KILL") && e.contains("does not hold"), "{e}");
        let everything = capabilities(&add_kill, false, u64::MAX).unwrap();
        assert!(names(everything.permitted()).contains(&"CAP_KILL".to_string()));
    }
}
