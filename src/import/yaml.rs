//! Reading the Compose YAML: scalars as strings, mapping keys, and what a
//! value is called in messages.

use serde_yaml_ng::{Mapping, Value as Y};

use super::Cx;

/// A scalar as the string Compose would see: strings as they are, numbers
/// and booleans spelled out. None for null, lists, mappings and tags.
pub(crate) fn scalar(v: &Y) -> Option<String> {
    match v {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        Y::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number: an integer, or a string holding one.
pub(crate) fn integer(v: &Y) -> Option<i64> {
    match v {
        Y::Number(n) => n.as_i64(),
        Y::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean: `true`/`false`, or a string spelling one.
pub(crate) fn boolean(v: &Y) -> Option<bool> {
    match v {
        Y::Bool(b) => Some(*b),
        Y::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// What a value is, for messages: "a string", "a list", ...
pub(crate) fn kind(v: &Y) -> &'static str {
    match v {
        Y::Null => "nothing (null)",
        Y::Bool(_) => "a boolean",
        Y::Number(_) => "a number",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a list",
        Y::Mapping(_) => "a mapping",
        Y::Tagged(_) => "a tagged value",
    }
}

/// A mapping key as a string; None for keys that are not scalars.
pub(crate) fn key(k: &Y) -> Option<String> {
    scalar(k)
}

/// The entries of a Compose mapping with string keys, leaving out the
/// extension fields (`x-...`), which Compose ignores. A key that is not a
/// scalar is reported under `path` and left out.
pub(crate) fn fields<'a>(
    map: &'a Mapping,
    path: &str,
    service: Option<&str>,
    cx: &mut Cx,
) -> Vec<(String, &'a Y)> {
    let mut out = entries(map, path, service, cx);
    out.retain(|(k, _)| !k.starts_with("x-"));
    out
}

/// The entries of a mapping of user data (labels, environment, ...): every
/// key kept, `x-` ones too.
pub(crate) fn entries<'a>(
    map: &'a Mapping,
    path: &str,
    service: Option<&str>,
    cx: &mut Cx,
) -> Vec<(String, &'a Y)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match key(k) {
            Some(k) => out.push((k, v)),
            None => cx.warn(
                service,
                path.to_string(),
                format!("a key that is {} and not a name; dropped", kind(k)),
            ),
        }
    }
    out
}

/// Replaces every tagged value (`!reset`, `!override`, ...) by its value,
/// with a warning. Extension fields are left alone.
pub(crate) fn untag(v: &mut Y, path: &str, cx: &mut Cx) {
    match v {
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let inner = std::mem::take(&mut t.value);
            *v = inner;
            cx.warn(
                service_of(path),
                path.to_string(),
                format!("the YAML tag `{tag}` has no meaning in a single file; ignored"),
            );
            untag(v, path, cx);
        }
        Y::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                untag(item, &join(path, &i.to_string()), cx);
            }
        }
        Y::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let name = key(k).unwrap_or_default();
                if name.starts_with("x-") {
                    continue;
                }
                untag(item, &join(path, &name), cx);
            }
        }
        _ => {}
    }
}

/// Whether a `<<` merge key is left anywhere in `v`.
pub(crate) fn has_merge_key(v: &Y) -> bool {
    match v {
        Y::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v)),
        Y::Sequence(items) => items.iter().any(has_merge_key),
        Y::Tagged(t) => has_merge_key(&t.value),
        _ => false,
    }
}

/// `a.b` from `a` and `b`; just `b` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The service a dotted path is in, if any.
fn service_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("services.")?;
    Some(rest.split('.').next().unwrap_or(rest))
}
