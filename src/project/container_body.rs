//! One normalised container as Docker's create body: the one place that
//! turns a [`normal::Container`] into a [`ContainerCreateBody`], for the
//! containers of a project (through [`super::desired`], which first gives
//! the project's volumes and networks their engine names, adds the secrets
//! and then the servin labels) and for the lone container of `servin run`
//! and `servin create`.
//!
//! What a field leaves unset (`None`, an empty list) is left out of the
//! body, so the engine applies its default. `servin run` also sends a few
//! values in the Docker CLI's own short forms ([`CliForms`]): the docker
//! CLI sends them so, and the engine and docker-compatible tools see the
//! same body from `servin run` as from `docker run`.

use std::collections::HashMap;

use bollard_stubs::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, Mount, MountBindOptions, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};

use super::normal::{self, MountKind, WorkspaceMode};
use super::values::port::PortRange;
use super::values::{duration, misc};

/// Values `servin run` sends in the Docker CLI's short forms, which a
/// [`normal::Container`] has no field for; empty for a project container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliForms {
    /// `-e` and `--env-file` as Docker's list, sent after the container's
    /// `env`: in the order given, `KEY` alone unsetting the image's
    /// variable (a map has neither order nor unsets).
    pub env: Vec<String>,
    /// `--add-host` values as given (`NAME:IP`), sent after the
    /// container's `extra_hosts`.
    pub extra_hosts: Vec<String>,
    /// `-v SRC:DST[:OPTS]` as Docker's `Binds`, options and all.
    pub binds: Vec<String>,
    /// `-v /path`: anonymous volumes, as Docker's `Volumes`.
    pub anonymous_volumes: Vec<String>,
    /// `--tmpfs PATH[:OPTIONS]` as Docker's `Tmpfs`: path to mount options.
    pub tmpfs: HashMap<String, String>,
    /// Write `""` for a port binding's unset host address and host port,
    /// as the Docker CLI does; a project leaves them out.
    pub blank_port_fields: bool,
}

/// A value of a container that cannot go into a create body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BodyError {
    /// The field, as the project file names it.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn fail(field: &'static str, message: String) -> BodyError {
    BodyError { field, message }
}

