//! `servin import`: converts a Docker Compose file into a `servin.toml`.
//!
//! [`import_compose`] reads the Compose YAML (anchors, aliases and `<<`
//! merge keys resolved, `x-` extension fields ignored as Compose does) and
//! writes the equivalent `servin.toml`:
//!
//! - `services` become `[containers.NAME]`, named by `container_name` or
//!   the service name, made DNS-safe; references to them follow.
//! - `image` stays a direct reference; `build` (and `platform`) become an
//!   `[images.NAME]` entry named like the container.
//! - top-level `volumes`, `networks` and `secrets` become `[volumes.NAME]`,
//!   `[networks.NAME]` and `[secrets.NAME]`.
//!
//! Whatever servin cannot express is reported as an [`ImportWarning`]
//! naming the Compose key: nothing is dropped silently.

mod names;
mod out;
mod service;
mod top;
mod yaml;

use std::fmt;

use serde_yaml_ng::Value as Y;
use toml_edit::{DocumentMut, Item, Table};

use self::names::Names;

/// The file names `servin import` looks for, in order.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The most rounds of `<<` merging: merges nested deeper than this are left
/// (and reported as unknown keys).
const MAX_MERGE_ROUNDS: usize = 64;

/// A converted Compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The `servin.toml` text.
    pub toml: String,
    /// What could not be converted, in file order.
    pub warnings: Vec<ImportWarning>,
}

/// Something of the Compose file that servin cannot express, or that was
/// changed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// The Compose service it concerns, if any.
    pub service: Option<String>,
    /// The dotted path of the key in the Compose file, e.g.
    /// `services.web.logging`.
    pub key: String,
    /// What happened to it.
    pub message: String,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a Compose file could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Syntax {
        file: String,
        message: String,
        /// 1-based, when known.
        line: Option<usize>,
        /// 1-based, when known.
        column: Option<usize>,
    },
    /// The file holds nothing.
    #[error("{file}: the file is empty; a Compose file needs `services:`")]
    Empty { file: String },
    /// The top level is not a mapping.
    #[error(
        "{file}: the top level is {found}, not a mapping of Compose keys (`services:`, `volumes:`, ...)"
    )]
    NotAMapping { file: String, found: &'static str },
    /// There is no service to convert.
    #[error(
        "{file}: no services; a Compose file needs a `services:` mapping with at least one service"
    )]
    NoServices { file: String },
    /// A key that must be a mapping is not one.
    #[error("{file}: `{key}` is {found}; Compose wants a mapping here")]
    NotAMappingAt {
        file: String,
        key: String,
        found: &'static str,
    },
}

/// The warnings gathered during one conversion.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    warnings: Vec<ImportWarning>,
}

impl Cx {
    pub(crate) fn warn(&mut self, service: Option<&str>, key: String, message: String) {
        self.warnings.push(ImportWarning {
            service: service.map(str::to_string),
            key,
            message,
        });
    }
}

/// What every kind of Compose name became, for rewriting references.
#[derive(Debug)]
pub(crate) struct AllNames {
    pub(crate) containers: Names,
    pub(crate) volumes: Names,
    pub(crate) networks: Names,
    pub(crate) secrets: Names,
    /// Volumes and networks that services use without declaring them;
    /// they are declared empty.
    pub(crate) implicit_volumes: Vec<String>,
    pub(crate) implicit_networks: Vec<String>,
}

