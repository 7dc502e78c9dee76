//! The files the engine generates for a container's `/etc` and
//! bind-mounts over the image's: `hosts`, `hostname` and `resolv.conf`.
//! They are not part of the OCI spec (the spec only mounts them); their
//! text is built here from the container's settings and the host's
//! resolver configuration.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{Error, Result, SpecError};

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

impl EtcFiles {
    /// Writes the three files: `hosts` (see [`hosts_file_with_gateway`]),
    /// the hostname on a line, and `resolv` (see [`resolv_conf`]).
    pub fn write(&self, hosts: &str, hostname: &str, resolv: &str) -> Result<()> {
        for (path, text) in [
            (&self.hosts, hosts.to_string()),
            (&self.hostname, format!("{hostname}\n")),
            (&self.resolv_conf, resolv.to_string()),
        ] {
            std::fs::write(path, text).map_err(Error::io("write", path))?;
        }
        Ok(())
    }
}

fn bad(msg: impl Into<String>) -> Error {
    SpecError::Invalid(msg.into()).into()
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

    #[test]
    fn the_three_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let files = EtcFiles {
            hosts: dir.path().join("hosts"),
            hostname: dir.path().join("hostname"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        files
            .write("127.0.0.1\tlocalhost\n", "box", "nameserver 10.0.0.1\n")
            .unwrap();
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&files.hosts), "127.0.0.1\tlocalhost\n");
        assert_eq!(read(&files.hostname), "box\n");
        assert_eq!(read(&files.resolv_conf), "nameserver 10.0.0.1\n");
        let gone = EtcFiles {
            hosts: dir.path().join("no/such/hosts"),
            ..files
        };
        let e = gone.write("", "box", "").unwrap_err().to_string();
        assert!(e.contains("no/such/hosts"), "{e}");
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
}
