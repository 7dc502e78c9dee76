//! `deploy` (replicas and resource limits), `mem_limit`, `cpus`,
//! `pids_limit`, `scale` → `resources` and `replicas`; and `ulimits`.

use serde_yaml_ng::Value as Y;
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, table};
use crate::import::yaml::{entries, integer};

impl Svc<'_> {
    pub(super) fn cpus(&mut self, at: &str, v: &Y) -> Option<Value> {
        match v {
            Y::Number(n) => n.as_f64().map(Value::from),
            Y::String(s) if s.contains('$') => Some(string(s)),
            Y::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Some(Value::from(f)),
                _ => {
                    self.expected(at.to_string(), "a number of CPUs", v);
                    None
                }
            },
            other => {
                self.expected(at.to_string(), "a number of CPUs", other);
                None
            }
        }
    }

    pub(super) fn resource(&mut self, key: &'static str, v: Value, at: String) {
        if let Some((_, first)) = self.resources.get(key) {
            let first = first.clone();
            self.warn(
                at,
                format!("the limit is set already by `{first}`; dropped"),
            );
            return;
        }
        self.resources.insert(key, (v, at));
    }

    pub(super) fn replicas(&mut self, n: i64, at: String) {
        if let Some(first) = &self.replicas {
            let first = first.clone();
            self.warn(
                at,
                format!("the number is set already by `{first}`; dropped"),
            );
            return;
        }
        if !(0..=1000).contains(&n) {
            self.warn(
                at,
                format!("`{n}` replicas is outside servin's 0 to 1000; dropped"),
            );
            return;
        }
        self.replicas = Some(at);
        self.set("replicas", Value::from(n));
    }

    pub(super) fn deploy(&mut self, at: &str, v: &Y) {
        let Some(m) = self.mapping(at, v) else {
            return;
        };
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "replicas" => {
                    if let Some(n) = self.integer(kat.clone(), v) {
                        self.replicas(n, kat);
                    }
                }
                "resources" => {
                    let Y::Mapping(r) = v else {
                        self.expected(kat, "a mapping", v);
                        continue;
                    };
                    for (rk, rv) in self.fields(r, &kat) {
                        let rat = format!("{kat}.{rk}");
                        if rk != "limits" {
                            self.warn(rat, "servin sets limits only; dropped");
                            continue;
                        }
                        let Y::Mapping(l) = rv else {
                            self.expected(rat, "a mapping", rv);
                            continue;
                        };
                        for (lk, lv) in self.fields(l, &rat) {
                            let lat = format!("{rat}.{lk}");
                            match lk.as_str() {
                                "memory" => {
                                    if let Some(s) = self.size(&lat, lv) {
                                        self.resource("memory", s, lat);
                                    }
                                }
                                "cpus" => {
                                    if let Some(c) = self.cpus(&lat, lv) {
                                        self.resource("cpus", c, lat);
                                    }
                                }
                                "pids" => {
                                    if let Some(n) = self.integer(lat.clone(), lv) {
                                        self.resource("pids", Value::from(n), lat);
                                    }
                                }
                                _ => self.dropped(lat),
                            }
                        }
                    }
                }
                _ => self.dropped(kat),
            }
        }
    }

    pub(super) fn ulimits(&mut self, at: &str, v: &Y) {
        let Some(m) = self.mapping(at, v) else {
            return;
        };
        let mut out = Vec::new();
        for (name, v) in entries(m, at, Some(self.name), self.cx) {
            let nat = format!("{at}.{name}");
            match v {
                Y::Mapping(pair) => {
                    let soft = pair.get("soft").and_then(integer);
                    let hard = pair.get("hard").and_then(integer);
                    match (soft, hard) {
                        (Some(s), Some(h)) => out.push((
                            name,
                            table(vec![("soft", Value::from(s)), ("hard", Value::from(h))]),
                        )),
                        _ => self.warn(nat, "expected whole numbers `soft` and `hard`; dropped"),
                    }
                }
                other => {
                    if let Some(n) = self.integer(nat, other) {
                        out.push((name, Value::from(n)));
                    }
                }
            }
        }
        self.set("ulimits", table(out));
    }
}
