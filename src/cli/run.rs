//! `servin run` and `servin create`: the container flags, their mapping to
//! Docker's create body, and running attached.

use std::collections::HashMap;

use bollard_stubs::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, Mount, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkingConfig,
    PortBinding, PortMap, ResourcesUlimits,
};
use servin::project::desired;
use servin::project::values::{duration, misc, mount, port, signal, size};

use super::stream;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// How a container is made; shared by `run` and `create`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ContainerArgs {
    /// Name the container [default: a random `adjective_noun`]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to pass this
    /// shell's value, unsetting the image's when this shell has none);
    /// repeat for more
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of `KEY=VALUE` lines
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Mount a named volume (`NAME:/path[:ro]`, made when missing), a host
    /// folder or file (`/host/path:/path[:ro]`), or a new anonymous volume
    /// (`/path`, removed with the container by `rm -v` and `--rm`); repeat
    /// for more
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:OPTS]")]
    pub volume: Vec<String>,
    /// Mount in Docker's long form, e.g.
    /// `type=bind,source=/src,target=/app,readonly`,
    /// `type=volume,source=data,target=/data,volume-nocopy` (no source: an
    /// anonymous volume) or `type=tmpfs,target=/cache,tmpfs-size=64m`;
    /// repeat for more
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub mount: Vec<String>,
    /// Mount a tmpfs at a path (`/path[:options]`, e.g. `/tmp:size=64m`)
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// The working folder of the command (created when missing)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user: `name`, `uid`, `name:group` or `uid:gid`
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Replace the image's entrypoint with this program (one word: give
    /// its arguments as the command; `""` clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Run the init as PID 1, forwarding signals and reaping zombies (the
    /// default)
    #[arg(long, overrides_with = "no_init")]
    pub init: bool,
    /// Run the command itself as PID 1
    #[arg(long = "no-init", overrides_with = "init")]
    pub no_init: bool,
    /// Memory limit, e.g. `256m`, `1g` (at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit (`-1` for no limit) [default: twice --memory]
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU limit, e.g. `0.5` or `2`
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    /// Most processes the container may have (`-1` for no limit)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep standard input open and send this terminal's input to it
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The container's hostname [default: the first 12 digits of its ID]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Set a label (`KEY=VALUE`); repeat for more
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Restart policy: `no`, `on-failure[:N]`, `always`, `unless-stopped`
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Add a capability (`NET_ADMIN`, `ALL`, ...)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (`NET_RAW`, `ALL`, ...)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give every capability and access to all devices
    #[arg(long)]
    pub privileged: bool,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Add a line to /etc/hosts: `NAME:IP`
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Set a namespaced sysctl (`net.ipv4.ip_forward=1`)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Set a resource limit: `NAME=SOFT[:HARD]` (e.g. `nofile=1024:2048`)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm, e.g. `128m` [default: 64m]
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Security options: `no-new-privileges`
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// The signal that stops the container [default: SIGTERM]
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL [default: 10]
    #[arg(long = "stop-timeout", value_name = "SECS")]
    pub stop_timeout: Option<i64>,
    /// Health check command, run by a shell
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between health checks, e.g. `30s`
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Time a health check may take, e.g. `30s`
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long = "health-retries", value_name = "N")]
    pub health_retries: Option<i64>,
    /// Time after the start when failures do not count, e.g. `10s`
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Turn off the image's health check
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// The network to join: a network's name or ID, `bridge` (the default
    /// network), `none` (loopback only) or `host` (the host's network)
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// Another name for the container on its network (not on the default
    /// `bridge` network); repeat for more
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// A fixed IPv4 address on its network (not on the default `bridge`
    /// network)
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Publish a container port on the host:
    /// `[IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/tcp|udp]`, e.g. `8080:80`,
    /// `127.0.0.1:5353:53/udp`, `8000-8010:80` (the first free host port of
    /// the range) or `80` (a random host port); repeat for more
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST:]CONTAINER[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish every exposed port (the image's and `--expose`) on a random
    /// host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a container port or range without publishing it (`80`,
    /// `9000-9002/udp`); with `-P` it is published
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Log options: `max-size=SIZE`, `max-file=N`
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// The image, e.g. `busybox:1.36`
    pub image: String,
    /// The command and its arguments [default: the image's]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn usage(msg: String) -> Failed {
    Failed::Usage(msg)
}

fn key_value(flag: &str, v: &str) -> Result<(String, String), Failed> {
    v.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| usage(format!("invalid {flag} {v:?}: want KEY=VALUE")))
}

