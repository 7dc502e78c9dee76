//! `servin kube play`: runs Kubernetes YAML as a servin project.
//!
//! [`parse`] reads a multi-document YAML file into the typed objects of
//! [`types`] (Pods, Deployments, Services, ConfigMaps, Secrets,
//! PersistentVolumeClaims); [`map::project`] turns them into a
//! [`normal::Project`](crate::project::normal::Project), which goes through
//! the same desired state and apply as `servin up`, plus the ConfigMap and
//! Secret files to write ([`files`]).
//!
//! Every key servin does not run, and every kind it does not know, is a
//! [`Warning`] naming it; it is skipped, and nothing of it is applied. A
//! document that is not Kubernetes, or an object that cannot run as written,
//! is a [`PlayError`] naming the document and the field: then nothing at
//! all is applied.

pub mod files;
pub mod map;
pub mod types;

use std::fmt;

use serde::Deserialize;
use serde_yaml_ng::Value as Y;

pub use map::{Options, Played, project};

/// One object of the file.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(types::Pod),
    Deployment(types::Deployment),
    /// A StatefulSet, run as a Deployment is (what it adds, stable pod
    /// names and claim templates, is named and skipped).
    StatefulSet(types::Deployment),
    Service(types::Service),
    ConfigMap(types::ConfigMap),
    Secret(types::Secret),
    PersistentVolumeClaim(types::PersistentVolumeClaim),
}

/// An object with where it came from.
#[derive(Debug, Clone)]
pub struct Doc {
    /// 1-based index of the document in the file.
    pub index: usize,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    pub object: Object,
}

impl Doc {
    /// How messages name it: `deployment web`.
    pub fn subject(&self) -> String {
        format!("{} {}", self.kind.to_ascii_lowercase(), self.name)
    }

    /// An error about `field` of this document.
    pub fn error(&self, field: impl Into<String>, message: impl Into<String>) -> PlayError {
        PlayError {
            document: self.index,
            object: Some(format!("{} {}", self.kind, self.name)),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A warning about this document.
    pub fn warning(&self, message: impl Into<String>) -> Warning {
        Warning {
            subject: self.subject(),
            message: message.into(),
        }
    }
}

/// The objects of a file and what of it is skipped.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub docs: Vec<Doc>,
    pub warnings: Vec<Warning>,
}

/// Something of the file that servin does not run: skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `deployment web`, or `document 3`.
    pub subject: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// Why the file cannot be played; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlayError {
    /// 1-based index of the document; 0 for the file as a whole.
    pub document: usize,
    /// `Deployment web`, when known.
    pub object: Option<String>,
    /// The dotted path of the field, or empty for the whole document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for PlayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document == 0 {
            write!(f, "the file")?;
        } else {
            write!(f, "document {}", self.document)?;
        }
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The kinds servin runs.
pub const KINDS: [&str; 7] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "Service",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
];

