//! The flags of `run` and `create` as a [`normal::Container`], the form a
//! project's containers take too, and its create body from the one builder
//! both share, [`container_body`].
//!
//! Values are checked here, so a bad one is a usage error naming its flag.
//! What the user did not give stays unset and is left to the engine, as
//! `docker run` leaves it. What the Docker CLI sends in short forms (`-v`,
//! `--tmpfs`, `-e`, `--add-host`) goes beside the container, in
//! [`CliForms`], and is sent as given.

use std::collections::{BTreeMap, HashMap};

use bollard_stubs::models::ContainerCreateBody;
use servin::project::container_body::{CliForms, container_body};
use servin::project::normal::{self, MountKind};
use servin::project::values::{duration, misc, mount, port, signal, size};

use super::ContainerArgs;
use crate::ui::Failed;

fn usage(msg: String) -> Failed {
    Failed::Usage(msg)
}

fn key_value(flag: &str, v: &str) -> Result<(String, String), Failed> {
    v.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| usage(format!("invalid {flag} {v:?}: want KEY=VALUE")))
}

/// A size that also fits Docker's signed byte counts.
fn size_of(flag: &str, v: &str) -> Result<u64, Failed> {
    let n = size::parse_size(v).map_err(|e| usage(format!("invalid {flag} {v:?}: {e}")))?;
    i64::try_from(n).map_err(|_| usage(format!("invalid {flag} {v:?}: too large")))?;
    Ok(n)
}

/// A duration, checked as the builder will read it.
fn duration_of(flag: &str, v: &str) -> Result<String, Failed> {
    let d = duration::parse_duration(v).map_err(|e| usage(format!("invalid {flag} {v:?}: {e}")))?;
    i64::try_from(d.as_nanos()).map_err(|_| usage(format!("invalid {flag} {v:?}: too long")))?;
    Ok(v.to_string())
}

fn true_or_false(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(format!("`{key}` is true or false, not {other:?}")),
    }
}

/// Docker's `--mount` value: comma-separated `KEY=VALUE` fields.
pub fn parse_mount(v: &str) -> Result<normal::Mount, Failed> {
    let bad = |why: String| usage(format!("invalid --mount {v:?}: {why}"));
    let mut kind = MountKind::Volume;
    let mut source = None;
    let mut target = None;
    let mut read_only = None;
    let mut tmpfs_size = None;
    let mut tmpfs_mode = None;
    let mut no_copy = None;
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let need = || value.ok_or_else(|| bad(format!("`{key}` wants a value (`{key}=...`)")));
        match key {
            "type" => {
                kind = match need()? {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    other => {
                        return Err(bad(format!(
                            "type {other:?} is not one servin mounts: use bind, volume or tmpfs"
                        )));
                    }
                }
            }
            "source" | "src" => source = Some(need()?.to_string()),
            "target" | "destination" | "dst" => target = Some(need()?.to_string()),
            "readonly" | "ro" => read_only = Some(true_or_false(key, value).map_err(bad)?),
            "volume-nocopy" => no_copy = Some(true_or_false(key, value).map_err(bad)?),
            "tmpfs-size" => tmpfs_size = Some(size_of("--mount tmpfs-size", need()?)?),
            "tmpfs-mode" => {
                let m = need()?;
                let bits = u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|n| *n <= 0o7777)
                    .ok_or_else(|| {
                        bad(format!("tmpfs-mode {m:?} is not an octal mode like 1777"))
                    })?;
                // Kept as octal digits, as a project's tmpfs `mode` is.
                tmpfs_mode = format!("{bits:o}").parse().ok();
            }
            other => {
                return Err(bad(format!(
                    "unknown field {other:?}: servin takes type, source, target, readonly, volume-nocopy, tmpfs-size and tmpfs-mode"
                )));
            }
        }
    }
    let target = target.ok_or_else(|| bad("it needs a target (`target=/path`)".to_string()))?;
    let has_tmpfs_options = tmpfs_size.is_some() || tmpfs_mode.is_some();
    let why = match kind {
        MountKind::Tmpfs if source.is_some() => Some("a tmpfs has no source"),
        MountKind::Tmpfs => None,
        _ if has_tmpfs_options => Some("tmpfs-size and tmpfs-mode are for type=tmpfs"),
        MountKind::Bind if source.is_none() => {
            Some("a bind mount needs a source (`source=/host/path`)")
        }
        _ if no_copy.is_some() && kind != MountKind::Volume => {
            Some("volume-nocopy is for type=volume")
        }
        _ => None,
    };
    if let Some(why) = why {
        return Err(bad(why.to_string()));
    }
    Ok(normal::Mount {
        kind,
        source,
        target,
        read_only,
        size: tmpfs_size,
        mode: tmpfs_mode,
        no_copy,
        // `--mount` refuses a missing host folder, as Docker's does.
        create_source: None,
    })
}

