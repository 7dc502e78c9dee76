//! Reading a running container's cgroup: where it is (from the init's
//! `/proc/PID/cgroup` and the engine's cgroup mounts, so it holds on cgroup
//! v1, on v2 and on hybrid hosts whatever path the runtime chose) and what
//! its controllers count. The figures are returned raw; shaping them into
//! Docker's stats is [`crate::container::stats`]'s job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One cgroup mount of the engine: its root inside the hierarchy and
/// where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    point: PathBuf,
}

/// The engine's cgroup mounts: v1 hierarchies by controller, and the
/// unified (v2) one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Mounts {
    v1: HashMap<String, Mount>,
    unified: Option<Mount>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|c| u8::from_str_radix(c, 8).ok());
        match code {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_mounts(mountinfo: &str) -> Mounts {
    let mut m = Mounts::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else {
            continue;
        };
        let mount = Mount {
            root: unescape(root),
            point: PathBuf::from(unescape(point)),
        };
        match *fstype {
            "cgroup2" => {
                m.unified.get_or_insert(mount);
            }
            "cgroup" => {
                for opt in r.get(2).copied().unwrap_or_default().split(',') {
                    m.v1.entry(opt.to_string()).or_insert_with(|| mount.clone());
                }
            }
            _ => {}
        }
    }
    m
}

fn mounts() -> &'static Mounts {
    static MOUNTS: OnceLock<Mounts> = OnceLock::new();
    MOUNTS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|s| parse_mounts(&s))
            .unwrap_or_default()
    })
}

/// The folders of one process's cgroups.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// v1 controller (`memory`, `cpuacct`...) to its folder.
    pub v1: HashMap<String, PathBuf>,
    /// The unified (v2) folder, when the process has one.
    pub unified: Option<PathBuf>,
}

fn join(mount: &Mount, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount.root.as_str())
        .filter(|_| mount.root != "/")
        .unwrap_or(path);
    mount.point.join(rel.trim_start_matches('/'))
}

fn locate(proc_cgroup: &str, mounts: &Mounts) -> Cgroup {
    let mut cg = Cgroup::default();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            if let Some(m) = &mounts.unified {
                cg.unified = Some(join(m, path));
            }
            continue;
        }
        for ctrl in ctrls.split(',') {
            if let Some(m) = mounts.v1.get(ctrl) {
                cg.v1.insert(ctrl.to_string(), join(m, path));
            }
        }
    }
    cg
}

impl Cgroup {
    /// The cgroups of process `pid`, `None` when it is gone.
    pub fn of_pid(pid: i32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Some(locate(&text, mounts()))
    }

    /// Whether the controllers are v1 ones (the memory controller is
    /// mounted on its own hierarchy).
    pub fn is_v1(&self) -> bool {
        self.v1.contains_key("memory")
    }

