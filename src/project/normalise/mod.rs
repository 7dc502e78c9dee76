//! Meaning: turns the checked document into the canonical [`Project`],
//! reporting every semantic problem (undefined references, cycles, port
//! conflicts, malformed ports, mounts, durations and sizes, missing paths)
//! at its span.

mod container;
mod graph;

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use serde::de::DeserializeOwned;

use super::diagnostic::{Code, Problem, SourceFile};
use super::model::{self, BuildDef, KeyValues};
use super::normal::{Build, Image, Network, Project, ProjectInfo, Secret, Volume};
use super::schema::did_you_mean;
use super::tree::{Node, Path, Seg, Span};
use super::values;

/// What normalisation needs besides the document.
pub struct Inputs<'a> {
    pub file: &'a SourceFile,
    pub root: &'a Node,
    /// The folder of the project file: relative paths start here.
    pub dir: &'a FsPath,
    /// Variables for bare `K` entries of `env` and `args`, and for secrets.
    pub vars: &'a BTreeMap<String, String>,
    /// The project name given on the command line or in the environment.
    pub project_name: Option<&'a str>,
    /// Keys taken out of the tree because their values were already
    /// reported as wrong; they were written, so they are not "missing".
    pub pruned: &'a [Path],
}

/// Normalises, returning the project and every problem found (errors and
/// warnings). The project is only meaningful when no error was found.
pub fn normalise(inputs: &Inputs<'_>) -> (Project, Vec<Problem>) {
    let mut cx = Cx {
        inputs,
        problems: Vec::new(),
    };
    let project = cx.project();
    (project, cx.problems)
}

/// The normalisation context: the inputs and the problems found so far.
struct Cx<'a> {
    inputs: &'a Inputs<'a>,
    problems: Vec<Problem>,
}

