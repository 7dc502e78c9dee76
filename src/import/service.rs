//! Services → `[containers.NAME]` (and `[images.NAME]` for builds).

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Item, Table, Value};

use super::names::{is_dns_label, to_dns_label};
use super::out::{array, string, strings, table};
use super::yaml::{boolean, entries, fields, integer, kind, scalar};
use super::{AllNames, Cx, ImportError};

const DROPPED: &str = "not supported by servin; dropped";

/// The order of the keys of a container in the output.
const ORDER: [&str; 34] = [
    "image",
    "command",
    "entrypoint",
    "env",
    "env_file",
    "workdir",
    "user",
    "hostname",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "resources",
    "replicas",
    "init",
    "stop_signal",
    "stop_timeout",
    "labels",
    "tty",
    "profiles",
    "secrets",
    "cap_add",
    "cap_drop",
    "privileged",
    "read_only",
    "extra_hosts",
    "sysctls",
    "ulimits",
    "shm_size",
    "workspace",
];

/// A service, named.
pub(crate) struct Service<'a> {
    /// The Compose service name.
    pub(crate) name: String,
    /// The servin container key.
    pub(crate) key: String,
    /// Whether `container_name` named the container.
    pub(crate) renamed: bool,
    pub(crate) body: Option<&'a Mapping>,
}

/// A converted service.
pub(crate) struct Converted {
    pub(crate) key: String,
    pub(crate) table: Table,
    /// The `[images.KEY]` entry, for builds and platforms.
    pub(crate) image: Option<Table>,
}

