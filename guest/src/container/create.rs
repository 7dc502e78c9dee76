//! Creating a container: Docker's create-time checks, the record and its
//! folder (written under a dot name and renamed into place, so a crash
//! never leaves half a container), the name and the anonymous volumes.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bollard_stubs::models::ContainerCreateBody;

use super::record::{self, Record, State};
use super::{Container, Containers, names};
use crate::error::{ContainerError, Error, Result};
use crate::timefmt;

fn host_cpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// Checks what Docker checks at create time, so a bad value fails before
/// anything is written.
fn validate(body: &ContainerCreateBody) -> Result<()> {
    let hc = body.host_config.clone().unwrap_or_default();
    if let Some(m) = hc.memory
        && m != 0
    {
        if m < 0 {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "invalid memory limit {m}: must be positive"
            ))));
        }
        if m < 6 * 1024 * 1024 {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "invalid memory limit {m}: the minimum memory limit allowed is 6MB"
            ))));
        }
    }
    if let Some(n) = hc.nano_cpus
        && n != 0
    {
        let cpus = host_cpus();
        if n < 10_000_000 || n > cpus * 1_000_000_000 {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "invalid CPU count {:.2}: the range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available",
                n as f64 / 1e9
            ))));
        }
    }
    if let Some(p) = hc.pids_limit
        && p < -1
    {
        return Err(Error::from(ContainerError::InvalidConfig(format!(
            "invalid pids limit {p}"
        ))));
    }
    if let Some(log) = &hc.log_config {
        check_log_config(log)?;
    }
    for m in hc.mounts.iter().flatten() {
        let is_bind = m.typ.map(|t| t.to_string()).as_deref() == Some("bind");
        if is_bind
            && !creates_mountpoint(m)
            && let Some(src) = &m.source
            && !std::path::Path::new(src).exists()
        {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            ))));
        }
    }
    Ok(())
}

/// In servin's VM, refuses a bind whose host path is outside every shared
/// host folder (it would name a folder of the VM); this engine's own
/// socket, which binds of Docker's socket get, is the VM's.
fn check_shared(
    body: &ContainerCreateBody,
    shares: &crate::config::VmShares,
    socket: &Path,
) -> Result<()> {
    let Some(hc) = body.host_config.as_ref() else {
        return Ok(());
    };
    let binds = hc
        .binds
        .iter()
        .flatten()
        .filter_map(|b| servin_values::BindSpec::split(b))
        .filter(|b| b.is_host_path())
        .map(|b| b.source);
    let mounts = hc
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ.map(|t| t.to_string()).as_deref() == Some("bind"))
        .filter_map(|m| m.source.as_deref());
    for src in binds.chain(mounts) {
        if Path::new(src) == socket {
            continue;
        }
        shares
            .check_bind(src)
            .map_err(|e| Error::from(ContainerError::InvalidConfig(e)))?;
    }
    Ok(())
}

/// Where Docker's engine socket is bound from: a container that binds one
/// (Traefik, Portainer, CI runners, testcontainers inside a container) is
/// given this engine's socket, so those tools drive servin.
pub const DOCKER_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// Gives `body`'s binds of Docker's socket this engine's `socket` instead.
fn bind_engine_socket(body: &mut ContainerCreateBody, socket: &Path) {
    let Some(hc) = body.host_config.as_mut() else {
        return;
    };
    let ours = socket.display().to_string();
    for bind in hc.binds.iter_mut().flatten() {
        if let Some((src, rest)) = bind.split_once(':')
            && DOCKER_SOCKETS.contains(&src)
        {
            *bind = format!("{ours}:{rest}");
        }
    }
    for m in hc.mounts.iter_mut().flatten() {
        let is_bind = m.typ.map(|t| t.to_string()).as_deref() == Some("bind");
        if is_bind
            && m.source
                .as_deref()
                .is_some_and(|s| DOCKER_SOCKETS.contains(&s))
        {
            m.source = Some(ours.clone());
        }
    }
}

/// Whether a mount asks for its missing host folder to be made (Docker's
/// `BindOptions.CreateMountpoint`, which Compose sets for short-form binds).
fn creates_mountpoint(m: &bollard_stubs::models::Mount) -> bool {
    m.bind_options
        .as_ref()
        .and_then(|b| b.create_mountpoint)
        .unwrap_or(false)
}

/// Docker's `-v /host/path:/path` and a bind with `CreateMountpoint`: a
/// host folder that does not exist is made (a plain `--mount` bind keeps
/// refusing a missing source).
fn make_bind_sources(body: &ContainerCreateBody) -> Result<()> {
    let hc = body.host_config.as_ref();
    let binds = hc
        .and_then(|h| h.binds.as_ref())
        .into_iter()
        .flatten()
        .map(|b| b.split(':').next().unwrap_or_default());
    let mounts = hc
        .and_then(|h| h.mounts.as_ref())
        .into_iter()
        .flatten()
        .filter(|m| creates_mountpoint(m))
        .filter_map(|m| m.source.as_deref());
    for src in binds.chain(mounts) {
        let path = Path::new(src);
        if src.starts_with('/') && !path.exists() {
            std::fs::create_dir_all(path).map_err(Error::io("create the bind source", path))?;
        }
    }
    Ok(())
}