    /// The folder of v1 `controller`, or the unified one on v2.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        if self.is_v1() {
            self.v1.get(controller).map(PathBuf::as_path)
        } else {
            self.unified.as_deref()
        }
    }

    /// The process IDs in the cgroup (of its pids controller, else its
    /// memory one), as the host sees them.
    pub fn pids(&self) -> Vec<i32> {
        let dir = self
            .dir("pids")
            .or_else(|| self.dir("memory"))
            .or(self.unified.as_deref());
        dir.and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// A file of one number (`max` or a missing file is `None`).
pub fn read_number(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// A file of `key value` lines (`memory.stat`, `cpu.stat`).
pub fn read_flat(dir: &Path, file: &str) -> HashMap<String, u64> {
    std::fs::read_to_string(dir.join(file))
        .map(|t| parse_flat(&t))
        .unwrap_or_default()
}

/// `key value` lines to a map; lines that do not parse are skipped.
pub fn parse_flat(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// One block device's figure: major, minor, operation, value.
pub type BlkioEntry = (u64, u64, String, u64);

/// v1 `blkio.*io_service_bytes*`: `MAJ:MIN Op value` lines (the `Total`
/// line without a device is skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some((
                major.parse().ok()?,
                minor.parse().ok()?,
                op.to_string(),
                value.parse().ok()?,
            ))
        })
        .collect()
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N ...`, as Docker reports it:
/// a `read` and a `write` entry per device.
pub fn parse_io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let op = match k {
                "rbytes" => "read",
                "wbytes" => "write",
                _ => continue,
            };
            if let Ok(v) = v.parse() {
                out.push((major, minor, op.to_string(), v));
            }
        }
    }
    out
}

/// One interface's counters from `/proc/PID/net/dev`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetCounters {
    /// Bytes, packets, errors, drops received.
    pub rx: [u64; 4],
    /// Bytes, packets, errors, drops sent.
    pub tx: [u64; 4],
}

/// `/proc/PID/net/dev`, the loopback left out (Docker reports the
/// container's endpoints only).
pub fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| f.get(i).copied().unwrap_or(0);
            Some((
                name.to_string(),
                NetCounters {
                    rx: [at(0), at(1), at(2), at(3)],
                    tx: [at(8), at(9), at(10), at(11)],
                },
            ))
        })
        .collect()
}

/// `/proc/stat`: the host's CPU time in nanoseconds (user to softirq, as
/// Docker sums it) and the number of CPUs listed.
pub fn parse_proc_stat(text: &str) -> (u64, u32) {
    /// The kernel's `USER_HZ`, fixed at 100 on Linux.
    const TICKS: u64 = 100;
    let mut total = 0;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let ticks: u64 = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                total = ticks.saturating_mul(1_000_000_000 / TICKS);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_mem_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
33 25 0:29 /nested /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
40 1 8:1 / /var/lib/my\\040dir rw - ext4 /dev/sda1 rw
";

    #[test]
    fn finds_a_hybrid_hosts_cgroups() {
        let m = parse_mounts(MOUNTINFO);
        let cg = locate(
            "12:pids:/nested/servin/abc\n4:memory:/servin/abc\n3:cpu,cpuacct:/servin/abc\n0::/servin/abc\n",
            &m,
        );
        assert!(cg.is_v1());
        assert_eq!(
            cg.dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/servin/abc")
        );
        assert_eq!(
            cg.dir("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/servin/abc")
        );
        assert_eq!(
            cg.dir("pids").unwrap(),
            Path::new("/sys/fs/cgroup/pids/servin/abc")
        );
        assert_eq!(
            cg.unified.as_deref().unwrap(),
            Path::new("/sys/fs/cgroup/unified/servin/abc")
        );
    }

    #[test]
    fn finds_a_v2_hosts_cgroup() {
        let m = parse_mounts(
            "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let cg = locate("0::/servin/abc\n", &m);
        assert!(!cg.is_v1());
        assert_eq!(
            cg.dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/servin/abc")
        );
        assert_eq!(unescape("/var/lib/my\\040dir"), "/var/lib/my dir");
    }

    #[test]
    fn parses_the_counters() {
        let flat = parse_flat("cache 10\nrss 20\nbad\n");
        assert_eq!(flat.get("rss"), Some(&20));
        assert_eq!(flat.len(), 2);
        assert_eq!(
            parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n"),
            vec![(8, 0, "Read".into(), 4096), (8, 0, "Write".into(), 0)]
        );
        assert_eq!(
            parse_io_stat("8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n"),
            vec![(8, 0, "read".into(), 512), (8, 0, "write".into(), 1024)]
        );
        let net = parse_net_dev(
            "Inter-|   Receive |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  100  1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n  eth0: 2000 20 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n",
        );
        assert_eq!(net.len(), 1);
        assert_eq!(net[0].0, "eth0");
        assert_eq!(net[0].1.rx, [2000, 20, 1, 2]);
        assert_eq!(net[0].1.tx, [3000, 30, 3, 4]);
        let (total, cpus) = parse_proc_stat(
            "cpu  10 0 10 80 0 0 0 5 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1\n",
        );
        assert_eq!(total, 100 * 10_000_000);
        assert_eq!(cpus, 2);
        assert_eq!(
            parse_mem_total("MemTotal:  1024 kB\nMemFree: 1 kB\n"),
            Some(1024 * 1024)
        );
    }
}
