//! Each network's firewall rules: egress masquerade, isolation from other
//! networks, and no way out for internal networks.
//!
//! Every rule sits in the network's own nftables table (`servin-<10 hex>`,
//! family `inet`) or its own iptables chains (`SERVIN-<10 hex>-FWD`, `-IN`,
//! `-NAT`, jumped to from `FORWARD`, `INPUT` and `POSTROUTING`), so
//! removing a network removes exactly its rules and nothing of anyone
//! else's. nftables is used when `nft` is installed, iptables otherwise;
//! `SERVIN_FIREWALL=nft|iptables` chooses. Rules are written in one
//! transaction per network (`nft -f -` or `iptables-restore --noflush`).
//!
//! What the rules say, for a network on bridge `B` with subnet `S`:
//! - forwarded traffic from `B` to another servin bridge is dropped, and
//!   new connections into `B` from anywhere but `B` are dropped (so two
//!   networks never reach each other, whichever one is asked);
//! - traffic within `B` is accepted;
//! - a normal network's traffic leaving through another interface is
//!   accepted and masqueraded behind the host's address;
//! - an internal network's traffic leaving `B` is dropped, and so is its
//!   traffic to the host's own addresses other than its gateway (where the
//!   engine's DNS server answers);
//! - every network's containers may reach the engine's DNS server on its
//!   gateway (53/udp and 53/tcp), accepted in an input chain of its own.

use std::net::Ipv4Addr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::ipam::Subnet;
use crate::error::{Error, Result};

/// Which tool writes the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One `inet` table per network.
    Nft,
    /// Chains of their own in iptables' `filter` and `nat` tables.
    Iptables,
}

impl Backend {
    /// `SERVIN_FIREWALL` when set to `nft` or `iptables`, else nftables
    /// when `nft` is installed, else iptables.
    pub fn detect() -> Self {
        match std::env::var("SERVIN_FIREWALL").as_deref() {
            Ok("nft" | "nftables") => return Self::Nft,
            Ok("iptables") => return Self::Iptables,
            _ => {}
        }
        if find_in_path("nft") {
            Self::Nft
        } else {
            Self::Iptables
        }
    }

    /// `nft` or `iptables`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nft => "nft",
            Self::Iptables => "iptables",
        }
    }
}

fn find_in_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).is_file())
}

/// What the rules of one network need.
#[derive(Debug, Clone)]
pub struct Rules {
    /// 10 hex digits of the network's ID: names the table and chains.
    pub tag: String,
    /// The bridge's name.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Subnet,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
    /// No egress.
    pub internal: bool,
}

impl Rules {
    /// The nftables table's name.
    pub fn table(&self) -> String {
        table_name(&self.tag)
    }
}

/// The nftables table of the network tagged `tag`.
pub fn table_name(tag: &str) -> String {
    format!("servin-{tag}")
}

/// The iptables chains of the network tagged `tag`: forward, input, nat.
pub fn chain_names(tag: &str) -> [String; 3] {
    [
        format!("SERVIN-{tag}-FWD"),
        format!("SERVIN-{tag}-IN"),
        format!("SERVIN-{tag}-NAT"),
    ]
}

/// The `nft -f -` script that replaces the network's table.
pub fn nft_script(r: &Rules) -> String {
    let t = r.table();
    let b = &r.bridge;
    let mut s = format!(
        "table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    iifname \"{b}\" oifname \"{b}\" accept\n    iifname \"{b}\" oifname \"sv-*\" drop\n    oifname \"{b}\" ct state established,related accept\n    oifname \"{b}\" drop\n"
    );
    let gw = r.gateway;
    // The engine's DNS server on the gateway: let containers reach it.
    let mut input = format!(
        "  chain input {{\n    type filter hook input priority filter; policy accept;\n    iifname \"{b}\" ip daddr {gw} udp dport 53 accept\n    iifname \"{b}\" ip daddr {gw} tcp dport 53 accept\n"
    );
    if r.internal {
        s.push_str(&format!("    iifname \"{b}\" drop\n  }}\n"));
        input.push_str(&format!("    iifname \"{b}\" ip daddr != {gw} drop\n"));
    } else {
        s.push_str(&format!("    iifname \"{b}\" accept\n  }}\n"));
        s.push_str(&format!(
            "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {} oifname != \"{b}\" masquerade\n  }}\n",
            r.subnet
        ));
    }
    input.push_str("  }\n");
    s.push_str(&input);
    s.push_str("}\n");
    s
}

/// The `nft -f -` script that removes the table tagged `tag` (the empty
/// declaration first, so a missing table is not an error).
pub fn nft_remove_script(tag: &str) -> String {
    let t = table_name(tag);
    format!("table inet {t} {{}}\ndelete table inet {t}\n")
}

