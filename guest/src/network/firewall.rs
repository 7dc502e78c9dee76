//! Each network's firewall rules: egress masquerade, isolation from other
//! networks, and no way out for internal networks.
//!
//! Every rule sits in the network's own nftables table (`servin-<10 hex>`,
//! family `inet`) or its own iptables chains (`SERVIN-<10 hex>-FWD`, `-IN`,
//! `-NAT`, `-DNAT`, `-RAW`, jumped to from `FORWARD`, `INPUT`,
//! `POSTROUTING`, `PREROUTING` and `OUTPUT`), so
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
//!   gateway (53/udp and 53/tcp), accepted in an input chain of its own;
//! - packets to `127.0.0.0/8` arriving on `B` are dropped.
//!
//! A network with IPv6 (subnet `S6`, gateway `G6`) gets the same rules for
//! its IPv6 traffic: the nftables table is of the `inet` family, so the
//! interface rules above hold for both families, and it adds a masquerade
//! of `S6` leaving through another interface (Docker masquerades IPv6
//! subnets the same way by default since 27, whatever their kind) and,
//! for an internal network, a drop of IPv6 packets to the host's
//! addresses other than `G6` and the link-local and link-scope multicast
//! ones neighbour discovery needs. With iptables, the same rules go in
//! chains of the same names written with `ip6tables` (`filter` and `nat`
//! tables). The engine's DNS server answers on the IPv4 gateway only (as
//! Docker's), and published ports are forwarded over IPv4 only.
//!
//! Published ports also have a kernel fast path ([`Dnat`]), unless
//! `SERVIN_PORT_FORWARD=userland`: the userland forwarder still holds every
//! host port (so conflicts are found and named), while the kernel rewrites
//! the destination of connections to the host's own addresses before they
//! reach it. For the network whose containers a port forwards to:
//! - nftables: maps `dnat_ports` (protocol . host address . port, for
//!   bindings on one address) and `dnat_any` (protocol . port, for bindings
//!   on `0.0.0.0`), looked up by nat chains at prerouting and output for
//!   packets to a local address (`fib daddr type local`); iptables: DNAT
//!   rules in `SERVIN-<tag>-DNAT` of the `nat` table, jumped to from
//!   `PREROUTING` and `OUTPUT` with `-m addrtype --dst-type LOCAL`;
//! - connections so rewritten into `B` are masqueraded behind its gateway
//!   (the container sees the gateway as its peer, as with the userland
//!   forwarder, and a container reaching its own port through the host's
//!   address gets the replies back), and accepted by the forward rules
//!   from other networks and from outside, as the forwarder accepts them;
//!   an internal network's containers reach them only on their gateway;
//! - 127.0.0.1 works because the bridge routes loopback addresses
//!   (`route_localnet`, set by [`set_route_localnet`]), so packets to
//!   `127.0.0.0/8` arriving on `B` are dropped before anything else sees
//!   them (a raw-priority chain, or `SERVIN-<tag>-RAW` in iptables' `raw`
//!   table).
//!
//! A container publishing ports also has its bridge port in hairpin mode
//! ([`super::link::set_hairpin`]), for its own connections to them. The
//! connections already tracked when a port's rule goes keep their
//! rewriting until the kernel forgets them (a UDP client that keeps
//! sending, above all): the engine does not delete conntrack entries.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::ipam::Subnet;
use super::ipam6::Subnet6;
use crate::error::{Error, Result};
use crate::network::ports::Protocol;

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
    /// The kernel fast path of published ports is on: the maps or chain
    /// for it exist.
    pub kernel_ports: bool,
    /// The published ports forwarded to the network's containers.
    pub dnat: Vec<Dnat>,
    /// The IPv6 subnet and gateway, on a network with IPv6.
    pub ipv6: Option<(Subnet6, Ipv6Addr)>,
}

/// The host addresses an internal network's containers may still send
/// IPv6 to: link-local ones and link-scope multicast (neighbour and
/// router discovery).
const IPV6_LINK_SCOPE: [&str; 2] = ["fe80::/10", "ff02::/16"];

/// One published host port forwarded by the kernel to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dnat {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address bound, or `None` for every address (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub target: Ipv4Addr,
    /// The container's port.
    pub target_port: u16,
}

impl Dnat {
    /// The nftables map holding it and its key.
    fn nft_key(&self) -> (&'static str, String) {
        match self.host_ip {
            Some(ip) => (
                MAP_PORTS,
                format!("{} . {ip} . {}", self.protocol, self.host_port),
            ),
            None => (MAP_ANY, format!("{} . {}", self.protocol, self.host_port)),
        }
    }

    /// Its nftables map element: `key : address . port`.
    fn nft_element(&self) -> (&'static str, String) {
        let (map, key) = self.nft_key();
        (
            map,
            format!("{key} : {} . {}", self.target, self.target_port),
        )
    }