fn size_of(flag: &str, v: &str) -> Result<i64, Failed> {
    let n = size::parse_size(v).map_err(|e| usage(format!("invalid {flag} {v:?}: {e}")))?;
    i64::try_from(n).map_err(|_| usage(format!("invalid {flag} {v:?}: too large")))
}

fn nanos_of(flag: &str, v: &str) -> Result<i64, Failed> {
    let d = duration::parse_duration(v).map_err(|e| usage(format!("invalid {flag} {v:?}: {e}")))?;
    i64::try_from(d.as_nanos()).map_err(|_| usage(format!("invalid {flag} {v:?}: too long")))
}

/// Docker's `--mount` value: comma-separated `KEY=VALUE` fields.
pub fn parse_mount(v: &str) -> Result<Mount, Failed> {
    let bad = |why: String| usage(format!("invalid --mount {v:?}: {why}"));
    let mut typ = MountType::VOLUME;
    let mut source = None;
    let mut target = None;
    let mut read_only = None;
    let mut tmpfs = MountTmpfsOptions::default();
    let mut no_copy = None;
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let need = || value.ok_or_else(|| bad(format!("`{key}` wants a value (`{key}=...`)")));
        match key {
            "type" => {
                typ = match need()? {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    other => {
                        return Err(bad(format!(
                            "type {other:?} is not one servin mounts: use bind, volume or tmpfs"
                        )));
                    }
                }
            }
            "source" | "src" => source = Some(need()?.to_string()),
            "target" | "destination" | "dst" => target = Some(need()?.to_string()),
            "readonly" | "ro" => {
                read_only = Some(match value {
                    None | Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    Some(other) => {
                        return Err(bad(format!("`{key}` is true or false, not {other:?}")));
                    }
                })
            }
            "volume-nocopy" => {
                no_copy = Some(match value {
                    None | Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    Some(other) => {
                        return Err(bad(format!("`{key}` is true or false, not {other:?}")));
                    }
                })
            }
            "tmpfs-size" => tmpfs.size_bytes = Some(size_of("--mount tmpfs-size", need()?)?),
            "tmpfs-mode" => {
                let m = need()?;
                tmpfs.mode = Some(
                    i64::from_str_radix(m, 8)
                        .ok()
                        .filter(|n| (0..=0o7777).contains(n))
                        .ok_or_else(|| {
                            bad(format!("tmpfs-mode {m:?} is not an octal mode like 1777"))
                        })?,
                );
            }
            other => {
                return Err(bad(format!(
                    "unknown field {other:?}: servin takes type, source, target, readonly, volume-nocopy, tmpfs-size and tmpfs-mode"
                )));
            }
        }
    }
    let target = target.ok_or_else(|| bad("it needs a target (`target=/path`)".to_string()))?;
    let why = match typ {
        MountType::TMPFS if source.is_some() => Some("a tmpfs has no source"),
        MountType::TMPFS => None,
        _ if tmpfs != MountTmpfsOptions::default() => {
            Some("tmpfs-size and tmpfs-mode are for type=tmpfs")
        }
        MountType::BIND if source.is_none() => {
            Some("a bind mount needs a source (`source=/host/path`)")
        }
        _ if no_copy.is_some() && typ != MountType::VOLUME => {
            Some("volume-nocopy is for type=volume")
        }
        _ => None,
    };
    if let Some(why) = why {
        return Err(bad(why.to_string()));
    }
    let is_tmpfs = typ == MountType::TMPFS;
    Ok(Mount {
        target: Some(target),
        source,
        typ: Some(typ),
        read_only,
        tmpfs_options: is_tmpfs.then_some(tmpfs),
        volume_options: no_copy.map(|n| MountVolumeOptions {
            no_copy: Some(n),
            ..Default::default()
        }),
        ..Default::default()
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
    /// Docker's create body for these flags; bad values are usage errors.
    /// `-p` and `--expose` as Docker's `PortBindings` and `ExposedPorts`
    /// (every published container port is exposed too).
    fn ports(&self) -> Result<(PortMap, Vec<String>), Failed> {
        let mut map = PortMap::new();
        let mut exposed = Vec::new();
        for spec in &self.publish {
            let (parsed, host_range) = port::parse_publish(spec)
                .map_err(|e| usage(format!("invalid --publish {spec:?}: {e}")))?;
            let host_ip = parsed.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
            let proto = parsed.protocol.as_str();
            let pairs: Vec<(u16, String)> = match host_range {
                Some(range) => vec![(parsed.target.start, range.to_string())],
                None => parsed
                    .expand()
                    .into_iter()
                    .map(|p| {
                        (
                            p.target,
                            p.published.map(|h| h.to_string()).unwrap_or_default(),
                        )
                    })
                    .collect(),
            };
            for (target, host_port) in pairs {
                let key = format!("{target}/{proto}");
                if !exposed.contains(&key) {
                    exposed.push(key.clone());
                }
                map.entry(key)
                    .or_insert(None)
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: Some(host_ip.clone()),
                        host_port: Some(host_port),
                    });
            }
        }
        for spec in &self.expose {
            let (range, proto) = port::parse_expose(spec)
                .map_err(|e| usage(format!("invalid --expose {spec:?}: {e}")))?;
            for p in range.ports() {
                let key = format!("{p}/{}", proto.as_str());
                if !exposed.contains(&key) {
                    exposed.push(key);
                }
            }
        }
        Ok((map, exposed))
    }

    pub fn body(&self) -> Result<ContainerCreateBody, Failed> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(env_file_lines(f)?);
        }
        env.extend(self.env.iter().cloned());
        // `KEY` alone takes this shell's value; when the shell has none it
        // goes as `KEY`, which unsets the image's variable, as with Docker.
        let env: Vec<String> = env
            .into_iter()
            .map(|e| match std::env::var(&e) {
                Ok(v) if !e.contains('=') => format!("{e}={v}"),
                _ => e,
            })
            .collect();
        let mut labels = HashMap::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let memory = self
            .memory
            .as_deref()
            .map(|m| size_of("--memory", m))
            .transpose()?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(size_of("--memory-swap", s)?),
            None => None,
        };
        let nano_cpus = match self.cpus.as_deref() {
            Some(c) => {
                let n: f64 = c.parse().map_err(|_| {
                    usage(format!("invalid --cpus {c:?}: want a number like 0.5 or 2"))
                })?;
                let n = misc::parse_cpus(n).map_err(|e| usage(format!("invalid --cpus: {e}")))?;
                Some((n * 1e9).round() as i64)
            }
            None => None,
        };
        let restart_policy = self
            .restart
            .as_deref()
            .map(|r| {
                misc::parse_restart(r)
                    .map(desired::restart_policy)
                    .map_err(|e| usage(format!("invalid --restart: {e}")))
            })
            .transpose()?;
        let mut sysctls = HashMap::new();
        for s in &self.sysctl {
            let (k, v) = key_value("--sysctl", s)?;
            sysctls.insert(k, v);
        }
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            let (name, limits) = key_value("--ulimit", u)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((&limits, &limits));
            let parse = |v: &str| {
                v.parse::<i64>()
                    .map_err(|_| usage(format!("invalid --ulimit {u:?}: limits are whole numbers")))
            };
            ulimits.push(ResourcesUlimits {
                name: Some(name),
                soft: Some(parse(soft)?),
                hard: Some(parse(hard)?),
            });
        }
        let mut tmpfs = HashMap::new();
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            tmpfs.insert(path.to_string(), opts.to_string());
        }
        let mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut log_opts = HashMap::new();
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
            log_opts.insert(k, v);
        }
        let healthcheck = if self.no_healthcheck {
            Some(HealthConfig {
                test: Some(vec!["NONE".to_string()]),
                ..Default::default()
            })
        } else if self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
        {
            Some(HealthConfig {
                test: self
                    .health_cmd
                    .as_ref()
                    .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
                interval: self
                    .health_interval
                    .as_deref()
                    .map(|v| nanos_of("--health-interval", v))
                    .transpose()?,
                timeout: self
                    .health_timeout
                    .as_deref()
                    .map(|v| nanos_of("--health-timeout", v))
                    .transpose()?,
                retries: self.health_retries,
                start_period: self
                    .health_start_period
                    .as_deref()
                    .map(|v| nanos_of("--health-start-period", v))
                    .transpose()?,
                start_interval: None,
            })
        } else {
            None
        };
        if let Some(s) = &self.stop_signal {
            signal::parse_signal(s).map_err(|e| usage(format!("invalid --stop-signal: {e}")))?;
        }
        let network = self.network.as_deref().unwrap_or("bridge");
        if network.is_empty() {
            return Err(usage(
                "invalid --network \"\": give a network's name".to_string(),
            ));
        }
        let on_default = matches!(network, "bridge" | "default");
        let special = matches!(network, "none" | "host");
        if (on_default || special) && (!self.network_alias.is_empty() || self.ip.is_some()) {
            return Err(usage(format!(
                "--network-alias and --ip need a user-defined network, not {network}: create one with `servin network create NAME`"
            )));
        }
        let networking_config = (!on_default && !special).then(|| {
            let endpoint = EndpointSettings {
                aliases: (!self.network_alias.is_empty()).then(|| self.network_alias.clone()),
                ipam_config: self.ip.as_ref().map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
            }
        });
        let (port_bindings, exposed) = self.ports()?;
        let (binds, anonymous) = split_volumes(&self.volume)?;
        // One program, as Docker takes it; `""` (one empty word) clears it.
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let host_config = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            mounts: (!mounts.is_empty()).then_some(mounts),
            memory,
            memory_swap,
            nano_cpus,
            pids_limit: self.pids_limit,
            init: Some(!self.no_init),
            restart_policy,
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            privileged: Some(self.privileged),
            readonly_rootfs: Some(self.read_only),
            extra_hosts: (!self.add_host.is_empty()).then(|| self.add_host.clone()),
            sysctls: (!sysctls.is_empty()).then_some(sysctls),
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            shm_size: self
                .shm_size
                .as_deref()
                .map(|s| size_of("--shm-size", s))
                .transpose()?,
            security_opt: (!self.security_opt.is_empty()).then(|| self.security_opt.clone()),
            network_mode: self.network.clone(),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            publish_all_ports: Some(self.publish_all),
            log_config: (!log_opts.is_empty()).then(|| HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(log_opts),
            }),
            ..Default::default()
        };
        Ok(ContainerCreateBody {
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(self.interactive),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(self.interactive),
            env: (!env.is_empty()).then_some(env),
            cmd: (!self.command.is_empty()).then(|| self.command.clone()),
            healthcheck,
            image: Some(self.image.clone()),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: (!labels.is_empty()).then_some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            volumes: (!anonymous.is_empty()).then_some(anonymous),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        })
    }
}