/// The `iptables-restore --noflush` input removing what `saved`
/// (`iptables-save` output) holds of the network tagged `tag`: its jumps,
/// then its chains.
pub fn iptables_remove_lines(saved: &str, tag: &str) -> (Vec<String>, Vec<String>) {
    let chains = chain_names(tag);
    let mut filter = Vec::new();
    let mut nat = Vec::new();
    let mut table = "";
    let mut filter_chains = Vec::new();
    let mut nat_chains = Vec::new();
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = if t == "filter" {
                "filter"
            } else if t == "nat" {
                "nat"
            } else {
                ""
            };
            continue;
        }
        let out = match table {
            "filter" => (&mut filter, &mut filter_chains),
            "nat" => (&mut nat, &mut nat_chains),
            _ => continue,
        };
        if let Some(name) = line
            .strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
        {
            if chains.iter().any(|c| c == name) {
                out.1.push(name.to_string());
            }
            continue;
        }
        if let Some(rule) = line.strip_prefix("-A ") {
            let (chain, rest) = rule.split_once(' ').unwrap_or((rule, ""));
            let jumps_to_ours = chains.iter().any(|c| rest.ends_with(&format!("-j {c}")));
            if jumps_to_ours && !chains.iter().any(|c| c == chain) {
                out.0.push(format!("-D {chain} {rest}"));
            }
        }
    }
    for c in filter_chains {
        filter.push(format!("-F {c}"));
        filter.push(format!("-X {c}"));
    }
    for c in nat_chains {
        nat.push(format!("-F {c}"));
        nat.push(format!("-X {c}"));
    }
    (filter, nat)
}

