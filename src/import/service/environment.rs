//! `environment` and `env_file` → `env` and `env_file`.

use serde_yaml_ng::Value as Y;
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::{entries, scalar};

impl Svc<'_> {
    pub(super) fn environment(&mut self, at: &str, v: &Y) -> Option<Value> {
        match v {
            Y::Mapping(m) => {
                let mut pairs: Vec<(String, Option<String>)> = Vec::new();
                for (k, v) in entries(m, at, Some(self.name), self.cx) {
                    match v {
                        Y::Null => pairs.push((k, None)),
                        other => {
                            if let Some(s) = self.string(format!("{at}.{k}"), other) {
                                pairs.push((k, Some(s)));
                            }
                        }
                    }
                }
                if pairs.iter().all(|(_, v)| v.is_some()) {
                    Some(table(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k, string(&v.unwrap_or_default())))
                            .collect(),
                    ))
                } else {
                    let list: Vec<String> = pairs
                        .into_iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("{k}={v}"),
                            None => k,
                        })
                        .collect();
                    Some(strings(&list))
                }
            }
            Y::Sequence(_) => self.string_list(at, v).map(|l| strings(&l)),
            Y::Null => None,
            other => {
                self.expected(at.to_string(), "a mapping or a list", other);
                None
            }
        }
    }

    pub(super) fn env_file(&mut self, at: &str, v: &Y) {
        let items: Vec<(String, &Y)> = match v {
            Y::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{at}.{i}"), v))
                .collect(),
            Y::Null => return,
            other => {
                if let Some(s) = self.string(at.to_string(), other) {
                    self.set("env_file", string(&s));
                }
                return;
            }
        };
        let mut paths = Vec::new();
        for (iat, item) in items {
            let Y::Mapping(m) = item else {
                if let Some(s) = self.string(iat, item) {
                    paths.push(s);
                }
                continue;
            };
            let mut path = None;
            for (k, v) in self.fields(m, &iat) {
                let kat = format!("{iat}.{k}");
                match k.as_str() {
                    "path" => path = self.string(kat, v),
                    "required" => {
                        if self.boolean(kat.clone(), v) == Some(false) {
                            self.warn(
                                kat,
                                "optional env files are not supported by servin; the file is required (create it, even empty)",
                            );
                        }
                    }
                    "format" if scalar(v).as_deref() == Some("raw") => self.warn(
                        kat,
                        "the raw format is not supported by servin; the file is read as `K=V` lines with interpolation",
                    ),
                    _ => self.dropped(kat),
                }
            }
            match path {
                Some(p) => paths.push(p),
                None => self.warn(iat, "an env file without a `path`; dropped"),
            }
        }
        self.set("env_file", strings(&paths));
    }
}
