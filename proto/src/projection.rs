//! The canonical projection of a container's spec and the config hash.
//!
//! A [`Projection`] is an explicit list of named fields, each a JSON value,
//! chosen and written by hand from the normalised spec (never by serialising
//! a struct), with a version number. Its canonical text sorts every object's
//! keys and has no whitespace, so the same spec always gives the same
//! [`Projection::hash`], whatever servin's internal types look like. A new
//! servin that adds a field bumps [`PROJECTION_VERSION`]; comparing
//! projections of different versions looks only at the fields both have
//! (see [`FieldDigests::changed`]), so an upgrade does not recreate
//! everything.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the field list the CLI projects containers with.
pub const PROJECTION_VERSION: u32 = 1;

/// How many hex digits of a field's sha256 its digest keeps.
const FIELD_DIGEST_LEN: usize = 12;

/// A container's spec as the fields that make up its config hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The version of the field list.
    pub version: u32,
    /// Field name to value.
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl Projection {
    /// An empty projection of `version`.
    pub fn new(version: u32) -> Self {
        Self {
            version,
            fields: BTreeMap::new(),
        }
    }

    /// Sets field `name` to `value`.
    pub fn set(&mut self, name: &str, value: serde_json::Value) {
        self.fields.insert(name.to_string(), value);
    }

    /// The canonical text: `v{version}` then one `name=value` line per field,
    /// in name order, each value as canonical JSON.
    pub fn canonical(&self) -> String {
        let mut out = format!("v{}\n", self.version);
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push('=');
            write_canonical(value, &mut out);
            out.push('\n');
        }
        out
    }

    /// The config hash: `sha256:` and the hex sha256 of [`Self::canonical`].
    pub fn hash(&self) -> String {
        format!(
            "sha256:{}",
            hex(&Sha256::digest(self.canonical().as_bytes()))
        )
    }

    /// A short digest of each field, to store in a label.
    pub fn field_digests(&self) -> FieldDigests {
        let fields = self
            .fields
            .iter()
            .map(|(name, value)| {
                let mut text = String::new();
                write_canonical(value, &mut text);
                let full = hex(&Sha256::digest(text.as_bytes()));
                (name.clone(), full[..FIELD_DIGEST_LEN].to_string())
            })
            .collect();
        FieldDigests {
            version: self.version,
            fields,
        }
    }
}

/// The digest of every field of a projection: what a container's
/// [`crate::labels::FIELDS`] label holds, compact enough for a label and
/// enough to name the fields that changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDigests {
    /// The projection's version.
    pub version: u32,
    /// Field name to the first hex digits of the sha256 of its value.
    pub fields: BTreeMap<String, String>,
}

impl FieldDigests {
    /// The label form: `1 command=0123456789ab env=...`.
    pub fn to_label(&self) -> String {
        let mut out = self.version.to_string();
        for (name, digest) in &self.fields {
            let _ = write!(out, " {name}={digest}");
        }
        out
    }

    /// Reads the label form; `Err` says what is wrong with it.
    pub fn parse_label(label: &str) -> Result<Self, String> {
        let mut words = label.split_whitespace();
        let version = words
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| format!("field digests {label:?} do not start with a version"))?;
        let mut fields = BTreeMap::new();
        for word in words {
            let (name, digest) = word
                .split_once('=')
                .filter(|(n, d)| !n.is_empty() && !d.is_empty())
                .ok_or_else(|| format!("field digest {word:?} is not name=digest"))?;
            fields.insert(name.to_string(), digest.to_string());
        }
        Ok(Self { version, fields })
    }

    /// The fields that differ between `self` (wanted) and `stored` (what a
    /// container was made with), in name order. With the same version, a
    /// field present on one side only has changed; across versions only the
    /// fields both sides know are compared.
    pub fn changed(&self, stored: &FieldDigests) -> Vec<String> {
        let same_version = self.version == stored.version;
        let mut names: Vec<&String> = self.fields.keys().collect();
        names.extend(stored.fields.keys());
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(
                |name| match (self.fields.get(*name), stored.fields.get(*name)) {
                    (Some(a), Some(b)) => a != b,
                    _ => same_version,
                },
            )
            .cloned()
            .collect()
    }
}

/// Writes `value` as JSON with every object's keys sorted and no spaces.
pub fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn projection(env: serde_json::Value) -> Projection {
        let mut p = Projection::new(1);
        p.set("image", json!("docker.io/library/redis:7"));
        p.set("env", env);
        p
    }

    #[test]
    fn canonical_text_sorts_keys_at_every_level() {
        let p = projection(json!({"B": "2", "A": {"z": 1, "y": [true, null]}}));
        assert_eq!(
            p.canonical(),
            "v1\nenv={\"A\":{\"y\":[true,null],\"z\":1},\"B\":\"2\"}\nimage=\"docker.io/library/redis:7\"\n"
        );
    }

    #[test]
    fn the_hash_follows_values_and_version_only() {
        let a = projection(json!({"A": "1", "B": "2"}));
        let b = projection(json!({"B": "2", "A": "1"}));
        assert_eq!(a.hash(), b.hash());
        assert!(a.hash().starts_with("sha256:") && a.hash().len() == 71);
        let c = projection(json!({"A": "1", "B": "3"}));
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.version = 2;
        assert_ne!(a.hash(), d.hash());
    }

    #[test]
    fn field_digests_round_trip_through_the_label() {
        let d = projection(json!({"A": "1"})).field_digests();
        let label = d.to_label();
        assert!(label.starts_with("1 env="), "{label}");
        assert_eq!(FieldDigests::parse_label(&label).unwrap(), d);
        assert!(FieldDigests::parse_label("").is_err());
        assert!(FieldDigests::parse_label("x env=1").is_err());
        assert!(FieldDigests::parse_label("1 env").is_err());
    }

    #[test]
    fn changed_names_the_fields_that_differ() {
        let old = projection(json!({"A": "1"})).field_digests();
        let new = projection(json!({"A": "2"})).field_digests();
        assert_eq!(new.changed(&old), vec!["env"]);
        assert!(old.changed(&old).is_empty());
        let mut more = projection(json!({"A": "1"}));
        more.set("tty", json!(true));
        assert_eq!(more.field_digests().changed(&old), vec!["tty"]);
    }

    #[test]
    fn across_versions_only_common_fields_count() {
        let old = projection(json!({"A": "1"})).field_digests();
        let mut newer = projection(json!({"A": "1"}));
        newer.version = 2;
        newer.set("tty", json!(false));
        assert!(newer.field_digests().changed(&old).is_empty());
        newer.set("env", json!({"A": "9"}));
        assert_eq!(newer.field_digests().changed(&old), vec!["env"]);
    }
}
