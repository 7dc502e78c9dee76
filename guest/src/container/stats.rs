//! A container's resource use as Docker's stats report it: CPU and
//! throttling, memory, processes and block I/O from its cgroup (see
//! [`crate::runtime::cgroup`]), the network counters of its namespace
//! (`/proc/PID/net/dev` of its init), and the host's CPU time and memory
//! that clients compute percentages against. Sampling reads files only and
//! runs on a blocking thread.

use std::collections::HashMap;
use std::time::SystemTime;

use bollard_stubs::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerNetworkStats, ContainerPidsStats, ContainerStatsResponse,
    ContainerThrottlingData,
};
use serde_json::{Value, json};

use super::Container;
use crate::runtime::cgroup::{self, Cgroup};
use crate::timefmt;

/// What a sample needs of a container, copied so that it can cross to a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Its ID.
    pub id: String,
    /// Its name, with Docker's `/`.
    pub name: String,
    /// Its init's PID, when it runs.
    pub pid: Option<i32>,
    /// Whether it shares the host's network (no counters of its own).
    pub host_network: bool,
}

impl Subject {
    /// The subject of `c` now.
    pub fn of(c: &Container) -> Self {
        let s = c.state();
        let pid = i32::try_from(s.pid)
            .ok()
            .filter(|p| *p > 0 && s.status.is_running());
        Self {
            id: c.id().to_string(),
            name: format!("/{}", c.name()),
            pid,
            host_network: c.record.host_config().network_mode.as_deref() == Some("host"),
        }
    }
}

/// The host's figures a sample carries.
fn host_cpu() -> (u64, u32) {
    std::fs::read_to_string("/proc/stat")
        .map(|t| cgroup::parse_proc_stat(&t))
        .unwrap_or_default()
}

fn host_memory() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| cgroup::parse_mem_total(&t))
}

fn cpu_stats(cg: &Cgroup) -> ContainerCpuStats {
    let (system, cpus) = host_cpu();
    let mut usage = ContainerCpuUsage::default();
    let mut throttling = ContainerThrottlingData::default();
    if cg.is_v1() {
        if let Some(dir) = cg.dir("cpuacct") {
            usage.total_usage = cgroup::read_number(dir, "cpuacct.usage");
            usage.percpu_usage = std::fs::read_to_string(dir.join("cpuacct.usage_percpu"))
                .ok()
                .map(|t| {
                    t.split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect()
                });
            // `cpuacct.stat` counts USER_HZ ticks (100 a second).
            let stat = cgroup::read_flat(dir, "cpuacct.stat");
            usage.usage_in_usermode = stat.get("user").map(|t| t.saturating_mul(10_000_000));
            usage.usage_in_kernelmode = stat.get("system").map(|t| t.saturating_mul(10_000_000));
        }
        if let Some(dir) = cg.dir("cpu") {
            let stat = cgroup::read_flat(dir, "cpu.stat");
            throttling.periods = stat.get("nr_periods").copied();
            throttling.throttled_periods = stat.get("nr_throttled").copied();
            throttling.throttled_time = stat.get("throttled_time").copied();
        }
    } else if let Some(dir) = cg.dir("cpu") {
        let stat = cgroup::read_flat(dir, "cpu.stat");
        let nanos = |k: &str| stat.get(k).map(|us| us.saturating_mul(1000));
        usage.total_usage = nanos("usage_usec");
        usage.usage_in_usermode = nanos("user_usec");
        usage.usage_in_kernelmode = nanos("system_usec");
        throttling.periods = stat.get("nr_periods").copied();
        throttling.throttled_periods = stat.get("nr_throttled").copied();
        throttling.throttled_time = nanos("throttled_usec");
    }
    ContainerCpuStats {
        cpu_usage: Some(usage),
        system_cpu_usage: Some(system),
        online_cpus: Some(cpus.max(1)),
        throttling_data: Some(throttling),
    }
}

fn memory_stats(cg: &Cgroup) -> ContainerMemoryStats {
    let host = host_memory();
    // An unlimited cgroup reports the host's memory, as Docker does.
    let cap = |limit: Option<u64>| match (limit, host) {
        (Some(l), Some(h)) if l > h => Some(h),
        (None, h) => h,
        (l, _) => l,
    };
    let Some(dir) = cg.dir("memory") else {
        return ContainerMemoryStats::default();
    };
    if cg.is_v1() {
        ContainerMemoryStats {
            usage: cgroup::read_number(dir, "memory.usage_in_bytes"),
            max_usage: cgroup::read_number(dir, "memory.max_usage_in_bytes"),
            failcnt: cgroup::read_number(dir, "memory.failcnt"),
            limit: cap(cgroup::read_number(dir, "memory.limit_in_bytes")),
            stats: Some(cgroup::read_flat(dir, "memory.stat")),
            ..Default::default()
        }
    } else {
        ContainerMemoryStats {
            usage: cgroup::read_number(dir, "memory.current"),
            limit: cap(cgroup::read_number(dir, "memory.max")),
            stats: Some(cgroup::read_flat(dir, "memory.stat")),
            ..Default::default()
        }
    }
}