    /// Its iptables rule in `chain`, without the `-A`/`-D`.
    fn iptables_rule(&self, chain: &str) -> String {
        let p = self.protocol;
        let dest = self
            .host_ip
            .map(|ip| format!(" -d {ip}/32"))
            .unwrap_or_default();
        format!(
            "{chain}{dest} -p {p} -m {p} --dport {} -j DNAT --to-destination {}:{}",
            self.host_port, self.target, self.target_port
        )
    }
}

/// The nftables map of ports bound on one host address.
pub const MAP_PORTS: &str = "dnat_ports";
/// The nftables map of ports bound on every host address.
pub const MAP_ANY: &str = "dnat_any";

const MAP_PORTS_TYPE: &str = "inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service";
const MAP_ANY_TYPE: &str = "inet_proto . inet_service : ipv4_addr . inet_service";

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

/// The iptables chains of the network tagged `tag`: forward and input
/// (`filter` table), nat and published ports (`nat` table), loopback guard
/// (`raw` table).
pub fn chain_names(tag: &str) -> [String; 5] {
    [
        format!("SERVIN-{tag}-FWD"),
        format!("SERVIN-{tag}-IN"),
        format!("SERVIN-{tag}-NAT"),
        format!("SERVIN-{tag}-DNAT"),
        format!("SERVIN-{tag}-RAW"),
    ]
}

/// The iptables tables servin's chains live in, in the order they are
/// written.
const IPTABLES_TABLES: [&str; 3] = ["filter", "nat", "raw"];

/// The `nft -f -` script that replaces the network's table.
pub fn nft_script(r: &Rules) -> String {
    let t = r.table();
    let b = &r.bridge;
    let gw = r.gateway;
    let mut s = format!("table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{\n");
    // Loopback addresses are routed on the bridge for the kernel path
    // (route_localnet): nothing from a container may reach them.
    s.push_str(&format!(
        "  chain raw_prerouting {{\n    type filter hook prerouting priority raw; policy accept;\n    iifname \"{b}\" ip daddr 127.0.0.0/8 drop\n  }}\n"
    ));
    if r.kernel_ports {
        for (map, ty) in [(MAP_PORTS, MAP_PORTS_TYPE), (MAP_ANY, MAP_ANY_TYPE)] {
            let elements = in_map(&r.dnat, map, Dnat::nft_element);
            s.push_str(&format!("  map {map} {{\n    type {ty}\n"));
            if !elements.is_empty() {
                s.push_str(&format!("    elements = {{ {} }}\n", elements.join(", ")));
            }
            s.push_str("  }\n");
        }
        for (chain, hook, priority) in [
            ("dnat_prerouting", "prerouting", "dstnat"),
            ("dnat_output", "output", "-100"),
        ] {
            s.push_str(&format!(
                "  chain {chain} {{\n    type nat hook {hook} priority {priority}; policy accept;\n    fib daddr type local dnat ip to meta l4proto . ip daddr . th dport map @{MAP_PORTS}\n    fib daddr type local dnat ip to meta l4proto . th dport map @{MAP_ANY}\n  }}\n"
            ));
        }
    }
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    if r.internal {
        // Published ports are reached from an internal network only on its
        // gateway (the input rules keep it off the host's other addresses).
        s.push_str(&format!(
            "    iifname \"{b}\" ct direction original ct status dnat ct original ip daddr != {gw} drop\n"
        ));
    }
    // Connections to published ports, from anywhere, as through the
    // userland forwarder.
    s.push_str(&format!(
        "    oifname \"{b}\" ct status dnat accept\n    iifname \"{b}\" ct direction reply ct status dnat accept\n    iifname \"{b}\" oifname \"sv-*\" ct status dnat accept\n"
    ));
    s.push_str(&format!(
        "    iifname \"{b}\" oifname \"{b}\" accept\n    iifname \"{b}\" oifname \"sv-*\" drop\n    oifname \"{b}\" ct state established,related accept\n    oifname \"{b}\" drop\n"
    ));
    // The engine's DNS server on the gateway: let containers reach it; and
    // the replies to the host's connections to published ports (sent to
    // the client's address, 127.0.0.1 included).
    let mut input = format!(
        "  chain input {{\n    type filter hook input priority filter; policy accept;\n    iifname \"{b}\" ip daddr {gw} udp dport 53 accept\n    iifname \"{b}\" ip daddr {gw} tcp dport 53 accept\n    iifname \"{b}\" ct direction reply ct status dnat accept\n"
    );
    let mut postrouting = format!(
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{b}\" ct status dnat masquerade\n"
    );
    if r.internal {
        s.push_str(&format!("    iifname \"{b}\" drop\n  }}\n"));
        input.push_str(&format!("    iifname \"{b}\" ip daddr != {gw} drop\n"));
        if let Some((_, gw6)) = r.ipv6 {
            input.push_str(&format!(
                "    iifname \"{b}\" ip6 daddr != {{ {gw6}, {} }} drop\n",
                IPV6_LINK_SCOPE.join(", ")
            ));
        }
    } else {
        s.push_str(&format!("    iifname \"{b}\" accept\n  }}\n"));
        postrouting.push_str(&format!(
            "    ip saddr {} oifname != \"{b}\" masquerade\n",
            r.subnet
        ));
        if let Some((subnet6, _)) = r.ipv6 {
            postrouting.push_str(&format!(
                "    ip6 saddr {subnet6} oifname != \"{b}\" masquerade\n"
            ));
        }
    }
    postrouting.push_str("  }\n");
    input.push_str("  }\n");
    s.push_str(&postrouting);
    s.push_str(&input);
    s.push_str("}\n");
    s
}

