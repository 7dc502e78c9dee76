//! `servin kube generate`: the normalised [`Project`] as Kubernetes objects.
//!
//! [`generate`] is pure: it takes the project, the digests to name images
//! by (from `servin.lock`, and those of the images `--registry` pushed) and
//! the secrets' contents, and returns the objects in a stable order (kind,
//! then name) with a [`Warning`] for every key it could not carry. Nothing
//! is dropped silently. [`render_yaml`] writes them as one multi-document
//! YAML text; [`Object::file_name`] names the file of one object.
//!
//! - [`pod`]: a container as a Deployment or a StatefulSet (its pod
//!   template: image, command, env, probes, resources, security context,
//!   mounts, init containers).
//! - [`objects`]: the objects around it: Services, ConfigMaps, Secrets,
//!   PersistentVolumeClaims and NetworkPolicies.
//!
//! The mapping, and why each choice, is in the book (`cli/kube.md`).

mod objects;
mod pod;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::project::desired::image_reference;
use crate::project::lock;
use crate::project::normal::Project;

/// The image that waits for a dependency's Service in an init container.
pub const WAIT_IMAGE: &str = "busybox:1.36";

/// The size of a PersistentVolumeClaim whose volume has no `servin.size`
/// label.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";

/// The volume label giving a claim's size (`servin.size = "10Gi"`).
pub const SIZE_LABEL: &str = "servin.size";

/// The prefix of the labels and annotations servin adds.
pub const ANNOTATION_PREFIX: &str = "servin.dev";

/// How the Services of containers with published ports are reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expose {
    /// Inside the cluster only.
    #[default]
    ClusterIp,
    /// Also on a port of every node.
    NodePort,
    /// Also through the cluster's load balancer.
    LoadBalancer,
}

impl Expose {
    /// The Service type.
    pub fn service_type(self) -> &'static str {
        match self {
            Expose::ClusterIp => "ClusterIP",
            Expose::NodePort => "NodePort",
            Expose::LoadBalancer => "LoadBalancer",
        }
    }
}

/// What [`generate`] needs besides the project.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The containers to generate; empty for all of them.
    pub containers: Vec<String>,
    /// How published ports are reached.
    pub expose: Expose,
    /// Locked digests: image reference to `sha256:...` (`servin.lock`).
    pub locked: BTreeMap<String, String>,
    /// Images the project builds, by `[images]` key, to the reference the
    /// cluster pulls them by (pushed with `--registry`, by digest).
    pub built: BTreeMap<String, String>,
    /// Secret contents by name; ignored with `no_secrets`.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Leave Secret objects out (their mounts stay).
    pub no_secrets: bool,
}

/// One Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// `Deployment`, `Service`, ...
    pub kind: &'static str,
    /// `metadata.name`.
    pub name: String,
    /// A note written as a YAML comment above the object.
    pub comment: Option<String>,
    /// The whole object.
    pub body: Value,
}

impl Object {
    /// `<kind>-<name>.yaml`, lowercase.
    pub fn file_name(&self) -> String {
        format!("{}-{}.yaml", self.kind, self.name).to_ascii_lowercase()
    }

    /// The object as one YAML document, its comment first.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.comment {
            for line in c.lines() {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&yaml::to_yaml(&self.body));
        out
    }
}

/// A key that did not map, or was changed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it concerns: `container web`, `volume data`, `secret key`.
    pub subject: String,
    /// The key and what was done instead.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// The objects and the warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// In a stable order: kind, then name.
    pub objects: Vec<Object>,
    /// In the order they arose (containers by name).
    pub warnings: Vec<Warning>,
}

/// Why nothing could be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A name on the command line is no container of the project.
    #[error("no container {name} in project {project} (it has: {known})")]
    UnknownContainer {
        name: String,
        project: String,
        known: String,
    },
    /// A built image without a registry to push it to.
    #[error(
        "image {image} is built by the project: a cluster cannot pull it from here; pass --registry HOST/PREFIX to push it where the cluster can"
    )]
    BuiltImage { image: String },
    /// A secret whose content was not given.
    #[error("secret {name} has no content to put in a Kubernetes Secret")]
    SecretMissing { name: String },
    /// A secret file could not be read.
    #[error("cannot read secret {name} from {path}")]
    SecretRead {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A secret from the environment whose variable is not set.
    #[error("secret {name} comes from ${variable}, which is not set")]
    SecretUnset { name: String, variable: String },
}

