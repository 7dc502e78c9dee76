//! Named volumes: folders under `<root>/volumes/<name>/_data` with their
//! metadata in `<root>/volumes/<name>/volume.json`.
//!
//! A volume is made in a dot folder (`.creating-<name>-<random>`) that is
//! renamed into place once its metadata is on disk, and removed by renaming
//! it to `.removing-<name>-<random>` first; [`Volumes::open`] clears dot
//! folders a crash left behind, so a volume is either whole or absent.
//!
//! Only the `local` driver exists. Its options follow Docker's: without
//! options the volume is a plain folder; with `type`, `device` and `o` the
//! device is mounted on `_data` when a container first needs it and
//! unmounted when the volume is removed.
//!
//! Every volume made or removed is an event on the engine's stream
//! (`create`, `destroy`); mounting into containers (`mount`, `unmount`) is
//! published by the containers.
//!
//! Which containers use a volume is the containers' business
//! ([`crate::container::Containers`] checks it before removing one); this
//! module only keeps the volumes.
//!
//! - [`copy`]: copying an image's content into an empty volume.
//! - [`error`]: [`error::VolumeError`], what volume operations refuse.

pub mod copy;
pub mod error;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, VolumeError};
use crate::events::Events;
use crate::runtime::rootfs;
use crate::timefmt;

/// The metadata file in a volume's folder.
pub const META_FILE: &str = "volume.json";
/// The folder holding a volume's data.
pub const DATA_DIR: &str = "_data";
/// The only driver servin has.
pub const LOCAL_DRIVER: &str = "local";
/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What is kept about a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The name (also the folder's).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// User labels.
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Made for a container without a name: `rm -v` and `--rm` remove it,
    /// and `prune` without `all` only removes these.
    #[serde(default)]
    pub anonymous: bool,
}

/// A volume and where its data lives on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Its metadata.
    pub meta: Meta,
    /// `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
}

/// Docker's view of a volume (`GET /volumes/{name}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInfo {
    /// The name.
    pub name: String,
    /// The driver, `local`.
    pub driver: String,
    /// The data folder on the host.
    pub mountpoint: String,
    /// When it was made.
    pub created_at: String,
    /// Labels, with Docker's anonymous label on anonymous volumes.
    pub labels: HashMap<String, String>,
    /// `local`.
    pub scope: String,
    /// Driver options.
    pub options: HashMap<String, String>,
}

impl Volume {
    /// Docker's view of this volume.
    pub fn info(&self) -> VolumeInfo {
        VolumeInfo {
            name: self.meta.name.clone(),
            driver: self.meta.driver.clone(),
            mountpoint: self.mountpoint.display().to_string(),
            created_at: self.meta.created.clone(),
            labels: self.labels(),
            scope: "local".to_string(),
            options: self.meta.options.clone(),
        }
    }

    /// The attributes of its events: its labels, and `driver`.
    pub fn event_attributes(&self) -> HashMap<String, String> {
        let mut a = self.labels();
        a.insert("driver".to_string(), self.meta.driver.clone());
        a
    }

    /// The labels as Docker shows them: anonymous volumes carry
    /// [`ANONYMOUS_LABEL`].
    pub fn labels(&self) -> HashMap<String, String> {
        let mut l = self.meta.labels.clone();
        if self.meta.anonymous {
            l.entry(ANONYMOUS_LABEL.to_string()).or_default();
        }
        l
    }
}

/// A volume a container mounts, resolved when the container is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's name (random for anonymous volumes).
    pub name: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// No copy-up of the image's content (`nocopy`, `volume-nocopy`).
    pub no_copy: bool,
    /// Made for this container (`-v /path`, `--mount type=volume` without
    /// a source, or the image's `Volumes`).
    pub anonymous: bool,
}

/// Checks a volume name: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::InvalidName(name.to_string()).into())
    }
}

fn invalid_option(volume: &str, why: String) -> Error {
    VolumeError::InvalidOption {
        volume: volume.to_string(),
        why,
    }
    .into()
}