/// The keys or elements (`text`) of the ports of `dnat` that go in `map`.
fn in_map(dnat: &[Dnat], map: &str, text: impl Fn(&Dnat) -> (&'static str, String)) -> Vec<String> {
    dnat.iter()
        .map(text)
        .filter(|(m, _)| *m == map)
        .map(|(_, t)| t)
        .collect()
}

/// The `nft -f -` script that adds `add` to the maps of the table tagged
/// `tag` and deletes `delete` from them, in one transaction.
pub fn nft_dnat_script(tag: &str, add: &[Dnat], delete: &[Dnat]) -> String {
    let t = table_name(tag);
    let mut s = String::new();
    for map in [MAP_PORTS, MAP_ANY] {
        let keys = in_map(delete, map, Dnat::nft_key);
        if !keys.is_empty() {
            s.push_str(&format!(
                "delete element inet {t} {map} {{ {} }}\n",
                keys.join(", ")
            ));
        }
    }
    for map in [MAP_PORTS, MAP_ANY] {
        let elements = in_map(add, map, Dnat::nft_element);
        if !elements.is_empty() {
            s.push_str(&format!(
                "add element inet {t} {map} {{ {} }}\n",
                elements.join(", ")
            ));
        }
    }
    s
}

/// The `nft -f -` script that empties the port maps of the tables tagged
/// `tags` (which must exist; the maps are declared first, so a table
/// written without them is not an error).
pub fn nft_flush_script(tags: &[String]) -> String {
    let mut s = String::new();
    for tag in tags {
        let t = table_name(tag);
        s.push_str(&format!(
            "table inet {t} {{\n  map {MAP_PORTS} {{\n    type {MAP_PORTS_TYPE}\n  }}\n  map {MAP_ANY} {{\n    type {MAP_ANY_TYPE}\n  }}\n}}\nflush map inet {t} {MAP_PORTS}\nflush map inet {t} {MAP_ANY}\n"
        ));
    }
    s
}

/// The `nft -f -` script that removes the table tagged `tag` (the empty
/// declaration first, so a missing table is not an error).
pub fn nft_remove_script(tag: &str) -> String {
    let t = table_name(tag);
    format!("table inet {t} {{}}\ndelete table inet {t}\n")
}

/// The `iptables-restore --noflush` lines removing what `saved`
/// (`iptables-save` output) holds of the network tagged `tag`: its jumps,
/// then its chains, per table (`filter`, `nat`, `raw`).
pub fn iptables_remove_lines(saved: &str, tag: &str) -> [Vec<String>; 3] {
    let chains = chain_names(tag);
    let mut rules: [Vec<String>; 3] = Default::default();
    let mut ours: [Vec<String>; 3] = Default::default();
    let mut table = None;
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = IPTABLES_TABLES.iter().position(|n| *n == t);
            continue;
        }
        let Some(i) = table else {
            continue;
        };
        if let Some(name) = line
            .strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
        {
            if chains.iter().any(|c| c == name) {
                ours[i].push(name.to_string());
            }
            continue;
        }
        if let Some(rule) = line.strip_prefix("-A ") {
            let (chain, rest) = rule.split_once(' ').unwrap_or((rule, ""));
            let jumps_to_ours = chains.iter().any(|c| rest.ends_with(&format!("-j {c}")));
            if jumps_to_ours && !chains.iter().any(|c| c == chain) {
                rules[i].push(format!("-D {chain} {rest}"));
            }
        }
    }
    for (lines, chains) in rules.iter_mut().zip(ours) {
        for c in chains {
            lines.push(format!("-F {c}"));
            lines.push(format!("-X {c}"));
        }
    }
    rules
}

