//! `networks` (a list, or a mapping with aliases) → `networks`, with the
//! alias that keeps the Compose service name resolvable; and
//! `extra_hosts`.

use indexmap::IndexMap;
use serde_yaml_ng::Value as Y;
use toml_edit::Value;

use super::{Svc, Used};
use crate::import::names::{is_dns_label, to_dns_label};
use crate::import::out::{string, strings, table};
use crate::import::yaml::{entries, scalar};

impl Svc<'_> {
    /// A network used by this service: its servin name; declared (with a
    /// warning) when the file does not declare it. `default` needs none.
    fn network_name(&mut self, name: &str, at: &str) -> String {
        if name == "default" && self.names.networks.get(name).is_none() {
            return name.to_string();
        }
        self.used_name(Used::Network, name, at)
    }

    /// The alias that keeps the Compose service name resolvable when the
    /// container is named otherwise.
    fn service_alias(&mut self) -> Option<String> {
        let alias = to_dns_label(self.name);
        if !self.renamed || alias == self.key {
            return None;
        }
        if self.names.containers.iter().any(|(_, k)| k == alias) {
            self.warn(
                format!("services.{}", self.name),
                format!("the name `{alias}` is another container's, so it is not kept as an alias"),
            );
            return None;
        }
        Some(alias)
    }

    pub(super) fn networks(&mut self, at: &str, v: &Y) {
        self.networks_done = true;
        let mut nets: IndexMap<String, Vec<String>> = IndexMap::new();
        match v {
            Y::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let iat = format!("{at}.{i}");
                    if let Some(name) = self.string(iat.clone(), item) {
                        let key = self.network_name(&name, &iat);
                        nets.entry(key).or_default();
                    }
                }
            }
            Y::Mapping(m) => {
                for (name, body) in self.fields(m, at) {
                    let nat = format!("{at}.{name}");
                    let key = self.network_name(&name, &nat);
                    let aliases = self.network_options(&nat, body);
                    nets.entry(key).or_default().extend(aliases);
                }
            }
            Y::Null => {}
            other => {
                self.expected(at.to_string(), "a list or a mapping", other);
            }
        }
        self.write_networks(nets);
    }

    /// The aliases of one network entry; the rest is reported.
    fn network_options(&mut self, at: &str, v: &Y) -> Vec<String> {
        let mut out = Vec::new();
        let Some(m) = self.mapping(at, v) else {
            return out;
        };
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "aliases" => {
                    for (i, a) in self.string_list(&kat, v).unwrap_or_default().into_iter().enumerate() {
                        if is_dns_label(&a) {
                            out.push(a);
                        } else {
                            self.warn(
                                format!("{kat}.{i}"),
                                format!("`{a}` is not a DNS label (lowercase letters, digits and `-`), which servin aliases are; dropped"),
                            );
                        }
                    }
                }
                "ipv4_address" | "ipv6_address" => self.warn(
                    kat,
                    "fixed addresses are not supported by servin; dropped (reach the container by its name)",
                ),
                _ => self.dropped(kat),
            }
        }
        out
    }

    pub(super) fn write_networks(&mut self, mut nets: IndexMap<String, Vec<String>>) {
        if let Some(alias) = self.service_alias() {
            if nets.is_empty() {
                nets.insert("default".to_string(), Vec::new());
            }
            for aliases in nets.values_mut() {
                aliases.insert(0, alias.clone());
            }
        }
        for aliases in nets.values_mut() {
            let mut seen = std::collections::HashSet::new();
            aliases.retain(|a| seen.insert(a.clone()));
        }
        if nets.is_empty() {
            return;
        }
        if nets.values().all(Vec::is_empty) {
            let names: Vec<&String> = nets.keys().collect();
            self.set("networks", strings(&names));
            return;
        }
        let entries = nets
            .into_iter()
            .map(|(name, aliases)| {
                let body = if aliases.is_empty() {
                    table(Vec::<(&str, Value)>::new())
                } else {
                    table(vec![("aliases", strings(&aliases))])
                };
                (name, body)
            })
            .collect();
        self.set("networks", table(entries));
    }

    pub(super) fn extra_hosts(&mut self, at: &str, v: &Y) {
        match v {
            Y::Sequence(_) => {
                let list = self.string_list(at, v).unwrap_or_default();
                let mut out = Vec::new();
                for (i, h) in list.into_iter().enumerate() {
                    let (host, ip) = match h.split_once('=') {
                        Some((host, ip)) => (host.to_string(), ip.to_string()),
                        None => match h.split_once(':') {
                            Some((host, ip)) => (host.to_string(), ip.to_string()),
                            None => (h.clone(), String::new()),
                        },
                    };
                    if ip == "host-gateway" {
                        self.host_gateway(format!("{at}.{i}"), &host);
                    } else {
                        out.push(format!("{host}:{ip}"));
                    }
                }
                self.set("extra_hosts", strings(&out));
            }
            Y::Mapping(m) => {
                let mut out = Vec::new();
                for (host, ip) in entries(m, at, Some(self.name), self.cx) {
                    let hat = format!("{at}.{host}");
                    let ip = match ip {
                        Y::Sequence(ips) => {
                            if ips.len() > 1 {
                                self.warn(
                                    hat.clone(),
                                    "servin takes one address a host; only the first is kept",
                                );
                            }
                            ips.first().and_then(scalar)
                        }
                        other => self.string(hat.clone(), other),
                    };
                    match ip {
                        Some(ip) if ip == "host-gateway" => self.host_gateway(hat, &host),
                        Some(ip) => out.push((host, string(&ip))),
                        None => self.warn(hat, "no address; dropped"),
                    }
                }
                self.set("extra_hosts", table(out));
            }
            Y::Null => {}
            other => self.expected(at.to_string(), "a list or a mapping", other),
        }
    }

    fn host_gateway(&mut self, at: String, host: &str) {
        self.warn(
            at,
            format!("`host-gateway` (the host's address) is not supported by servin; the entry for `{host}` is dropped"),
        );
    }
}
