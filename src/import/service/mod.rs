//! Services → `[containers.NAME]` (and `[images.NAME]` for builds).
//!
//! [`convert`] walks a service's keys; each Compose area has its file:
//!
//! - `build`: `image`, `build`, `platform`.
//! - `environment`: `environment`, `env_file`.
//! - `ports`: `ports`, `expose`.
//! - `volumes`: `volumes` and the named volumes they use.
//! - `networks`: `networks`, `extra_hosts`.
//! - `depends_on`: `depends_on`.
//! - `healthcheck`: `healthcheck`.
//! - `resources`: `deploy`, `mem_limit`, `cpus`, `pids_limit`, `scale`,
//!   `ulimits`.
//! - `secrets`: `secrets`.
//! - `develop`: `develop.watch` → `workspace`.
//!
//! The keys that map one to one (`user`, `labels`, `cap_add`, `tty`, ...)
//! are converted here. `read` holds the typed readers they all share, and
//! `short_or_long` the list whose items are a short string or a long
//! mapping (ports, volumes, secrets).

mod build;
mod depends_on;
mod develop;
mod environment;
mod healthcheck;
mod networks;
mod ports;
mod read;
mod resources;
mod secrets;
mod short_or_long;
mod volumes;

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Table, Value};

use super::names::is_dns_label;
use super::out::{string, strings, table};
use super::yaml::{fields, kind, scalar};
use super::{AllNames, Cx, ImportError};

pub(crate) use read::key_values;

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

/// What a service may use that the file should declare at the top level.
#[derive(Clone, Copy)]
enum Used {
    Volume,
    Network,
}

impl Svc<'_> {
    /// A named volume or a network used by this service: its servin name;
    /// declared (with a warning) when the file does not declare it.
    fn used_name(&mut self, used: Used, name: &str, at: &str) -> String {
        let names = &mut *self.names;
        let (what, known, implicit) = match used {
            Used::Volume => ("volume", &mut names.volumes, &mut names.implicit_volumes),
            Used::Network => ("network", &mut names.networks, &mut names.implicit_networks),
        };
        if let Some(key) = known.get(name) {
            return key.to_string();
        }
        let key = known.add(name, name);
        implicit.push(key.clone());
        let renamed = if key == name {
            String::new()
        } else {
            format!(" as `{key}`")
        };
        self.warn(
            at.to_string(),
            format!(
                "the {what} `{name}` is not declared in the top-level `{what}s` (Compose would reject this); declared it{renamed}"
            ),
        );
        key
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