/// Run a command in a new container
///
/// Creates the container (pulling the image when it is missing), starts it,
/// and, unless `-d`, prints its output until it exits and exits with its
/// exit code. With `-t` the container gets a terminal; with `-i` this
/// terminal's input goes to it. Exit codes of servin itself: 125 when the
/// engine refuses, 126 when the command cannot be run, 127 when it is not
/// found in the image.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container's ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Create a container without starting it
///
/// Takes the same flags as `run` (but `-d` and `--rm`), pulls the image when
/// it is missing, and prints the new container's ID.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Creates the container, pulling the image when the engine does not have
/// it; returns the ID.
fn create(
    engine: &servin::client::Engine,
    args: &ContainerArgs,
    auto_remove: bool,
    attached: bool,
) -> Result<String, Failed> {
    let mut body = args.body()?;
    if let Some(hc) = body.host_config.as_mut() {
        if auto_remove {
            hc.auto_remove = Some(true);
        }
        // As Docker does, a terminal attached here starts at this one's size.
        if attached && args.tty {
            hc.console_size =
                stream::size().map(|(rows, cols)| vec![usize::from(rows), usize::from(cols)]);
        }
    }
    let first = engine.create_container(args.name.as_deref(), &body);
    let created = match first {
        Err(servin::client::Error::Engine {
            status: 404,
            ref message,
            ..
        }) if message.to_ascii_lowercase().contains("no such image") => {
            ui::info(&format!("Unable to find image '{}' locally", args.image));
            let mut progress = super::progress::Progress::new(false);
            let pulled = engine.pull(&args.image, None, |e| progress.event(e));
            progress.finish();
            pulled?;
            engine.create_container(args.name.as_deref(), &body)?
        }
        other => other?,
    };
    for w in &created.warnings {
        ui::warning(w);
    }
    Ok(created.id)
}