/// Reads the documents of `text`. Empty documents are passed over; a
/// document of another kind is a warning; a document without `apiVersion`
/// and `kind` is an error.
pub fn parse(text: &str) -> Result<Manifest, PlayError> {
    let mut out = Manifest::default();
    // First the documents as plain values, to learn their kinds and names;
    // then each again through its type, so that an error carries its path
    // and line and every key no type models is named.
    let mut heads = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = Y::deserialize(de).map_err(|e| PlayError {
            document: index,
            object: None,
            field: String::new(),
            message: format!("invalid YAML: {e}"),
        })?;
        heads.push(head(index, &value)?);
    }
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let Some(Some((kind, name))) = heads.get(i).cloned() else {
            continue;
        };
        let index = i + 1;
        let subject = format!("{} {name}", kind.to_ascii_lowercase());
        if !KINDS.contains(&kind.as_str()) {
            out.warnings.push(Warning {
                subject,
                message: format!("kind {kind} is not supported; skipped"),
            });
            continue;
        }
        let mut ignored = Vec::new();
        let fail = |e: serde_yaml_ng::Error| PlayError {
            document: index,
            object: Some(format!("{kind} {name}")),
            field: String::new(),
            message: e.to_string(),
        };
        let object = match kind.as_str() {
            "Pod" => Object::Pod(typed(de, &mut ignored).map_err(fail)?),
            "Deployment" => Object::Deployment(typed(de, &mut ignored).map_err(fail)?),
            "StatefulSet" => Object::StatefulSet(typed(de, &mut ignored).map_err(fail)?),
            "Service" => Object::Service(typed(de, &mut ignored).map_err(fail)?),
            "ConfigMap" => Object::ConfigMap(typed(de, &mut ignored).map_err(fail)?),
            "Secret" => Object::Secret(typed(de, &mut ignored).map_err(fail)?),
            _ => Object::PersistentVolumeClaim(typed(de, &mut ignored).map_err(fail)?),
        };
        for path in ignored {
            out.warnings.push(Warning {
                subject: subject.clone(),
                message: format!("{path} is not supported; skipped"),
            });
        }
        out.docs.push(Doc {
            index,
            kind,
            name,
            object,
        });
    }
    Ok(out)
}

/// A document's kind and name; `None` for an empty document.
fn head(index: usize, value: &Y) -> Result<Option<(String, String)>, PlayError> {
    let err = |field: &str, message: &str| PlayError {
        document: index,
        object: None,
        field: field.to_string(),
        message: message.to_string(),
    };
    let map = match value {
        Y::Null => return Ok(None),
        Y::Mapping(m) => m,
        other => {
            return Err(err(
                "",
                &format!(
                    "is {}, not a Kubernetes object (a mapping with apiVersion and kind)",
                    kind_of(other)
                ),
            ));
        }
    };
    let text = |key: &str| match map.get(key) {
        Some(Y::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(err(key, "must be a non-empty string")),
        None => Err(err(
            key,
            "is missing: this is not a Kubernetes object (it needs apiVersion and kind)",
        )),
    };
    text("apiVersion")?;
    let kind = text("kind")?;
    let name = match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Y::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(PlayError {
                document: index,
                object: Some(kind),
                field: "metadata.name".into(),
                message: "is missing: every object needs a name".into(),
            });
        }
    };
    Ok(Some((kind, name)))
}

fn kind_of(v: &Y) -> &'static str {
    match v {
        Y::Null => "empty",
        Y::Bool(_) => "a boolean",
        Y::Number(_) => "a number",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a list",
        Y::Mapping(_) => "a mapping",
        Y::Tagged(_) => "a tagged value",
    }
}

/// Reads one document as `T`, adding the path of every key `T` leaves
/// out to `ignored` (less what describes rather than runs the object:
/// `apiVersion`, `kind`, `status`, and metadata other than name,
/// namespace and labels).
fn typed<'de, T: Deserialize<'de>>(
    de: serde_yaml_ng::Deserializer<'de>,
    ignored: &mut Vec<String>,
) -> Result<T, serde_yaml_ng::Error> {
    serde_ignored::deserialize(de, |path| {
        let mut parts = Vec::new();
        segments(&path, &mut parts);
        let descriptive = match parts.as_slice() {
            [one] => matches!(one.as_str(), "apiVersion" | "kind" | "status"),
            _ => parts.iter().rev().nth(1).is_some_and(|p| p == "metadata"),
        };
        if !descriptive {
            ignored.push(dotted(&parts));
        }
    })
}

fn segments(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            segments(parent, out);
            out.push(format!("[{index}]"));
        }
        Path::Map { parent, key } => {
            segments(parent, out);
            out.push(key.clone());
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent, out),
    }
}

/// `spec.containers[0].name` from its segments.
fn dotted(parts: &[String]) -> String {
    let mut s = String::new();
    for p in parts {
        if !s.is_empty() && !p.starts_with('[') {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

#[cfg(test)]
mod tests;