/// Checks the `local` driver's options: none, or `type` with `device`
/// (optional for tmpfs) and `o`.
fn check_options(name: &str, options: &HashMap<String, String>) -> Result<()> {
    if let Some(k) = options
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "device" | "o"))
    {
        return Err(invalid_option(
            name,
            format!("invalid option {k:?}: the local driver takes type, device and o"),
        ));
    }
    if options.is_empty() {
        return Ok(());
    }
    let typ = options.get("type").map(String::as_str).unwrap_or_default();
    let device = options
        .get("device")
        .map(String::as_str)
        .unwrap_or_default();
    if typ.is_empty() {
        return Err(invalid_option(
            name,
            "the option \"type\" is missing (e.g. type=tmpfs, or type=none with o=bind)".into(),
        ));
    }
    if device.is_empty() && typ != "tmpfs" {
        return Err(invalid_option(
            name,
            format!("the option \"device\" is missing for type {typ}"),
        ));
    }
    Ok(())
}

/// In servin's VM, refuses a bind volume (`o=bind` or `rbind`) whose
/// `device` is a host path outside every shared folder: it would bind a
/// folder of the VM.
fn check_shared(
    name: &str,
    options: &HashMap<String, String>,
    shares: &crate::config::VmShares,
) -> Result<()> {
    let binds = options
        .get("o")
        .is_some_and(|o| o.split(',').any(|f| f == "bind" || f == "rbind"));
    let Some(device) = options.get("device").filter(|_| binds) else {
        return Ok(());
    };
    match shares.not_shared(device) {
        None => Ok(()),
        Some(why) => Err(invalid_option(name, format!("bind device {why}"))),
    }
}