/// The `iptables-restore --noflush` input that writes the network's
/// chains and jumps (after [`remove`] took away any earlier ones).
pub fn iptables_script(r: &Rules) -> String {
    let [fwd, input, natc] = chain_names(&r.tag);
    let b = &r.bridge;
    let mut filter = vec![format!(":{fwd} - [0:0]"), format!(":{input} - [0:0]")];
    let mut nat = Vec::new();
    if !r.internal {
        nat.push(format!(":{natc} - [0:0]"));
    }
    // The engine's DNS server on the gateway: let containers reach it,
    // before any rule of the host's INPUT chain.
    for proto in ["udp", "tcp"] {
        filter.push(format!(
            "-A {input} -i {b} -d {}/32 -p {proto} -m {proto} --dport 53 -j ACCEPT",
            r.gateway
        ));
    }
    filter.push(format!("-A {fwd} -i {b} -o {b} -j ACCEPT"));
    filter.push(format!("-A {fwd} -i {b} -o sv-+ -j DROP"));
    filter.push(format!(
        "-A {fwd} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    ));
    filter.push(format!("-A {fwd} -o {b} -j DROP"));
    if r.internal {
        filter.push(format!("-A {fwd} -i {b} -j DROP"));
        filter.push(format!("-A {input} -i {b} ! -d {}/32 -j DROP", r.gateway));
    } else {
        filter.push(format!("-A {fwd} -i {b} -j ACCEPT"));
        nat.push(format!("-A {natc} -s {} ! -o {b} -j MASQUERADE", r.subnet));
        nat.push(format!("-I POSTROUTING 1 -j {natc}"));
    }
    filter.push(format!("-I INPUT 1 -j {input}"));
    filter.push(format!("-I FORWARD 1 -j {fwd}"));
    restore_input(&filter, &nat)
}

fn restore_input(filter: &[String], nat: &[String]) -> String {
    let mut s = String::new();
    for (name, lines) in [("filter", filter), ("nat", nat)] {
        if lines.is_empty() {
            continue;
        }
        s.push_str(&format!("*{name}\n"));
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// Runs `tool args` with `input` on its stdin; fails with its stderr.
async fn run(tool: &str, args: &[&str], input: &str) -> Result<String> {
    let mut child = tokio::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Runtime {
            context: format!("firewall: run {tool}"),
            message: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let out = child.wait_with_output().await.map_err(|e| Error::Runtime {
        context: format!("firewall: wait for {tool}"),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Runtime {
            context: format!("firewall: {tool} {}", args.join(" ")),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes (or rewrites) the network's rules.
pub async fn apply(backend: Backend, r: &Rules) -> Result<()> {
    match backend {
        Backend::Nft => run("nft", &["-f", "-"], &nft_script(r)).await.map(drop),
        Backend::Iptables => {
            remove(backend, &r.tag).await?;
            run(
                "iptables-restore",
                &["--noflush", "-w", "5"],
                &iptables_script(r),
            )
            .await
            .map(drop)
        }
    }
}

/// Removes the rules of the network tagged `tag`; nothing to remove is
/// not an error.
pub async fn remove(backend: Backend, tag: &str) -> Result<()> {
    match backend {
        Backend::Nft => run("nft", &["-f", "-"], &nft_remove_script(tag))
            .await
            .map(drop),
        Backend::Iptables => {
            let saved = run("iptables-save", &[], "").await?;
            let (filter, nat) = iptables_remove_lines(&saved, tag);
            if filter.is_empty() && nat.is_empty() {
                return Ok(());
            }
            run(
                "iptables-restore",
                &["--noflush", "-w", "5"],
                &restore_input(&filter, &nat),
            )
            .await
            .map(drop)
        }
    }
}

/// Turns on IPv4 forwarding in the engine's network namespace (containers'
/// traffic leaves through the host only with it).
pub fn ensure_ip_forward() -> Result<()> {
    let path = std::path::Path::new("/proc/sys/net/ipv4/ip_forward");
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(path, "1\n").map_err(Error::io("write", path)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(internal: bool) -> Rules {
        Rules {
            tag: "0123456789".to_string(),
            bridge: "sv-0123456789".to_string(),
            subnet: Subnet::parse("10.89.4.0/24").unwrap(),
            gateway: Ipv4Addr::new(10, 89, 4, 1),
            internal,
        }
    }

    #[test]
    fn nft_rules_masquerade_normal_networks_only() {
        let normal = nft_script(&rules(false));
        assert!(normal.starts_with("table inet servin-0123456789 {}\ndelete table"));
        assert!(normal.contains("ip saddr 10.89.4.0/24 oifname != \"sv-0123456789\" masquerade"));
        assert!(normal.contains("iifname \"sv-0123456789\" oifname \"sv-*\" drop"));
        assert!(
            normal.contains("iifname \"sv-0123456789\" ip daddr 10.89.4.1 udp dport 53 accept")
        );
        assert!(
            normal.contains("iifname \"sv-0123456789\" ip daddr 10.89.4.1 tcp dport 53 accept")
        );
        assert!(!normal.contains("ip daddr != 10.89.4.1 drop"));
        let internal = nft_script(&rules(true));
        assert!(!internal.contains("masquerade"));
        assert!(internal.contains("iifname \"sv-0123456789\" drop"));
        assert!(internal.contains("ip daddr != 10.89.4.1 drop"));
    }

    #[test]
    fn iptables_rules_replace_the_old_ones() {
        let saved = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:SERVIN-0123456789-FWD - [0:0]\n:SERVIN-9999999999-FWD - [0:0]\n-A FORWARD -j SERVIN-9999999999-FWD\n-A FORWARD -j SERVIN-0123456789-FWD\n-A SERVIN-0123456789-FWD -i sv-0123456789 -j ACCEPT\nCOMMIT\n*nat\n:SERVIN-0123456789-NAT - [0:0]\n-A POSTROUTING -j SERVIN-0123456789-NAT\nCOMMIT\n";
        let (filter, nat) = iptables_remove_lines(saved, "0123456789");
        assert_eq!(
            filter,
            vec![
                "-D FORWARD -j SERVIN-0123456789-FWD",
                "-F SERVIN-0123456789-FWD",
                "-X SERVIN-0123456789-FWD"
            ]
        );
        assert_eq!(
            nat,
            vec![
                "-D POSTROUTING -j SERVIN-0123456789-NAT",
                "-F SERVIN-0123456789-NAT",
                "-X SERVIN-0123456789-NAT"
            ]
        );
        let script = iptables_script(&rules(false));
        assert!(
            script.contains(
                "-A SERVIN-0123456789-NAT -s 10.89.4.0/24 ! -o sv-0123456789 -j MASQUERADE"
            )
        );
        assert!(script.contains("-I FORWARD 1 -j SERVIN-0123456789-FWD"));
        assert!(script.contains(
            "-A SERVIN-0123456789-IN -i sv-0123456789 -d 10.89.4.1/32 -p udp -m udp --dport 53 -j ACCEPT"
        ));
        assert!(script.contains("-I INPUT 1 -j SERVIN-0123456789-IN"));
        assert!(script.starts_with("*filter\n:SERVIN-0123456789-FWD - [0:0]\n"));
        let internal = iptables_script(&rules(true));
        assert!(!internal.contains("MASQUERADE"));
        assert!(
            internal.contains("-A SERVIN-0123456789-IN -i sv-0123456789 ! -d 10.89.4.1/32 -j DROP")
        );
    }
}
