//! Resource limits of a container, checked the way Docker checks them:
//! memory and swap, CPU shares, quota and sets, the process count, the
//! process rlimits (`--ulimit`) and the kernel parameters (`--sysctl`),
//! gathered into the spec's cgroup resources by [`linux`].

use std::collections::HashMap;

use bollard_stubs::models::HostConfig;
use oci_spec::runtime::{
    LinuxCpu, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxMemory, LinuxMemoryBuilder, LinuxPids,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};

use super::host::HostFacts;
use crate::error::{Error, Result, SpecError};

/// The smallest memory limit Docker accepts: 6 MiB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The open-files limit containers get when the host allows it.
pub const DEFAULT_NOFILE: u64 = 1_048_576;
/// The CFS period that `nano_cpus` (`--cpus`) is expressed in.
pub const CPU_PERIOD: i64 = 100_000;
/// What Docker's `--ulimit NAME=-1` means: no limit.
const UNLIMITED: u64 = u64::MAX;

fn bad(msg: impl Into<String>) -> Error {
    SpecError::Invalid(msg.into()).into()
}

fn oci<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| bad(format!("{what}: {e}"))
}

/// The cgroup resources of the spec: `device_rules`, memory, CPU and the
/// process count.
pub fn linux(
    hc: &HostConfig,
    device_rules: Vec<LinuxDeviceCgroup>,
    host: &HostFacts,
) -> Result<LinuxResources> {
    let mut res = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .memory(memory(hc, host)?)
        .cpu(cpu(hc)?);
    if let Some(p) = pids(hc)? {
        res = res.pids(p);
    }
    res.build().map_err(oci("resources"))
}

/// The memory limits: `memory`, `memory_swap` (unset: twice the memory; -1:
/// no limit; left alone, as Docker does, where the host does not account
/// swap), `memory_reservation`, `memory_swappiness` (not on cgroup v2),
/// `oom_kill_disable`.
pub fn memory(hc: &HostConfig, host: &HostFacts) -> Result<LinuxMemory> {
    let mut b = LinuxMemoryBuilder::default();
    let limit = hc.memory.unwrap_or(0);
    if limit < 0 {
        return Err(bad(format!(
            "invalid memory limit {limit}: it must not be negative"
        )));
    }
    if limit > 0 && limit < MIN_MEMORY {
        return Err(bad(format!(
            "invalid memory limit {limit}: the minimum allowed is 6MB"
        )));
    }
    let swap = hc.memory_swap.unwrap_or(0);
    if swap < -1 {
        return Err(bad(format!(
            "invalid memory swap limit {swap}: use a size, or -1 for no limit"
        )));
    }
    if swap > 0 && limit == 0 {
        return Err(bad(format!(
            "invalid memory swap limit {swap}: set the memory limit too when limiting swap"
        )));
    }
    if swap > 0 && swap < limit {
        return Err(bad(format!(
            "invalid memory swap limit {swap}: it must be at least the memory limit {limit} (or -1 for no limit)"
        )));
    }
    if limit > 0 {
        b = b.limit(limit);
        if host.swap_accounting {
            b = b.swap(match swap {
                0 => limit.saturating_mul(2),
                s => s,
            });
        }
    }
    let reservation = hc.memory_reservation.unwrap_or(0);
    if reservation < 0 {
        return Err(bad(format!(
            "invalid memory reservation {reservation}: it must not be negative"
        )));
    }
    if reservation > 0 && limit > 0 && reservation > limit {
        return Err(bad(format!(
            "invalid memory reservation {reservation}: it must not be above the memory limit {limit}"
        )));
    }
    if reservation > 0 {
        b = b.reservation(reservation);
    }
    match hc.memory_swappiness {
        None | Some(-1) => {}
        Some(s @ 0..=100) => {
            // cgroup v2 has no swappiness; Docker ignores it there.
            if !host.cgroup_v2_only {
                b = b.swappiness(s.unsigned_abs());
            }
        }
        Some(s) => {
            return Err(bad(format!(
                "invalid memory swappiness {s}: it must be between 0 and 100 (or -1)"
            )));
        }
    }
    if hc.oom_kill_disable == Some(true) {
        b = b.disable_oom_killer(true);
    }
    b.build().map_err(oci("memory"))
}

/// The CPUs the engine may use (Docker's limit for `--cpus`).
fn host_cpus() -> i64 {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| i64::try_from(n.get()).ok())
        .unwrap_or(1)
}