/// Mount flags and data from the `o` option.
fn mount_flags(o: &str) -> (rustix::mount::MountFlags, String) {
    use rustix::mount::MountFlags;
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" => flags.remove(MountFlags::RDONLY),
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Every volume of the engine.
pub struct Volumes {
    dir: PathBuf,
    lock: Mutex<()>,
    events: Arc<Events>,
    /// The host folders servin's VM shares, when the engine runs there.
    vm_shares: Option<crate::config::VmShares>,
}

impl Volumes {
    /// Opens `root/volumes`, clearing what a crash left half made or half
    /// removed.
    pub fn open(root: &Path, events: Arc<Events>) -> Result<Self> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let entries = std::fs::read_dir(&dir).map_err(Error::io("read", &dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                let path = entry.path();
                let _ = rootfs::unmount(&path.join(DATA_DIR));
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!("remove leftover {}: {e}", path.display());
                }
            }
        }
        Ok(Self {
            dir,
            lock: Mutex::new(()),
            events,
            vm_shares: crate::config::VmShares::from_env(),
        })
    }

    fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The folder holding every volume.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self, name: &str) -> Result<Volume> {
        let dir = self.dir.join(name);
        let meta: Meta = match crate::state::read_json(&dir, META_FILE) {
            Ok(m) => m,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchVolume(name.to_string()));
            }
            Err(e) => return Err(e),
        };
        Ok(Volume {
            meta,
            mountpoint: dir.join(DATA_DIR),
        })
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if check_name(name).is_err() {
            return Err(Error::NoSuchVolume(name.to_string()));
        }
        self.read(name)
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                match self.read(&name) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::warn!("skipping volume folder {name}: {}", e.full_message());
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        out
    }

    /// Creates a volume; without a name it gets a random 64-hex one.
    /// Creating a name that exists returns the existing volume (Docker's
    /// behaviour), unless the driver or options differ.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<Volume> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or(LOCAL_DRIVER);
        // Without a name the volume is anonymous, as Docker makes it: a
        // random name and the anonymous label, so prune takes it.
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (crate::state::new_id()?, true),
        };
        check_name(&name)?;
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::UnsupportedDriver(name.clone(), driver.to_string()).into());
        }
        check_options(&name, &options)?;
        if let Some(shares) = &self.vm_shares {
            check_shared(&name, &options, shares)?;
        }
        let _guard = self.locked();
        match self.read(&name) {
            Ok(existing) => {
                if !options.is_empty() && existing.meta.options != options {
                    return Err(VolumeError::OtherOptions(name.clone()).into());
                }
                return Ok(existing);
            }
            Err(Error::NoSuchVolume(_)) => {}
            Err(e) => return Err(e),
        }
        let meta = Meta {
            name: name.clone(),
            driver: LOCAL_DRIVER.to_string(),
            labels,
            options,
            created: timefmt::format_rfc3339(timefmt::now()),
            anonymous,
        };
        self.write_new(meta)
    }

    /// Makes an anonymous volume with a random name, for a container.
    pub fn create_anonymous(&self) -> Result<Volume> {
        let name = crate::state::new_id()?;
        let _guard = self.locked();
        self.write_new(Meta {
            name,
            driver: LOCAL_DRIVER.to_string(),
            labels: HashMap::new(),
            options: HashMap::new(),
            created: timefmt::format_rfc3339(timefmt::now()),
            anonymous: true,
        })
    }

    /// The volume `name`, created (with no labels) when missing, as
    /// `docker run -v NAME:/path` does.
    pub fn ensure(&self, name: &str) -> Result<Volume> {
        match self.get(name) {
            Ok(v) => Ok(v),
            Err(Error::NoSuchVolume(_)) => {
                self.create(Some(name), None, HashMap::new(), HashMap::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes a new volume in a dot folder and renames it into place.
    fn write_new(&self, meta: Meta) -> Result<Volume> {
        let suffix: String = crate::state::new_id()?.chars().take(8).collect();
        let tmp = self.dir.join(format!(".creating-{}-{suffix}", meta.name));
        let dir = self.dir.join(&meta.name);
        let made = (|| -> Result<()> {
            let data = tmp.join(DATA_DIR);
            std::fs::create_dir_all(&data).map_err(Error::io("create", &data))?;
            crate::state::write_json(&tmp, META_FILE, &meta)?;
            std::fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
            crate::state::sync_dir(&self.dir);
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let v = Volume {
            mountpoint: dir.join(DATA_DIR),
            meta,
        };
        self.events
            .volume("create", &v.meta.name, v.event_attributes());
        Ok(v)
    }

    /// Removes a volume and its data. The caller checks that no container
    /// uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let aside = self.take(name)?;
        delete_aside(&aside)
    }

    /// Takes a volume out of sight (unmounting its device, renaming its
    /// folder to a dot name) and returns the folder to delete with
    /// [`delete_aside`]: quick, so callers may hold a lock across it.
    pub fn take(&self, name: &str) -> Result<PathBuf> {
        let _guard = self.locked();
        let v = self.get(name)?;
        let dir = self.dir.join(name);
        if let Err(e) = rootfs::unmount(&v.mountpoint) {
            return Err(Error::Runtime {
                context: format!("remove volume {name}"),
                message: e.full_message(),
            });
        }
        let suffix: String = crate::state::new_id()?.chars().take(8).collect();
        let aside = self.dir.join(format!(".removing-{name}-{suffix}"));
        std::fs::rename(&dir, &aside).map_err(Error::io("rename", &dir))?;
        crate::state::sync_dir(&self.dir);
        self.events.volume("destroy", name, v.event_attributes());
        Ok(aside)
    }

    /// The host folder to bind-mount for volume `name`: its `_data`, with
    /// the device of its options mounted there first when it has some.
    pub fn mount_path(&self, name: &str) -> Result<PathBuf> {
        let v = self.get(name)?;
        if v.meta.options.is_empty() {
            return Ok(v.mountpoint);
        }
        let _guard = self.locked();
        if rootfs::is_mounted(&v.mountpoint) {
            return Ok(v.mountpoint);
        }
        let typ = v.meta.options.get("type").cloned().unwrap_or_default();
        let device = v
            .meta
            .options
            .get("device")
            .cloned()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| typ.clone());
        let (flags, data) = mount_flags(v.meta.options.get("o").map_or("", String::as_str));
        let fs_type = if typ == "none" { "" } else { typ.as_str() };
        let data = std::ffi::CString::new(data)
            .map_err(|_| invalid_option(name, "the option \"o\" holds a NUL byte".into()))?;
        rustix::mount::mount(
            device.as_str(),
            &v.mountpoint,
            fs_type,
            flags,
            data.as_c_str(),
        )
        .map_err(|e| Error::Runtime {
            context: format!("volume {name}: mount {device} (type {typ})"),
            message: e.to_string(),
        })?;
        Ok(v.mountpoint)
    }

    /// Bytes used by volume `name`'s data (files counted once).
    pub fn size(&self, name: &str) -> u64 {
        let Ok(v) = self.get(name) else { return 0 };
        dir_size(&v.mountpoint)
    }
}

/// Deletes a folder [`Volumes::take`] set aside; a crash before it ends is
/// finished by [`Volumes::open`].
pub fn delete_aside(aside: &Path) -> Result<()> {
    std::fs::remove_dir_all(aside).map_err(Error::io("remove", aside))
}

/// Bytes of the regular files below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}

/// Docker's volume filters (see [`crate::filters`] for the rules): `name`
/// (a regular expression), `label` and `label!`, `driver`, `dangling`
/// (`true`: used by no container) and, for prune, `all`.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    filters: crate::filters::Filters,
    dangling: Option<bool>,
    /// Prune's `all`: named volumes too.
    pub all: bool,
}

impl Filters {
    /// Parses the `filters` argument; `allowed` lists the keys this call
    /// takes.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self> {
        let filters = crate::filters::Filters::parse(raw, allowed)?;
        Ok(Self {
            dangling: filters.boolean("dangling")?,
            all: filters.boolean("all")?.unwrap_or(false),
            filters,
        })
    }

    /// Whether `v` passes; `in_use` says whether a container uses it.
    pub fn matches(&self, v: &Volume, in_use: bool) -> bool {
        let f = &self.filters;
        f.name("name", &v.meta.name)
            && f.labels(&v.labels())
            && f.exact("driver", &v.meta.driver)
            && self.dangling.is_none_or(|d| d != in_use)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "data", "my_vol.1-x", "0x"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "a", "-x", ".hidden", "a/b", "a b", "_x", "é1"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_is_idempotent_and_crash_safe() {
        let root = tempfile::tempdir().unwrap();
        let vols = Volumes::open(root.path(), Default::default()).unwrap();
        let a = vols
            .create(Some("data"), None, labels(&[("a", "1")]), HashMap::new())
            .unwrap();
        assert!(a.mountpoint.is_dir());
        assert_eq!(a.mountpoint, root.path().join("volumes/data/_data"));
        let again = vols
            .create(Some("data"), Some("local"), HashMap::new(), HashMap::new())
            .unwrap();
        assert_eq!(again.meta, a.meta, "the existing volume is returned");
        assert!(
            vols.create(Some("x y"), None, HashMap::new(), HashMap::new())
                .is_err()
        );
        let err = vols
            .create(Some("nfs"), Some("nfs"), HashMap::new(), HashMap::new())
            .unwrap_err();
        assert!(err.to_string().contains("local driver only"), "{err}");
        let err = vols
            .create(Some("opt"), None, HashMap::new(), labels(&[("size", "1")]))
            .unwrap_err();
        assert!(err.to_string().contains("invalid option \"size\""), "{err}");
        // A create cut short leaves a dot folder, which open clears.
        std::fs::create_dir_all(root.path().join("volumes/.creating-x-1/_data")).unwrap();
        let vols = Volumes::open(root.path(), Default::default()).unwrap();
        assert!(!root.path().join("volumes/.creating-x-1").exists());
        let names: Vec<String> = vols.list().into_iter().map(|v| v.meta.name).collect();
        assert_eq!(names, ["data"]);
        let anon = vols.create_anonymous().unwrap();
        assert_eq!(anon.meta.name.len(), 64);
        assert!(anon.labels().contains_key(ANONYMOUS_LABEL));
        let unnamed = vols
            .create(None, None, HashMap::new(), HashMap::new())
            .unwrap();
        assert!(unnamed.meta.anonymous, "an unnamed volume is anonymous");
        assert_eq!(vols.list().len(), 3);
    }

    #[test]
    fn remove_and_get_name_the_volume() {
        let root = tempfile::tempdir().unwrap();
        let vols = Volumes::open(root.path(), Default::default()).unwrap();
        vols.ensure("keep").unwrap();
        std::fs::write(root.path().join("volumes/keep/_data/f"), "x").unwrap();
        assert_eq!(vols.size("keep"), 1);
        vols.remove("keep").unwrap();
        assert!(!root.path().join("volumes/keep").exists());
        let err = vols.get("keep").unwrap_err();
        assert_eq!(err.to_string(), "no such volume: keep");
        assert!(matches!(vols.remove("keep"), Err(Error::NoSuchVolume(_))));
        assert!(matches!(vols.get("../x"), Err(Error::NoSuchVolume(_))));
    }

    #[test]
    fn filters_match_like_docker() {
        let root = tempfile::tempdir().unwrap();
        let vols = Volumes::open(root.path(), Default::default()).unwrap();
        let web = vols
            .create(
                Some("web-data"),
                None,
                labels(&[("app", "web")]),
                HashMap::new(),
            )
            .unwrap();
        let anon = vols.create_anonymous().unwrap();
        let raw = |k: &str, v: &str| serde_json::json!({ k: [v] }).to_string();
        let parse = |k: &str, v: &str| {
            Filters::parse(
                Some(&raw(k, v)),
                &["name", "label", "label!", "dangling", "driver"],
            )
            .unwrap()
        };
        assert!(parse("name", "web").matches(&web, false));
        assert!(!parse("name", "db").matches(&web, false));
        assert!(parse("label", "app").matches(&web, false));
        assert!(parse("label", "app=web").matches(&web, false));
        assert!(!parse("label", "app=db").matches(&web, false));
        assert!(!parse("label!", "app").matches(&web, false));
        assert!(parse("label", ANONYMOUS_LABEL).matches(&anon, false));
        assert!(parse("dangling", "true").matches(&web, false));
        assert!(!parse("dangling", "true").matches(&web, true));
        assert!(parse("dangling", "false").matches(&web, true));
        assert!(parse("driver", "local").matches(&web, true));
        let bad = raw("dangling", "maybe");
        assert!(Filters::parse(Some(&bad), &["dangling"]).is_err());
        let unknown = raw("colour", "red");
        assert!(Filters::parse(Some(&unknown), &["name"]).is_err());
    }

    #[test]
    fn mount_options_split_flags_from_data() {
        let (flags, data) = mount_flags("ro,size=10m,uid=1000,nosuid");
        assert!(flags.contains(rustix::mount::MountFlags::RDONLY));
        assert!(flags.contains(rustix::mount::MountFlags::NOSUID));
        assert_eq!(data, "size=10m,uid=1000");
        check_options("t", &labels(&[("type", "tmpfs"), ("o", "size=1m")])).unwrap();
        let shares = crate::config::VmShares {
            folders: vec!["/home/u".into()],
            config: None,
        };
        let bind = |device: &str| labels(&[("type", "none"), ("o", "rw,bind"), ("device", device)]);
        assert!(check_shared("t", &bind("/home/u/data"), &shares).is_ok());
        let e = check_shared("t", &bind("/srv/data"), &shares)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "volume t: bind device /srv/data is not shared with servin's VM (shared: /home/u)"
            ),
            "{e}"
        );
        let tmpfs = labels(&[("type", "tmpfs"), ("device", "/srv/x")]);
        assert!(check_shared("t", &tmpfs, &shares).is_ok());
        assert!(check_options("t", &labels(&[("type", "ext4")])).is_err());
        assert!(check_options("t", &labels(&[("device", "/dev/x")])).is_err());
    }
}
