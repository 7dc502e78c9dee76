//! `image`, `build` and `platform` → the container's `image`, and an
//! `[images.NAME]` entry named like the container for builds and platforms.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Item, Table, Value};

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::entries;

impl Svc<'_> {
    pub(super) fn image_and_build(&mut self, body: &Mapping) {
        let image = body
            .get("image")
            .and_then(|v| self.string(self.at("image"), v));
        let build = body.get("build").and_then(|v| self.build(v));
        let platform = body
            .get("platform")
            .and_then(|v| self.string(self.at("platform"), v));
        let mut entry = Table::new();
        match (build, image) {
            (Some(build), image) => {
                entry.insert("build", Item::Value(build));
                if let Some(tag) = image {
                    self.warn(
                        self.at("image"),
                        format!(
                            "the tag `{tag}` for the built image is not kept; servin builds the image `{}`",
                            self.key
                        ),
                    );
                }
            }
            (None, Some(image)) if platform.is_some() => {
                entry.insert("ref", toml_edit::value(image));
            }
            (None, Some(image)) => {
                self.set("image", string(&image));
                return;
            }
            (None, None) => {
                if !body.contains_key("build") {
                    self.warn(
                        format!("services.{}", self.name),
                        "has neither `image` nor `build`; servin needs one (add `image`)",
                    );
                }
                return;
            }
        }
        if let Some(p) = platform {
            entry.insert("platform", toml_edit::value(p));
        }
        self.image = Some(entry);
        let key = self.key.to_string();
        self.set("image", string(&key));
    }

    /// `build:` → the `build` of an `[images]` entry.
    fn build(&mut self, v: &Y) -> Option<Value> {
        let at = self.at("build");
        let m = match v {
            Y::Mapping(m) => m,
            other => {
                let context = self.string(at, other)?;
                self.remote_context(&context);
                return Some(string(&context));
            }
        };
        let mut context = None;
        let mut rest: Vec<(&str, Value)> = Vec::new();
        for (k, v) in self.fields(m, &at) {
            let at = format!("{at}.{k}");
            match k.as_str() {
                "context" => context = self.string(at, v),
                "dockerfile" => {
                    if let Some(s) = self.string(at, v) {
                        rest.push(("dockerfile", string(&s)));
                    }
                }
                "target" => {
                    if let Some(s) = self.string(at, v) {
                        rest.push(("target", string(&s)));
                    }
                }
                "args" => {
                    if let Some(a) = self.build_args(&at, v) {
                        rest.push(("args", a));
                    }
                }
                "dockerfile_inline" => self.warn(
                    at,
                    "inline Dockerfiles are not supported by servin; dropped (write it to a file and name it in `dockerfile`)",
                ),
                _ => self.dropped(at),
            }
        }
        let context = context.unwrap_or_else(|| ".".to_string());
        self.remote_context(&context);
        if rest.is_empty() {
            return Some(string(&context));
        }
        let mut entries = vec![("context", string(&context))];
        entries.extend(rest);
        Some(table(entries))
    }

    /// Compose builds from Git URLs and tarballs too; servin from folders.
    fn remote_context(&mut self, context: &str) {
        if context.contains("://") || context.starts_with("git@") {
            self.warn(
                self.at("build"),
                format!("servin builds from a local folder, not from `{context}`; kept as written (clone it and point `context` at the folder)"),
            );
        }
    }

    fn build_args(&mut self, at: &str, v: &Y) -> Option<Value> {
        const BARE: &str = "a build argument without a value (taken from the environment) is not supported by servin; dropped";
        match v {
            Y::Mapping(m) => {
                let mut out = Vec::new();
                for (k, v) in entries(m, at, Some(self.name), self.cx) {
                    let kat = format!("{at}.{k}");
                    match v {
                        Y::Null => self.warn(kat, BARE),
                        other => {
                            if let Some(s) = self.string(kat, other) {
                                out.push((k, string(&s)));
                            }
                        }
                    }
                }
                Some(table(out))
            }
            Y::Sequence(_) => {
                let items = self.string_list(at, v)?;
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    if item.contains('=') {
                        out.push(item);
                    } else {
                        self.warn(format!("{at}.{i}"), BARE);
                    }
                }
                Some(strings(&out))
            }
            other => {
                self.expected(at.to_string(), "a mapping or a list", other);
                None
            }
        }
    }
}