/// Docker's restart policy for a parsed one.
pub fn restart_policy(policy: misc::RestartPolicy) -> RestartPolicy {
    let (name, retries) = match policy {
        misc::RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
        misc::RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        misc::RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        misc::RestartPolicy::OnFailure { max_retries } => (
            RestartPolicyNameEnum::ON_FAILURE,
            max_retries.map(i64::from),
        ),
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

fn nanos(field: &'static str, value: &str) -> Result<i64, BodyError> {
    let d = duration::parse_duration(value).map_err(|m| fail(field, m))?;
    i64::try_from(d.as_nanos()).map_err(|_| fail(field, format!("{value} is too long")))
}

/// Seconds of a stop timeout: whole seconds (`servin run --stop-timeout`,
/// where `-1` waits for ever) or a duration (a project's `stop_timeout`).
fn stop_seconds(value: &str) -> Result<i64, BodyError> {
    if let Ok(n) = value.parse::<i64>() {
        return Ok(n);
    }
    let secs = duration::parse_duration(value)
        .map_err(|m| fail("stop_timeout", m))?
        .as_secs();
    i64::try_from(secs).map_err(|_| fail("stop_timeout", format!("{value} is too long")))
}

fn some_if<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// `(exposed ports, port bindings)` of `c`: every published port is exposed
/// too, published ones first, in order, each once.
fn ports(
    c: &normal::Container,
    forms: &CliForms,
) -> (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>) {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &c.ports {
        let key = format!("{}/{}", port.target, port.protocol.as_str());
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let host_port = match (port.published, port.published_end) {
            (Some(start), Some(end)) => Some(PortRange { start, end }.to_string()),
            (published, _) => published.map(|p| p.to_string()),
        };
        let mut binding = PortBinding {
            host_ip: port.host_ip.clone(),
            host_port,
        };
        if forms.blank_port_fields {
            binding.host_ip.get_or_insert_default();
            binding.host_port.get_or_insert_default();
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    for e in &c.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    (exposed, bindings)
}

fn mounts(c: &normal::Container) -> Result<Vec<Mount>, BodyError> {
    let mut out = Vec::new();
    for m in &c.volumes {
        let typ = match m.kind {
            MountKind::Volume => MountType::VOLUME,
            MountKind::Bind => MountType::BIND,
            MountKind::Tmpfs => MountType::TMPFS,
        };
        let tmpfs_options = match m.kind {
            MountKind::Tmpfs => Some(MountTmpfsOptions {
                size_bytes: m.size.and_then(|s| i64::try_from(s).ok()),
                mode: m.mode.map(tmpfs_mode).transpose()?,
                ..Default::default()
            }),
            _ => None,
        };
        out.push(Mount {
            target: Some(m.target.clone()),
            source: match m.kind {
                MountKind::Tmpfs => None,
                _ => m.source.clone(),
            },
            typ: Some(typ),
            read_only: m.read_only,
            tmpfs_options,
            volume_options: m.no_copy.map(|n| MountVolumeOptions {
                no_copy: Some(n),
                ..Default::default()
            }),
            // Docker's `CreateMountpoint`: the engine makes the missing
            // host folder of a short-form bind.
            bind_options: m.create_source.map(|c| MountBindOptions {
                create_mountpoint: Some(c),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(w) = &c.workspace
        && w.mode == WorkspaceMode::Bind
    {
        out.push(Mount {
            target: Some(w.target.clone()),
            source: Some(w.source.clone()),
            typ: Some(MountType::BIND),
            read_only: Some(false),
            ..Default::default()
        });
    }
    Ok(out)
}

/// The permission bits of a tmpfs mode kept as octal digits (`1777`), as
/// Docker's `TmpfsOptions.Mode` takes them.
fn tmpfs_mode(digits: u32) -> Result<i64, BodyError> {
    i64::from_str_radix(&digits.to_string(), 8)
        .ok()
        .filter(|m| (0..=0o7777).contains(m))
        .ok_or_else(|| {
            fail(
                "volumes",
                format!("tmpfs mode {digits} is not an octal mode like 1777"),
            )
        })
}

fn healthcheck(h: &normal::Healthcheck) -> Result<HealthConfig, BodyError> {
    let duration = |field, v: &Option<String>| v.as_deref().map(|v| nanos(field, v)).transpose();
    Ok(HealthConfig {
        test: some_if(h.cmd.clone()),
        interval: duration("healthcheck.interval", &h.interval)?,
        timeout: duration("healthcheck.timeout", &h.timeout)?,
        retries: h.retries,
        start_period: duration("healthcheck.start_period", &h.start_period)?,
        start_interval: None,
    })
}

/// Docker's create body for container `c` running `image`, without the
/// servin labels (which [`super::desired`] adds to a project's). Volume
/// sources and network names are sent as they are written in `c`.
pub fn container_body(
    c: &normal::Container,
    image: &str,
    forms: &CliForms,
) -> Result<ContainerCreateBody, BodyError> {
    let (exposed, bindings) = ports(c, forms);
    let mounts = mounts(c)?;
    let restart = c
        .restart
        .as_deref()
        .map(|r| misc::parse_restart(r).map_err(|e| fail("restart", e)))
        .transpose()?;
    let healthcheck = c.healthcheck.as_ref().map(healthcheck).transpose()?;
    let stop_timeout = c.stop_timeout.as_deref().map(stop_seconds).transpose()?;
    let endpoints: HashMap<String, EndpointSettings> = c
        .networks
        .iter()
        .map(|(n, cn)| {
            let endpoint = EndpointSettings {
                aliases: some_if(cn.aliases.clone()),
                ipam_config: cn.ipv4_address.as_ref().map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            (n.clone(), endpoint)
        })
        .collect();
    let ulimits: Vec<ResourcesUlimits> = c
        .ulimits
        .iter()
        .map(|(n, u)| ResourcesUlimits {
            name: Some(n.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect();
    let extra_hosts: Vec<String> = c
        .extra_hosts
        .iter()
        .map(|(h, ip)| format!("{h}:{ip}"))
        .chain(forms.extra_hosts.iter().cloned())
        .collect();
    let host_config = HostConfig {
        binds: some_if(forms.binds.clone()),
        tmpfs: (!forms.tmpfs.is_empty()).then(|| forms.tmpfs.clone()),
        mounts: some_if(mounts),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        memory: c.resources.memory.and_then(|m| i64::try_from(m).ok()),
        memory_swap: c.resources.memory_swap,
        nano_cpus: c.resources.cpus.map(|n| (n * 1e9).round() as i64),
        pids_limit: c.resources.pids,
        init: Some(c.init),
        restart_policy: restart.map(restart_policy),
        cap_add: some_if(c.cap_add.clone()),
        cap_drop: some_if(c.cap_drop.clone()),
        privileged: Some(c.privileged),
        readonly_rootfs: Some(c.read_only),
        extra_hosts: some_if(extra_hosts),
        sysctls: (!c.sysctls.is_empty()).then(|| c.sysctls.clone().into_iter().collect()),
        ulimits: some_if(ulimits),
        shm_size: c.shm_size.and_then(|s| i64::try_from(s).ok()),
        security_opt: some_if(c.security_opt.clone()),
        network_mode: c
            .network_mode
            .clone()
            .or_else(|| c.networks.keys().next().cloned()),
        publish_all_ports: c.publish_all,
        log_config: (!c.log_options.is_empty()).then(|| HostConfigLogConfig {
            typ: Some("json-file".to_string()),
            config: Some(c.log_options.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    let env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(forms.env.iter().cloned())
        .collect();
    Ok(ContainerCreateBody {
        hostname: c.hostname.clone(),
        user: c.user.clone(),
        attach_stdin: c.stdin_open,
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(c.tty),
        open_stdin: c.stdin_open,
        stdin_once: c.stdin_open,
        env: some_if(env),
        cmd: c.command.clone(),
        healthcheck,
        image: Some(image.to_string()),
        working_dir: c.workdir.clone(),
        entrypoint: c.entrypoint.clone(),
        labels: (!c.labels.is_empty()).then(|| c.labels.clone().into_iter().collect()),
        stop_signal: c.stop_signal.clone(),
        stop_timeout,
        volumes: some_if(forms.anonymous_volumes.clone()),
        exposed_ports: some_if(exposed),
        host_config: Some(host_config),
        networking_config: (!endpoints.is_empty()).then_some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    })
}