/// The containers `options` names, or all of them, checked.
pub fn selected(project: &Project, options: &Options) -> Result<Vec<String>, GenerateError> {
    if options.containers.is_empty() {
        return Ok(project.containers.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    for name in &options.containers {
        if !project.containers.contains_key(name) {
            return Err(GenerateError::UnknownContainer {
                name: name.clone(),
                project: project.project.name.clone(),
                known: project
                    .containers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        out.insert(name.clone());
    }
    Ok(out.into_iter().collect())
}

/// The `[images]` keys of the built images the selected containers run.
pub fn built_images(project: &Project, containers: &[String]) -> BTreeSet<String> {
    containers
        .iter()
        .filter_map(|c| project.containers.get(c))
        .filter(|c| {
            project
                .images
                .get(&c.image)
                .is_some_and(|i| i.reference.is_none())
        })
        .map(|c| c.image.clone())
        .collect()
}

/// The secrets the selected containers mount, by name.
pub fn used_secrets(project: &Project, containers: &[String]) -> BTreeSet<String> {
    containers
        .iter()
        .filter_map(|c| project.containers.get(c))
        .flat_map(|c| c.secrets.iter().cloned())
        .collect()
}

/// Reads the content of every secret the selected containers mount: from
/// its file, or from the variable in `env`.
pub fn read_secrets(
    project: &Project,
    containers: &[String],
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<u8>>, GenerateError> {
    let mut out = BTreeMap::new();
    for name in used_secrets(project, containers) {
        let Some(secret) = project.secrets.get(&name) else {
            return Err(GenerateError::SecretMissing { name });
        };
        let data = if let Some(path) = &secret.file {
            std::fs::read(path).map_err(|source| GenerateError::SecretRead {
                name: name.clone(),
                path: path.clone(),
                source,
            })?
        } else if let Some(var) = &secret.environment {
            match env.get(var) {
                Some(v) => v.clone().into_bytes(),
                None => {
                    return Err(GenerateError::SecretUnset {
                        name,
                        variable: var.clone(),
                    });
                }
            }
        } else {
            return Err(GenerateError::SecretMissing { name });
        };
        out.insert(name, data);
    }
    Ok(out)
}

/// The image reference the cluster runs for `image` (an `[images]` key or
/// a reference): a built image as pushed, else by its locked digest, else
/// as written.
pub fn cluster_image(
    project: &Project,
    image: &str,
    options: &Options,
) -> Result<String, GenerateError> {
    if project
        .images
        .get(image)
        .is_some_and(|i| i.reference.is_none())
    {
        return options
            .built
            .get(image)
            .cloned()
            .ok_or_else(|| GenerateError::BuiltImage {
                image: image.to_string(),
            });
    }
    let reference = image_reference(project, image);
    if reference.contains('@') {
        return Ok(reference);
    }
    Ok(match options.locked.get(&reference) {
        Some(digest) => lock::pinned(&reference, digest),
        None => reference,
    })
}

/// Collects warnings as the mapping goes.
#[derive(Debug, Default)]
pub(crate) struct Warnings(Vec<Warning>);

impl Warnings {
    pub(crate) fn push(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        self.0.push(Warning {
            subject: subject.into(),
            message: message.into(),
        });
    }
}

/// Maps the project to Kubernetes objects.
pub fn generate(project: &Project, options: &Options) -> Result<Generated, GenerateError> {
    let containers = selected(project, options)?;
    let mut warnings = Warnings::default();
    let mut objects = Vec::new();
    let usage = objects::VolumeUsage::of(project);
    let waited_for: BTreeSet<&String> = project
        .containers
        .values()
        .flat_map(|c| c.depends_on.iter())
        .filter(|(_, cond)| **cond == crate::project::normal::Condition::Healthy)
        .map(|(d, _)| d)
        .collect();
    for name in &containers {
        let Some(c) = project.containers.get(name) else {
            continue;
        };
        let image = cluster_image(project, &c.image, options)?;
        let owned = usage.owned_by(project, name);
        objects.extend(pod::workload(
            project,
            name,
            c,
            &image,
            &owned,
            &mut warnings,
        ));
        objects.extend(objects::services(
            project,
            name,
            c,
            !owned.is_empty() || waited_for.contains(name),
            options.expose,
            &mut warnings,
        ));
        objects.extend(objects::config_map(project, name, c));
    }
    objects.extend(objects::secrets(
        project,
        &containers,
        options,
        &mut warnings,
    )?);
    objects.extend(objects::claims(project, &containers, &usage, &mut warnings));
    objects.extend(objects::network_policies(
        project,
        &containers,
        options.expose,
    ));
    objects.sort_by(|a, b| {
        (kind_rank(a.kind), &a.name, a.kind).cmp(&(kind_rank(b.kind), &b.name, b.kind))
    });
    Ok(Generated {
        objects,
        warnings: warnings.0,
    })
}

/// The order kinds are applied in: what others refer to first.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "NetworkPolicy" => 0,
        "Secret" => 1,
        "ConfigMap" => 2,
        "PersistentVolumeClaim" => 3,
        "Service" => 4,
        "StatefulSet" => 5,
        "Deployment" => 6,
        _ => 7,
    }
}

/// The objects as one multi-document YAML text.
pub fn render_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&o.to_yaml());
    }
    out
}

/// The labels every object of the project carries.
pub(crate) fn project_labels(project: &Project) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "app.kubernetes.io/part-of".into(),
        Value::String(project.project.name.clone()),
    );
    m.insert(
        "app.kubernetes.io/managed-by".into(),
        Value::String("servin".into()),
    );
    m
}

/// The labels that select the pods of container `name`.
pub(crate) fn selector(project: &Project, name: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "app.kubernetes.io/name".into(),
        Value::String(name.to_string()),
    );
    m.insert(
        "app.kubernetes.io/part-of".into(),
        Value::String(project.project.name.clone()),
    );
    m
}

/// The labels of an object of container `name`.
pub(crate) fn container_labels(project: &Project, name: &str) -> serde_json::Map<String, Value> {
    let mut m = selector(project, name);
    m.insert(
        "app.kubernetes.io/managed-by".into(),
        Value::String("servin".into()),
    );
    m
}

/// The pod label that marks membership of network `network`.
pub(crate) fn network_label(network: &str) -> String {
    let mut name = format!("network-{network}");
    name.truncate(63);
    format!(
        "{ANNOTATION_PREFIX}/{}",
        name.trim_end_matches(['-', '.', '_'])
    )
}

/// Whether `key` is a valid label (or annotation) key: `[prefix/]name`.
pub(crate) fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    }) && !name.is_empty()
        && is_label_value(name)
}

/// Whether `value` is a valid label value.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && value
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// A DNS label made of `prefix` and `name`, cut to 63 characters.
pub(crate) fn dns_name(prefix: &str, name: &str) -> String {
    let mut s = crate::project::values::to_dns_label(&format!("{prefix}{name}"));
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests;
