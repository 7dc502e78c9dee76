//! The host network objects a test engine made, found again from its log
//! and state: bridges, veths, nftables tables and iptables and ip6tables
//! chains; removed
//! on drop and checked by the network tests.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

/// What an engine made on the host.
#[derive(Debug, Default, Clone)]
pub struct NetObjects {
    /// Bridges `sv-<10 hex>`.
    pub bridges: BTreeSet<String>,
    /// Host-side veths `sv<12 hex>`.
    pub veths: BTreeSet<String>,
}

fn hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl NetObjects {
    /// Every bridge and veth named in `text` (an engine log or a record).
    pub fn scan(&mut self, text: &str) {
        let text = strip_ansi(text);
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if let Some(tag) = word.strip_prefix("sv-") {
                if tag.len() == 10 && hex(tag) {
                    self.bridges.insert(word.to_string());
                }
            } else if let Some(tag) = word.strip_prefix("sv")
                && tag.len() == 12
                && hex(tag)
            {
                self.veths.insert(word.to_string());
            }
        }
    }

    /// From an engine's log and its `networks/*/network.json`.
    pub fn of_engine(log: &str, root: &Path) -> Self {
        let mut o = Self::default();
        o.scan(log);
        if let Ok(dirs) = std::fs::read_dir(root.join("networks")) {
            for d in dirs.flatten() {
                o.scan(&std::fs::read_to_string(d.path().join("network.json")).unwrap_or_default());
            }
        }
        o
    }

    fn tags(&self) -> Vec<String> {
        self.bridges
            .iter()
            .filter_map(|b| b.strip_prefix("sv-"))
            .map(String::from)
            .collect()
    }

    /// What of it still exists on the host.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for name in self.bridges.iter().chain(&self.veths) {
            if Path::new("/sys/class/net").join(name).exists() {
                out.push(format!("link {name}"));
            }
        }
        let tables = output("nft", &["list", "tables"]);
        let saved = output("iptables-save", &[]);
        let saved6 = output("ip6tables-save", &[]);
        for tag in self.tags() {
            if tables.contains(&format!("servin-{tag}")) {
                out.push(format!("nft table servin-{tag}"));
            }
            if saved.contains(&format!("SERVIN-{tag}-")) {
                out.push(format!("iptables chains SERVIN-{tag}-*"));
            }
            if saved6.contains(&format!("SERVIN-{tag}-")) {
                out.push(format!("ip6tables chains SERVIN-{tag}-*"));
            }
        }
        out
    }

    /// What of it still exists once the kernel had up to 10 seconds to
    /// finish (a container's veths go with its namespace, asynchronously).
    pub fn leftovers_settled(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() || std::time::Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Removes all of it (best effort).
    pub fn cleanup(&self) {
        for name in self.veths.iter().chain(&self.bridges) {
            if Path::new("/sys/class/net").join(name).exists() {
                quiet("ip", &["link", "del", name]);
            }
        }
        for tag in self.tags() {
            quiet(
                "nft",
                &["delete", "table", "inet", &format!("servin-{tag}")],
            );
            remove_chains("iptables", &tag);
            remove_chains("ip6tables", &tag);
        }
    }
}

/// Removes the chains `SERVIN-<tag>-*` and the jumps to them with `tool`
/// (`iptables` or `ip6tables`), best effort.
fn remove_chains(tool: &str, tag: &str) {
    let saved = output(&format!("{tool}-save"), &[]);
    let mut table = String::new();
    let mut deletes = Vec::new();
    let mut chains = Vec::new();
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
        } else if let Some(rule) = line.strip_prefix("-A ") {
            if rule.contains(&format!("-j SERVIN-{tag}-"))
                && !rule.starts_with(&format!("SERVIN-{tag}-"))
            {
                deletes.push((table.clone(), rule.to_string()));
            }
        } else if let Some(chain) = line.strip_prefix(':') {
            let name = chain.split(' ').next().unwrap_or_default();
            if name.starts_with(&format!("SERVIN-{tag}-")) {
                chains.push((table.clone(), name.to_string()));
            }
        }
    }
    for (t, rule) in deletes {
        let mut args = vec!["-w", "-t", t.as_str(), "-D"];
        args.extend(rule.split(' '));
        quiet(tool, &args);
    }
    for (t, c) in chains {
        quiet(tool, &["-w", "-t", &t, "-F", &c]);
        quiet(tool, &["-w", "-t", &t, "-X", &c]);
    }
}

/// `text` without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn output(tool: &str, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn quiet(tool: &str, args: &[&str]) {
    let _ = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
