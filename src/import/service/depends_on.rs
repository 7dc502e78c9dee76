//! `depends_on` (a list, or a mapping with conditions) → `depends_on`,
//! naming the servin containers.

use serde_yaml_ng::Value as Y;
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::{boolean, scalar};

impl Svc<'_> {
    /// The container a `depends_on` entry names.
    fn dependency(&mut self, name: &str, at: String) -> Option<String> {
        match self.names.containers.get(name) {
            Some(k) => Some(k.to_string()),
            None => {
                self.warn(at, format!("there is no service `{name}`; dropped"));
                None
            }
        }
    }

    pub(super) fn depends_on(&mut self, at: &str, v: &Y) {
        match v {
            Y::Sequence(items) => {
                let mut out: Vec<String> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let iat = format!("{at}.{i}");
                    if let Some(name) = self.string(iat.clone(), item)
                        && let Some(k) = self.dependency(&name, iat)
                        && !out.contains(&k)
                    {
                        out.push(k);
                    }
                }
                if !out.is_empty() {
                    self.set("depends_on", strings(&out));
                }
            }
            Y::Mapping(m) => {
                let mut out: Vec<(String, Value)> = Vec::new();
                for (name, body) in self.fields(m, at) {
                    let nat = format!("{at}.{name}");
                    let condition = self.condition(&nat, body);
                    if let Some(k) = self.dependency(&name, nat) {
                        out.push((k, string(condition)));
                    }
                }
                if !out.is_empty() {
                    self.set("depends_on", table(out));
                }
            }
            Y::Null => {}
            other => self.expected(at.to_string(), "a list or a mapping", other),
        }
    }

    fn condition(&mut self, at: &str, v: &Y) -> &'static str {
        let mut condition = "started";
        let Some(m) = self.mapping(at, v) else {
            return condition;
        };
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "condition" => match scalar(v).as_deref() {
                    Some("service_started") => condition = "started",
                    Some("service_healthy") => condition = "healthy",
                    Some("service_completed_successfully") => condition = "completed",
                    Some(other) => self.warn(
                        kat,
                        format!("`{other}` is not a Compose condition; servin waits for `started`"),
                    ),
                    None => self.expected(kat, "a string", v),
                },
                "restart" => {
                    if boolean(v) != Some(false) {
                        self.warn(
                            kat,
                            "restarting along with the dependency is not supported by servin; dropped",
                        );
                    }
                }
                "required" => {
                    if boolean(v) != Some(true) {
                        self.warn(
                            kat,
                            "optional dependencies are not supported by servin; dropped (the dependency is required)",
                        );
                    }
                }
                _ => self.dropped(kat),
            }
        }
        condition
    }
}