/// Docker's exit codes for a failed start: 127 not found, 126 cannot run,
/// 125 anything else.
fn start_failure(e: &servin::client::Error) -> Failed {
    ui::error_chain(e);
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
    {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        125
    };
    Failed::Code(code)
}

pub fn run(cli: &Cli, args: &RunArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    if !args.detach {
        stream::check_tty(args.container.tty, args.container.interactive)?;
    }
    let engine = servin::client::Engine::connect()?;
    let id = match create(&engine, &args.container, args.rm, !args.detach) {
        Ok(id) => id,
        Err(Failed::Error(e)) => {
            ui::error_chain(e.as_ref());
            return Err(Failed::Code(125));
        }
        Err(other) => return Err(other),
    };
    if args.detach {
        if let Err(e) = engine.start_container(&id) {
            return Err(start_failure(&e));
        }
        return ui::data(&id);
    }
    let condition = if args.rm { "removed" } else { "next-exit" };
    let opts = stream::Attach {
        id: id.clone(),
        tty: args.container.tty,
        stdin: args.container.interactive,
        start: true,
        wait_condition: Some(condition),
    };
    match stream::attach(&engine, &opts) {
        Ok(code) => exit_with(code),
        Err(stream::AttachError::Start(e)) => Err(start_failure(&e)),
        Err(stream::AttachError::Other(e)) => Err(e.into()),
    }
}

