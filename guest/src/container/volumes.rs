//! The volumes containers mount: resolved and made at create, mounted (with
//! copy-up) at start, checked before a volume is removed, and the anonymous
//! ones removed with the container when asked (`rm -v`, `--rm`). A start
//! publishes a `mount` event per volume, an exit an `unmount`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bollard_stubs::models::{ContainerCreateBody, MountPoint, MountType};
use servin_values::BindSpec;

use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result, VolumeError};
use crate::volume::{self, Filters, VolumeMount, copy};

/// A volume a container asks for, before anonymous ones have names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The volume's name; `None` for an anonymous volume.
    pub name: Option<String>,
    /// Labels for a named volume made on the way (`--mount` volume labels).
    pub labels: HashMap<String, String>,
    /// Where it is mounted.
    pub destination: String,
    /// Read-only.
    pub read_only: bool,
    /// No copy-up.
    pub no_copy: bool,
}

fn invalid_name(name: &str) -> Error {
    Error::from(ContainerError::InvalidConfig(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: if you intended to pass a host directory, use an absolute path"
    )))
}

fn trimmed(dest: &str) -> String {
    let t = dest.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// The volumes a create body asks for, in Docker's order: `-v NAME:DST`,
/// `--mount type=volume`, then the container's and the image's `Volumes`
/// at places nothing else is mounted.
pub fn wanted(
    body: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<Wanted>> {
    let hc = body.host_config.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut taken = HashSet::new();
    for b in hc.binds.iter().flatten() {
        // The spec builder names what is wrong with a bind that does not split.
        let Some(bind) = BindSpec::split(b) else {
            continue;
        };
        taken.insert(trimmed(bind.target));
        if bind.source.is_empty() || bind.is_host_path() {
            continue;
        }
        volume::check_name(bind.source).map_err(|_| invalid_name(bind.source))?;
        out.push(Wanted {
            name: Some(bind.source.to_string()),
            labels: HashMap::new(),
            destination: bind.target.to_string(),
            read_only: bind.read_only(),
            no_copy: bind.options.split(',').any(|o| o == "nocopy"),
        });
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        taken.insert(trimmed(&target));
        if m.typ != Some(MountType::VOLUME) {
            continue;
        }
        let options = m.volume_options.clone().unwrap_or_default();
        let name = m.source.clone().filter(|s| !s.is_empty());
        if let Some(n) = &name {
            volume::check_name(n).map_err(|_| invalid_name(n))?;
        }
        out.push(Wanted {
            name,
            labels: options.labels.unwrap_or_default(),
            destination: target,
            read_only: m.read_only.unwrap_or(false),
            no_copy: options.no_copy.unwrap_or(false),
        });
    }
    for dest in hc.tmpfs.iter().flatten().map(|(d, _)| d) {
        taken.insert(trimmed(dest));
    }
    let own = body.volumes.iter().flatten();
    let from_image = image.and_then(|i| i.volumes().clone()).unwrap_or_default();
    for dest in own.chain(from_image.iter()) {
        if !dest.starts_with('/') {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "invalid volume destination {dest:?}: it must be an absolute path"
            ))));
        }
        if taken.insert(trimmed(dest)) {
            out.push(Wanted {
                name: None,
                labels: HashMap::new(),
                destination: dest.clone(),
                read_only: false,
                no_copy: false,
            });
        }
    }
    Ok(out)
}

