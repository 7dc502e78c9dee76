//! Normalising one container.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::model::{
    self, Command, ContainerDef, Cpus, DependsOn, ExtraHosts, MountDef, MountKind, Networks,
    PortDef, Size, StringOrInt, UlimitDef,
};
use super::super::normal::{
    Container, ContainerNetwork, Healthcheck, Mount, Port, Resources, Ulimit, Workspace,
};
use super::super::schema::did_you_mean;
use super::super::tree::Path;
use super::super::values::{self, MountSource};
use super::{Cx, Declared, field, last_key};
use crate::project::diagnostic::{Code, Problem, SourceFile};

/// Docker's smallest memory limit.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// Docker's default `/dev/shm` size.
const DEFAULT_SHM: u64 = 64 * 1024 * 1024;
const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl Cx<'_> {
    pub(super) fn container(
        &mut self,
        name: &str,
        def: ContainerDef,
        at: &Path,
        declared: &Declared,
    ) -> Option<Container> {
        let image = self.container_image(def.image, at, declared);
        let command = def
            .command
            .and_then(|c| self.command(c, &field(at, "command")));
        let entrypoint = def
            .entrypoint
            .and_then(|c| self.command(c, &field(at, "entrypoint")));

        let mut env = BTreeMap::new();
        if let Some(files) = def.env_file {
            for (i, rel) in files.into_vec().into_iter().enumerate() {
                let p = if self.has(&field(at, "env_file").index(i)) {
                    field(at, "env_file").index(i)
                } else {
                    field(at, "env_file")
                };
                env.extend(self.env_file(&rel, &p));
            }
        }
        env.extend(self.key_values(def.env, &field(at, "env")));

        let workdir = def
            .workdir
            .filter(|w| self.absolute(w, &field(at, "workdir"), "workdir"));
        let user = def.user.map(|u| u.to_string()).filter(|u| {
            let ok = !u.is_empty() && u.split(':').count() <= 2 && !u.split(':').any(str::is_empty);
            if !ok {
                let p = self
                    .error(Code::InvalidValue, format!("`{u}` is not a user"))
                    .at(
                        self.span(&field(at, "user")),
                        "expected `user`, `uid`, `user:group` or `uid:gid`",
                    );
                self.push(p);
            }
            ok
        });
        let hostname = def.hostname.unwrap_or_else(|| name.to_string());

        let ports = self.ports(def.ports.unwrap_or_default(), &field(at, "ports"));
        let mut volumes = self.mounts(
            def.volumes.unwrap_or_default(),
            &field(at, "volumes"),
            declared,
        );
        if let Some(t) = def.tmpfs {
            volumes.extend(self.tmpfs(t.into_vec(), &field(at, "tmpfs")));
        }
        self.duplicate_targets(&volumes, at);
        let networks = self.container_networks(def.networks, &field(at, "networks"), declared);
        let depends_on = self.depends_on(name, def.depends_on, &field(at, "depends_on"), declared);
        let healthcheck = def
            .healthcheck
            .and_then(|h| self.healthcheck(h, &field(at, "healthcheck")));
        let restart = match def.restart {
            None => "no".to_string(),
            Some(r) => {
                match values::parse_restart(&r) {
                    Ok(policy) => policy.to_string(),
                    Err(e) => {
                        let p = self
                        .error(Code::InvalidValue, format!("`{r}` is not a restart policy"))
                        .at(self.span(&field(at, "restart")), e)
                        .help("use `no`, `on-failure`, `on-failure:N`, `always` or `unless-stopped`");
                        self.push(p);
                        "no".to_string()
                    }
                }
            }
        };
        let resources = def
            .resources
            .map(|r| self.resources(r, &field(at, "resources")))
            .unwrap_or_default();
        let stop_signal = match def.stop_signal {
            None => "SIGTERM".to_string(),
            Some(s) => match values::parse_signal(&s.to_string()) {
                Ok(sig) => sig,
                Err(e) => {
                    let p = self
                        .error(Code::InvalidValue, format!("`{s}` is not a signal"))
                        .at(self.span(&field(at, "stop_signal")), e);
                    self.push(p);
                    "SIGTERM".to_string()
                }
            },
        };
        let stop_timeout = self.duration(
            def.stop_timeout,
            &field(at, "stop_timeout"),
            Duration::from_secs(10),
        );
        let labels = self.key_values(def.labels, &field(at, "labels"));
        let mut profiles = def.profiles.unwrap_or_default();
        for (i, prof) in profiles.iter().enumerate() {
            if !super::is_object_name(prof) {
                let p = self
                    .error(
                        Code::InvalidName,
                        format!("profile name `{prof}` is not valid"),
                    )
                    .at(
                        self.span(&field(at, "profiles").index(i)),
                        "use letters, digits, `_`, `.` and `-`",
                    );
                self.push(p);
            }
        }
        profiles.sort();
        profiles.dedup();
        let mut secrets = def.secrets.unwrap_or_default();
        for (i, s) in secrets.iter().enumerate() {
            if !declared.secrets.contains(s) {
                let span = self.span(&field(at, "secrets").index(i));
                self.undefined("secret", s, span, &declared.secrets, "secrets");
            }
        }
        secrets.sort();
        secrets.dedup();
        let cap_add = self.capabilities(def.cap_add, &field(at, "cap_add"));
        let cap_drop = self.capabilities(def.cap_drop, &field(at, "cap_drop"));
        let extra_hosts = self.extra_hosts(def.extra_hosts, &field(at, "extra_hosts"));
        let sysctls = self.key_values(def.sysctls, &field(at, "sysctls"));
        let ulimits = self.ulimits(def.ulimits.unwrap_or_default(), &field(at, "ulimits"));
        let shm_size = def
            .shm_size
            .and_then(|s| self.size(s, &field(at, "shm_size")))
            .unwrap_or(DEFAULT_SHM);
        let expose = self.expose(def.expose.unwrap_or_default(), &field(at, "expose"));
        let workspace = def
            .workspace
            .and_then(|w| self.workspace(w, &field(at, "workspace"), image.as_deref(), declared));

        Some(Container {
            image: image?,
            command,
            entrypoint,
            env,
            workdir,
            user,
            hostname: Some(hostname),
            ports,
            volumes,
            networks,
            depends_on,
            healthcheck,
            restart: Some(restart),
            resources,
            init: def.init.unwrap_or(true),
            stop_signal: Some(stop_signal),
            stop_timeout: Some(stop_timeout),
            labels,
            tty: def.tty.unwrap_or(false),
            profiles,
            replicas: def.replicas.unwrap_or(1),
            secrets,
            cap_add,
            cap_drop,
            privileged: def.privileged.unwrap_or(false),
            read_only: def.read_only.unwrap_or(false),
            extra_hosts,
            sysctls,
            ulimits,
            shm_size: Some(shm_size),
            expose,
            workspace,
            stdin_open: None,
            publish_all: None,
            network_mode: None,
            security_opt: Vec::new(),
            log_options: BTreeMap::new(),
        })
    }

    /// The key of an `[images]` entry, or a normalised registry reference.
    fn container_image(
        &mut self,
        image: Option<String>,
        at: &Path,
        declared: &Declared,
    ) -> Option<String> {
        let Some(image) = image else {
            if !self.written(&field(at, "image")) {
                let p = self
                    .error(Code::MissingKey, format!("container `{}` needs an `image`", last_key(at)))
                    .at(self.key_span(at), "no `image`")
                    .help("add `image = \"NAME\"` naming an `[images]` entry, or a reference such as `image = \"redis:7\"`");
                self.push(p);
            }
            return None;
        };
        if declared.images.contains(&image) {
            return Some(image);
        }
        let span = self.span(&field(at, "image"));
        let bare = !image.contains(['/', ':', '@']);
        if bare
            && let Some(guess) = did_you_mean(&image, declared.images.iter().map(String::as_str))
        {
            let p = self
                .error(Code::UndefinedReference, format!("image `{image}` is not defined"))
                .at(span, format!("no image `{image}` in `[images]`"))
                .help(format!(
                    "did you mean `{guess}`? (to pull `{image}` from a registry, write `{image}:latest`)"
                ));
            self.push(p);
            return None;
        }
        match values::ImageRef::parse(&image) {
            Ok(r) => Some(r.to_string()),
            Err(e) => {
                let mut p = self
                    .error(
                        Code::InvalidImageRef,
                        format!("`{image}` is not an image reference"),
                    )
                    .at(span, e);
                p = if declared.images.is_empty() {
                    p.help(
                        "write `[registry/]repository[:tag][@sha256:digest]`, e.g. `postgres:16`",
                    )
                } else {
                    p.help(format!(
                        "name an `[images]` entry ({}) or write a reference such as `postgres:16`",
                        declared.images.join(", ")
                    ))
                };
                self.push(p);
                None
            }
        }
    }

    fn command(&mut self, c: Command, at: &Path) -> Option<Vec<String>> {
        match c {
            Command::Args(v) => Some(v),
            Command::Shell(s) => match shell_words::split(&s) {
                Ok(v) => Some(v),
                Err(_) => {
                    let p = self
                        .error(
                            Code::InvalidValue,
                            format!("`{}` has an unclosed quote", last_key(at)),
                        )
                        .at(self.span(at), "unclosed quote")
                        .help("close the quote, or write the command as a list of arguments");
                    self.push(p);
                    None
                }
            },
        }
    }

    fn env_file(&mut self, rel: &str, at: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let abs = self.resolve_path(rel);
        let text = match std::fs::read_to_string(&abs) {
            Ok(t) => t,
            Err(e) => {
                let p = self
                    .error(
                        Code::MissingEnvFile,
                        format!("env file `{rel}` cannot be read"),
                    )
                    .at(self.span(at), format!("{}: {e}", abs.display()))
                    .help("env files are relative to the folder of the project file");
                self.push(p);
                return out;
            }
        };
        match values::parse_dotenv(&text) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    match v {
                        Some(v) => {
                            out.insert(k, v);
                        }
                        None => {
                            if let Some(v) = self.inputs.vars.get(&k) {
                                out.insert(k, v.clone());
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let file = SourceFile::new(abs.to_string_lossy(), text);
                let p = Problem::error(
                    &file,
                    Code::InvalidEnvFile,
                    format!("env file `{rel}` has a bad line {}", e.line),
                )
                .at(super::Span::new(e.start, e.end), e.message.clone())
                .help("lines are `KEY=VALUE`, `export KEY=VALUE` or `# comment`");
                self.push(p);
                let p = self
                    .error(
                        Code::InvalidEnvFile,
                        format!("env file `{rel}` could not be read"),
                    )
                    .at(self.span(at), "used here");
                self.push(p);
            }
        }
        out
    }

    fn absolute(&mut self, path: &str, at: &Path, what: &str) -> bool {
        if path.starts_with('/') {
            return true;
        }
        let p = self
            .error(
                Code::InvalidValue,
                format!("{what} `{path}` is not an absolute path"),
            )
            .at(self.span(at), "must start with `/`")
            .help(format!(
                "paths inside the container are absolute: `/{}`",
                path.trim_start_matches("./")
            ));
        self.push(p);
        false
    }

    fn ports(&mut self, defs: Vec<PortDef>, at: &Path) -> Vec<Port> {
        let mut out = Vec::new();
        for (i, def) in defs.into_iter().enumerate() {
            let item = at.index(i);
            match def {
                PortDef::Short(s) => match values::parse_port(&s) {
                    Ok(spec) => out.extend(spec.expand().into_iter().map(|p| Port {
                        target: p.target,
                        published: p.published,
                        host_ip: p.host_ip.map(|ip| ip.to_string()),
                        protocol: p.protocol,
                        published_end: None,
                    })),
                    Err(e) => {
                        let p = self
                            .error(Code::InvalidPort, format!("`{s}` is not a port mapping"))
                            .at(self.span(&item), e)
                            .help("write `[host_ip:][host_port:]container_port[/protocol]`, e.g. `8080:80` or `127.0.0.1:5353:53/udp`");
                        self.push(p);
                    }
                },
                PortDef::Number(n) => match u16::try_from(n).ok().filter(|n| *n > 0) {
                    Some(target) => out.push(Port {
                        target,
                        published: None,
                        host_ip: None,
                        protocol: values::Protocol::Tcp,
                        published_end: None,
                    }),
                    None => {
                        let p = self
                            .error(Code::InvalidPort, format!("`{n}` is not a port"))
                            .at(self.span(&item), "ports are 1 to 65535");
                        self.push(p);
                    }
                },
                PortDef::Table(t) => {
                    let host_ip = match t.host_ip {
                        None => None,
                        Some(ip) => match ip.parse::<std::net::IpAddr>() {
                            Ok(a) => Some(a.to_string()),
                            Err(_) => {
                                let p = self
                                    .error(
                                        Code::InvalidPort,
                                        format!("`{ip}` is not an IP address"),
                                    )
                                    .at(self.span(&item.key("host_ip")), "not an IP address");
                                self.push(p);
                                continue;
                            }
                        },
                    };
                    // The schema keeps both in 1..=65535.
                    let (Ok(target), published) = (
                        u16::try_from(t.target),
                        t.published.and_then(|p| u16::try_from(p).ok()),
                    ) else {
                        continue;
                    };
                    out.push(Port {
                        target,
                        published,
                        host_ip,
                        protocol: match t.protocol {
                            None | Some(model::Protocol::Tcp) => values::Protocol::Tcp,
                            Some(model::Protocol::Udp) => values::Protocol::Udp,
                            Some(model::Protocol::Sctp) => values::Protocol::Sctp,
                        },
                        published_end: None,
                    });
                }
            }
        }
        out
    }

    fn mounts(&mut self, defs: Vec<MountDef>, at: &Path, declared: &Declared) -> Vec<Mount> {
        let mut out = Vec::new();
        for (i, def) in defs.into_iter().enumerate() {
            let item = at.index(i);
            match def {
                MountDef::Short(s) => match values::parse_mount(&s) {
                    Ok(spec) => {
                        let mut create_source = None;
                        let (kind, source) = match spec.source {
                            MountSource::Volume(name) => {
                                if !declared.volumes.contains(&name) {
                                    let span = self.span(&item);
                                    self.undefined(
                                        "volume",
                                        &name,
                                        span,
                                        &declared.volumes,
                                        "volumes",
                                    );
                                    continue;
                                }
                                (MountKind::Volume, Some(name))
                            }
                            // The short form makes a missing host folder at
                            // `up`, as Docker and Compose do.
                            MountSource::Bind(path) => {
                                let abs = self.resolve_path(&path);
                                let docker_socket = matches!(
                                    path.as_str(),
                                    "/var/run/docker.sock" | "/run/docker.sock"
                                );
                                create_source = (!abs.exists() && !docker_socket).then_some(true);
                                (MountKind::Bind, Some(abs.to_string_lossy().into_owned()))
                            }
                            MountSource::Anonymous => (MountKind::Volume, None),
                        };
                        out.push(Mount {
                            kind,
                            source,
                            target: spec.target,
                            read_only: Some(spec.read_only),
                            size: None,
                            mode: None,
                            no_copy: None,
                            create_source,
                        });
                    }
                    Err(e) => {
                        let p = self
                            .error(Code::InvalidVolume, format!("`{s}` is not a mount"))
                            .at(self.span(&item), e)
                            .help("write `volume:/path[:ro]`, `./host/path:/path[:ro]` or `/path`");
                        self.push(p);
                    }
                },
                MountDef::Table(t) => {
                    if !self.absolute(&t.target, &item.key("target"), "mount target") {
                        continue;
                    }
                    let read_only = t.read_only.unwrap_or(false);
                    match t.kind {
                        MountKind::Volume => {
                            if let Some(name) = &t.source
                                && !declared.volumes.contains(name)
                            {
                                let span = self.span(&item.key("source"));
                                self.undefined("volume", name, span, &declared.volumes, "volumes");
                                continue;
                            }
                            self.tmpfs_only(&item);
                            out.push(Mount {
                                kind: MountKind::Volume,
                                source: t.source,
                                target: t.target,
                                read_only: Some(read_only),
                                size: None,
                                mode: None,
                                no_copy: None,
                                create_source: None,
                            });
                        }
                        MountKind::Bind => {
                            let Some(src) = &t.source else {
                                let p = self
                                    .error(Code::MissingKey, "a bind mount needs a `source`")
                                    .at(self.span(&item), "no `source`")
                                    .help("add `source = \"./host/path\"`");
                                self.push(p);
                                continue;
                            };
                            self.tmpfs_only(&item);
                            // Docker's socket is the engine's own at `up`
                            // (see the engine's create), so it need not be
                            // on this machine.
                            let docker_socket =
                                matches!(src.as_str(), "/var/run/docker.sock" | "/run/docker.sock");
                            let found = if docker_socket {
                                Some(src.clone())
                            } else {
                                self.existing_path(src, &item.key("source"), "bind-mount source")
                            };
                            let Some(abs) = found else {
                                continue;
                            };
                            out.push(Mount {
                                kind: MountKind::Bind,
                                source: Some(abs),
                                target: t.target,
                                read_only: Some(read_only),
                                size: None,
                                mode: None,
                                no_copy: None,
                                create_source: None,
                            });
                        }
                        MountKind::Tmpfs => {
                            if t.source.is_some() {
                                let p = self
                                    .error(Code::ConflictingKeys, "a tmpfs mount has no `source`")
                                    .at(self.key_span(&item.key("source")), "remove this")
                                    .help("a tmpfs lives in memory; only `target`, `size`, `mode` and `read_only` apply");
                                self.push(p);
                                continue;
                            }
                            let size = t.size.and_then(|s| self.size(s, &item.key("size")));
                            let mode = t.mode.and_then(|m| self.octal_mode(m, &item.key("mode")));
                            out.push(Mount {
                                kind: MountKind::Tmpfs,
                                source: None,
                                target: t.target,
                                read_only: Some(read_only),
                                size,
                                mode,
                                no_copy: None,
                                create_source: None,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// `size` and `mode` belong to tmpfs mounts only.
    fn tmpfs_only(&mut self, item: &Path) {
        for key in ["size", "mode"] {
            if self.has(&item.key(key)) {
                let p = self
                    .error(
                        Code::ConflictingKeys,
                        format!("`{key}` applies to tmpfs mounts only"),
                    )
                    .at(self.key_span(&item.key(key)), "only for `type = \"tmpfs\"`")
                    .help(format!(
                        "remove `{key}`, or make the mount `type = \"tmpfs\"`"
                    ));
                self.push(p);
            }
        }
    }

    /// A tmpfs `mode` is written as octal digits (`1777`), and kept so in
    /// the canonical form.
    fn octal_mode(&mut self, m: u32, at: &Path) -> Option<u32> {
        match u32::from_str_radix(&m.to_string(), 8) {
            Ok(v) if v <= 0o7777 => Some(m),
            _ => {
                let p = self
                    .error(Code::InvalidValue, format!("`{m}` is not a file mode"))
                    .at(self.span(at), "expected octal digits, e.g. 1777 or 755");
                self.push(p);
                None
            }
        }
    }

    fn tmpfs(&mut self, items: Vec<String>, at: &Path) -> Vec<Mount> {
        let mut out = Vec::new();
        for (i, s) in items.into_iter().enumerate() {
            let item = if self.has(&at.index(i)) {
                at.index(i)
            } else {
                at.clone()
            };
            match values::parse_tmpfs(&s) {
                Ok(t) => out.push(Mount {
                    kind: MountKind::Tmpfs,
                    source: None,
                    target: t.target,
                    read_only: Some(false),
                    size: t.size,
                    // Kept as octal digits, as the table form writes it.
                    mode: t.mode.and_then(|m| format!("{m:o}").parse().ok()),
                    no_copy: None,
                    create_source: None,
                }),
                Err(e) => {
                    let p = self
                        .error(Code::InvalidVolume, format!("`{s}` is not a tmpfs mount"))
                        .at(self.span(&item), e)
                        .help("write `/path` or `/path:size=64m,mode=1777`");
                    self.push(p);
                }
            }
        }
        out
    }

    fn duplicate_targets(&mut self, mounts: &[Mount], at: &Path) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, m) in mounts.iter().enumerate() {
            if seen.insert(m.target.as_str(), i).is_some() {
                let p = self
                    .error(Code::InvalidVolume, format!("two mounts at `{}`", m.target))
                    .at(
                        self.key_span(&field(at, "volumes")),
                        format!("`{}` is mounted twice", m.target),
                    )
                    .help("each path in the container takes one mount");
                self.push(p);
            }
        }
    }

    fn container_networks(
        &mut self,
        def: Option<Networks>,
        at: &Path,
        declared: &Declared,
    ) -> BTreeMap<String, ContainerNetwork> {
        let list: Vec<(String, Vec<String>, Path)> = match def {
            None => vec![("default".into(), Vec::new(), at.clone())],
            Some(Networks::List(names)) => names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n, Vec::new(), at.index(i)))
                .collect(),
            Some(Networks::Table(t)) => t
                .into_iter()
                .map(|(n, d)| {
                    let p = at.key(&n);
                    (n, d.aliases.unwrap_or_default(), p)
                })
                .collect(),
        };
        let mut out = BTreeMap::new();
        for (name, mut aliases, path) in list {
            if name != "default" && !declared.networks.contains(&name) {
                let span = if matches!(path.0.last(), Some(super::Seg::Key(_))) {
                    self.key_span(&path)
                } else {
                    self.span(&path)
                };
                self.undefined("network", &name, span, &declared.networks, "networks");
                continue;
            }
            for (i, a) in aliases.iter().enumerate() {
                if let Some(why) = values::dns_label_error(a) {
                    let p = self
                        .error(Code::InvalidName, format!("alias `{a}` is not valid"))
                        .at(self.span(&path.key("aliases").index(i)), why);
                    self.push(p);
                }
            }
            aliases.sort();
            aliases.dedup();
            out.insert(
                name,
                ContainerNetwork {
                    aliases,
                    ipv4_address: None,
                },
            );
        }
        out
    }

    fn depends_on(
        &mut self,
        me: &str,
        def: Option<DependsOn>,
        at: &Path,
        declared: &Declared,
    ) -> BTreeMap<String, model::Condition> {
        let list: Vec<(String, model::Condition, Path)> = match def {
            None => Vec::new(),
            Some(DependsOn::List(names)) => names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n, model::Condition::Started, at.index(i)))
                .collect(),
            Some(DependsOn::Table(t)) => t
                .into_iter()
                .map(|(n, c)| {
                    let p = at.key(&n);
                    (n, c, p)
                })
                .collect(),
        };
        let mut out = BTreeMap::new();
        for (name, cond, path) in list {
            let span = if matches!(path.0.last(), Some(super::Seg::Key(_))) {
                self.key_span(&path)
            } else {
                self.span(&path)
            };
            if name == me {
                let p = self
                    .error(
                        Code::DependencyCycle,
                        format!("container `{me}` depends on itself"),
                    )
                    .at(span, "a container cannot wait for itself")
                    .help(format!("remove `{me}` from its own `depends_on`"));
                self.push(p);
                continue;
            }
            if !declared.containers.contains(&name) {
                self.undefined("container", &name, span, &declared.containers, "containers");
                continue;
            }
            out.insert(name, cond);
        }
        out
    }

    fn healthcheck(&mut self, h: model::HealthcheckDef, at: &Path) -> Option<Healthcheck> {
        let cmd = match h.cmd {
            None => {
                let p = self
                    .error(Code::MissingKey, "a healthcheck needs a `cmd`")
                    .at(self.key_span(at), "no `cmd`")
                    .help("add `cmd = \"curl -f http://localhost/\"` or a list of arguments");
                self.push(p);
                return None;
            }
            Some(Command::Shell(s)) => vec!["CMD-SHELL".to_string(), s],
            Some(Command::Args(v)) => match v.first().map(String::as_str) {
                None => {
                    let p = self
                        .error(Code::InvalidValue, "the healthcheck `cmd` is empty")
                        .at(self.span(&at.key("cmd")), "empty command");
                    self.push(p);
                    return None;
                }
                Some("CMD") if v.len() > 1 => v,
                Some("CMD-SHELL") if v.len() == 2 => v,
                Some("CMD" | "CMD-SHELL" | "NONE") => {
                    let p = self
                        .error(Code::InvalidValue, "the healthcheck `cmd` is malformed")
                        .at(
                            self.span(&at.key("cmd")),
                            "`CMD` takes arguments, `CMD-SHELL` exactly one string",
                        )
                        .help("to have no healthcheck, leave `healthcheck` out");
                    self.push(p);
                    return None;
                }
                Some(_) => std::iter::once("CMD".to_string()).chain(v).collect(),
            },
        };
        let interval = self.duration(h.interval, &at.key("interval"), Duration::from_secs(30));
        let timeout = self.duration(h.timeout, &at.key("timeout"), Duration::from_secs(30));
        let start_period = self.duration(h.start_period, &at.key("start_period"), Duration::ZERO);
        Some(Healthcheck {
            cmd,
            interval: Some(interval),
            timeout: Some(timeout),
            retries: Some(i64::from(h.retries.unwrap_or(3))),
            start_period: Some(start_period),
        })
    }

    /// A duration in canonical form; `default` when absent or invalid.
    fn duration(&mut self, s: Option<String>, at: &Path, default: Duration) -> String {
        let d = match s {
            None => default,
            Some(s) => match values::parse_duration(&s) {
                Ok(d) => d,
                Err(e) => {
                    let p = self
                        .error(Code::InvalidDuration, format!("`{s}` is not a duration"))
                        .at(self.span(at), e)
                        .help("write a number and a unit, e.g. `250ms`, `10s`, `1m30s`");
                    self.push(p);
                    default
                }
            },
        };
        values::format_duration(d)
    }

    fn size(&mut self, s: Size, at: &Path) -> Option<u64> {
        match s {
            Size::Bytes(b) => Some(b),
            Size::Text(t) => match values::parse_size(&t) {
                Ok(b) => Some(b),
                Err(e) => {
                    let p = self
                        .error(Code::InvalidSize, format!("`{t}` is not a size"))
                        .at(self.span(at), e)
                        .help("write bytes or a number and a unit, e.g. `512m`, `1g`, `1.5GiB`");
                    self.push(p);
                    None
                }
            },
        }
    }

    fn resources(&mut self, r: model::ResourcesDef, at: &Path) -> Resources {
        let memory = r.memory.and_then(|m| self.size(m, &at.key("memory")));
        let memory = memory.filter(|m| {
            if *m < MIN_MEMORY {
                let p = self
                    .error(Code::InvalidSize, "the memory limit is below 6m")
                    .at(
                        self.span(&at.key("memory")),
                        format!("{m} bytes is too little to start a container"),
                    )
                    .help("use at least `6m`");
                self.push(p);
                return false;
            }
            true
        });
        let cpus = r.cpus.and_then(|c| {
            let parsed = match &c {
                Cpus::Number(n) => Ok(*n),
                Cpus::Text(t) => t
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("`{t}` is not a number")),
            };
            match parsed.and_then(values::parse_cpus) {
                Ok(n) => Some(n),
                Err(e) => {
                    let p = self
                        .error(Code::InvalidValue, "the CPU limit is not valid")
                        .at(self.span(&at.key("cpus")), e)
                        .help("write a positive number of CPUs, e.g. `cpus = 1.5`");
                    self.push(p);
                    None
                }
            }
        });
        Resources {
            memory,
            cpus,
            pids: r.pids,
            memory_swap: None,
        }
    }

    fn capabilities(&mut self, caps: Option<Vec<String>>, at: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in caps.unwrap_or_default().into_iter().enumerate() {
            match values::normalize_capability(&c) {
                Ok(n) => out.push(n),
                Err(e) => {
                    let p = self
                        .error(
                            Code::InvalidValue,
                            format!("`{c}` is not a Linux capability"),
                        )
                        .at(self.span(&at.index(i)), e);
                    self.push(p);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn extra_hosts(&mut self, def: Option<ExtraHosts>, at: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match def {
            None => {}
            Some(ExtraHosts::List(items)) => {
                for (i, s) in items.into_iter().enumerate() {
                    match values::parse_extra_host(&s) {
                        Ok((h, ip)) => {
                            out.insert(h, ip.to_string());
                        }
                        Err(e) => {
                            let p = self
                                .error(Code::InvalidValue, format!("`{s}` is not a host entry"))
                                .at(self.span(&at.index(i)), e)
                                .help("write `host:ip`, e.g. `db.local:10.0.0.5`");
                            self.push(p);
                        }
                    }
                }
            }
            Some(ExtraHosts::Table(t)) => {
                for (h, ip) in t {
                    match values::parse_extra_host(&format!("{h}={ip}")) {
                        Ok((h, ip)) => {
                            out.insert(h, ip.to_string());
                        }
                        Err(e) => {
                            let p = self
                                .error(
                                    Code::InvalidValue,
                                    format!("`{h} = \"{ip}\"` is not a host entry"),
                                )
                                .at(self.span(&at.key(&h)), e);
                            self.push(p);
                        }
                    }
                }
            }
        }
        out
    }

    fn ulimits(
        &mut self,
        defs: BTreeMap<String, UlimitDef>,
        at: &Path,
    ) -> BTreeMap<String, Ulimit> {
        let mut out = BTreeMap::new();
        for (name, def) in defs {
            let item = at.key(&name);
            if !ULIMITS.contains(&name.as_str()) {
                let mut p = self
                    .error(
                        Code::InvalidValue,
                        format!("`{name}` is not a process limit"),
                    )
                    .at(self.key_span(&item), "unknown limit");
                p = match did_you_mean(&name, ULIMITS.iter().copied()) {
                    Some(g) => p.help(format!("did you mean `{g}`?")),
                    None => p.help(format!("the limits are: {}", ULIMITS.join(", "))),
                };
                self.push(p);
                continue;
            }
            let (soft, hard) = match def {
                UlimitDef::Both(n) => (n, n),
                UlimitDef::Pair(p) => (p.soft, p.hard),
            };
            if soft > hard || soft < -1 {
                let p = self
                    .error(Code::InvalidValue, format!("ulimit `{name}` is not valid"))
                    .at(
                        self.span(&item),
                        if soft > hard {
                            "`soft` is above `hard`"
                        } else {
                            "limits are -1 (unlimited) or more"
                        },
                    );
                self.push(p);
                continue;
            }
            out.insert(name, Ulimit { soft, hard });
        }
        out
    }

    fn expose(&mut self, items: Vec<StringOrInt>, at: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for (i, e) in items.into_iter().enumerate() {
            let s = e.to_string();
            match values::parse_expose(&s) {
                Ok((range, proto)) => {
                    for port in range.start..=range.end {
                        out.push(format!("{port}/{proto}"));
                    }
                }
                Err(err) => {
                    let p = self
                        .error(Code::InvalidPort, format!("`{s}` is not a port to expose"))
                        .at(self.span(&at.index(i)), err)
                        .help("write a port, a range or a port with a protocol: `8080`, `9000-9002`, `53/udp`");
                    self.push(p);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn workspace(
        &mut self,
        w: model::WorkspaceDef,
        at: &Path,
        image: Option<&str>,
        declared: &Declared,
    ) -> Option<Workspace> {
        let mut ok = true;
        for key in ["source", "target"] {
            if !self.has(&at.key(key)) {
                let p = self
                    .error(Code::MissingKey, format!("a workspace needs a `{key}`"))
                    .at(self.key_span(at), format!("no `{key}`"))
                    .help("write `workspace = { source = \"./src\", target = \"/app/src\" }`");
                self.push(p);
                ok = false;
            }
        }
        let source = w
            .source
            .and_then(|s| self.existing_path(&s, &at.key("source"), "workspace source"));
        let target = w
            .target
            .filter(|t| self.absolute(t, &at.key("target"), "workspace target"));
        let on_change = w.on_change.unwrap_or(model::OnChange::None);
        if on_change == model::OnChange::Rebuild
            && let Some(img) = image
            && !declared.build_images.iter().any(|b| b == img)
        {
            let p = self
                .error(
                    Code::InvalidValue,
                    "`on_change = \"rebuild\"` needs an image that is built",
                )
                .at(
                    self.span(&at.key("on_change")),
                    format!("`{img}` is pulled, not built"),
                )
                .help("use an `[images]` entry with `build`, or `on_change = \"restart\"`");
            self.push(p);
            ok = false;
        }
        if let model::OnChange::Exec { exec: cmd } = &on_change
            && cmd.first().is_none_or(|c| c.is_empty())
        {
            let p = self
                .error(
                    Code::InvalidValue,
                    "`on_change = { exec = [...] }` needs a command",
                )
                .at(self.span(&at.key("on_change")), "no command")
                .help("write `on_change = { exec = [\"npm\", \"run\", \"build\"] }`");
            self.push(p);
            ok = false;
        }
        let (Some(source), Some(target), true) = (source, target, ok) else {
            return None;
        };
        let mut ignore = w.ignore.unwrap_or_default();
        ignore.dedup();
        Some(Workspace {
            source,
            target,
            mode: w.mode.unwrap_or(model::WorkspaceMode::Bind),
            ignore,
            on_change,
            uid: w.uid,
            gid: w.gid,
        })
    }
}
