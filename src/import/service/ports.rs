//! `ports` (short `HOST:CONTAINER/PROTO` or long mappings) and `expose`.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::Value;

use super::Svc;
use crate::import::out::{array, string, table};
use crate::import::yaml::scalar;

impl Svc<'_> {
    pub(super) fn ports(&mut self, at: &str, v: &Y) {
        let Some(items) = self.short_or_long(at, v, |_, _, s| Some(string(&s)), Self::long_port)
        else {
            return;
        };
        let out = items.into_iter().map(|(_, p)| p).collect();
        self.set("ports", array(out));
    }

    fn long_port(&mut self, at: &str, m: &Mapping) -> Option<Value> {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut protocol = None;
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "target" => target = self.string(kat, v),
                "published" => published = self.string(kat, v),
                "host_ip" => host_ip = self.string(kat, v),
                "protocol" => protocol = self.string(kat, v).map(|p| p.to_ascii_lowercase()),
                "mode" => match scalar(v).as_deref() {
                    Some("ingress") => {}
                    Some("host") => self.warn(
                        kat,
                        "host-mode publishing is not supported by servin; dropped (ports are published on the host as usual)",
                    ),
                    _ => self.dropped(kat),
                },
                "name" | "app_protocol" => self.dropped(kat),
                _ => self.dropped(kat),
            }
        }
        let Some(target) = target else {
            self.warn(at.to_string(), "a port without a `target`; dropped");
            return None;
        };
        let port = |s: &str| {
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=65535).contains(n))
        };
        let target_n = port(&target);
        // A range of host ports for one container port means "any free
        // one of them" in Compose; servin publishes a given port.
        if target_n.is_some()
            && let Some(range) = &published
            && let Some((first, _)) = range.split_once('-')
            && port(first).is_some()
        {
            let first = first.trim().to_string();
            self.warn(
                format!("{at}.published"),
                format!("servin publishes one host port, not one of a range; `{range}` becomes `{first}`"),
            );
            published = Some(first);
        }
        let published_n = published.as_deref().map(port);
        match (target_n, published_n) {
            (Some(t), None | Some(Some(_))) => {
                let mut entries = vec![("target", Value::from(t))];
                if let Some(Some(p)) = published_n {
                    entries.push(("published", Value::from(p)));
                }
                if let Some(ip) = host_ip {
                    entries.push(("host_ip", string(&ip)));
                }
                if let Some(p) = protocol {
                    entries.push(("protocol", string(&p)));
                }
                Some(table(entries))
            }
            _ => {
                // Ranges or variables: the short form says the same.
                let mut s = String::new();
                if let Some(ip) = host_ip {
                    if ip.contains(':') && !ip.starts_with('[') {
                        s.push_str(&format!("[{ip}]:"));
                    } else {
                        s.push_str(&format!("{ip}:"));
                    }
                }
                if let Some(p) = published {
                    s.push_str(&format!("{p}:"));
                }
                s.push_str(&target);
                if let Some(p) = protocol {
                    s.push_str(&format!("/{p}"));
                }
                Some(string(&s))
            }
        }
    }

    pub(super) fn expose(&mut self, at: &str, v: &Y) {
        let Y::Sequence(items) = v else {
            if !matches!(v, Y::Null) {
                self.expected(at.to_string(), "a list", v);
            }
            return;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Y::Number(n) if n.as_i64().is_some() => {
                    out.push(Value::from(n.as_i64().unwrap_or_default()))
                }
                other => {
                    if let Some(s) = self.string(format!("{at}.{i}"), other) {
                        out.push(string(&s));
                    }
                }
            }
        }
        self.set("expose", array(out));
    }
}