impl Cx<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn error(&self, code: Code, message: impl Into<String>) -> Problem {
        Problem::error(self.inputs.file, code, message)
    }

    /// The span of the value at `path`, or of the closest ancestor present.
    fn span(&self, path: &Path) -> Span {
        let mut p = path.0.as_slice();
        loop {
            if let Some(n) = self.inputs.root.at(p) {
                return n.span;
            }
            match p.split_last() {
                Some((_, rest)) => p = rest,
                None => return self.inputs.root.span,
            }
        }
    }

    /// The span of the key at the end of `path` (or of the value when the
    /// path ends in an index).
    fn key_span(&self, path: &Path) -> Span {
        self.inputs
            .root
            .key_span_at(&path.0)
            .unwrap_or_else(|| self.span(path))
    }

    fn has(&self, path: &Path) -> bool {
        self.inputs.root.at(&path.0).is_some()
    }

    /// Whether the file sets `path`, even to a value reported as wrong.
    fn written(&self, path: &Path) -> bool {
        self.has(path) || self.inputs.pruned.contains(path)
    }

    /// The entries of a top-level section, in file order, read as `T`.
    /// Entries that do not read (their structural problems were reported
    /// already) are left out.
    fn section<T: DeserializeOwned>(&mut self, name: &str) -> Vec<(String, T)> {
        let Some(section) = self.inputs.root.entry(name) else {
            return Vec::new();
        };
        let Some(entries) = section.node.entries() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            match serde_json::from_value::<T>(e.node.to_json()) {
                Ok(v) => out.push((e.key.clone(), v)),
                Err(err) => {
                    // The structural check passed it (a number beyond what a
                    // key holds, say): still say so rather than drop it.
                    let p = self
                        .error(
                            Code::InvalidValue,
                            format!("`{name}.{}` cannot be read", e.key),
                        )
                        .at(e.node.span, err.to_string());
                    self.push(p);
                }
            }
        }
        out
    }

    /// An absolute path for `rel`, relative to the project folder, with `~`
    /// meaning the home folder.
    fn resolve_path(&self, rel: &str) -> PathBuf {
        if let Some(rest) = rel.strip_prefix('~')
            && (rest.is_empty() || rest.starts_with('/'))
        {
            let home = self
                .inputs
                .vars
                .get("HOME")
                .cloned()
                .or_else(|| std::env::var("HOME").ok())
                .unwrap_or_else(|| "/".into());
            return clean(&PathBuf::from(home).join(rest.trim_start_matches('/')));
        }
        clean(&self.inputs.dir.join(rel))
    }

    /// Resolves a path that must exist, reporting it at `at` when it does not.
    fn existing_path(&mut self, rel: &str, at: &Path, what: &str) -> Option<String> {
        let abs = self.resolve_path(rel);
        if abs.exists() {
            return Some(abs.to_string_lossy().into_owned());
        }
        let p = self
            .error(Code::MissingPath, format!("{what} `{rel}` does not exist"))
            .at(
                self.span(at),
                format!("no such file or folder: {}", abs.display()),
            )
            .help(
                "paths are relative to the folder of the project file; create it or fix the path",
            );
        self.push(p);
        None
    }

    fn check_name(&mut self, kind: &str, name: &str, at: &Path, dns: bool) {
        let problem = if dns {
            values::dns_label_error(name)
        } else if is_object_name(name) {
            None
        } else {
            Some("use letters, digits, `_`, `.` and `-`, starting with a letter or digit".into())
        };
        if let Some(why) = problem {
            let mut p = self
                .error(
                    Code::InvalidName,
                    format!("{kind} name `{name}` is not valid"),
                )
                .at(self.key_span(at), why);
            if dns {
                let fixed = values::to_dns_label(name);
                p = p.help(format!(
                    "{kind} names are DNS labels (lowercase letters, digits and `-`); try `{fixed}`"
                ));
            }
            self.push(p);
        }
    }

    /// Key/values as strings; bare `K` list entries take the value from the
    /// variables, and are left out when unset (as Compose does).
    fn key_values(&mut self, kv: Option<KeyValues>, at: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match kv {
            None => {}
            Some(KeyValues::Table(t)) => {
                for (k, v) in t {
                    out.insert(k, v.to_string());
                }
            }
            Some(KeyValues::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match values::parse_key_value(item) {
                        Ok((k, Some(v))) => {
                            out.insert(k, v);
                        }
                        Ok((k, None)) => {
                            if let Some(v) = self.inputs.vars.get(&k) {
                                out.insert(k, v.clone());
                            }
                        }
                        Err(e) => {
                            let p = self
                                .error(
                                    Code::InvalidValue,
                                    format!("`{item}` is not a `KEY=VALUE` pair"),
                                )
                                .at(self.span(&at.index(i)), e)
                                .help("write `KEY=VALUE`, or a table `{ KEY = \"VALUE\" }`");
                            self.push(p);
                        }
                    }
                }
            }
        }
        out
    }

    fn project(&mut self) -> Project {
        let root_json = self.inputs.root.to_json();
        let section: model::ProjectSection = root_json
            .get("project")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let name = self.project_name(section.name);

        let mut images = BTreeMap::new();
        for (key, def) in self.section::<model::ImageDef>("images") {
            let at = Path::of(&["images", &key]);
            self.check_name("image", &key, &at, false);
            if let Some(img) = self.image(def, &at) {
                images.insert(key, img);
            }
        }

        let mut volumes = BTreeMap::new();
        for (key, def) in self.section::<model::VolumeDef>("volumes") {
            let at = Path::of(&["volumes", &key]);
            self.check_name("volume", &key, &at, false);
            let labels = self.key_values(def.labels, &at.key("labels"));
            volumes.insert(
                key,
                Volume {
                    external: def.external.unwrap_or(false),
                    labels,
                },
            );
        }

        let mut networks = BTreeMap::new();
        for (key, def) in self.section::<model::NetworkDef>("networks") {
            let at = Path::of(&["networks", &key]);
            self.check_name("network", &key, &at, true);
            networks.insert(key, self.network(def, &at));
        }

        let mut secrets = BTreeMap::new();
        for (key, def) in self.section::<model::SecretDef>("secrets") {
            let at = Path::of(&["secrets", &key]);
            self.check_name("secret", &key, &at, false);
            if let Some(s) = self.secret(&key, def, &at) {
                secrets.insert(key, s);
            }
        }

        // Names of everything that may be referred to, including entries that
        // had problems of their own, so that one problem is not reported twice.
        let declared = Declared {
            images: self.declared("images"),
            volumes: self.declared("volumes"),
            networks: self.declared("networks"),
            secrets: self.declared("secrets"),
            containers: self.declared("containers"),
            build_images: images
                .iter()
                .filter(|(_, i)| i.build.is_some())
                .map(|(k, _)| k.clone())
                .collect(),
        };

        let mut containers = BTreeMap::new();
        for (key, def) in self.section::<model::ContainerDef>("containers") {
            let at = Path::of(&["containers", &key]);
            self.check_name("container", &key, &at, true);
            if let Some(c) = self.container(&key, def, &at, &declared) {
                containers.insert(key, c);
            }
        }

        let uses_default = containers
            .values()
            .any(|c| c.networks.contains_key("default"));
        if uses_default && !networks.contains_key("default") {
            networks.insert(
                "default".to_string(),
                Network {
                    subnet: None,
                    gateway: None,
                    internal: false,
                    labels: BTreeMap::new(),
                },
            );
        }

        self.dependency_cycles(&containers);
        self.port_conflicts(&containers);
        self.healthy_dependencies(&containers);

        Project {
            project: ProjectInfo { name },
            images,
            volumes,
            networks,
            secrets,
            containers,
        }
    }

    fn declared(&self, section: &str) -> Vec<String> {
        self.inputs
            .root
            .entry(section)
            .and_then(|e| e.node.entries())
            .map(|es| es.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default()
    }

    fn project_name(&mut self, from_file: Option<String>) -> String {
        if let Some(n) = self.inputs.project_name {
            return n.to_string();
        }
        if let Some(n) = from_file {
            if let Some(why) = values::dns_label_error(&n) {
                let at = Path::of(&["project", "name"]);
                let p = self
                    .error(Code::InvalidName, format!("project name `{n}` is not valid"))
                    .at(self.span(&at), why)
                    .help(format!(
                        "project names are DNS labels (lowercase letters, digits and `-`); try `{}`",
                        values::to_dns_label(&n)
                    ));
                self.push(p);
            }
            return n;
        }
        let folder = self
            .inputs
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        values::to_dns_label(&folder)
    }

    fn image(&mut self, def: model::ImageDef, at: &Path) -> Option<Image> {
        let platform = def.platform.and_then(|p| match values::parse_platform(&p) {
            Ok(p) => Some(p),
            Err(e) => {
                let p = self
                    .error(Code::InvalidValue, format!("`{p}` is not a platform"))
                    .at(self.span(&at.key("platform")), e)
                    .help("write `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm64`");
                self.push(p);
                None
            }
        });
        match (def.reference, def.build) {
            (Some(_), Some(_)) => {
                let p = self
                    .error(
                        Code::ConflictingKeys,
                        format!("`{at}` has both `ref` and `build`"),
                    )
                    .at(self.key_span(&at.key("build")), "`build` here")
                    .note(self.key_span(&at.key("ref")), "`ref` here")
                    .help("an image is pulled (`ref`) or built (`build`): keep one");
                self.push(p);
                None
            }
            (None, None) if self.written(&at.key("ref")) || self.written(&at.key("build")) => None,
            (None, None) => {
                let p = self
                    .error(Code::MissingKey, format!("`{at}` needs `ref` or `build`"))
                    .at(self.key_span(at), "neither `ref` nor `build`")
                    .help("add `ref = \"registry/repository:tag\"` or `build = \"./folder\"`");
                self.push(p);
                None
            }
            (Some(r), None) => match values::ImageRef::parse(&r) {
                Ok(parsed) => Some(Image {
                    reference: Some(parsed.to_string()),
                    build: None,
                    platform,
                }),
                Err(e) => {
                    let p = self
                        .error(Code::InvalidImageRef, format!("`{r}` is not an image reference"))
                        .at(self.span(&at.key("ref")), e)
                        .help("write `[registry/]repository[:tag][@sha256:digest]`, e.g. `postgres:16`");
                    self.push(p);
                    None
                }
            },
            (None, Some(b)) => {
                let build = self.build(b, &at.key("build"))?;
                Some(Image {
                    reference: None,
                    build: Some(build),
                    platform,
                })
            }
        }
    }

    fn build(&mut self, def: BuildDef, at: &Path) -> Option<Build> {
        let (context, dockerfile, args, target, context_at) = match def {
            BuildDef::Context(c) => (c, None, None, None, at.clone()),
            BuildDef::Full(t) => (t.context, t.dockerfile, t.args, t.target, at.key("context")),
        };
        let context_abs = self.existing_path(&context, &context_at, "build context")?;
        let dockerfile_rel = dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
        let dockerfile_abs = clean(&PathBuf::from(&context_abs).join(&dockerfile_rel));
        if !dockerfile_abs.is_file() {
            let span = if dockerfile.is_some() {
                self.span(&at.key("dockerfile"))
            } else {
                self.span(&context_at)
            };
            let p = self
                .error(
                    Code::MissingPath,
                    format!("Dockerfile `{dockerfile_rel}` does not exist in the build context"),
                )
                .at(span, format!("no such file: {}", dockerfile_abs.display()))
                .help(
                    "`dockerfile` is relative to the build context; create it or set `dockerfile`",
                );
            self.push(p);
            return None;
        }
        let args = self.key_values(args, &at.key("args"));
        Some(Build {
            context: context_abs,
            dockerfile: dockerfile_abs.to_string_lossy().into_owned(),
            args,
            target,
        })
    }

    fn network(&mut self, def: model::NetworkDef, at: &Path) -> Network {
        let subnet = def.subnet.as_deref().and_then(|s| match parse_cidr(s) {
            Ok(net) => Some(net),
            Err(e) => {
                let p = self
                    .error(Code::InvalidValue, format!("`{s}` is not an IPv4 subnet"))
                    .at(self.span(&at.key("subnet")), e)
                    .help("write it in CIDR form, e.g. `10.90.0.0/24`");
                self.push(p);
                None
            }
        });
        let gateway = def.gateway.clone();
        if let Some(g) = &def.gateway {
            match g.parse::<std::net::Ipv4Addr>() {
                Err(_) => {
                    let p = self
                        .error(Code::InvalidValue, format!("`{g}` is not an IPv4 address"))
                        .at(self.span(&at.key("gateway")), "not an IPv4 address");
                    self.push(p);
                }
                Ok(ip) => match (&subnet, &def.subnet) {
                    (Some((net, prefix)), _) if !in_subnet(ip, *net, *prefix) => {
                        let p = self
                            .error(
                                Code::InvalidValue,
                                format!("gateway `{g}` is outside the subnet"),
                            )
                            .at(self.span(&at.key("gateway")), "outside the subnet")
                            .note(self.span(&at.key("subnet")), "the subnet");
                        self.push(p);
                    }
                    (None, None) => {
                        let p = self
                            .error(Code::MissingKey, "a `gateway` needs a `subnet`")
                            .at(self.span(&at.key("gateway")), "gateway without subnet")
                            .help("add `subnet = \"...\"` that contains the gateway");
                        self.push(p);
                    }
                    _ => {}
                },
            }
        }
        let labels = self.key_values(def.labels, &at.key("labels"));
        Network {
            subnet: subnet.map(|(n, p)| format!("{n}/{p}")),
            gateway,
            internal: def.internal.unwrap_or(false),
            labels,
        }
    }

    fn secret(&mut self, name: &str, def: model::SecretDef, at: &Path) -> Option<Secret> {
        match (def.file, def.environment) {
            (Some(_), Some(_)) => {
                let p = self
                    .error(
                        Code::ConflictingKeys,
                        format!("secret `{name}` has both `file` and `environment`"),
                    )
                    .at(self.key_span(&at.key("environment")), "`environment` here")
                    .note(self.key_span(&at.key("file")), "`file` here")
                    .help("a secret comes from one place: keep one");
                self.push(p);
                None
            }
            (None, None)
                if self.written(&at.key("file")) || self.written(&at.key("environment")) =>
            {
                None
            }
            (None, None) => {
                let p = self
                    .error(
                        Code::MissingKey,
                        format!("secret `{name}` needs `file` or `environment`"),
                    )
                    .at(self.key_span(at), "no source")
                    .help("add `file = \"./path\"` or `environment = \"VARIABLE\"`");
                self.push(p);
                None
            }
            (Some(f), None) => {
                let abs = self.existing_path(&f, &at.key("file"), "secret file")?;
                Some(Secret {
                    file: Some(abs),
                    environment: None,
                })
            }
            (None, Some(var)) => {
                if !self.inputs.vars.contains_key(&var) {
                    let p = self
                        .error(
                            Code::UndefinedVariable,
                            format!("secret `{name}` reads the variable `{var}`, which is not set"),
                        )
                        .at(self.span(&at.key("environment")), "not set")
                        .help(format!(
                            "set `{var}` in the environment or in `.env` beside the project file"
                        ));
                    self.push(p);
                }
                Some(Secret {
                    file: None,
                    environment: Some(var),
                })
            }
        }
    }
}