/// Names every service's container (first, so that references can be
/// rewritten whatever the order).
pub(crate) fn name_all<'a>(
    file: &str,
    services: &'a Mapping,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<Service<'a>>, ImportError> {
    let mut out = Vec::new();
    for (name, v) in fields(services, "services", None, cx) {
        let body = match v {
            Y::Null => None,
            Y::Mapping(m) => Some(m),
            other => {
                return Err(ImportError::NotAMappingAt {
                    file: file.to_string(),
                    key: format!("services.{name}"),
                    found: kind(other),
                });
            }
        };
        let container_name = body.and_then(|b| b.get("container_name")).and_then(scalar);
        let wanted = container_name.clone().unwrap_or_else(|| name.clone());
        let key = names.containers.add(&name, &wanted);
        if key != wanted {
            let (at, what) = match &container_name {
                Some(c) => (format!("services.{name}.container_name"), format!("`{c}`")),
                None => (
                    format!("services.{name}"),
                    format!("the service name `{name}`"),
                ),
            };
            let why = if is_dns_label(&wanted) {
                format!("{what} is taken by another container")
            } else {
                format!("{what} is not a DNS label (lowercase letters, digits and `-`)")
            };
            cx.warn(
                Some(&name),
                at,
                format!(
                    "{why}; the container is named `{key}` and references to it are rewritten (host names inside strings such as URLs are not)"
                ),
            );
        }
        out.push(Service {
            name,
            key,
            renamed: container_name.is_some(),
            body,
        });
    }
    if out.is_empty() {
        return Err(ImportError::NoServices {
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// Converts one service.
pub(crate) fn convert(s: &Service<'_>, names: &mut AllNames, cx: &mut Cx) -> Converted {
    let mut svc = Svc {
        cx,
        names,
        name: &s.name,
        key: &s.key,
        renamed: s.renamed,
        out: Table::new(),
        image: None,
        resources: IndexMap::new(),
        replicas: None,
        networks_done: false,
    };
    let empty = Mapping::new();
    let body = s.body.unwrap_or(&empty);
    svc.image_and_build(body);
    for (k, v) in fields(body, &format!("services.{}", s.name), Some(&s.name), svc.cx) {
        svc.key_value(&k, v);
    }
    svc.finish()
}

struct Svc<'a> {
    cx: &'a mut Cx,
    names: &'a mut AllNames,
    name: &'a str,
    key: &'a str,
    renamed: bool,
    out: Table,
    image: Option<Table>,
    /// `resources` keys, and where each came from.
    resources: IndexMap<&'static str, (Value, String)>,
    /// `replicas`, and where it came from.
    replicas: Option<String>,
    networks_done: bool,
}

impl Svc<'_> {
    fn at(&self, key: &str) -> String {
        format!("services.{}.{key}", self.name)
    }

    fn warn(&mut self, at: String, message: impl Into<String>) {
        self.cx.warn(Some(self.name), at, message.into());
    }

    fn dropped(&mut self, at: String) {
        self.warn(at, DROPPED);
    }

    fn expected(&mut self, at: String, what: &str, v: &Y) {
        self.warn(at, format!("expected {what}, found {}; dropped", kind(v)));
    }

    fn set(&mut self, key: &str, v: Value) {
        self.out.insert(key, Item::Value(v));
    }

    fn fields<'m>(&mut self, m: &'m Mapping, at: &str) -> Vec<(String, &'m Y)> {
        fields(m, at, Some(self.name), self.cx)
    }

    /// A string; numbers and booleans are spelled out.
    fn string(&mut self, at: String, v: &Y) -> Option<String> {
        let s = scalar(v);
        if s.is_none() {
            self.expected(at, "a string", v);
        }
        s
    }

    fn boolean(&mut self, at: String, v: &Y) -> Option<bool> {
        let b = boolean(v);
        if b.is_none() {
            self.expected(at, "a boolean", v);
        }
        b
    }

    fn integer(&mut self, at: String, v: &Y) -> Option<i64> {
        let n = integer(v);
        if n.is_none() {
            self.expected(at, "a whole number", v);
        }
        n
    }

    /// A list of strings (a single string counts as a list of one).
    fn string_list(&mut self, at: &str, v: &Y) -> Option<Vec<String>> {
        match v {
            Y::Sequence(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = self.string(format!("{at}.{i}"), item) {
                        out.push(s);
                    }
                }
                Some(out)
            }
            Y::Null => None,
            other => match scalar(other) {
                Some(s) => Some(vec![s]),
                None => {
                    self.expected(at.to_string(), "a list", other);
                    None
                }
            },
        }
    }

    /// A command: a string, or a list of arguments.
    fn command(&mut self, at: &str, v: &Y) -> Option<Value> {
        match v {
            Y::Null => None,
            Y::Sequence(_) => self.string_list(at, v).map(|l| strings(&l)),
            other => self.string(at.to_string(), other).map(|s| string(&s)),
        }
    }

    /// A duration such as `10s` or `1m30s`.
    fn duration(&mut self, at: String, v: &Y) -> Option<String> {
        match v {
            Y::String(s) => Some(s.clone()),
            other => {
                self.expected(at, "a duration such as `10s`", other);
                None
            }
        }
    }

    fn image_and_build(&mut self, body: &Mapping) {
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

    fn key_value(&mut self, k: &str, v: &Y) {
        let at = self.at(k);
        match k {
            "image" | "build" | "platform" => {}
            "container_name" => {
                if scalar(v).is_none() {
                    self.expected(at, "a string", v);
                }
            }
            "command" | "entrypoint" => {
                if let Some(c) = self.command(&at, v) {
                    self.set(k, c);
                }
            }
            "environment" => {
                if let Some(e) = self.environment(&at, v) {
                    self.set("env", e);
                }
            }
            "env_file" => self.env_file(&at, v),
            "working_dir" => {
                if let Some(s) = self.string(at, v) {
                    self.set("workdir", string(&s));
                }
            }
            "user" | "hostname" => {
                if let Some(s) = self.string(at, v) {
                    self.set(k, string(&s));
                }
            }
            "ports" => self.ports(&at, v),
            "expose" => self.expose(&at, v),
            "volumes" => self.volumes(&at, v),
            "tmpfs" => match v {
                Y::Sequence(_) => {
                    if let Some(l) = self.string_list(&at, v) {
                        self.set("tmpfs", strings(&l));
                    }
                }
                other => {
                    if let Some(s) = self.string(at, other) {
                        self.set("tmpfs", string(&s));
                    }
                }
            },
            "networks" => self.networks(&at, v),
            "depends_on" => self.depends_on(&at, v),
            "healthcheck" => self.healthcheck(&at, v),
            "restart" => {
                let policy = match v {
                    Y::Bool(false) => Some("no".to_string()),
                    other => self.string(at, other),
                };
                if let Some(p) = policy {
                    self.set("restart", string(&p));
                }
            }
            "deploy" => self.deploy(&at, v),
            "mem_limit" => {
                if let Some(s) = self.size(&at, v) {
                    self.resource("memory", s, at);
                }
            }
            "cpus" => {
                if let Some(c) = self.cpus(&at, v) {
                    self.resource("cpus", c, at);
                }
            }
            "pids_limit" => {
                if let Some(n) = self.integer(at.clone(), v) {
                    if n > 0 {
                        self.resource("pids", Value::from(n), at);
                    } else {
                        self.warn(at, format!("`{n}` means no limit; dropped"));
                    }
                }
            }
            "scale" => {
                if let Some(n) = self.integer(at.clone(), v) {
                    self.replicas(n, at);
                }
            }
            "labels" | "sysctls" => {
                if let Some(l) = key_values(v, &at, Some(self.name), self.cx) {
                    self.set(k, l);
                }
            }
            "profiles" | "cap_add" | "cap_drop" => {
                if let Some(l) = self.string_list(&at, v) {
                    self.set(k, strings(&l));
                }
            }
            "secrets" => self.secrets(&at, v),
            "privileged" | "read_only" | "init" | "tty" => {
                if let Some(b) = self.boolean(at, v) {
                    self.set(k, Value::from(b));
                }
            }
            "stop_signal" => match v {
                Y::Number(_) => {
                    if let Some(n) = self.integer(at, v) {
                        self.set(k, Value::from(n));
                    }
                }
                other => {
                    if let Some(s) = self.string(at, other) {
                        self.set(k, string(&s));
                    }
                }
            },
            "stop_grace_period" => {
                if let Some(d) = self.duration(at, v) {
                    self.set("stop_timeout", string(&d));
                }
            }
            "extra_hosts" => self.extra_hosts(&at, v),
            "ulimits" => self.ulimits(&at, v),
            "shm_size" => {
                if let Some(s) = self.size(&at, v) {
                    self.set("shm_size", s);
                }
            }
            "develop" => self.develop(&at, v),
            "links" | "external_links" => self.warn(
                at,
                "not supported by servin; dropped (containers on the same network reach each other by name; add `depends_on` for start order)",
            ),
            "network_mode" => self.warn(
                at,
                "not supported by servin; dropped (the container joins its networks, `default` if none)",
            ),
            "extends" => self.warn(
                at,
                "not supported by servin; dropped (copy the keys of the extended service into this one)",
            ),
            "configs" => self.warn(
                at,
                "not supported by servin; dropped (mount the files with `volumes` instead)",
            ),
            _ => self.dropped(at),
        }
    }

    fn environment(&mut self, at: &str, v: &Y) -> Option<Value> {
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

    fn env_file(&mut self, at: &str, v: &Y) {
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

    fn ports(&mut self, at: &str, v: &Y) {
        let Y::Sequence(items) = v else {
            if !matches!(v, Y::Null) {
                self.expected(at.to_string(), "a list", v);
            }
            return;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iat = format!("{at}.{i}");
            match item {
                Y::Mapping(m) => {
                    if let Some(p) = self.long_port(&iat, m) {
                        out.push(p);
                    }
                }
                other => {
                    if let Some(s) = self.string(iat, other) {
                        out.push(string(&s));
                    }
                }
            }
        }
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

    fn expose(&mut self, at: &str, v: &Y) {
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

    /// A named volume used by this service: its servin name; declared
    /// (with a warning) when the file does not declare it.
    fn volume_name(&mut self, name: &str, at: &str) -> String {
        if let Some(known) = self.names.volumes.get(name) {
            return known.to_string();
        }
        let key = self.names.volumes.add(name, name);
        self.names.implicit_volumes.push(key.clone());
        let renamed = if key == name {
            String::new()
        } else {
            format!(" as `{key}`")
        };
        self.warn(
            at.to_string(),
            format!(
                "the volume `{name}` is not declared in the top-level `volumes` (Compose would reject this); declared it{renamed}"
            ),
        );
        key
    }

    fn volumes(&mut self, at: &str, v: &Y) {
        let Y::Sequence(items) = v else {
            if !matches!(v, Y::Null) {
                self.expected(at.to_string(), "a list", v);
            }
            return;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iat = format!("{at}.{i}");
            match item {
                Y::Mapping(m) => {
                    if let Some(t) = self.long_volume(&iat, m) {
                        out.push(t);
                    }
                }
                other => {
                    if let Some(s) = self.string(iat.clone(), other) {
                        out.push(string(&self.short_volume(&iat, &s)));
                    }
                }
            }
        }
        self.set("volumes", array(out));
    }

    /// `SOURCE:TARGET[:MODE]`: the volume name rewritten, modes servin
    /// does not know dropped.
    fn short_volume(&mut self, at: &str, s: &str) -> String {
        let Some((source, rest)) = s.split_once(':') else {
            return s.to_string();
        };
        let is_path = source.is_empty()
            || source.starts_with(['.', '/', '~', '$'])
            || (source.len() == 1 && rest.starts_with('\\'));
        let source = if is_path {
            source.to_string()
        } else {
            self.volume_name(source, at)
        };
        let (target, mode) = match rest.rsplit_once(':') {
            Some((t, m)) if !m.starts_with('/') => (t, Some(m)),
            _ => (rest, None),
        };
        let mut kept = Vec::new();
        if let Some(mode) = mode {
            for m in mode.split(',') {
                match m {
                    "ro" => kept.push(m),
                    "rw" | "" => {}
                    other => self.warn(
                        at.to_string(),
                        format!("the mount option `{other}` is not supported by servin; dropped"),
                    ),
                }
            }
        }
        let mut out = format!("{source}:{target}");
        if !kept.is_empty() {
            out.push(':');
            out.push_str(&kept.join(","));
        }
        out
    }

    fn long_volume(&mut self, at: &str, m: &Mapping) -> Option<Value> {
        let mut kind_ = None;
        let mut source = None;
        let mut target = None;
        let mut read_only = None;
        let mut size = None;
        let mut mode = None;
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "type" => kind_ = self.string(kat, v),
                "source" => source = self.string(kat, v),
                "target" => target = self.string(kat, v),
                "read_only" => read_only = self.boolean(kat, v),
                "tmpfs" => {
                    let Y::Mapping(t) = v else {
                        self.expected(kat, "a mapping", v);
                        continue;
                    };
                    for (tk, tv) in self.fields(t, &kat) {
                        let tat = format!("{kat}.{tk}");
                        match tk.as_str() {
                            "size" => size = self.size(&tat, tv),
                            "mode" => mode = self.mode(&tat, tv),
                            _ => self.dropped(tat),
                        }
                    }
                }
                "bind" | "volume" | "image" => {
                    let Y::Mapping(t) = v else {
                        self.expected(kat, "a mapping", v);
                        continue;
                    };
                    for (tk, _) in self.fields(t, &kat) {
                        self.dropped(format!("{kat}.{tk}"));
                    }
                }
                "consistency" => self.dropped(kat),
                _ => self.dropped(kat),
            }
        }
        let Some(target) = target else {
            self.warn(at.to_string(), "a mount without a `target`; dropped");
            return None;
        };
        let kind_ = kind_.unwrap_or_else(|| "volume".to_string());
        match kind_.as_str() {
            "volume" | "bind" | "tmpfs" => {}
            other => {
                self.warn(
                    at.to_string(),
                    format!("`{other}` mounts are not supported by servin; dropped"),
                );
                return None;
            }
        }
        let source = match (kind_.as_str(), source) {
            ("volume", Some(s)) => Some(self.volume_name(&s, &format!("{at}.source"))),
            ("tmpfs", Some(_)) => {
                self.warn(
                    format!("{at}.source"),
                    "a tmpfs mount has no source; dropped",
                );
                None
            }
            (_, s) => s,
        };
        if kind_ != "tmpfs" && (size.is_some() || mode.is_some()) {
            self.warn(
                format!("{at}.tmpfs"),
                "applies to tmpfs mounts only; dropped",
            );
            size = None;
            mode = None;
        }
        let mut entries = vec![("type", string(&kind_))];
        if let Some(s) = source {
            entries.push(("source", string(&s)));
        }
        entries.push(("target", string(&target)));
        if read_only == Some(true) {
            entries.push(("read_only", Value::from(true)));
        }
        if let Some(s) = size {
            entries.push(("size", s));
        }
        if let Some(m) = mode {
            entries.push(("mode", m));
        }
        Some(table(entries))
    }

    /// A tmpfs mode as octal digits: `1777` as written, or the octal
    /// spelling of a number YAML read as octal (`0o1777`).
    fn mode(&mut self, at: &str, v: &Y) -> Option<Value> {
        let digits = match v {
            Y::Number(n) => {
                let n = n.as_u64()?;
                let written = n.to_string();
                if written.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    written
                } else {
                    format!("{n:o}")
                }
            }
            Y::String(s) => {
                let s = s.trim();
                let s = s.strip_prefix("0o").unwrap_or(s);
                s.trim_start_matches('0').to_string()
            }
            other => {
                self.expected(at.to_string(), "a file mode such as 1777", other);
                return None;
            }
        };
        let digits = if digits.is_empty() {
            "0".to_string()
        } else {
            digits
        };
        match (u32::from_str_radix(&digits, 8), digits.parse::<i64>()) {
            (Ok(m), Ok(n)) if m <= 0o7777 => Some(Value::from(n)),
            _ => {
                self.warn(
                    at.to_string(),
                    format!("`{digits}` is not a file mode; dropped"),
                );
                None
            }
        }
    }

    /// A size: bytes, or a string such as `512m`.
    fn size(&mut self, at: &str, v: &Y) -> Option<Value> {
        match v {
            Y::Number(n) => match n.as_i64() {
                Some(b) if b >= 0 => Some(Value::from(b)),
                _ => {
                    self.expected(at.to_string(), "a size such as `512m`", v);
                    None
                }
            },
            Y::String(s) => Some(size_value(s)),
            other => {
                self.expected(at.to_string(), "a size such as `512m`", other);
                None
            }
        }
    }

    fn cpus(&mut self, at: &str, v: &Y) -> Option<Value> {
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

    fn resource(&mut self, key: &'static str, v: Value, at: String) {
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

    fn replicas(&mut self, n: i64, at: String) {
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

    /// A network used by this service: its servin name; declared (with a
    /// warning) when the file does not declare it. `default` needs none.
    fn network_name(&mut self, name: &str, at: &str) -> String {
        if let Some(known) = self.names.networks.get(name) {
            return known.to_string();
        }
        if name == "default" {
            return name.to_string();
        }
        let key = self.names.networks.add(name, name);
        self.names.implicit_networks.push(key.clone());
        let renamed = if key == name {
            String::new()
        } else {
            format!(" as `{key}`")
        };
        self.warn(
            at.to_string(),
            format!(
                "the network `{name}` is not declared in the top-level `networks` (Compose would reject this); declared it{renamed}"
            ),
        );
        key
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

    fn networks(&mut self, at: &str, v: &Y) {
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
        let m = match v {
            Y::Null => return out,
            Y::Mapping(m) => m,
            other => {
                self.expected(at.to_string(), "a mapping", other);
                return out;
            }
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

    fn write_networks(&mut self, mut nets: IndexMap<String, Vec<String>>) {
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

    fn depends_on(&mut self, at: &str, v: &Y) {
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
        let m = match v {
            Y::Null => return condition,
            Y::Mapping(m) => m,
            other => {
                self.expected(at.to_string(), "a mapping", other);
                return condition;
            }
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

    fn healthcheck(&mut self, at: &str, v: &Y) {
        let m = match v {
            Y::Null => return,
            Y::Mapping(m) => m,
            other => return self.expected(at.to_string(), "a mapping", other),
        };
        let fields = self.fields(m, at);
        if fields
            .iter()
            .any(|(k, v)| k == "disable" && boolean(v) == Some(true))
        {
            self.warn(
                format!("{at}.disable"),
                "servin cannot turn off the image's healthcheck; dropped",
            );
            return;
        }
        let mut cmd = None;
        let mut rest: Vec<(&str, Value)> = Vec::new();
        for (k, v) in fields {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "test" => match v {
                    Y::Sequence(items)
                        if items.first().and_then(scalar).as_deref() == Some("NONE") =>
                    {
                        self.warn(
                            kat,
                            "servin cannot turn off the image's healthcheck; dropped",
                        );
                        return;
                    }
                    Y::Sequence(_) => cmd = self.string_list(&kat, v).map(|l| strings(&l)),
                    other => cmd = self.string(kat, other).map(|s| string(&s)),
                },
                "interval" | "timeout" | "start_period" => {
                    if let Some(d) = self.duration(kat, v) {
                        rest.push((
                            if k == "interval" {
                                "interval"
                            } else if k == "timeout" {
                                "timeout"
                            } else {
                                "start_period"
                            },
                            string(&d),
                        ));
                    }
                }
                "retries" => {
                    if let Some(n) = self.integer(kat.clone(), v) {
                        if n >= 1 && n <= i64::from(u32::MAX) {
                            rest.push(("retries", Value::from(n)));
                        } else {
                            self.warn(kat, format!("`{n}` retries is not at least 1; dropped"));
                        }
                    }
                }
                "disable" => {}
                _ => self.dropped(kat),
            }
        }
        let Some(cmd) = cmd else {
            self.warn(
                at.to_string(),
                "a healthcheck without a `test` (tuning the image's) is not supported by servin; dropped",
            );
            return;
        };
        let mut entries = vec![("cmd", cmd)];
        entries.extend(rest);
        self.set("healthcheck", table(entries));
    }

    fn deploy(&mut self, at: &str, v: &Y) {
        let m = match v {
            Y::Null => return,
            Y::Mapping(m) => m,
            other => return self.expected(at.to_string(), "a mapping", other),
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

    fn secrets(&mut self, at: &str, v: &Y) {
        let Y::Sequence(items) = v else {
            if !matches!(v, Y::Null) {
                self.expected(at.to_string(), "a list", v);
            }
            return;
        };
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iat = format!("{at}.{i}");
            let name = match item {
                Y::Mapping(m) => {
                    let mut source = None;
                    let mut target = None;
                    for (k, v) in self.fields(m, &iat) {
                        let kat = format!("{iat}.{k}");
                        match k.as_str() {
                            "source" => source = self.string(kat, v),
                            "target" => target = self.string(kat.clone(), v).map(|t| (t, kat)),
                            _ => self.dropped(kat),
                        }
                    }
                    if let (Some(s), Some((t, kat))) = (&source, target)
                        && &t != s
                    {
                        self.warn(
                            kat,
                            format!("servin mounts secrets at `/run/secrets/NAME`; the target `{t}` is dropped"),
                        );
                    }
                    if source.is_none() {
                        self.warn(iat.clone(), "a secret without a `source`; dropped");
                    }
                    source
                }
                other => self.string(iat.clone(), other),
            };
            let Some(name) = name else { continue };
            match self.names.secrets.get(&name) {
                Some(k) => {
                    if !out.iter().any(|o| o == k) {
                        out.push(k.to_string());
                    }
                }
                None => self.warn(
                    iat,
                    format!("the secret `{name}` is not declared in the top-level `secrets` with a file or a variable; dropped"),
                ),
            }
        }
        if !out.is_empty() {
            self.set("secrets", strings(&out));
        }
    }

    fn extra_hosts(&mut self, at: &str, v: &Y) {
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

    fn ulimits(&mut self, at: &str, v: &Y) {
        let m = match v {
            Y::Null => return,
            Y::Mapping(m) => m,
            other => return self.expected(at.to_string(), "a mapping", other),
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

    fn develop(&mut self, at: &str, v: &Y) {
        let m = match v {
            Y::Null => return,
            Y::Mapping(m) => m,
            other => return self.expected(at.to_string(), "a mapping", other),
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

    fn finish(mut self) -> Converted {
        if !self.networks_done {
            self.write_networks(IndexMap::new());
        }
        if !self.resources.is_empty() {
            let mut entries = Vec::new();
            for key in ["memory", "cpus", "pids"] {
                if let Some((v, _)) = self.resources.swap_remove(key) {
                    entries.push((key, v));
                }
            }
            self.set("resources", table(entries));
        }
        let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
        self.out
            .sort_values_by(|a, _, b, _| rank(a.get()).cmp(&rank(b.get())));
        Converted {
            key: self.key.to_string(),
            table: self.out,
            image: self.image,
        }
    }
}

/// Key/values (labels, sysctls, ...): a mapping becomes a table of strings,
/// a list of `K=V` stays a list.
pub(crate) fn key_values(v: &Y, at: &str, service: Option<&str>, cx: &mut Cx) -> Option<Value> {
    match v {
        Y::Mapping(m) => {
            let mut out = Vec::new();
            for (k, v) in entries(m, at, service, cx) {
                match v {
                    Y::Null => out.push((k, string(""))),
                    other => match scalar(other) {
                        Some(s) => out.push((k, string(&s))),
                        None => cx.warn(
                            service,
                            format!("{at}.{k}"),
                            format!("expected a string, found {}; dropped", kind(other)),
                        ),
                    },
                }
            }
            Some(table(out))
        }
        Y::Sequence(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match scalar(item) {
                    Some(s) => out.push(s),
                    None => cx.warn(
                        service,
                        format!("{at}.{i}"),
                        format!("expected a string, found {}; dropped", kind(item)),
                    ),
                }
            }
            Some(strings(&out))
        }
        Y::Null => None,
        other => {
            cx.warn(
                service,
                at.to_string(),
                format!(
                    "expected a mapping or a list, found {}; dropped",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// A size string in servin's spelling: `512M` → `512m`, `1gb` → `1g`,
/// plain bytes → a number.
fn size_value(s: &str) -> Value {
    let t = s.trim();
    if t.contains('$') {
        return string(t);
    }
    let lower = t.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let unit = match unit.trim() {
        "" | "b" => "",
        "k" | "kb" => "k",
        "m" | "mb" => "m",
        "g" | "gb" => "g",
        "t" | "tb" => "t",
        _ => return string(t),
    };
    if number.is_empty() {
        return string(t);
    }
    if unit.is_empty() {
        return match number.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => string(t),
        };
    }
    string(&format!("{number}{unit}"))
}
