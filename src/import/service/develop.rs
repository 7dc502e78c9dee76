//! `develop.watch` → `workspace`: what servin syncs into the container and
//! what follows a change.
//!
//! servin has one workspace per container with one follow-up, so the first
//! `sync`, `sync+restart` or `sync+exec` entry becomes the workspace
//! (`mode = "sync"`, `on_change` `none`, `restart` or `{ exec = [...] }`);
//! a `rebuild` or `restart` entry on the same path as that sync sets its
//! `on_change` (when the sync had none of its own). Entries that need a
//! second workspace or follow-up are dropped with a warning naming them.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::scalar;

/// A sync entry read from the file.
struct Sync {
    source: String,
    target: String,
    ignore: Vec<String>,
    /// `none`, `restart`, `rebuild`, or the exec command.
    on_change: OnChange,
}

enum OnChange {
    Named(&'static str),
    Exec(Vec<String>),
}

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
            let mut sync: Option<Sync> = None;
            // (at, action, path) of rebuild and restart entries.
            let mut others: Vec<(String, String, Option<String>)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let iat = format!("{kat}.{i}");
                let Y::Mapping(w) = item else {
                    self.expected(iat, "a mapping", item);
                    continue;
                };
                let action = w.get("action").and_then(scalar).unwrap_or_default();
                match action.as_str() {
                    "sync" | "sync+restart" | "sync+exec" if sync.is_none() => {
                        sync = self.sync_entry(&iat, w, &action);
                    }
                    "sync" | "sync+restart" | "sync+exec" => self.warn(
                        iat,
                        "servin has one workspace per container, made from the first sync entry; dropped",
                    ),
                    "rebuild" | "restart" => {
                        let path = w.get("path").and_then(scalar);
                        for (k, _) in self.fields(w, &iat) {
                            if !matches!(k.as_str(), "action" | "path" | "ignore") {
                                self.dropped(format!("{iat}.{k}"));
                            }
                        }
                        others.push((iat, action.clone(), path));
                    }
                    "" => self.warn(iat, "a watch entry without an `action`; dropped"),
                    other => self.warn(
                        iat,
                        format!("the watch action `{other}` is not supported by servin; dropped"),
                    ),
                }
            }
            for (oat, action, path) in others {
                let follow = if action == "rebuild" {
                    "rebuild"
                } else {
                    "restart"
                };
                match &mut sync {
                    Some(s)
                        if path.as_deref() == Some(s.source.as_str())
                            && matches!(s.on_change, OnChange::Named("none")) =>
                    {
                        s.on_change = OnChange::Named(follow);
                    }
                    Some(_) => self.warn(
                        oat,
                        format!(
                            "servin runs one follow-up per workspace, on changes to the synced folder; this `{action}` of another path (or after another follow-up) is dropped"
                        ),
                    ),
                    None => self.warn(
                        oat,
                        format!(
                            "a `{action}` entry without a sync entry has no `target` for a servin workspace; dropped (write `workspace = {{ source, target, on_change = \"{follow}\" }}` by hand)"
                        ),
                    ),
                }
            }
            if let Some(s) = sync {
                self.set("workspace", workspace(s));
            }
        }
    }

    fn sync_entry(&mut self, at: &str, w: &Mapping, action: &str) -> Option<Sync> {
        let mut source = None;
        let mut target = None;
        let mut ignore = Vec::new();
        let mut exec = None;
        for (k, v) in self.fields(w, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "action" => {}
                "path" => source = self.string(kat, v),
                "target" => target = self.string(kat, v),
                "ignore" => ignore = self.string_list(&kat, v).unwrap_or_default(),
                "initial_sync" => {
                    if self.boolean(kat.clone(), v) == Some(false) {
                        self.warn(
                            kat,
                            "servin always makes the initial copy before the container starts; `initial_sync: false` is dropped",
                        );
                    }
                }
                "exec" if action == "sync+exec" => exec = self.exec(&kat, v),
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
        let on_change = match action {
            "sync+restart" => OnChange::Named("restart"),
            "sync+exec" => match exec {
                Some(cmd) => OnChange::Exec(cmd),
                None => {
                    self.warn(
                        at.to_string(),
                        "a `sync+exec` entry needs `exec.command`; synced without a follow-up",
                    );
                    OnChange::Named("none")
                }
            },
            _ => OnChange::Named("none"),
        };
        Some(Sync {
            source,
            target,
            ignore,
            on_change,
        })
    }

    /// `exec: { command, ... }`: the command as a list (a string is split
    /// as a shell would split its words).
    fn exec(&mut self, at: &str, v: &Y) -> Option<Vec<String>> {
        let m = self.mapping(at, v)?;
        let mut cmd = None;
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "command" => {
                    cmd = match v {
                        Y::Sequence(_) => self.string_list(&kat, v),
                        other => self.string(kat.clone(), other).and_then(|s| {
                            match shell_words::split(&s) {
                                Ok(words) => Some(words),
                                Err(e) => {
                                    self.warn(kat, format!("the command cannot be split: {e}; dropped"));
                                    None
                                }
                            }
                        }),
                    };
                }
                _ => self.warn(
                    kat,
                    "servin runs the follow-up command as the container's user, in its working folder, with its environment; dropped",
                ),
            }
        }
        cmd.filter(|c| !c.is_empty())
    }
}

fn workspace(s: Sync) -> Value {
    let mut entries = vec![
        ("source", string(&s.source)),
        ("target", string(&s.target)),
        ("mode", string("sync")),
    ];
    if !s.ignore.is_empty() {
        entries.push(("ignore", strings(&s.ignore)));
    }
    let on_change = match &s.on_change {
        OnChange::Named(n) => string(n),
        OnChange::Exec(cmd) => table(vec![("exec", strings(cmd))]),
    };
    entries.push(("on_change", on_change));
    table(entries)
}