/// Splits `-v` values into binds (`SRC:DST[:OPTS]`) and anonymous volumes
/// (`/path`), as Docker's CLI does.
fn split_volumes(values: &[String]) -> Result<(Vec<String>, Vec<String>), Failed> {
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for v in values {
        if !v.contains(':') {
            if !v.starts_with('/') {
                return Err(usage(format!(
                    "invalid -v {v:?}: an anonymous volume needs an absolute path (`/data`); a named one is `NAME:/path`"
                )));
            }
            anonymous.push(v.clone());
            continue;
        }
        match mount::BindSpec::split(v) {
            Some(b) if b.source.is_empty() || !b.target.starts_with('/') => {
                return Err(usage(format!(
                    "invalid -v {v:?}: want [SRC:]DST[:OPTS] with an absolute DST"
                )));
            }
            Some(_) => binds.push(v.clone()),
            None => {
                return Err(usage(format!(
                    "invalid -v {v:?}: too many `:`; want [SRC:]DST[:OPTS]"
                )));
            }
        }
    }
    Ok((binds, anonymous))
}

fn env_file_lines(path: &std::path::Path) -> Result<Vec<String>, Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read the env file {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

impl ContainerArgs {
    /// Docker's create body for these flags, from the builder a project's
    /// containers go through; bad values are usage errors.
    pub fn body(&self) -> Result<ContainerCreateBody, Failed> {
        let (c, forms) = self.container()?;
        container_body(&c, &self.image, &forms).map_err(|e| usage(format!("invalid {e}")))
    }

    /// The container these flags describe, and what goes beside it in the
    /// Docker CLI's short forms.
    pub fn container(&self) -> Result<(normal::Container, CliForms), Failed> {
        let (networks, network_mode) = self.networks()?;
        let (binds, anonymous_volumes) = split_volumes(&self.volume)?;
        let container = normal::Container {
            // Sent as typed: the engine resolves it, as Docker's does.
            image: self.image.clone(),
            command: (!self.command.is_empty()).then(|| self.command.clone()),
            // One program, as Docker takes it; `""` (one empty word) clears it.
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            env: BTreeMap::new(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            ports: self.ports()?,
            volumes: self
                .mount
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<_, _>>()?,
            networks,
            depends_on: BTreeMap::new(),
            healthcheck: self.healthcheck()?,
            restart: self
                .restart
                .as_deref()
                .map(|r| {
                    misc::parse_restart(r)
                        .map(|p| p.to_string())
                        .map_err(|e| usage(format!("invalid --restart: {e}")))
                })
                .transpose()?,
            resources: self.resources()?,
            init: !self.no_init,
            // Checked, then sent as given, as Docker's CLI does.
            stop_signal: self
                .stop_signal
                .as_ref()
                .map(|s| {
                    signal::parse_signal(s)
                        .map(|_| s.clone())
                        .map_err(|e| usage(format!("invalid --stop-signal: {e}")))
                })
                .transpose()?,
            stop_timeout: self.stop_timeout.map(|s| s.to_string()),
            labels: self
                .label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
            tty: self.tty,
            profiles: Vec::new(),
            replicas: 1,
            secrets: Vec::new(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            read_only: self.read_only,
            extra_hosts: BTreeMap::new(),
            sysctls: self
                .sysctl
                .iter()
                .map(|s| key_value("--sysctl", s))
                .collect::<Result<_, _>>()?,
            ulimits: self.ulimits()?,
            shm_size: self
                .shm_size
                .as_deref()
                .map(|s| size_of("--shm-size", s))
                .transpose()?,
            expose: self.expose()?,
            workspace: None,
            stdin_open: Some(self.interactive),
            publish_all: Some(self.publish_all),
            network_mode,
            security_opt: self.security_opt.clone(),
            log_options: self.log_options()?,
        };
        let forms = CliForms {
            env: self.env()?,
            extra_hosts: self.add_host.clone(),
            binds,
            anonymous_volumes,
            tmpfs: self
                .tmpfs
                .iter()
                .map(|t| {
                    let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
                    (path.to_string(), opts.to_string())
                })
                .collect::<HashMap<_, _>>(),
            blank_port_fields: true,
        };
        Ok((container, forms))
    }

    /// `--env-file` lines, then `-e`, in order. `KEY` alone takes this
    /// shell's value; when the shell has none it goes as `KEY`, which
    /// unsets the image's variable, as with Docker.
    fn env(&self) -> Result<Vec<String>, Failed> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(env_file_lines(f)?);
        }
        env.extend(self.env.iter().cloned());
        Ok(env
            .into_iter()
            .map(|e| match std::env::var(&e) {
                Ok(v) if !e.contains('=') => format!("{e}={v}"),
                _ => e,
            })
            .collect())
    }

    /// `-p`, each as Docker's CLI publishes it: a host range for one
    /// container port is kept as a range to take the first free port from.
    fn ports(&self) -> Result<Vec<normal::Port>, Failed> {
        let mut out = Vec::new();
        for spec in &self.publish {
            let (parsed, host_range) = port::parse_publish(spec)
                .map_err(|e| usage(format!("invalid --publish {spec:?}: {e}")))?;
            let host_ip = parsed.host_ip.map(|ip| ip.to_string());
            match host_range {
                Some(range) => out.push(normal::Port {
                    target: parsed.target.start,
                    published: Some(range.start),
                    host_ip,
                    protocol: parsed.protocol,
                    published_end: Some(range.end),
                }),
                None => out.extend(parsed.expand().into_iter().map(|p| normal::Port {
                    target: p.target,
                    published: p.published,
                    host_ip: host_ip.clone(),
                    protocol: parsed.protocol,
                    published_end: None,
                })),
            }
        }
        Ok(out)
    }

    /// `--expose` as `port/protocol`, one per port of a range.
    fn expose(&self) -> Result<Vec<String>, Failed> {
        let mut out = Vec::new();
        for spec in &self.expose {
            let (range, proto) = port::parse_expose(spec)
                .map_err(|e| usage(format!("invalid --expose {spec:?}: {e}")))?;
            out.extend(range.ports().map(|p| format!("{p}/{}", proto.as_str())));
        }
        Ok(out)
    }

    /// `--network`, `--network-alias` and `--ip`: a named network with its
    /// endpoint, or a mode (`bridge`, `host`, `none`) with none.
    fn networks(
        &self,
    ) -> Result<(BTreeMap<String, normal::ContainerNetwork>, Option<String>), Failed> {
        let Some(network) = self.network.as_deref() else {
            if !self.network_alias.is_empty() || self.ip.is_some() {
                return Err(usage(
                    "--network-alias and --ip need a user-defined network, not bridge: create one with `servin network create NAME`".to_string(),
                ));
            }
            return Ok((BTreeMap::new(), None));
        };
        if network.is_empty() {
            return Err(usage(
                "invalid --network \"\": give a network's name".to_string(),
            ));
        }
        if matches!(network, "bridge" | "default" | "none" | "host") {
            if !self.network_alias.is_empty() || self.ip.is_some() {
                return Err(usage(format!(
                    "--network-alias and --ip need a user-defined network, not {network}: create one with `servin network create NAME`"
                )));
            }
            return Ok((BTreeMap::new(), Some(network.to_string())));
        }
        let endpoint = normal::ContainerNetwork {
            aliases: self.network_alias.clone(),
            ipv4_address: self.ip.clone(),
        };
        Ok((BTreeMap::from([(network.to_string(), endpoint)]), None))
    }

    fn healthcheck(&self) -> Result<Option<normal::Healthcheck>, Failed> {
        if self.no_healthcheck {
            return Ok(Some(normal::Healthcheck {
                cmd: vec!["NONE".to_string()],
                interval: None,
                timeout: None,
                retries: None,
                start_period: None,
            }));
        }
        if self.health_cmd.is_none()
            && self.health_interval.is_none()
            && self.health_timeout.is_none()
            && self.health_retries.is_none()
            && self.health_start_period.is_none()
        {
            return Ok(None);
        }
        let duration =
            |flag: &str, v: &Option<String>| v.as_deref().map(|v| duration_of(flag, v)).transpose();
        Ok(Some(normal::Healthcheck {
            cmd: self
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
                .unwrap_or_default(),
            interval: duration("--health-interval", &self.health_interval)?,
            timeout: duration("--health-timeout", &self.health_timeout)?,
            retries: self.health_retries,
            start_period: duration("--health-start-period", &self.health_start_period)?,
        }))
    }

    fn resources(&self) -> Result<normal::Resources, Failed> {
        let memory = self
            .memory
            .as_deref()
            .map(|m| size_of("--memory", m))
            .transpose()?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(
                i64::try_from(size_of("--memory-swap", s)?)
                    .map_err(|_| usage(format!("invalid --memory-swap {s:?}: too large")))?,
            ),
            None => None,
        };
        let cpus = match self.cpus.as_deref() {
            Some(c) => {
                let n: f64 = c.parse().map_err(|_| {
                    usage(format!("invalid --cpus {c:?}: want a number like 0.5 or 2"))
                })?;
                Some(misc::parse_cpus(n).map_err(|e| usage(format!("invalid --cpus: {e}")))?)
            }
            None => None,
        };
        Ok(normal::Resources {
            memory,
            cpus,
            pids: self.pids_limit,
            memory_swap,
        })
    }

    /// `--ulimit NAME=SOFT[:HARD]`, by name: a repeated name keeps the last,
    /// as Docker's CLI keeps its ulimits in a map too.
    fn ulimits(&self) -> Result<BTreeMap<String, normal::Ulimit>, Failed> {
        let mut out = BTreeMap::new();
        for u in &self.ulimit {
            let (name, limits) = key_value("--ulimit", u)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((&limits, &limits));
            let parse = |v: &str| {
                v.parse::<i64>()
                    .map_err(|_| usage(format!("invalid --ulimit {u:?}: limits are whole numbers")))
            };
            let limit = normal::Ulimit {
                soft: parse(soft)?,
                hard: parse(hard)?,
            };
            out.insert(name, limit);
        }
        Ok(out)
    }

    fn log_options(&self) -> Result<BTreeMap<String, String>, Failed> {
        let mut out = BTreeMap::new();
        for o in &self.log_opt {
            let (k, v) = key_value("--log-opt", o)?;
            match k.as_str() {
                "max-size" => {
                    size_of("--log-opt max-size", &v)?;
                }
                "max-file" => {
                    v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        usage(format!(
                            "invalid --log-opt max-file={v}: want a whole number above 0"
                        ))
                    })?;
                }
                other => {
                    return Err(usage(format!(
                        "unknown --log-opt {other:?}: servin takes max-size and max-file"
                    )));
                }
            }
            out.insert(k, v);
        }
        Ok(out)
    }
}
