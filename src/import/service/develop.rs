//! `develop.watch` → `workspace`: what servin syncs into the container.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::scalar;

impl Svc<'_> {
    pub(super) fn develop(&mut self, at: &str, v: &Y) {
        let Some(m) = self.mapping(at, v) else {
            return;
        };
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            if k != "watch" {
                self.dropped(kat);
                continue;
            }
            let Y::Sequence(items) = v else {
                self.expected(kat, "a list", v);
                continue;
            };
            let mut chosen = false;
            for (i, item) in items.iter().enumerate() {
                let iat = format!("{kat}.{i}");
                let Y::Mapping(w) = item else {
                    self.expected(iat, "a mapping", item);
                    continue;
                };
                let action = w.get("action").and_then(scalar).unwrap_or_default();
                match action.as_str() {
                    "sync" | "sync+restart" | "sync+exec" if !chosen => {
                        if let Some(ws) = self.workspace(&iat, w, &action) {
                            self.set("workspace", ws);
                            chosen = true;
                        }
                    }
                    "sync" | "sync+restart" | "sync+exec" => self.warn(
                        iat,
                        "servin has one workspace per container, made from the first sync entry; dropped",
                    ),
                    "rebuild" => self.warn(
                        iat,
                        "rebuilding on change is not converted; dropped (servin can do it with `workspace = { source, target, on_change = \"rebuild\" }`)",
                    ),
                    "" => self.warn(iat, "a watch entry without an `action`; dropped"),
                    other => self.warn(iat, format!("the watch action `{other}` is not supported by servin; dropped")),
                }
            }
        }
    }

    fn workspace(&mut self, at: &str, w: &Mapping, action: &str) -> Option<Value> {
        let mut source = None;
        let mut target = None;
        let mut ignore = None;
        for (k, v) in self.fields(w, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "action" => {}
                "path" => source = self.string(kat, v),
                "target" => target = self.string(kat, v),
                "ignore" => ignore = self.string_list(&kat, v),
                "exec" => self.warn(
                    kat,
                    "running a command after a sync is not supported by servin; dropped (the workspace syncs without restarting)",
                ),
                _ => self.dropped(kat),
            }
        }
        let (Some(source), Some(target)) = (source, target) else {
            self.warn(
                at.to_string(),
                "a sync entry needs a `path` and a `target`; dropped",
            );
            return None;
        };
        let mut entries = vec![
            ("source", string(&source)),
            ("target", string(&target)),
            ("mode", string("sync")),
        ];
        if let Some(ignore) = ignore
            && !ignore.is_empty()
        {
            entries.push(("ignore", strings(&ignore)));
        }
        let on_change = if action == "sync+restart" {
            "restart"
        } else {
            "none"
        };
        entries.push(("on_change", string(on_change)));
        Some(table(entries))
    }
}
