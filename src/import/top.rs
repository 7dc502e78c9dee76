//! The top level: the project name, and the `volumes`, `networks` and
//! `secrets` sections.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Table, value};

use super::names::{is_dns_label, to_dns_label};
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

/// `volumes:` → `[volumes.NAME]`.
pub(crate) fn volumes(
    file: &str,
    v: Option<&Y>,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    let mut out = Vec::new();
    let Some(map) = section(file, "volumes", v)? else {
        return Ok(out);
    };
    for (name, def) in fields(map, "volumes", None, cx) {
        let path = format!("volumes.{name}");
        let key = names.volumes.add(&name, &name);
        renamed(cx, "volume", &path, &name, &key);
        let mut t = Table::new();
        if let Some(def) = body(file, &path, def)? {
            for (k, v) in fields(def, &path, None, cx) {
                let at = format!("{path}.{k}");
                match k.as_str() {
                    "external" => match v {
                        Y::Mapping(m) => {
                            t.insert("external", value(true));
                            if !m.is_empty() {
                                cx.warn(
                                    None,
                                    at,
                                    "the external volume's other name is not kept; servin uses the volume named like the entry".into(),
                                );
                            }
                        }
                        _ => match boolean(v) {
                            Some(true) => {
                                t.insert("external", value(true));
                            }
                            Some(false) => {}
                            None => cx.warn(None, at, format!("expected a boolean, found {}; dropped", kind(v))),
                        },
                    },
                    "labels" => {
                        if let Some(l) = key_values(v, &at, None, cx) {
                            t.insert("labels", value(l));
                        }
                    }
                    "name" => cx.warn(
                        None,
                        at,
                        format!("a custom volume name is not supported by servin; dropped (the volume is `{key}`)"),
                    ),
                    "driver" if scalar(v).as_deref() == Some("local") => {}
                    "driver" | "driver_opts" => cx.warn(
                        None,
                        at,
                        "volume drivers are not supported by servin; dropped (servin makes a local volume)".into(),
                    ),
                    _ => cx.warn(None, at, DROPPED.into()),
                }
            }
        }
        out.push((key, t));
    }
    Ok(out)
}

/// `networks:` → `[networks.NAME]`.
pub(crate) fn networks(
    file: &str,
    v: Option<&Y>,
    names: &mut AllNames,
    cx: &mut Cx,
) -> Result<Vec<(String, Table)>, ImportError> {
    let mut out = Vec::new();
    let Some(map) = section(file, "networks", v)? else {
        return Ok(out);
    };
    for (name, def) in fields(map, "networks", None, cx) {
        let path = format!("networks.{name}");
        let key = names.networks.add(&name, &name);
        renamed(cx, "network", &path, &name, &key);
        let mut t = Table::new();
        if let Some(def) = body(file, &path, def)? {
            for (k, v) in fields(def, &path, None, cx) {
                let at = format!("{path}.{k}");
                match k.as_str() {
                    "internal" => match boolean(v) {
                        Some(b) => {
                            t.insert("internal", value(b));
                        }
                        None => cx.warn(None, at, format!("expected a boolean, found {}; dropped", kind(v))),
                    },
                    "labels" => {
                        if let Some(l) = key_values(v, &at, None, cx) {
                            t.insert("labels", value(l));
                        }
                    }
                    "ipam" => ipam(v, &at, &mut t, cx),
                    "external" => cx.warn(
                        None,
                        at,
                        format!("external networks are not supported by servin; dropped (servin makes the network `{key}`)"),
                    ),
                    "driver" if scalar(v).as_deref() == Some("bridge") => {}
                    "driver" | "driver_opts" => cx.warn(
                        None,
                        at,
                        "network drivers are not supported by servin; dropped (servin makes a bridge network)".into(),
                    ),
                    "name" => cx.warn(
                        None,
                        at,
                        format!("a custom network name is not supported by servin; dropped (the network is `{key}`)"),
                    ),
                    _ => cx.warn(None, at, DROPPED.into()),
                }
            }
        }
        out.push((key, t));
    }
    Ok(out)
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