impl Containers {
    /// Makes the volumes a new container needs: anonymous ones with random
    /// names, missing named ones as Docker does. Returns the mounts and the
    /// volumes made, to remove if the create fails. Called with the
    /// container map locked, so no volume goes away meanwhile.
    pub(super) fn make_volumes(
        &self,
        wanted: &[Wanted],
    ) -> Result<(Vec<VolumeMount>, Vec<String>)> {
        let mut mounts = Vec::new();
        let mut made = Vec::new();
        let result = (|| -> Result<()> {
            for w in wanted {
                let (name, anonymous) = match &w.name {
                    Some(n) => {
                        match self.volumes.get(n) {
                            Ok(_) => {}
                            Err(Error::NoSuchVolume(_)) => {
                                self.volumes.create(
                                    Some(n),
                                    None,
                                    w.labels.clone(),
                                    HashMap::new(),
                                )?;
                                made.push(n.clone());
                            }
                            Err(e) => return Err(e),
                        }
                        (n.clone(), false)
                    }
                    None => {
                        let v = self.volumes.create_anonymous()?;
                        made.push(v.meta.name.clone());
                        (v.meta.name, true)
                    }
                };
                mounts.push(VolumeMount {
                    name,
                    destination: w.destination.clone(),
                    read_only: w.read_only,
                    no_copy: w.no_copy,
                    anonymous,
                });
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok((mounts, made)),
            Err(e) => {
                self.drop_volumes(&made);
                Err(e)
            }
        }
    }

    /// Removes volumes made for a create that failed.
    pub(super) fn drop_volumes(&self, names: &[String]) {
        for n in names {
            if let Err(e) = self.volumes.remove(n) {
                tracing::warn!("remove volume {n}: {}", e.full_message());
            }
        }
    }

    /// Whether a volume of the container may get a copy of the image's
    /// content at this start (it is empty and `nocopy` is not set): then the
    /// copy is done off the engine's thread first.
    pub(super) fn needs_copy_up(&self, c: &Container) -> bool {
        c.record.volumes.iter().any(|v| {
            !v.no_copy
                && self
                    .volumes
                    .get(&v.name)
                    .map_or(true, |vol| copy::is_empty(&vol.mountpoint).unwrap_or(false))
        })
    }

    /// Mounts a container's volumes' devices, copies the image's content
    /// into the empty ones, and returns the anonymous volumes as
    /// (destination, host folder) for the spec. The root must be mounted.
    pub(super) fn prepare_volumes(&self, c: &Container) -> Result<Vec<(String, PathBuf)>> {
        let rootfs = c.paths.rootfs();
        let mut anonymous = Vec::new();
        for v in &c.record.volumes {
            let host = self.volume_path(&v.name)?;
            if !v.no_copy {
                copy::copy_up(&rootfs, &v.destination, &host).map_err(|e| Error::Runtime {
                    context: format!(
                        "container {}: copy the image's {} into volume {}",
                        c.name(),
                        v.destination,
                        v.name
                    ),
                    message: e.full_message(),
                })?;
            }
            if v.anonymous {
                anonymous.push((v.destination.clone(), host));
            }
        }
        Ok(anonymous)
    }

    /// Publishes a `mount` or `unmount` event for each volume of `c`, with
    /// Docker's attributes (`container`, `destination`, `read/write`,
    /// `propagation`, `driver`) over the volume's labels.
    pub(super) fn volume_events(&self, c: &Container, action: &str) {
        for v in &c.record.volumes {
            let mut a = self
                .volumes
                .get(&v.name)
                .map(|vol| vol.event_attributes())
                .unwrap_or_default();
            a.insert("driver".to_string(), volume::LOCAL_DRIVER.to_string());
            a.insert("container".to_string(), c.id().to_string());
            a.insert("destination".to_string(), v.destination.clone());
            a.insert("read/write".to_string(), (!v.read_only).to_string());
            a.insert("propagation".to_string(), String::new());
            self.events.volume(action, &v.name, a);
        }
    }

    /// The host folder of volume `name`, made again when it went missing
    /// (as Docker does for a named volume).
    pub(super) fn volume_path(&self, name: &str) -> Result<PathBuf> {
        self.volumes.ensure(name)?;
        self.volumes.mount_path(name)
    }

    /// Volume names in use, each with the names of the containers using it
    /// (running or not).
    pub fn volumes_in_use(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for c in self.lock_map().values() {
            for v in &c.record.volumes {
                out.entry(v.name.clone()).or_default().push(c.name());
            }
        }
        for users in out.values_mut() {
            users.sort();
            users.dedup();
        }
        out
    }

    /// Removes volume `name` unless a container uses it; with `force` a
    /// missing volume is no error (Docker's `volume rm -f`).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let aside = {
            let map = self.lock_map();
            if let Err(e) = self.volumes.get(name) {
                return match e {
                    Error::NoSuchVolume(_) if force => Ok(()),
                    e => Err(e),
                };
            }
            let mut users: Vec<String> = map
                .values()
                .filter(|c| c.record.volumes.iter().any(|v| v.name == name))
                .map(|c| format!("{} ({})", c.name(), &c.record.id[..12]))
                .collect();
            if !users.is_empty() {
                users.sort();
                return Err(VolumeError::InUse(name.to_string(), users.join(", ")).into());
            }
            self.volumes.take(name)?
        };
        volume::delete_aside(&aside)
    }

    /// Removes the volumes no container uses that pass `filters`: only
    /// anonymous ones unless `filters.all`. Returns their names and the
    /// bytes freed.
    pub fn prune_volumes(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        let mut taken = Vec::new();
        {
            let map = self.lock_map();
            let used: HashSet<&str> = map
                .values()
                .flat_map(|c| c.record.volumes.iter().map(|v| v.name.as_str()))
                .collect();
            for v in self.volumes.list() {
                if used.contains(v.meta.name.as_str())
                    || !(filters.all || v.meta.anonymous)
                    || !filters.matches(&v, false)
                {
                    continue;
                }
                match self.volumes.take(&v.meta.name) {
                    Ok(aside) => taken.push((v.meta.name, aside)),
                    Err(e) => tracing::warn!("prune volume {}: {}", v.meta.name, e.full_message()),
                }
            }
        }
        let mut names = Vec::new();
        let mut freed = 0;
        for (name, aside) in taken {
            freed += volume::dir_size(&aside);
            volume::delete_aside(&aside)?;
            names.push(name);
        }
        Ok((names, freed))
    }