/// Converts the Compose file `contents` (named `file_name` in messages) into
/// a `servin.toml`.
pub fn import_compose(file_name: &str, contents: &str) -> Result<Imported, ImportError> {
    let file = file_name.to_string();
    let mut root: Y = serde_yaml_ng::from_str(contents).map_err(|e| syntax(&file, &e))?;
    let mut cx = Cx::default();
    yaml::untag(&mut root, "", &mut cx);
    // A merge brings in the merged mapping as written, `<<` keys and all:
    // merge again until none is left (a chain of merges is never deeper
    // than the file is long).
    for _ in 0..MAX_MERGE_ROUNDS {
        root.apply_merge().map_err(|e| syntax(&file, &e))?;
        if !yaml::has_merge_key(&root) {
            break;
        }
    }

    let top = match &root {
        Y::Mapping(m) => m,
        Y::Null => return Err(ImportError::Empty { file }),
        other => {
            return Err(ImportError::NotAMapping {
                file,
                found: yaml::kind(other),
            });
        }
    };

    let mut project_name = None;
    let mut services = None;
    let mut volumes = None;
    let mut networks = None;
    let mut secrets = None;
    for (key, value) in yaml::fields(top, "", None, &mut cx) {
        match key.as_str() {
            "name" => project_name = Some(value),
            "services" => services = Some(value),
            "volumes" => volumes = Some(value),
            "networks" => networks = Some(value),
            "secrets" => secrets = Some(value),
            "version" => cx.warn(
                None,
                key,
                "obsolete in Compose and not needed by servin; dropped".to_string(),
            ),
            "configs" => cx.warn(
                None,
                key,
                "not supported by servin; dropped (mount the files with `volumes` instead)"
                    .to_string(),
            ),
            "include" => cx.warn(
                None,
                key,
                "not supported by servin; dropped (import the included files one by one)"
                    .to_string(),
            ),
            _ => cx.warn(None, key, "not supported by servin; dropped".to_string()),
        }
    }

    let services = match services {
        None | Some(Y::Null) => return Err(ImportError::NoServices { file }),
        Some(Y::Mapping(m)) if m.is_empty() => return Err(ImportError::NoServices { file }),
        Some(Y::Mapping(m)) => m,
        Some(other) => {
            return Err(ImportError::NotAMappingAt {
                file,
                key: "services".to_string(),
                found: yaml::kind(other),
            });
        }
    };

    let mut names = AllNames {
        containers: Names::new(true),
        volumes: Names::new(false),
        networks: Names::new(true),
        secrets: Names::new(false),
        implicit_volumes: Vec::new(),
        implicit_networks: Vec::new(),
    };

    let project = project_name.and_then(|v| top::project_name(v, &mut cx));
    let volumes = top::volumes(&file, volumes, &mut names, &mut cx)?;
    let networks = top::networks(&file, networks, &mut names, &mut cx)?;
    let secrets = top::secrets(&file, secrets, &mut names, &mut cx)?;

    let services = service::name_all(&file, services, &mut names, &mut cx)?;
    let mut images = Vec::new();
    let mut containers = Vec::new();
    for s in &services {
        let converted = service::convert(s, &mut names, &mut cx);
        if let Some(image) = converted.image {
            images.push((converted.key.clone(), image));
        }
        containers.push((converted.key, converted.table));
    }

    let mut doc = DocumentMut::new();
    if let Some(name) = project {
        let mut t = Table::new();
        t.insert("name", toml_edit::value(name));
        doc.insert("project", Item::Table(t));
    }
    section(&mut doc, "images", images);
    let mut volumes = volumes;
    for v in &names.implicit_volumes {
        volumes.push((v.clone(), Table::new()));
    }
    section(&mut doc, "volumes", volumes);
    let mut networks = networks;
    for n in &names.implicit_networks {
        networks.push((n.clone(), Table::new()));
    }
    section(&mut doc, "networks", networks);
    section(&mut doc, "secrets", secrets);
    section(&mut doc, "containers", containers);

    let body = doc.to_string();
    let toml = format!(
        "# Imported from {} by servin import.\n\n{}",
        file_name.replace(['\n', '\r'], " "),
        body.trim_start_matches('\n')
    );
    Ok(Imported {
        toml,
        warnings: cx.warnings,
    })
}

/// Adds `[name.KEY]` tables, in order, under an implicit `[name]`.
fn section(doc: &mut DocumentMut, name: &str, entries: Vec<(String, Table)>) {
    if entries.is_empty() {
        return;
    }
    let mut parent = Table::new();
    parent.set_implicit(true);
    for (key, mut t) in entries {
        t.set_implicit(false);
        parent.insert(&key, Item::Table(t));
    }
    doc.insert(name, Item::Table(parent));
}

fn syntax(file: &str, e: &serde_yaml_ng::Error) -> ImportError {
    let location = e.location();
    ImportError::Syntax {
        file: file.to_string(),
        message: e.to_string(),
        line: location.as_ref().map(serde_yaml_ng::Location::line),
        column: location.as_ref().map(serde_yaml_ng::Location::column),
    }
}