/// A cpuset list such as `0-3,6`.
fn check_cpuset(what: &str, list: &str) -> Result<()> {
    let ok = list.split(',').all(|part| {
        let mut ends = part.splitn(2, '-').map(|n| n.trim().parse::<u32>());
        match (ends.next(), ends.next()) {
            (Some(Ok(_)), None) => true,
            (Some(Ok(a)), Some(Ok(b))) => a <= b,
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid value {list:?} for {what}: want a list such as 0-3,6"
        )))
    }
}

/// The CPU limits: `nano_cpus` (as a quota over a 100 ms period), or
/// `cpu_quota`/`cpu_period`; `cpu_shares`; `cpuset_cpus`/`cpuset_mems`.
pub fn cpu(hc: &HostConfig) -> Result<LinuxCpu> {
    let mut b = LinuxCpuBuilder::default();
    let nano = hc.nano_cpus.unwrap_or(0);
    let period = hc.cpu_period.unwrap_or(0);
    let quota = hc.cpu_quota.unwrap_or(0);
    if nano < 0 {
        return Err(bad(format!(
            "invalid CPU count {nano} (nano CPUs): it must not be negative"
        )));
    }
    if nano > 0 && (period > 0 || quota > 0) {
        return Err(bad(
            "conflicting options: the CPU count (nano CPUs) and a CPU period or quota cannot both be set",
        ));
    }
    if nano > 0 {
        let cpus = host_cpus();
        if nano < 10_000_000 || nano > cpus.saturating_mul(1_000_000_000) {
            return Err(bad(format!(
                "invalid CPU count {nano} (nano CPUs): the range is 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )));
        }
        // nano ≤ CPUs × 10⁹, so the product stays far from i64::MAX.
        let quota = nano.saturating_mul(CPU_PERIOD) / 1_000_000_000;
        b = b.period(CPU_PERIOD.unsigned_abs()).quota(quota);
    }
    if period != 0 {
        if !(1000..=1_000_000).contains(&period) {
            return Err(bad(format!(
                "invalid CPU period {period}: it must be between 1000 (1ms) and 1000000 (1s)"
            )));
        }
        b = b.period(period.unsigned_abs());
    }
    if quota != 0 && quota != -1 {
        if quota < 1000 {
            return Err(bad(format!(
                "invalid CPU quota {quota}: it must be at least 1000 (1ms), or -1 for no limit"
            )));
        }
        b = b.quota(quota);
    }
    let shares = hc.cpu_shares.unwrap_or(0);
    if shares < 0 {
        return Err(bad(format!(
            "invalid CPU shares {shares}: it must not be negative"
        )));
    }
    if shares > 0 {
        // The kernel's range; Docker clamps into it.
        b = b.shares(shares.clamp(2, 262_144).unsigned_abs());
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        check_cpuset("cpuset CPUs", c)?;
        b = b.cpus(c.to_string());
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        check_cpuset("cpuset memory nodes", m)?;
        b = b.mems(m.to_string());
    }
    b.build().map_err(oci("cpu"))
}

/// The process-count limit; 0 or negative (Docker's -1) means none.
pub fn pids(hc: &HostConfig) -> Result<Option<LinuxPids>> {
    match hc.pids_limit {
        Some(p) if p > 0 => Ok(Some(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(oci("pids"))?,
        )),
        _ => Ok(None),
    }
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
        other => return Err(bad(format!("invalid ulimit type {other:?}"))),
    })
}

/// A ulimit value: -1 is no limit.
fn ulimit_value(name: &str, v: i64) -> Result<u64> {
    match v {
        -1 => Ok(UNLIMITED),
        v if v < 0 => Err(bad(format!(
            "invalid ulimit {name} value {v}: use a number, or -1 for no limit"
        ))),
        v => Ok(v.unsigned_abs()),
    }
}

/// The rlimits: the default open-files limit (1048576, or less when the
/// host's hard limit is lower), then `ulimits`; the open-files limit never
/// goes above the host's hard limit, and a soft limit above its hard limit
/// is refused.
pub fn rlimits(hc: &HostConfig, host_nofile: u64) -> Result<Vec<PosixRlimit>> {
    let nofile = DEFAULT_NOFILE.min(host_nofile);
    let mut out: Vec<(String, u64, u64)> = vec![("nofile".to_string(), nofile, nofile)];
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        rlimit_type(&name)?;
        let soft = ulimit_value(&name, u.soft.unwrap_or(0))?;
        let hard = match u.hard {
            Some(h) => ulimit_value(&name, h)?,
            None => soft,
        };
        if soft > hard {
            return Err(bad(format!(
                "invalid ulimit {name}: the soft limit {} is above the hard limit {}",
                u.soft.unwrap_or(0),
                u.hard.unwrap_or(0)
            )));
        }
        let (soft, hard) = if name == "nofile" {
            let hard = hard.min(host_nofile);
            (soft.min(hard), hard)
        } else {
            (soft, hard)
        };
        out.retain(|(n, _, _)| *n != name);
        out.push((name, soft, hard));
    }
    out.into_iter()
        .map(|(n, soft, hard)| {
            PosixRlimitBuilder::default()
                .typ(rlimit_type(&n)?)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(oci("ulimit"))
        })
        .collect()
}

