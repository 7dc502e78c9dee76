//! What the host is like, as far as a container's spec depends on it: the
//! capabilities the engine holds, the cgroup hierarchy, swap accounting,
//! the CPUs' `thermal_throttle` folders, the host's devices and the
//! open-files limit. [`HostFacts::read`] reads them in one place, so
//! building a spec ([`super::spec::build`]) reads nothing of the host and
//! is tested with facts made up for the case.

use std::path::Path;

use oci_spec::runtime::LinuxDevice;

use super::devices;

/// The host as the spec builder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The engine's capability bounding set, one bit per capability in the
    /// kernel's numbering: a runtime cannot give a container more.
    pub capabilities: u64,
    /// Whether the host has only the unified cgroup v2 hierarchy.
    pub cgroup_v2_only: bool,
    /// Whether the memory controller limits swap (cgroup v2, or v1 with
    /// `memory.memsw.*`, which needs `swapaccount=1`).
    pub swap_accounting: bool,
    /// Each CPU's `thermal_throttle` folder, sorted (masked by default: it
    /// leaks other containers' activity).
    pub thermal_throttle: Vec<String>,
    /// The host's devices for a privileged container; empty unless read
    /// for one.
    pub devices: Vec<LinuxDevice>,
    /// The engine's hard open-files limit.
    pub nofile: u64,
}

impl HostFacts {
    /// Reads the host now. `nofile` is the engine's own limit (it raises it
    /// once at start); the devices under `/dev` are listed only when
    /// `with_devices` (a privileged container, the only one that gets them:
    /// the walk costs a stat per device).
    pub fn read(nofile: u64, with_devices: bool) -> Self {
        let cgroup_v2_only = super::cgroup_v2_only();
        Self {
            capabilities: bounding_set(),
            cgroup_v2_only,
            swap_accounting: cgroup_v2_only
                || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            thermal_throttle: thermal_throttle(),
            devices: if with_devices {
                devices::host_devices()
            } else {
                Vec::new()
            },
            nofile,
        }
    }
}

/// The capabilities the engine itself may hand out: its bounding set, else
/// every one the kernel knows.
fn bounding_set() -> u64 {
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

/// Each CPU's `thermal_throttle` folder on this host, sorted.
fn thermal_throttle() -> Vec<String> {
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
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_host_once() {
        let facts = HostFacts::read(1024, false);
        assert_eq!(facts.nofile, 1024);
        assert!(facts.devices.is_empty(), "devices only when asked");
        assert_ne!(facts.capabilities, 0, "the tests run with capabilities");
        if facts.cgroup_v2_only {
            assert!(facts.swap_accounting);
        }
        let with = HostFacts::read(1024, true);
        assert!(
            with.devices
                .iter()
                .any(|d| d.path() == Path::new("/dev/null"))
        );
    }
}
