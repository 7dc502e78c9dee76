//! What `security_opt` asks for, and the masked and read-only paths of
//! `/proc` and `/sys` that Docker hides from a container.

use bollard_stubs::models::HostConfig;

use super::bad;
use crate::error::Result;

/// What `security_opt` asks for.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Security {
    pub(super) no_new_privileges: bool,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub(super) unconfined_paths: bool,
    /// `writable-cgroups=true`: `/sys/fs/cgroup` read-write.
    pub(super) writable_cgroups: bool,
}

/// Docker's `--security-opt` values. `seccomp`, `apparmor` and `label`
/// are accepted and left to the runtime's defaults (the engine loads no
/// seccomp profile or LSM label of its own).
pub(super) fn security(hc: &HostConfig) -> Result<Security> {
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

/// Docker's masked paths plus each CPU's `thermal_throttle` folder on the
/// host (it leaks other containers' activity).
pub(super) fn default_masked_paths(thermal_throttle: &[String]) -> Vec<String> {
    MASKED_PATHS
        .iter()
        .map(|p| (*p).to_string())
        .chain(thermal_throttle.iter().cloned())
        .collect()
}