fn pids_stats(cg: &Cgroup) -> ContainerPidsStats {
    let Some(dir) = cg.dir("pids") else {
        return ContainerPidsStats::default();
    };
    ContainerPidsStats {
        current: cgroup::read_number(dir, "pids.current"),
        // `max` (no limit) is reported as Docker does: left out.
        limit: cgroup::read_number(dir, "pids.max"),
    }
}

fn blkio_stats(cg: &Cgroup) -> ContainerBlkioStats {
    let entries = |v: Vec<cgroup::BlkioEntry>| {
        v.into_iter()
            .map(|(major, minor, op, value)| ContainerBlkioStatEntry {
                major: Some(major),
                minor: Some(minor),
                op: Some(op),
                value: Some(value),
            })
            .collect::<Vec<_>>()
    };
    let Some(dir) = cg.dir("blkio") else {
        return ContainerBlkioStats::default();
    };
    if cg.is_v1() {
        let read = |files: &[&str]| {
            files
                .iter()
                .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
                .map(|t| cgroup::parse_blkio_v1(&t))
                .find(|v| !v.is_empty())
                .unwrap_or_default()
        };
        ContainerBlkioStats {
            io_service_bytes_recursive: Some(entries(read(&[
                "blkio.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes",
            ]))),
            io_serviced_recursive: Some(entries(read(&[
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
                "blkio.throttle.io_serviced",
            ]))),
            ..Default::default()
        }
    } else {
        let text = std::fs::read_to_string(dir.join("io.stat")).unwrap_or_default();
        ContainerBlkioStats {
            io_service_bytes_recursive: Some(entries(cgroup::parse_io_stat(&text))),
            ..Default::default()
        }
    }
}

fn networks(pid: i32) -> Option<HashMap<String, ContainerNetworkStats>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let map: HashMap<String, ContainerNetworkStats> = cgroup::parse_net_dev(&text)
        .into_iter()
        .map(|(name, n)| {
            (
                name,
                ContainerNetworkStats {
                    rx_bytes: Some(n.rx[0]),
                    rx_packets: Some(n.rx[1]),
                    rx_errors: Some(n.rx[2]),
                    rx_dropped: Some(n.rx[3]),
                    tx_bytes: Some(n.tx[0]),
                    tx_packets: Some(n.tx[1]),
                    tx_errors: Some(n.tx[2]),
                    tx_dropped: Some(n.tx[3]),
                    ..Default::default()
                },
            )
        })
        .collect();
    (!map.is_empty()).then_some(map)
}

/// One sample of a running container, `None` when it is not running (or
/// its process went in the meantime). Blocking: reads files.
pub fn sample(s: &Subject) -> Option<ContainerStatsResponse> {
    let pid = s.pid?;
    let cg = Cgroup::of_pid(pid)?;
    Some(ContainerStatsResponse {
        id: Some(s.id.clone()),
        name: Some(s.name.clone()),
        os_type: Some("linux".to_string()),
        read: Some(timefmt::format_nanos(SystemTime::now())),
        cpu_stats: Some(cpu_stats(&cg)),
        memory_stats: Some(memory_stats(&cg)),
        networks: if s.host_network { None } else { networks(pid) },
        pids_stats: Some(pids_stats(&cg)),
        blkio_stats: Some(blkio_stats(&cg)),
        num_procs: Some(0),
        preread: None,
        precpu_stats: None,
        storage_stats: None,
    })
}

/// Docker's CPU stats of no sample: the counters at zero.
fn zero_cpu() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    })
}

/// What Docker sends for a container that is not running: its name and
/// ID, zero times and zero figures.
pub fn zeroed(s: &Subject) -> Value {
    json!({
        "name": s.name,
        "id": s.id,
        "read": timefmt::ZERO_TIME,
        "preread": timefmt::ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": zero_cpu(),
        "precpu_stats": zero_cpu(),
        "memory_stats": {}
    })
}

/// `now` as Docker sends it, with `previous` (the sample before, if any)
/// as its `precpu_stats` and `preread`.
pub fn with_previous(
    mut now: ContainerStatsResponse,
    previous: Option<&ContainerStatsResponse>,
) -> Value {
    now.preread = Some(
        previous
            .and_then(|p| p.read.clone())
            .unwrap_or_else(|| timefmt::ZERO_TIME.to_string()),
    );
    now.precpu_stats = previous.and_then(|p| p.cpu_stats.clone());
    let mut v = serde_json::to_value(&now).unwrap_or(Value::Null);
    if previous.is_none()
        && let Some(map) = v.as_object_mut()
    {
        map.insert("precpu_stats".to_string(), zero_cpu());
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn subject() -> Subject {
        Subject {
            id: "abc".into(),
            name: "/web".into(),
            pid: None,
            host_network: false,
        }
    }

    #[test]
    fn a_stopped_container_has_zero_figures() {
        let s = subject();
        assert!(sample(&s).is_none());
        let v = zeroed(&s);
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["memory_stats"], json!({}));
    }

    #[test]
    fn the_previous_sample_fills_precpu() {
        let first = ContainerStatsResponse {
            read: Some("2026-01-01T00:00:00Z".into()),
            cpu_stats: Some(ContainerCpuStats {
                system_cpu_usage: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = with_previous(first.clone(), None);
        assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        let v = with_previous(first.clone(), Some(&first));
        assert_eq!(v["preread"], "2026-01-01T00:00:00Z");
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 5);
    }
}
