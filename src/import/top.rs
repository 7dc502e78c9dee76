//! The top level: the project name, and the `volumes`, `networks` and
//! `secrets` sections.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Table, value};

use super::names::{Names, is_dns_label, to_dns_label};
use super::service::key_values;
use super::yaml::{boolean, fields, kind, scalar};
use super::{AllNames, Cx, ImportError};

const DROPPED: &str = "not supported by servin; dropped";

/// The project name, made a DNS label.
pub(crate) fn project_name(v: &Y, cx: &mut Cx) -> Option<String> {
    let Some(name) = scalar(v) else {
        cx.warn(
            None,
            "name".into(),
            format!("expected a string, found {}; dropped", kind(v)),
        );
        return None;
    };
    if is_dns_label(&name) || name.contains('$') {
        return Some(name);
    }
    let fixed = to_dns_label(&name);
    cx.warn(
        None,
        "name".into(),
        format!(
            "`{name}` is not a DNS label (lowercase letters, digits and `-`); renamed `{fixed}`"
        ),
    );
    Some(fixed)
}

/// The entries of a top-level section, or an error if it is not a mapping.
fn section<'a>(
    file: &str,
    key: &str,
    v: Option<&'a Y>,
) -> Result<Option<&'a Mapping>, ImportError> {
    match v {
        None | Some(Y::Null) => Ok(None),
        Some(Y::Mapping(m)) => Ok(Some(m)),
        Some(other) => Err(ImportError::NotAMappingAt {
            file: file.to_string(),
            key: key.to_string(),
            found: kind(other),
        }),
    }
}

/// The body of one entry: a mapping, or nothing (an empty entry).
fn body<'a>(file: &str, path: &str, v: &'a Y) -> Result<Option<&'a Mapping>, ImportError> {
    match v {
        Y::Null => Ok(None),
        Y::Mapping(m) => Ok(Some(m)),
        other => Err(ImportError::NotAMappingAt {
            file: file.to_string(),
            key: path.to_string(),
            found: kind(other),
        }),
    }
}

fn renamed(cx: &mut Cx, what: &str, path: &str, from: &str, to: &str) {
    if from != to {
        cx.warn(
            None,
            path.to_string(),
            format!("`{from}` is not a valid {what} name in servin; renamed `{to}`"),
        );
    }
}

/// What tells the `volumes` and `networks` sections apart.
struct Resource {
    /// The top-level key: `volumes`.
    section: &'static str,
    /// One entry in messages: `volume`.
    what: &'static str,
    /// The one driver servin has, accepted silently: `local`.
    driver: &'static str,
    /// Reads a key of this kind of resource only, `(key, value, path, the
    /// entry's servin name, its table)`; false for a key it does not know.
    own: fn(&str, &Y, &str, &str, &mut Table, &mut Cx) -> bool,
}

const VOLUMES: Resource = Resource {
    section: "volumes",
    what: "volume",
    driver: "local",
    own: volume_key,
};

const NETWORKS: Resource = Resource {
    section: "networks",
    what: "network",
    driver: "bridge",
    own: network_key,
};

/// `volumes:` → `[volumes.NAME]`.
pub(crate) fn volumes(
    file: &str,
    v: Option<&Y>,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    resources(file, v, &VOLUMES, &mut names.volumes, cx)
}

/// `networks:` → `[networks.NAME]`.
pub(crate) fn networks(
    file: &str,
    v: Option<&Y>,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    resources(file, v, &NETWORKS, &mut names.networks, cx)
}

/// A section of named resources (`volumes`, `networks`) → `[SECTION.NAME]`:
/// each name made valid, each entry's keys read by `res.own` or as the keys
/// both kinds share (`labels`, `name`, `driver`, `driver_opts`), or dropped.
fn resources(
    file: &str,
    v: Option<&Y>,
    res: &Resource,
    names: &mut Names,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    let Resource {
        section: sec,
        what,
        driver,
        own,
    } = res;
    let mut out = Vec::new();
    let Some(map) = section(file, sec, v)? else {
        return Ok(out);
    };
    for (name, def) in fields(map, sec, None, cx) {
        let path = format!("{sec}.{name}");
        let key = names.add(&name, &name);
        renamed(cx, what, &path, &name, &key);
        let mut t = Table::new();
        if let Some(def) = body(file, &path, def)? {
            for (k, v) in fields(def, &path, None, cx) {
                let at = format!("{path}.{k}");
                if own(&k, v, &at, &key, &mut t, cx) {
                    continue;
                }
                match k.as_str() {
                    "labels" => {
                        if let Some(l) = key_values(v, &at, None, cx) {
                            t.insert("labels", value(l));
                        }
                    }
                    "name" => cx.warn(
                        None,
                        at,
                        format!(
                            "a custom {what} name is not supported by servin; dropped (the {what} is `{key}`)"
                        ),
                    ),
                    "driver" if scalar(v).as_deref() == Some(*driver) => {}
                    "driver" | "driver_opts" => cx.warn(
                        None,
                        at,
                        format!(
                            "{what} drivers are not supported by servin; dropped (servin makes a {driver} {what})"
                        ),
                    ),
                    _ => cx.warn(None, at, DROPPED.into()),
                }
            }
        }
        out.push((key, t));
    }
    Ok(out)
}

