//! The typed readers every Compose area uses: a string, a boolean, a
//! mapping, a whole number, a list, a command, a duration, a size, key/values; each
//! reports what it expected, naming the key, when the value is not one.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::{Item, Value};

use super::{DROPPED, Svc};
use crate::import::Cx;
use crate::import::out::{string, strings, table};
use crate::import::yaml::{boolean, entries, fields, integer, kind, scalar};

impl Svc<'_> {
    pub(super) fn at(&self, key: &str) -> String {
        format!("services.{}.{key}", self.name)
    }

    pub(super) fn warn(&mut self, at: String, message: impl Into<String>) {
        self.cx.warn(Some(self.name), at, message.into());
    }

    pub(super) fn dropped(&mut self, at: String) {
        self.warn(at, DROPPED);
    }

    pub(super) fn expected(&mut self, at: String, what: &str, v: &Y) {
        self.warn(at, format!("expected {what}, found {}; dropped", kind(v)));
    }

    /// A mapping; `None` when the value is empty (`null`), or not a
    /// mapping (reported).
    pub(super) fn mapping<'v>(&mut self, at: &str, v: &'v Y) -> Option<&'v Mapping> {
        match v {
            Y::Null => None,
            Y::Mapping(m) => Some(m),
            other => {
                self.expected(at.to_string(), "a mapping", other);
                None
            }
        }
    }

    pub(super) fn set(&mut self, key: &str, v: Value) {
        self.out.insert(key, Item::Value(v));
    }

    pub(super) fn fields<'m>(&mut self, m: &'m Mapping, at: &str) -> Vec<(String, &'m Y)> {
        fields(m, at, Some(self.name), self.cx)
    }

    /// A string; numbers and booleans are spelled out.
    pub(super) fn string(&mut self, at: String, v: &Y) -> Option<String> {
        let s = scalar(v);
        if s.is_none() {
            self.expected(at, "a string", v);
        }
        s
    }

    pub(super) fn boolean(&mut self, at: String, v: &Y) -> Option<bool> {
        let b = boolean(v);
        if b.is_none() {
            self.expected(at, "a boolean", v);
        }
        b
    }

    pub(super) fn integer(&mut self, at: String, v: &Y) -> Option<i64> {
        let n = integer(v);
        if n.is_none() {
            self.expected(at, "a whole number", v);
        }
        n
    }

    /// A list of strings (a single string counts as a list of one).
    pub(super) fn string_list(&mut self, at: &str, v: &Y) -> Option<Vec<String>> {
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
    pub(super) fn command(&mut self, at: &str, v: &Y) -> Option<Value> {
        match v {
            Y::Null => None,
            Y::Sequence(_) => self.string_list(at, v).map(|l| strings(&l)),
            other => self.string(at.to_string(), other).map(|s| string(&s)),
        }
    }

    /// A duration such as `10s` or `1m30s`.
    pub(super) fn duration(&mut self, at: String, v: &Y) -> Option<String> {
        match v {
            Y::String(s) => Some(s.clone()),
            other => {
                self.expected(at, "a duration such as `10s`", other);
                None
            }
        }
    }

    /// A size: bytes, or a string such as `512m`.
    pub(super) fn size(&mut self, at: &str, v: &Y) -> Option<Value> {
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