/// Everything the file declares, for checking references.
struct Declared {
    images: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
    secrets: Vec<String>,
    containers: Vec<String>,
    build_images: Vec<String>,
}

impl Cx<'_> {
    /// Reports a reference to something undefined, with a did-you-mean.
    fn undefined(&mut self, kind: &str, name: &str, at: Span, known: &[String], section: &str) {
        let mut p = self
            .error(
                Code::UndefinedReference,
                format!("{kind} `{name}` is not defined"),
            )
            .at(at, format!("no {kind} `{name}` in `[{section}]`"));
        p = match did_you_mean(name, known.iter().map(String::as_str)) {
            Some(g) => p.help(format!("did you mean `{g}`?")),
            None if known.is_empty() => p.help(format!("declare it as `[{section}.{name}]`")),
            None => p.help(format!(
                "declare it as `[{section}.{name}]`, or use one of: {}",
                known.join(", ")
            )),
        };
        self.push(p);
    }
}

fn is_object_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Removes `.` and `..` components without touching the filesystem.
fn clean(p: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| "missing `/prefix`".to_string())?;
    let ip: std::net::Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (8..=30).contains(p))
        .ok_or_else(|| format!("prefix `/{prefix}` must be a number from 8 to 30"))?;
    let mask = u32::MAX << (32 - u32::from(prefix));
    let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
    if net != ip {
        return Err(format!("host bits are set; the subnet is `{net}/{prefix}`"));
    }
    Ok((net, prefix))
}

fn in_subnet(ip: std::net::Ipv4Addr, net: std::net::Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(ip) & mask == u32::from(net)
}

/// `containers.NAME.key` as a path.
fn field(at: &Path, key: &str) -> Path {
    at.key(key)
}

/// The key at the end of a path.
fn last_key(p: &Path) -> &str {
    match p.0.last() {
        Some(Seg::Key(k)) => k,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("10.90.0.0/24").is_ok());
        assert!(parse_cidr("10.90.0.1/24").is_err_and(|e| e.contains("10.90.0.0/24")));
        assert!(parse_cidr("10.90.0.0").is_err());
        assert!(parse_cidr("10.90.0.0/33").is_err());
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(FsPath::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
    }
}