/// `volumes.NAME.external`: true, or a mapping (whose other name is not kept).
fn volume_key(k: &str, v: &Y, at: &str, _key: &str, t: &mut Table, cx: &mut Cx) -> bool {
    if k != "external" {
        return false;
    }
    match v {
        Y::Mapping(m) => {
            t.insert("external", value(true));
            if !m.is_empty() {
                cx.warn(
                    None,
                    at.into(),
                    "the external volume's other name is not kept; servin uses the volume named like the entry".into(),
                );
            }
        }
        _ => match boolean(v) {
            Some(true) => {
                t.insert("external", value(true));
            }
            Some(false) => {}
            None => cx.warn(
                None,
                at.into(),
                format!("expected a boolean, found {}; dropped", kind(v)),
            ),
        },
    }
    true
}

/// `networks.NAME.internal` and `.ipam`; `.external` is refused.
fn network_key(k: &str, v: &Y, at: &str, key: &str, t: &mut Table, cx: &mut Cx) -> bool {
    match k {
        "internal" => match boolean(v) {
            Some(b) => {
                t.insert("internal", value(b));
            }
            None => cx.warn(
                None,
                at.into(),
                format!("expected a boolean, found {}; dropped", kind(v)),
            ),
        },
        "ipam" => ipam(v, at, t, cx),
        "external" => cx.warn(
            None,
            at.into(),
            format!(
                "external networks are not supported by servin; dropped (servin makes the network `{key}`)"
            ),
        ),
        _ => return false,
    }
    true
}

/// `ipam.config[0].subnet` and `.gateway`.
fn ipam(v: &Y, path: &str, t: &mut Table, cx: &mut Cx) {
    let Y::Mapping(m) = v else {
        cx.warn(
            None,
            path.into(),
            format!("expected a mapping, found {}; dropped", kind(v)),
        );
        return;
    };
    for (k, v) in fields(m, path, None, cx) {
        let at = format!("{path}.{k}");
        match k.as_str() {
            "driver" if scalar(v).as_deref() == Some("default") => {}
            "config" => {
                let Y::Sequence(items) = v else {
                    cx.warn(
                        None,
                        at,
                        format!("expected a list, found {}; dropped", kind(v)),
                    );
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{at}.{i}");
                    if i > 0 {
                        cx.warn(
                            None,
                            at,
                            "servin networks have one subnet; only the first `config` entry is kept".into(),
                        );
                        continue;
                    }
                    let Y::Mapping(c) = item else {
                        cx.warn(
                            None,
                            at,
                            format!("expected a mapping, found {}; dropped", kind(item)),
                        );
                        continue;
                    };
                    for (ck, cv) in fields(c, &at, None, cx) {
                        let cat = format!("{at}.{ck}");
                        match (ck.as_str(), scalar(cv)) {
                            ("subnet" | "gateway", Some(s)) => {
                                t.insert(&ck, value(s));
                            }
                            ("subnet" | "gateway", None) => {
                                cx.warn(
                                    None,
                                    cat,
                                    format!("expected a string, found {}; dropped", kind(cv)),
                                );
                            }
                            _ => cx.warn(None, cat, DROPPED.into()),
                        }
                    }
                }
            }
            _ => cx.warn(None, at, DROPPED.into()),
        }
    }
}

/// `secrets:` → `[secrets.NAME]`. Secrets without a file or a variable
/// are left out, and so are references to them.
pub(crate) fn secrets(
    file: &str,
    v: Option<&Y>,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    let mut out = Vec::new();
    let Some(map) = section(file, "secrets", v)? else {
        return Ok(out);
    };
    for (name, def) in fields(map, "secrets", None, cx) {
        let path = format!("secrets.{name}");
        let mut source: Option<(&str, String)> = None;
        if let Some(def) = body(file, &path, def)? {
            for (k, v) in fields(def, &path, None, cx) {
                let at = format!("{path}.{k}");
                match k.as_str() {
                    "file" | "environment" => match scalar(v) {
                        Some(s) if source.is_none() => {
                            source = Some((if k == "file" { "file" } else { "environment" }, s));
                        }
                        Some(_) => cx.warn(
                            None,
                            at,
                            "a secret has one source (`file` or `environment`); this one is dropped".into(),
                        ),
                        None => cx.warn(None, at, format!("expected a string, found {}; dropped", kind(v))),
                    },
                    "external" => cx.warn(
                        None,
                        at,
                        "external secrets are not supported by servin; dropped (give it a `file` or an `environment` variable)".into(),
                    ),
                    "content" => cx.warn(
                        None,
                        at,
                        "inline secret content is not supported by servin; dropped (put it in a file)".into(),
                    ),
                    _ => cx.warn(None, at, DROPPED.into()),
                }
            }
        }
        let Some((kind_key, s)) = source else {
            cx.warn(
                None,
                path,
                "has no `file` or `environment`, which servin needs; the secret and its uses are dropped".into(),
            );
            continue;
        };
        let key = names.secrets.add(&name, &name);
        renamed(cx, "secret", &path, &name, &key);
        let mut t = Table::new();
        t.insert(kind_key, value(s));
        out.push((key, t));
    }
    Ok(out)
}