/// The namespaces a container shares with the host, as far as sysctls
/// care.
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedNamespaces {
    /// The host's IPC namespace.
    pub ipc: bool,
    /// The host's network namespace.
    pub net: bool,
    /// The host's UTS namespace.
    pub uts: bool,
}

/// The sysctls of `hc`, each checked by [`check_sysctl`].
pub fn sysctls(hc: &HostConfig, shared: SharedNamespaces) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in hc.sysctls.iter().flatten() {
        check_sysctl(k, shared)?;
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// Whether a sysctl belongs to a namespace the container has of its own
/// (Docker's and runc's rule): IPC ones unless the IPC namespace is the
/// host's, `net.*` unless the network is the host's,
/// `kernel.domainname` with its own UTS namespace.
fn check_sysctl(key: &str, shared: SharedNamespaces) -> Result<()> {
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
        !shared.ipc
    } else if key.starts_with("net.") {
        !shared.net
    } else {
        key == "kernel.domainname" && !shared.uts
    };
    if allowed {
        Ok(())
    } else {
        Err(bad(format!(
            "sysctl {key:?} is not allowed: it is not namespaced to the container (or the container shares that namespace with the host)"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The host's facts, as the limits were checked before they became an
    /// input.
    fn host() -> HostFacts {
        HostFacts::read(1024, false)
    }

    fn memory(hc: &HostConfig) -> Result<LinuxMemory> {
        super::memory(hc, &host())
    }

    fn swap_accounting() -> bool {
        host().swap_accounting
    }
    use bollard_stubs::models::ResourcesUlimits;

    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn memory_and_swap_like_docker() {
        let m = |memory, swap| HostConfig {
            memory,
            memory_swap: swap,
            ..Default::default()
        };
        let v = json(&memory(&m(Some(64 << 20), None)).unwrap());
        assert_eq!(v["limit"], 64 << 20);
        if swap_accounting() {
            assert_eq!(v["swap"], 128 << 20, "unset swap is twice the memory");
            let v = json(&memory(&m(Some(64 << 20), Some(-1))).unwrap());
            assert_eq!(v["swap"], -1);
            let v = json(&memory(&m(Some(64 << 20), Some(100 << 20))).unwrap());
            assert_eq!(v["swap"], 100 << 20);
        }
        let v = json(&memory(&m(None, None)).unwrap());
        assert!(v.get("limit").is_none() && v.get("swap").is_none(), "{v}");
        assert!(err_of(memory(&m(Some(-5), None))).contains("-5"));
        assert!(err_of(memory(&m(Some(1 << 20), None))).contains("6MB"));
        assert!(err_of(memory(&m(Some(64 << 20), Some(1 << 20)))).contains("swap"));
        assert!(err_of(memory(&m(None, Some(64 << 20)))).contains("memory limit too"));
        assert!(err_of(memory(&m(Some(64 << 20), Some(-2)))).contains("-2"));
        let r = HostConfig {
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            oom_kill_disable: Some(true),
            ..Default::default()
        };
        let v = json(&memory(&r).unwrap());
        assert_eq!(v["reservation"], 32 << 20);
        assert_eq!(v["disableOOMKiller"], true);
        let r = HostConfig {
            memory: Some(64 << 20),
            memory_reservation: Some(128 << 20),
            ..Default::default()
        };
        assert!(err_of(memory(&r)).contains("reservation"));
        let r = HostConfig {
            memory_reservation: Some(-1),
            ..Default::default()
        };
        assert!(err_of(memory(&r)).contains("reservation -1"));
        let r = HostConfig {
            memory_swappiness: Some(101),
            ..Default::default()
        };
        assert!(err_of(memory(&r)).contains("101"));
    }

    #[test]
    fn cpus_like_docker() {
        let v = json(
            &cpu(&HostConfig {
                nano_cpus: Some(500_000_000),
                cpu_shares: Some(1),
                cpuset_cpus: Some("0".into()),
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(v["quota"], 50_000);
        assert_eq!(v["period"], 100_000);
        assert_eq!(v["shares"], 2, "clamped to the kernel's minimum");
        assert_eq!(v["cpus"], "0");
        let v = json(
            &cpu(&HostConfig {
                cpu_period: Some(50_000),
                cpu_quota: Some(25_000),
                cpu_shares: Some(512),
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(
            (v["period"].clone(), v["quota"].clone()),
            (50_000.into(), 25_000.into())
        );
        assert_eq!(v["shares"], 512);
        let e = |hc: HostConfig| err_of(cpu(&hc));
        assert!(
            e(HostConfig {
                nano_cpus: Some(-1),
                ..Default::default()
            })
            .contains("-1")
        );
        assert!(
            e(HostConfig {
                nano_cpus: Some(1_000_000_000 * 4096),
                ..Default::default()
            })
            .contains("CPUs available")
        );
        assert!(
            e(HostConfig {
                nano_cpus: Some(1_000_000_000),
                cpu_quota: Some(5000),
                ..Default::default()
            })
            .contains("conflicting")
        );
        assert!(
            e(HostConfig {
                cpu_period: Some(10),
                ..Default::default()
            })
            .contains("period 10")
        );
        assert!(
            e(HostConfig {
                cpu_quota: Some(10),
                ..Default::default()
            })
            .contains("quota 10")
        );
        assert!(
            e(HostConfig {
                cpu_shares: Some(-3),
                ..Default::default()
            })
            .contains("-3")
        );
        assert!(
            e(HostConfig {
                cpuset_cpus: Some("0-x".into()),
                ..Default::default()
            })
            .contains("0-x")
        );
        assert!(
            cpu(&HostConfig {
                cpu_quota: Some(-1),
                ..Default::default()
            })
            .is_ok(),
            "-1 is no quota"
        );
    }

    #[test]
    fn pids_zero_and_negative_mean_no_limit() {
        let p = |n| {
            pids(&HostConfig {
                pids_limit: n,
                ..Default::default()
            })
            .unwrap()
            .map(|p| p.limit())
        };
        assert_eq!(p(Some(7)), Some(7));
        assert_eq!(p(Some(0)), None);
        assert_eq!(p(Some(-1)), None);
        assert_eq!(p(None), None);
    }

    fn limits(ulimits: Vec<(&str, i64, Option<i64>)>, host: u64) -> Result<serde_json::Value> {
        let hc = HostConfig {
            ulimits: Some(
                ulimits
                    .into_iter()
                    .map(|(n, s, h)| ResourcesUlimits {
                        name: Some(n.to_string()),
                        soft: Some(s),
                        hard: h,
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        rlimits(&hc, host).map(|r| json(&r))
    }

    #[test]
    fn rlimits_default_clamp_and_refuse() {
        let v = limits(vec![], 20_000).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 20_000, "hard": 20_000}])
        );
        let v = limits(vec![], 4_000_000).unwrap();
        assert_eq!(v[0]["hard"], 1_048_576);
        let v = limits(vec![("nofile", 50_000, Some(90_000))], 20_000).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1, "the default is replaced");
        assert_eq!(
            (v[0]["soft"].clone(), v[0]["hard"].clone()),
            (20_000.into(), 20_000.into())
        );
        let v = limits(vec![("nofile", 100, Some(1000))], 20_000).unwrap();
        assert_eq!(
            (v[0]["soft"].clone(), v[0]["hard"].clone()),
            (100.into(), 1000.into())
        );
        let v = limits(vec![("memlock", -1, Some(-1))], 20_000).unwrap();
        assert_eq!(v[1]["type"], "RLIMIT_MEMLOCK");
        assert_eq!(v[1]["soft"], u64::MAX, "-1 is no limit");
        let v = limits(vec![("nproc", 10, None)], 20_000).unwrap();
        assert_eq!(
            (v[1]["soft"].clone(), v[1]["hard"].clone()),
            (10.into(), 10.into())
        );
        assert!(
            limits(vec![("nproc", 10, Some(5))], 20_000)
                .unwrap_err()
                .to_string()
                .contains("soft limit 10 is above the hard limit 5")
        );
        assert!(
            limits(vec![("nproc", -7, Some(5))], 20_000)
                .unwrap_err()
                .to_string()
                .contains("-7")
        );
        assert!(
            limits(vec![("bogus", 1, Some(1))], 20_000)
                .unwrap_err()
                .to_string()
                .contains("bogus")
        );
    }
}