/// Returns the container's exit code as servin's.
pub fn exit_with(code: i64) -> Result<(), Failed> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failed::Code(
            u8::try_from(code.rem_euclid(256)).unwrap_or(1),
        ))
    }
}

pub fn create_cmd(cli: &Cli, args: &CreateArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let id = create(&engine, &args.container, false, false)?;
    ui::data(&id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::RestartPolicyNameEnum;
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: ContainerArgs,
    }

    fn body(args: &[&str]) -> Result<ContainerCreateBody, Failed> {
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        T::try_parse_from(all).unwrap().c.body()
    }

    #[test]
    fn maps_flags_to_the_create_body() {
        let b = body(&[
            "-e",
            "A=1",
            "-v",
            "/tmp:/x:ro",
            "-w",
            "/w",
            "-u",
            "app",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "20",
            "-t",
            "-i",
            "--restart",
            "on-failure:3",
            "--cap-drop",
            "ALL",
            "--health-cmd",
            "true",
            "--health-interval",
            "2s",
            "--no-init",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .unwrap();
        let hc = b.host_config.clone().unwrap();
        assert_eq!(b.env.unwrap(), ["A=1"]);
        assert_eq!(hc.binds.unwrap(), ["/tmp:/x:ro"]);
        assert_eq!(b.working_dir.as_deref(), Some("/w"));
        assert_eq!(hc.memory, Some(64 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(20));
        assert_eq!(hc.init, Some(false));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.open_stdin, Some(true));
        let rp = hc.restart_policy.unwrap();
        assert_eq!(rp.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(rp.maximum_retry_count, Some(3));
        assert_eq!(b.healthcheck.unwrap().interval, Some(2_000_000_000));
        assert_eq!(b.cmd.unwrap(), ["sh", "-c", "echo -n hi"]);
        assert_eq!(b.image.as_deref(), Some("busybox"));
    }

    #[test]
    fn volume_flags_split_into_binds_and_anonymous_volumes() {
        let b = body(&[
            "-v",
            "/tmp:/host:ro",
            "-v",
            "data:/data",
            "-v",
            "/scratch",
            "busybox",
        ])
        .unwrap();
        assert_eq!(
            b.host_config.unwrap().binds.unwrap(),
            ["/tmp:/host:ro", "data:/data"]
        );
        assert_eq!(b.volumes.unwrap(), ["/scratch"]);
        for bad in ["relative", ":/x", "data:rel", "a:/b:ro:x"] {
            assert!(
                matches!(body(&["-v", bad, "busybox"]), Err(Failed::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn mounts_in_the_long_form() {
        let b = body(&[
            "--mount",
            "type=bind,src=/tmp,dst=/data,readonly",
            "--mount",
            "type=tmpfs,target=/cache,tmpfs-size=1m,tmpfs-mode=1770",
            "--mount",
            "source=cache,target=/v,ro=false",
            "busybox",
        ])
        .unwrap();
        let mounts = b.host_config.unwrap().mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(mounts[0].source.as_deref(), Some("/tmp"));
        assert_eq!(mounts[0].target.as_deref(), Some("/data"));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[0].tmpfs_options, None);
        assert_eq!(mounts[1].typ, Some(MountType::TMPFS));
        let t = mounts[1].tmpfs_options.clone().unwrap();
        assert_eq!(t.size_bytes, Some(1024 * 1024));
        assert_eq!(t.mode, Some(0o1770));
        assert_eq!(mounts[2].typ, Some(MountType::VOLUME), "Docker's default");
        assert_eq!(mounts[2].read_only, Some(false));
        let b = body(&[
            "--mount",
            "target=/anon",
            "--mount",
            "type=volume,src=data,target=/d,volume-nocopy",
            "busybox",
        ])
        .unwrap();
        let mounts = b.host_config.unwrap().mounts.unwrap();
        assert_eq!(mounts[0].source, None, "an anonymous volume");
        assert_eq!(mounts[0].volume_options, None);
        let nocopy = mounts[1].volume_options.clone().unwrap();
        assert_eq!(nocopy.no_copy, Some(true));
        for bad in [
            "type=bind,target=/x",
            "type=bind,source=/tmp",
            "type=nfs,source=/tmp,target=/x",
            "type=tmpfs,source=/tmp,target=/x",
            "type=tmpfs,target=/x,tmpfs-mode=999",
            "type=bind,source=/tmp,target=/x,tmpfs-size=1m",
            "type=bind,source=/tmp,target=/x,readonly=maybe",
            "type=bind,source=/tmp,target=/x,bind-propagation=shared",
            "type=bind,source=/tmp,target=/x,volume-nocopy",
            "type=volume,target=/x,volume-nocopy=maybe",
            "type,target=/x",
        ] {
            assert!(
                matches!(body(&["--mount", bad, "busybox"]), Err(Failed::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn entrypoint_env_and_limits_as_docker_takes_them() {
        let b = body(&[
            "--entrypoint",
            "/bin/my prog",
            "-e",
            "SERVIN_TEST_SURELY_UNSET_VARIABLE",
            "-e",
            "PATH",
            "--pids-limit",
            "-1",
            "--memory-swap",
            "-1",
            "busybox",
        ])
        .unwrap();
        assert_eq!(b.entrypoint.unwrap(), ["/bin/my prog"]);
        let env = b.env.unwrap();
        assert_eq!(env[0], "SERVIN_TEST_SURELY_UNSET_VARIABLE");
        assert_eq!(env[1], format!("PATH={}", std::env::var("PATH").unwrap()));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.pids_limit, Some(-1));
        assert_eq!(hc.memory_swap, Some(-1));
        assert_eq!(
            body(&["--entrypoint", "", "busybox"])
                .unwrap()
                .entrypoint
                .unwrap(),
            [""],
            "an empty entrypoint clears the image's"
        );
        assert!(body(&["busybox"]).unwrap().entrypoint.is_none());
    }

    #[test]
    fn the_command_takes_everything_after_the_image() {
        let b = body(&["busybox", "ls", "-l", "--name", "x", "-e"]).unwrap();
        assert_eq!(b.cmd.unwrap(), ["ls", "-l", "--name", "x", "-e"]);
        assert!(b.env.is_none());
    }

    #[test]
    fn a_named_network_carries_aliases_and_an_address() {
        let b = body(&[
            "--network",
            "back",
            "--network-alias",
            "db",
            "--ip",
            "10.90.0.9",
            "busybox",
        ])
        .unwrap();
        assert_eq!(b.host_config.unwrap().network_mode.as_deref(), Some("back"));
        let eps = b.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            eps["back"].aliases.as_deref(),
            Some(&["db".to_string()][..])
        );
        assert_eq!(
            eps["back"]
                .ipam_config
                .as_ref()
                .unwrap()
                .ipv4_address
                .as_deref(),
            Some("10.90.0.9")
        );
        assert!(body(&["busybox"]).unwrap().networking_config.is_none());
    }

    #[test]
    fn published_and_exposed_ports_map_like_docker() {
        let b = body(&[
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "5353:53/udp",
            "-p",
            "9000-9001:90-91",
            "-p",
            "7000-7010:70",
            "-p",
            "443",
            "--expose",
            "6000-6001/udp",
            "-P",
            "busybox",
        ])
        .unwrap();
        let hc = b.host_config.unwrap();
        assert_eq!(hc.publish_all_ports, Some(true));
        let map = hc.port_bindings.unwrap();
        let one = |key: &str| {
            let list = map.get(key).unwrap().as_ref().unwrap();
            assert_eq!(list.len(), 1, "{key}");
            (
                list[0].host_ip.clone().unwrap(),
                list[0].host_port.clone().unwrap(),
            )
        };
        assert_eq!(one("80/tcp"), ("127.0.0.1".into(), "8080".into()));
        assert_eq!(one("53/udp"), (String::new(), "5353".into()));
        assert_eq!(one("90/tcp"), (String::new(), "9000".into()));
        assert_eq!(one("91/tcp"), (String::new(), "9001".into()));
        assert_eq!(one("70/tcp"), (String::new(), "7000-7010".into()));
        assert_eq!(one("443/tcp"), (String::new(), String::new()));
        let exposed = b.exposed_ports.unwrap();
        for key in [
            "80/tcp", "53/udp", "90/tcp", "70/tcp", "443/tcp", "6000/udp", "6001/udp",
        ] {
            assert!(exposed.contains(&key.to_string()), "{key}: {exposed:?}");
        }
        assert!(body(&["-p", "9000-9002:90-91", "busybox"]).is_err());
        assert!(body(&["-p", "x:80", "busybox"]).is_err());
        assert!(body(&["--expose", "http", "busybox"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["-m", "lots", "busybox"][..],
            &["--cpus", "many", "busybox"],
            &["--cpus=-1", "busybox"],
            &["--restart", "sometimes", "busybox"],
            &["--ulimit", "nofile", "busybox"],
            &["--network", "bridge", "--network-alias", "x", "busybox"],
            &["--network", "host", "--ip", "10.1.1.1", "busybox"],
            &["--memory-swap", "lots", "busybox"],
            &["--shm-size", "big", "busybox"],
            &["--health-interval", "often", "busybox"],
            &["--stop-signal", "SIGNOPE", "busybox"],
            &["--sysctl", "novalue", "busybox"],
            &["--ulimit", "nofile=a:b", "busybox"],
            &["--log-opt", "max-file=0", "busybox"],
            &["--log-opt", "color=blue", "busybox"],
        ] {
            assert!(matches!(body(args), Err(Failed::Usage(_))), "{args:?}");
        }
        let b = body(&["busybox"]).unwrap();
        assert_eq!(
            b.host_config.unwrap().init,
            Some(true),
            "init is the default"
        );
    }
}