/// The `iptables-restore --noflush` input that writes the network's
/// chains and jumps (after [`remove`] took away any earlier ones).
pub fn iptables_script(r: &Rules) -> String {
    let [fwd, input, natc, dnatc, rawc] = chain_names(&r.tag);
    let b = &r.bridge;
    let gw = r.gateway;
    let mut filter = vec![format!(":{fwd} - [0:0]"), format!(":{input} - [0:0]")];
    let mut nat = vec![format!(":{natc} - [0:0]")];
    // Loopback addresses are routed on the bridge for the kernel path
    // (route_localnet): nothing from a container may reach them.
    let raw = vec![
        format!(":{rawc} - [0:0]"),
        format!("-A {rawc} -i {b} -d 127.0.0.0/8 -j DROP"),
        format!("-I PREROUTING 1 -j {rawc}"),
    ];
    // The engine's DNS server on the gateway: let containers reach it,
    // before any rule of the host's INPUT chain.
    for proto in ["udp", "tcp"] {
        filter.push(format!(
            "-A {input} -i {b} -d {gw}/32 -p {proto} -m {proto} --dport 53 -j ACCEPT"
        ));
    }
    filter.push(format!(
        "-A {input} -i {b} -m conntrack --ctstate DNAT --ctdir REPLY -j ACCEPT"
    ));
    if r.internal {
        filter.push(format!(
            "-A {fwd} -i {b} -m conntrack --ctstate DNAT --ctdir ORIGINAL ! --ctorigdst {gw}/32 -j DROP"
        ));
    }
    filter.push(format!(
        "-A {fwd} -o {b} -m conntrack --ctstate DNAT -j ACCEPT"
    ));
    filter.push(format!(
        "-A {fwd} -i {b} -m conntrack --ctstate DNAT --ctdir REPLY -j ACCEPT"
    ));
    filter.push(format!(
        "-A {fwd} -i {b} -o sv-+ -m conntrack --ctstate DNAT -j ACCEPT"
    ));
    filter.push(format!("-A {fwd} -i {b} -o {b} -j ACCEPT"));
    filter.push(format!("-A {fwd} -i {b} -o sv-+ -j DROP"));
    filter.push(format!(
        "-A {fwd} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    ));
    filter.push(format!("-A {fwd} -o {b} -j DROP"));
    nat.push(format!(
        "-A {natc} -o {b} -m conntrack --ctstate DNAT -j MASQUERADE"
    ));
    if r.internal {
        filter.push(format!("-A {fwd} -i {b} -j DROP"));
        filter.push(format!("-A {input} -i {b} ! -d {gw}/32 -j DROP"));
    } else {
        filter.push(format!("-A {fwd} -i {b} -j ACCEPT"));
        nat.push(format!("-A {natc} -s {} ! -o {b} -j MASQUERADE", r.subnet));
    }
    nat.push(format!("-I POSTROUTING 1 -j {natc}"));
    if r.kernel_ports {
        nat.push(format!(":{dnatc} - [0:0]"));
        for d in &r.dnat {
            nat.push(format!("-A {}", d.iptables_rule(&dnatc)));
        }
        for hook in ["PREROUTING", "OUTPUT"] {
            nat.push(format!(
                "-I {hook} 1 -m addrtype --dst-type LOCAL -j {dnatc}"
            ));
        }
    }
    filter.push(format!("-I INPUT 1 -j {input}"));
    filter.push(format!("-I FORWARD 1 -j {fwd}"));
    restore_input(&[filter, nat, raw])
}

/// The `ip6tables-restore --noflush` input that writes the IPv6 side of
/// the network's chains and jumps (empty without IPv6): the interface
/// rules of [`iptables_script`] (published ports are IPv4 only, so no
/// DNAT rules), the masquerade of its IPv6 subnet, and for an internal
/// network the drop of IPv6 to the host's addresses but its gateway and
/// link-scope ones.
pub fn ip6tables_script(r: &Rules) -> String {
    let Some((subnet6, gw6)) = r.ipv6 else {
        return String::new();
    };
    let [fwd, input, natc, _, _] = chain_names(&r.tag);
    let b = &r.bridge;
    let mut filter = vec![format!(":{fwd} - [0:0]"), format!(":{input} - [0:0]")];
    let mut nat = vec![format!(":{natc} - [0:0]")];
    filter.push(format!("-A {fwd} -i {b} -o {b} -j ACCEPT"));
    filter.push(format!("-A {fwd} -i {b} -o sv-+ -j DROP"));
    filter.push(format!(
        "-A {fwd} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    ));
    filter.push(format!("-A {fwd} -o {b} -j DROP"));
    if r.internal {
        filter.push(format!("-A {fwd} -i {b} -j DROP"));
        for allowed in std::iter::once(format!("{gw6}/128"))
            .chain(IPV6_LINK_SCOPE.iter().map(|s| s.to_string()))
        {
            filter.push(format!("-A {input} -i {b} -d {allowed} -j RETURN"));
        }
        filter.push(format!("-A {input} -i {b} -j DROP"));
    } else {
        filter.push(format!("-A {fwd} -i {b} -j ACCEPT"));
        nat.push(format!("-A {natc} -s {subnet6} ! -o {b} -j MASQUERADE"));
    }
    nat.push(format!("-I POSTROUTING 1 -j {natc}"));
    filter.push(format!("-I INPUT 1 -j {input}"));
    filter.push(format!("-I FORWARD 1 -j {fwd}"));
    restore_input(&[filter, nat, Vec::new()])
}

/// The `iptables-restore --noflush` input that adds `add` to the port
/// chain of the network tagged `tag` and deletes `delete` from it.
pub fn iptables_dnat_input(tag: &str, add: &[Dnat], delete: &[Dnat]) -> String {
    let [_, _, _, dnatc, _] = chain_names(tag);
    let nat: Vec<String> = delete
        .iter()
        .map(|d| format!("-D {}", d.iptables_rule(&dnatc)))
        .chain(
            add.iter()
                .map(|d| format!("-A {}", d.iptables_rule(&dnatc))),
        )
        .collect();
    restore_input(&[Vec::new(), nat, Vec::new()])
}

/// The `iptables-restore --noflush` lines emptying the port chains that
/// `saved` (`iptables-save -t nat` output) holds of the networks tagged
/// `tags`.
pub fn iptables_flush_lines(saved: &str, tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|tag| chain_names(tag)[3].clone())
        .filter(|c| {
            saved.lines().any(|l| {
                l.strip_prefix(':')
                    .and_then(|l| l.split_whitespace().next())
                    == Some(c.as_str())
            })
        })
        .map(|c| format!("-F {c}"))
        .collect()
}

/// `iptables-restore` input of `filter`, `nat` and `raw` lines (tables
/// without lines left out).
fn restore_input(tables: &[Vec<String>; 3]) -> String {
    let mut s = String::new();
    for (name, lines) in IPTABLES_TABLES.iter().zip(tables) {
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
    super::modules::ready().await?;
    let mut child = tokio::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_failed(tool, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    checked(tool, args, child.wait_with_output().await)
}

fn spawn_failed(tool: &str, e: std::io::Error) -> Error {
    Error::Runtime {
        context: format!("firewall: run {tool}"),
        message: e.to_string(),
    }
}

/// The stdout of a finished `tool args`; its stderr as the error when it
/// failed.
fn checked(
    tool: &str,
    args: &[&str],
    out: std::io::Result<std::process::Output>,
) -> Result<String> {
    let out = out.map_err(|e| Error::Runtime {
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
            remove(backend, &r.tag, r.ipv6.is_some()).await?;
            run(
                "iptables-restore",
                &["--noflush", "-w", "5"],
                &iptables_script(r),
            )
            .await?;
            if r.ipv6.is_some() {
                run(
                    "ip6tables-restore",
                    &["--noflush", "-w", "5"],
                    &ip6tables_script(r),
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// Removes the rules of the network tagged `tag` (with `ipv6`, its
/// ip6tables chains too); nothing to remove is not an error.
pub async fn remove(backend: Backend, tag: &str, ipv6: bool) -> Result<()> {
    match backend {
        Backend::Nft => run("nft", &["-f", "-"], &nft_remove_script(tag))
            .await
            .map(drop),
        Backend::Iptables => {
            remove_chains("iptables", tag).await?;
            if ipv6 {
                remove_chains("ip6tables", tag).await?;
            }
            Ok(())
        }
    }
}

/// Removes the chains of the network tagged `tag`, and the jumps to them,
/// with `tool` (`iptables` or `ip6tables`).
async fn remove_chains(tool: &str, tag: &str) -> Result<()> {
    let saved = run(&format!("{tool}-save"), &[], "").await?;
    let lines = iptables_remove_lines(&saved, tag);
    if lines.iter().all(Vec::is_empty) {
        return Ok(());
    }
    run(
        &format!("{tool}-restore"),
        &["--noflush", "-w", "5"],
        &restore_input(&lines),
    )
    .await
    .map(drop)
}

/// Adds `add` to the kernel's forwarding of published ports to the network
/// tagged `tag` and takes `delete` out of it, in one transaction.
pub async fn update_dnat(backend: Backend, tag: &str, add: &[Dnat], delete: &[Dnat]) -> Result<()> {
    if add.is_empty() && delete.is_empty() {
        return Ok(());
    }
    match backend {
        Backend::Nft => run("nft", &["-f", "-"], &nft_dnat_script(tag, add, delete))
            .await
            .map(drop),
        Backend::Iptables => run(
            "iptables-restore",
            &["--noflush", "-w", "5"],
            &iptables_dnat_input(tag, add, delete),
        )
        .await
        .map(drop),
    }
}

/// Empties the kernel's forwarding of published ports of the networks
/// tagged `tags` whose table or chain exists (the others have nothing to
/// empty). Blocking: the engine calls it while it loads, before it
/// publishes anything.
pub fn flush_dnat(backend: Backend, tags: &[String]) -> Result<()> {
    match backend {
        Backend::Nft => {
            let listed = run_blocking("nft", &["list", "tables"], "")?;
            let existing: Vec<String> = tags
                .iter()
                .filter(|tag| {
                    let want = format!("table inet {}", table_name(tag));
                    listed.lines().any(|l| l.trim() == want)
                })
                .cloned()
                .collect();
            if existing.is_empty() {
                return Ok(());
            }
            run_blocking("nft", &["-f", "-"], &nft_flush_script(&existing)).map(drop)
        }
        Backend::Iptables => {
            let saved = run_blocking("iptables-save", &["-t", "nat"], "")?;
            let lines = iptables_flush_lines(&saved, tags);
            if lines.is_empty() {
                return Ok(());
            }
            run_blocking(
                "iptables-restore",
                &["--noflush", "-w", "5"],
                &restore_input(&[Vec::new(), lines, Vec::new()]),
            )
            .map(drop)
        }
    }
}

/// [`run`] for callers outside the async runtime.
fn run_blocking(tool: &str, args: &[&str], input: &str) -> Result<String> {
    use std::io::Write;
    super::modules::loaded_now()?;
    let mut child = std::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_failed(tool, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    checked(tool, args, child.wait_with_output())
}

/// Whether published ports get the kernel fast path: yes unless
/// `SERVIN_PORT_FORWARD=userland`.
pub fn kernel_ports_wanted() -> bool {
    match std::env::var("SERVIN_PORT_FORWARD").as_deref() {
        Ok("userland") => false,
        Ok("" | "kernel") | Err(_) => true,
        Ok(other) => {
            tracing::warn!(
                "SERVIN_PORT_FORWARD={other:?} is not known (kernel or userland): using kernel"
            );
            true
        }
    }
}

/// Lets `bridge` route loopback addresses (its `route_localnet`), so that
/// connections to a published port on 127.0.0.1, rewritten to a container,
/// may leave through it (and their replies come back).
pub fn set_route_localnet(bridge: &str) -> Result<()> {
    let path = std::path::PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"));
    match std::fs::read_to_string(&path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(&path, "1\n").map_err(Error::io("write", &path)),
    }
}

/// Turns on IPv4 forwarding in the engine's network namespace (containers'
/// traffic leaves through the host only with it), and IPv6 forwarding
/// with `ipv6` (for a network with IPv6, as Docker does: a host
/// interface that takes its IPv6 default route from router
/// advertisements needs `accept_ra=2` to keep it).
pub fn ensure_ip_forward(ipv6: bool) -> Result<()> {
    let mut paths = vec!["/proc/sys/net/ipv4/ip_forward"];
    if ipv6 {
        paths.push("/proc/sys/net/ipv6/conf/all/forwarding");
    }
    for path in paths {
        let path = std::path::Path::new(path);
        match std::fs::read_to_string(path) {
            Ok(v) if v.trim() == "1" => {}
            _ => std::fs::write(path, "1\n").map_err(Error::io("write", path))?,
        }
    }
    Ok(())
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
            kernel_ports: false,
            dnat: Vec::new(),
            ipv6: None,
        }
    }

    fn rules6(internal: bool) -> Rules {
        Rules {
            ipv6: Some((
                Subnet6::parse("fd00:4::/64").unwrap(),
                "fd00:4::1".parse().unwrap(),
            )),
            ..rules(internal)
        }
    }

    #[test]
    fn ipv6_networks_get_the_same_rules_for_ipv6() {
        let normal = nft_script(&rules6(false));
        assert!(
            normal.contains("ip6 saddr fd00:4::/64 oifname != \"sv-0123456789\" masquerade"),
            "{normal}"
        );
        assert!(normal.contains("ip saddr 10.89.4.0/24 oifname != \"sv-0123456789\" masquerade"));
        assert!(!normal.contains("ip6 daddr"));
        let internal = nft_script(&rules6(true));
        assert!(!internal.contains("ip6 saddr"));
        assert!(internal.contains(
            "iifname \"sv-0123456789\" ip6 daddr != { fd00:4::1, fe80::/10, ff02::/16 } drop"
        ));
        assert!(!nft_script(&rules(false)).contains("ip6"));
        assert_eq!(ip6tables_script(&rules(false)), "");
        let script = ip6tables_script(&rules6(false));
        for line in [
            "*filter\n:SERVIN-0123456789-FWD - [0:0]\n:SERVIN-0123456789-IN - [0:0]\n",
            "-A SERVIN-0123456789-FWD -i sv-0123456789 -o sv-0123456789 -j ACCEPT",
            "-A SERVIN-0123456789-FWD -i sv-0123456789 -o sv-+ -j DROP",
            "-A SERVIN-0123456789-FWD -o sv-0123456789 -j DROP",
            "-A SERVIN-0123456789-FWD -i sv-0123456789 -j ACCEPT",
            "-A SERVIN-0123456789-NAT -s fd00:4::/64 ! -o sv-0123456789 -j MASQUERADE",
            "-I POSTROUTING 1 -j SERVIN-0123456789-NAT",
            "-I FORWARD 1 -j SERVIN-0123456789-FWD",
        ] {
            assert!(script.contains(line), "{line} missing from:\n{script}");
        }
        assert!(!script.contains("DNAT") && !script.contains("*raw"));
        let internal = ip6tables_script(&rules6(true));
        assert!(!internal.contains("MASQUERADE"));
        assert!(internal.contains(
            "-A SERVIN-0123456789-IN -i sv-0123456789 -d fd00:4::1/128 -j RETURN\n-A SERVIN-0123456789-IN -i sv-0123456789 -d fe80::/10 -j RETURN\n-A SERVIN-0123456789-IN -i sv-0123456789 -d ff02::/16 -j RETURN\n-A SERVIN-0123456789-IN -i sv-0123456789 -j DROP"
        ));
        assert!(internal.contains("-A SERVIN-0123456789-FWD -i sv-0123456789 -j DROP"));
    }

    fn ports() -> Vec<Dnat> {
        vec![
            Dnat {
                protocol: Protocol::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                target: Ipv4Addr::new(10, 89, 4, 2),
                target_port: 80,
            },
            Dnat {
                protocol: Protocol::Udp,
                host_ip: None,
                host_port: 5353,
                target: Ipv4Addr::new(10, 89, 4, 2),
                target_port: 53,
            },
        ]
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
        assert!(!internal.contains("ip saddr 10.89.4.0/24"));
        assert!(internal.contains("iifname \"sv-0123456789\" drop"));
        assert!(internal.contains("ip daddr != 10.89.4.1 drop"));
    }

    #[test]
    fn iptables_rules_replace_the_old_ones() {
        let saved = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:SERVIN-0123456789-FWD - [0:0]\n:SERVIN-9999999999-FWD - [0:0]\n-A FORWARD -j SERVIN-9999999999-FWD\n-A FORWARD -j SERVIN-0123456789-FWD\n-A SERVIN-0123456789-FWD -i sv-0123456789 -j ACCEPT\nCOMMIT\n*nat\n:SERVIN-0123456789-NAT - [0:0]\n-A POSTROUTING -j SERVIN-0123456789-NAT\nCOMMIT\n";
        let [filter, nat, raw] = iptables_remove_lines(saved, "0123456789");
        assert!(raw.is_empty());
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
        assert!(!internal.contains("-s 10.89.4.0/24"));
        assert!(
            internal.contains("-A SERVIN-0123456789-IN -i sv-0123456789 ! -d 10.89.4.1/32 -j DROP")
        );
    }

    #[test]
    fn nft_kernel_ports_live_in_maps_with_their_nat_rules() {
        let off = nft_script(&rules(false));
        assert!(!off.contains("map dnat_ports"), "{off}");
        // Always: loopback from the bridge dropped, forwarded ports let
        // through and masqueraded behind the gateway.
        assert!(off.contains(
            "type filter hook prerouting priority raw; policy accept;\n    iifname \"sv-0123456789\" ip daddr 127.0.0.0/8 drop"
        ));
        assert!(off.contains("oifname \"sv-0123456789\" ct status dnat masquerade"));
        let mut r = rules(false);
        r.kernel_ports = true;
        r.dnat = ports();
        let on = nft_script(&r);
        assert!(on.contains(
            "map dnat_ports {\n    type inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service\n    elements = { tcp . 127.0.0.1 . 8080 : 10.89.4.2 . 80 }\n  }"
        ), "{on}");
        assert!(
            on.contains("elements = { udp . 5353 : 10.89.4.2 . 53 }"),
            "{on}"
        );
        assert!(on.contains("type nat hook prerouting priority dstnat;"));
        assert!(on.contains("type nat hook output priority -100;"));
        assert!(on.contains(
            "fib daddr type local dnat ip to meta l4proto . ip daddr . th dport map @dnat_ports"
        ));
        assert!(
            on.contains("fib daddr type local dnat ip to meta l4proto . th dport map @dnat_any")
        );
        // The accepts come before the drops of the forward chain.
        let accept = on
            .find("oifname \"sv-0123456789\" ct status dnat accept")
            .unwrap();
        let from_other = on
            .find("iifname \"sv-0123456789\" oifname \"sv-*\" ct status dnat accept")
            .unwrap();
        let drop = on.find("oifname \"sv-0123456789\" drop").unwrap();
        let isolation = on
            .find("iifname \"sv-0123456789\" oifname \"sv-*\" drop")
            .unwrap();
        assert!(accept < drop && from_other < isolation);
        let mut internal = rules(true);
        internal.kernel_ports = true;
        let internal = nft_script(&internal);
        // Replies to the host's own connections to published ports come
        // in before the internal network's drop.
        assert!(internal.contains(
            "iifname \"sv-0123456789\" ct direction reply ct status dnat accept\n    iifname \"sv-0123456789\" ip daddr != 10.89.4.1 drop"
        ), "{internal}");
        assert!(internal.contains(
            "iifname \"sv-0123456789\" ct direction original ct status dnat ct original ip daddr != 10.89.4.1 drop"
        ));
        assert!(internal.contains("ct status dnat masquerade"));
        assert!(!internal.contains("ip saddr 10.89.4.0/24"));
        // Per container: one transaction, deletions first.
        let p = ports();
        assert_eq!(
            nft_dnat_script("0123456789", &p[..1], &p[1..]),
            "delete element inet servin-0123456789 dnat_any { udp . 5353 }\nadd element inet servin-0123456789 dnat_ports { tcp . 127.0.0.1 . 8080 : 10.89.4.2 . 80 }\n"
        );
        assert_eq!(nft_dnat_script("0123456789", &[], &[]), "");
        let flush = nft_flush_script(&["0123456789".to_string()]);
        assert!(flush.ends_with(
            "flush map inet servin-0123456789 dnat_ports\nflush map inet servin-0123456789 dnat_any\n"
        ));
    }

    #[test]
    fn iptables_kernel_ports_have_chains_of_their_own() {
        let mut r = rules(false);
        r.kernel_ports = true;
        r.dnat = ports();
        let script = iptables_script(&r);
        for line in [
            ":SERVIN-0123456789-DNAT - [0:0]",
            "-A SERVIN-0123456789-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.89.4.2:80",
            "-A SERVIN-0123456789-DNAT -p udp -m udp --dport 5353 -j DNAT --to-destination 10.89.4.2:53",
            "-I PREROUTING 1 -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT",
            "-I OUTPUT 1 -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT",
            "-A SERVIN-0123456789-NAT -o sv-0123456789 -m conntrack --ctstate DNAT -j MASQUERADE",
            "-A SERVIN-0123456789-FWD -o sv-0123456789 -m conntrack --ctstate DNAT -j ACCEPT",
            "*raw\n:SERVIN-0123456789-RAW - [0:0]\n-A SERVIN-0123456789-RAW -i sv-0123456789 -d 127.0.0.0/8 -j DROP\n-I PREROUTING 1 -j SERVIN-0123456789-RAW\nCOMMIT\n",
        ] {
            assert!(script.contains(line), "{line} missing from:\n{script}");
        }
        let accept = script
            .find("-A SERVIN-0123456789-FWD -i sv-0123456789 -o sv-+ -m conntrack --ctstate DNAT -j ACCEPT")
            .unwrap();
        assert!(
            accept
                < script
                    .find("-A SERVIN-0123456789-FWD -i sv-0123456789 -o sv-+ -j DROP")
                    .unwrap()
        );
        assert!(!iptables_script(&rules(false)).contains("-j DNAT"));
        let internal = iptables_script(&rules(true));
        assert!(internal.contains(
            "-A SERVIN-0123456789-FWD -i sv-0123456789 -m conntrack --ctstate DNAT --ctdir ORIGINAL ! --ctorigdst 10.89.4.1/32 -j DROP"
        ));
        let p = ports();
        assert_eq!(
            iptables_dnat_input("0123456789", &p[1..], &p[..1]),
            "*nat\n-D SERVIN-0123456789-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.89.4.2:80\n-A SERVIN-0123456789-DNAT -p udp -m udp --dport 5353 -j DNAT --to-destination 10.89.4.2:53\nCOMMIT\n"
        );
        // Removal and flushing find the new chains, in every table.
        let saved = "*raw\n:PREROUTING ACCEPT [0:0]\n:SERVIN-0123456789-RAW - [0:0]\n-A PREROUTING -j SERVIN-0123456789-RAW\nCOMMIT\n*nat\n:SERVIN-0123456789-DNAT - [0:0]\n:SERVIN-0123456789-NAT - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT\n-A OUTPUT -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT\nCOMMIT\n";
        let [filter, nat, raw] = iptables_remove_lines(saved, "0123456789");
        assert!(filter.is_empty());
        assert_eq!(
            nat,
            vec![
                "-D PREROUTING -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT",
                "-D OUTPUT -m addrtype --dst-type LOCAL -j SERVIN-0123456789-DNAT",
                "-F SERVIN-0123456789-DNAT",
                "-X SERVIN-0123456789-DNAT",
                "-F SERVIN-0123456789-NAT",
                "-X SERVIN-0123456789-NAT",
            ]
        );
        assert_eq!(
            raw,
            vec![
                "-D PREROUTING -j SERVIN-0123456789-RAW",
                "-F SERVIN-0123456789-RAW",
                "-X SERVIN-0123456789-RAW"
            ]
        );
        assert_eq!(
            iptables_flush_lines(saved, &["0123456789".to_string(), "9999999999".to_string()]),
            vec!["-F SERVIN-0123456789-DNAT"]
        );
    }
}