    /// [`Containers::remove_anonymous_volumes`] off the engine's thread
    /// (deleting a big volume takes a while).
    pub async fn drop_anonymous_volumes(self: &Arc<Self>, c: &Arc<Container>) {
        if !c.record.volumes.iter().any(|v| v.anonymous) {
            return;
        }
        let (this, c) = (Arc::clone(self), Arc::clone(c));
        if let Err(e) = tokio::task::spawn_blocking(move || this.remove_anonymous_volumes(&c)).await
        {
            tracing::warn!("remove anonymous volumes: {e}");
        }
    }

    /// Removes the anonymous volumes of a removed container that no other
    /// container uses (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, c: &Container) {
        for v in c.record.volumes.iter().filter(|v| v.anonymous) {
            match self.remove_volume(&v.name, true) {
                Ok(()) | Err(Error::Volume(VolumeError::InUse(..))) => {}
                Err(e) => tracing::warn!(
                    "remove volume {} of {}: {}",
                    v.name,
                    c.name(),
                    e.full_message()
                ),
            }
        }
    }
}

/// Docker's `Mounts` of a container: its volumes and bind mounts.
pub fn mount_points(c: &Arc<Container>, volumes: &volume::Volumes) -> Vec<MountPoint> {
    let mut out: Vec<MountPoint> = c
        .record
        .volumes
        .iter()
        .map(|v| MountPoint {
            typ: Some("volume".to_string()),
            name: Some(v.name.clone()),
            source: Some(
                volumes
                    .dir()
                    .join(&v.name)
                    .join(volume::DATA_DIR)
                    .display()
                    .to_string(),
            ),
            destination: Some(v.destination.clone()),
            driver: Some(volume::LOCAL_DRIVER.to_string()),
            mode: Some(if v.read_only { "ro" } else { "z" }.to_string()),
            rw: Some(!v.read_only),
            propagation: Some(String::new()),
        })
        .collect();
    let hc = c.record.host_config();
    for b in hc.binds.iter().flatten() {
        if let Some(bind) = BindSpec::split(b)
            && bind.is_host_path()
        {
            out.push(MountPoint {
                typ: Some("bind".to_string()),
                name: None,
                source: Some(bind.source.to_string()),
                destination: Some(bind.target.to_string()),
                driver: None,
                mode: Some(bind.options.to_string()),
                rw: Some(!bind.read_only()),
                // The propagation asked for among the options, as Docker
                // reports it.
                propagation: Some(
                    bind.options
                        .split(',')
                        .find(|o| {
                            matches!(
                                *o,
                                "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared"
                            )
                        })
                        .unwrap_or("rprivate")
                        .to_string(),
                ),
            });
        }
    }
    for m in hc.mounts.iter().flatten() {
        if m.typ == Some(MountType::BIND) {
            out.push(MountPoint {
                typ: Some("bind".to_string()),
                name: None,
                source: m.source.clone(),
                destination: m.target.clone(),
                driver: None,
                mode: Some(String::new()),
                rw: Some(!m.read_only.unwrap_or(false)),
                propagation: Some(
                    m.bind_options
                        .as_ref()
                        .and_then(|b| b.propagation)
                        .map(|p| p.to_string())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "rprivate".to_string()),
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::{HostConfig, Mount, MountVolumeOptions};

    use super::*;

    #[test]
    fn wanted_volumes_follow_docker() {
        let body = ContainerCreateBody {
            volumes: Some(vec!["/anon".into(), "/data".into()]),
            host_config: Some(HostConfig {
                binds: Some(vec!["data:/data:ro,nocopy".into(), "/tmp:/host".into()]),
                mounts: Some(vec![
                    Mount {
                        typ: Some(MountType::VOLUME),
                        target: Some("/m".into()),
                        volume_options: Some(MountVolumeOptions {
                            no_copy: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some("named".into()),
                        target: Some("/n".into()),
                        read_only: Some(true),
                        ..Default::default()
                    },
                ]),
                tmpfs: Some([("/run".to_string(), String::new())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut image = oci_spec::image::Config::default();
        image.set_volumes(Some(vec![
            "/var/lib/x".into(),
            "/run/".into(),
            "/anon".into(),
        ]));
        let w = wanted(&body, Some(&image)).unwrap();
        let summary: Vec<(Option<&str>, &str, bool, bool)> = w
            .iter()
            .map(|w| {
                (
                    w.name.as_deref(),
                    w.destination.as_str(),
                    w.read_only,
                    w.no_copy,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("data"), "/data", true, true),
                (None, "/m", false, true),
                (Some("named"), "/n", true, false),
                (None, "/anon", false, false),
                (None, "/var/lib/x", false, false),
            ]
        );
        let bad = ContainerCreateBody {
            host_config: Some(HostConfig {
                binds: Some(vec!["bad name:/x".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = wanted(&bad, None).unwrap_err().to_string();
        assert!(
            err.contains("invalid characters for a local volume name"),
            "{err}"
        );
    }
}