/// The log drivers and options the engine serves: `json-file` with
/// `max-size` and `max-file`, as Docker names them; anything else is
/// refused rather than accepted and ignored.
fn check_log_config(log: &bollard_stubs::models::HostConfigLogConfig) -> Result<()> {
    let driver = log.typ.as_deref().unwrap_or_default();
    if !matches!(driver, "" | "json-file") {
        return Err(Error::from(ContainerError::InvalidConfig(format!(
            "log driver {driver:?} is not supported: servin keeps every container's log as json-file"
        ))));
    }
    for key in log.config.iter().flat_map(|c| c.keys()) {
        if !matches!(key.as_str(), "max-size" | "max-file") {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "unknown log opt '{key}' for json-file log driver: servin takes max-size and max-file"
            ))));
        }
    }
    Ok(())
}

impl Containers {
    /// Creates a container from Docker's create body; returns its ID and
    /// warnings. Nothing is left behind when it fails.
    pub fn create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>)> {
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                Error::from(ContainerError::InvalidConfig(
                    "no image given for the container".to_string(),
                ))
            })?;
        let image = self.store.resolve(&image_name)?;
        let mut body = body;
        bind_engine_socket(&mut body, &self.engine_socket);
        if let Some(shares) = &self.vm_shares {
            check_shared(&body, shares, &self.engine_socket)?;
        }
        validate(&body)?;
        if let Some(asked) = body
            .host_config
            .as_ref()
            .and_then(|h| h.runtime.as_deref())
            .filter(|r| !r.is_empty())
        {
            let ours = self.runtime()?.name.clone();
            if asked != ours {
                return Err(Error::from(ContainerError::InvalidConfig(format!(
                    "unknown or invalid runtime name: {asked}: this engine runs containers with {ours}"
                ))));
            }
        }
        let attachments = self.attachments_for(&body)?;
        self.check_links(&body)?;
        make_bind_sources(&body)?;
        let image_config = self
            .store
            .read_blob(&image.id)
            .ok()
            .and_then(|b| serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&b).ok())
            .and_then(|c| c.config().clone());
        let wanted = super::volumes::wanted(&body, image_config.as_ref())?;
        let warnings = super::publish::check(&body, image_config.as_ref())?;
        let id = crate::state::new_id()?;
        let mut map = self.lock_map();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::check_name(n)?;
                if let Some(other) = map.values().find(|c| c.name() == n) {
                    return Err(ContainerError::NameInUse {
                        name: n,
                        id: other.record.id.clone(),
                    }
                    .into());
                }
                n
            }
            None => names::random_name(|n| map.values().any(|c| c.name() == n))?,
        };
        let (volumes, made_volumes) = self.make_volumes(&wanted)?;
        let record = Record {
            id: id.clone(),
            name,
            created: timefmt::format_nanos(SystemTime::now()),
            image_id: image.id.clone(),
            image_name,
            layers: image.chain_ids(),
            image_config,
            body,
            volumes,
        };
        // Written under a dot name and renamed, so a crash never leaves a
        // half-made container.
        let tmp = self.dir.join(format!(".creating-{id}"));
        let dir = self.dir.join(&id);
        let made = (|| -> Result<()> {
            std::fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
            // Atomic (a dot folder renamed into place) but not fsynced: a
            // killed engine never leaves half a container, and the start
            // path does not wait for the disk.
            crate::state::write_json_atomic(&tmp, record::RECORD_FILE, &record)?;
            crate::state::write_json_atomic(&tmp, record::STATE_FILE, &State::default())?;
            crate::state::write_json_atomic(&tmp, record::NETWORKS_FILE, &attachments)?;
            std::fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            self.drop_volumes(&made_volumes);
            return Err(e);
        }
        let c = Arc::new(Container::new(record, dir, State::default()));
        c.set_attachments_in_memory(attachments);
        map.insert(id.clone(), Arc::clone(&c));
        drop(map);
        self.events.container("create", &id, c.attributes());
        Ok((id, warnings))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bollard_stubs::models::HostConfig;

    fn body(hc: HostConfig) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some("x".to_string()),
            host_config: Some(hc),
            ..Default::default()
        }
    }

    #[test]
    fn rejects_bad_limits_and_missing_bind_sources() {
        let too_small = body(HostConfig {
            memory: Some(1024),
            ..Default::default()
        });
        assert!(
            validate(&too_small)
                .unwrap_err()
                .to_string()
                .contains("6MB")
        );
        let cpus = body(HostConfig {
            nano_cpus: Some(1_000_000_000_000),
            ..Default::default()
        });
        assert!(
            validate(&cpus)
                .unwrap_err()
                .to_string()
                .contains("range of CPUs")
        );
        // `-v` makes a missing host folder (at create, after the checks);
        // a `--mount` bind wants it to exist unless it asks for it to be
        // made.
        let bind = body(HostConfig {
            binds: Some(vec!["/no/such/dir:/x".to_string()]),
            ..Default::default()
        });
        assert!(validate(&bind).is_ok());
        let mount = |create: Option<bool>| {
            body(HostConfig {
                mounts: Some(vec![bollard_stubs::models::Mount {
                    typ: Some(bollard_stubs::models::MountType::BIND),
                    source: Some("/no/such/dir".to_string()),
                    target: Some("/x".to_string()),
                    bind_options: create.map(|c| bollard_stubs::models::MountBindOptions {
                        create_mountpoint: Some(c),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            })
        };
        assert!(
            validate(&mount(None))
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        assert!(validate(&mount(Some(true))).is_ok());
        assert!(validate(&body(HostConfig::default())).is_ok());
    }
}
