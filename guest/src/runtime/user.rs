//! Users and groups, looked up in the image's `/etc/passwd` and
//! `/etc/group` the way Docker does.

use std::path::Path;

use oci_spec::runtime::{User, UserBuilder};

use super::rootfs::read_in_root;
use crate::error::{Error, Result, SpecError};

/// A user as the container runs it, with its home folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The user ID.
    pub uid: u32,
    /// The primary group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub additional: Vec<u32>,
    /// The home folder from `/etc/passwd`, when the user is there.
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    let text = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map_or_else(String::new, |h| (*h).to_string()),
            })
        })
        .collect()
}

/// (name, gid, members) of each group.
fn groups(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    let text = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
        })
        .collect()
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`, empty for
/// root) against the root filesystem. Numeric IDs need no entry.
pub fn resolve(rootfs: &Path, user: &str) -> Result<Resolved> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let users = passwd(rootfs);
    let (uid, mut gid, home, name) = if u.is_empty() {
        let root = users.iter().find(|e| e.uid == 0);
        (
            0,
            0,
            root.map(|e| e.home.clone()),
            root.map(|e| e.name.clone()),
        )
    } else if let Ok(uid) = u.parse::<u32>() {
        let entry = users.iter().find(|e| e.uid == uid);
        (
            uid,
            entry.map_or(0, |e| e.gid),
            entry.map(|e| e.home.clone()),
            entry.map(|e| e.name.clone()),
        )
    } else {
        let entry = users
            .iter()
            .find(|e| e.name == u)
            .ok_or_else(|| Error::from(SpecError::NoSuchUser(u.to_string())))?;
        (
            entry.uid,
            entry.gid,
            Some(entry.home.clone()),
            Some(entry.name.clone()),
        )
    };
    let all_groups = groups(rootfs);
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => all_groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| *id)
                .ok_or_else(|| Error::from(SpecError::NoSuchGroup(g.to_string())))?,
        };
    }
    let mut additional: Vec<u32> = match &name {
        Some(n) if g.is_none() => all_groups
            .iter()
            .filter(|(_, id, members)| members.contains(n) && *id != gid)
            .map(|(_, id, _)| *id)
            .collect(),
        _ => Vec::new(),
    };
    additional.sort_unstable();
    additional.dedup();
    Ok(Resolved {
        uid,
        gid,
        additional,
        home: home.filter(|h| !h.is_empty()),
    })
}

/// Docker's `group_add`: each a group number, or a name from the root's
/// `/etc/group`.
pub fn group_ids(rootfs: &Path, names: &[String]) -> Result<Vec<u32>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let all_groups = groups(rootfs);
    names
        .iter()
        .map(|g| {
            g.parse::<u32>().or_else(|_| {
                all_groups
                    .iter()
                    .find(|(n, _, _)| n == g)
                    .map(|(_, id, _)| *id)
                    .ok_or_else(|| Error::from(SpecError::NoSuchGroup(g.to_string())))
            })
        })
        .collect()
}

/// The OCI user of `resolved`.
pub fn oci_user(resolved: &Resolved) -> Result<User> {
    let mut b = UserBuilder::default().uid(resolved.uid).gid(resolved.gid);
    if !resolved.additional.is_empty() {
        b = b.additional_gids(resolved.additional.clone());
    }
    b.build()
        .map_err(|e| SpecError::Invalid(format!("user: {e}")).into())
}

/// Resolves `user` straight to an OCI user.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<User> {
    oci_user(&resolve(rootfs, user)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:app\napp:x:1000:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_and_numbers() {
        let d = root();
        let r = resolve(d.path(), "app").unwrap();
        assert_eq!((r.uid, r.gid, r.additional.clone()), (1000, 1000, vec![50]));
        assert_eq!(r.home.as_deref(), Some("/home/app"));
        let r = resolve(d.path(), "1234:5678").unwrap();
        assert_eq!((r.uid, r.gid), (1234, 5678));
        let r = resolve(d.path(), "app:staff").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 50));
        let r = resolve(d.path(), "").unwrap();
        assert_eq!((r.uid, r.gid), (0, 0));
        let e = resolve(d.path(), "ghost").unwrap_err();
        assert!(e.to_string().contains("unable to find user ghost"));
        assert!(resolve(d.path(), "app:nogroup").is_err());
        let r = resolve(d.path(), "1000").unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional),
            (1000, 1000, vec![50]),
            "a number with an entry takes its group and memberships"
        );
        let r = resolve(d.path(), "4242").unwrap();
        assert_eq!(
            (r.uid, r.gid, r.home),
            (4242, 0, None),
            "a number needs no entry"
        );
        let r = resolve(d.path(), "app:7").unwrap();
        assert_eq!(
            (r.gid, r.additional),
            (7, vec![]),
            "an explicit group drops memberships"
        );
    }

    #[test]
    fn added_groups() {
        let d = root();
        assert_eq!(
            group_ids(d.path(), &["staff".to_string(), "99".to_string()]).unwrap(),
            [50, 99]
        );
        let e = group_ids(d.path(), &["wheel".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group wheel: no matching entries in group file"
        );
    }

    #[test]
    fn oci_user_carries_the_groups() {
        let d = root();
        let u = serde_json::to_value(resolve_user(d.path(), "app").unwrap()).unwrap();
        assert_eq!(
            u,
            serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [50]})
        );
    }

    #[test]
    fn a_passwd_symlinked_out_of_the_root_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // Resolved inside the root, the link points at itself: no entries.
        assert!(resolve(d.path(), "root").is_err());
        // A relative link climbing out stops at the root.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::fs::create_dir_all(d.path().join("inner")).unwrap();
        std::fs::write(d.path().join("inner/passwd"), "inside:x:7:7::/in:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../inner/passwd",
            d.path().join("etc/passwd"),
        )
        .unwrap();
        assert_eq!(resolve(d.path(), "inside").unwrap().uid, 7);
        assert!(
            resolve(d.path(), "root").is_err(),
            "the host's passwd is not read"
        );
    }
}
