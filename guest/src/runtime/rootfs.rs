//! Root filesystems: overlay mounts over image snapshots, and lookups that
//! stay inside a root even when the image holds symlinks pointing out of
//! it (`openat2` with `RESOLVE_IN_ROOT`).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::{Error, Result};

/// The kernel takes mount options of at most a page.
const MAX_OPTIONS: usize = 4000;

/// Mounts an overlay at `target`: `lower` (top layer first) under `upper`,
/// with `work` as overlayfs's work folder. An image without layers gets an
/// empty lower folder next to `upper`.
pub fn mount_overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay_with(lower, upper, work, target, false)
}

/// [`mount_overlay`], `volatile` when asked: overlayfs then never syncs the
/// upper folder's filesystem, not even when unmounted (which otherwise
/// writes back the whole filesystem the state root is on). For a root
/// nobody keeps (a container removed when it exits, `--rm`), or one whose
/// few changes may be left to the kernel's writeback (a build's copy of
/// changes). Kernels without the option (before 5.10) get a normal mount.
pub fn mount_overlay_with(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    let mut lower = lower.to_vec();
    if lower.is_empty() {
        let empty = upper.with_file_name("empty");
        std::fs::create_dir_all(&empty).map_err(Error::io("create", &empty))?;
        lower.push(empty);
    }
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let joined: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    if let Some(bad) = joined
        .iter()
        .chain([upper.display().to_string(), work.display().to_string()].iter())
        .find(|p| p.contains([',', ':']))
    {
        return Err(Error::Runtime {
            context: format!("mount the root at {}", target.display()),
            message: format!(
                "the path {bad} holds a ',' or ':', which overlayfs options cannot carry"
            ),
        });
    }
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        joined.join(":"),
        upper.display(),
        work.display()
    );
    if volatile {
        options.push_str(",volatile");
    }
    if options.len() > MAX_OPTIONS {
        return Err(Error::Runtime {
            context: format!("mount the root at {}", target.display()),
            message: format!(
                "the image has too many layers ({}) for one overlay mount",
                lower.len()
            ),
        });
    }
    let data = CString::new(options).map_err(|_| Error::Runtime {
        context: format!("mount the root at {}", target.display()),
        message: "a layer path holds a NUL byte".to_string(),
    })?;
    let mount = || {
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
    };
    let failed = |e: rustix::io::Errno| Error::Runtime {
        context: format!("mount the root at {}", target.display()),
        message: format!("overlay mount: {e}"),
    };
    match mount() {
        Err(rustix::io::Errno::INVAL) if volatile => {
            // The work folder of an earlier volatile mount (overlayfs
            // refuses it until it is emptied), or no `volatile` in this
            // kernel: a fresh work folder, then a normal mount if need be.
            let _ = std::fs::remove_dir_all(work);
            std::fs::create_dir_all(work).map_err(Error::io("create", work))?;
            match mount() {
                Err(rustix::io::Errno::INVAL) => {
                    mount_overlay_with(&lower, upper, work, target, false)
                }
                other => other.map_err(failed),
            }
        }
        other => other.map_err(failed),
    }
}

/// Unmounts `target` (lazily, so a busy mount goes once unused); fine when
/// nothing is mounted there.
pub fn unmount(target: &Path) -> Result<()> {
    while is_mounted(target) {
        rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| Error::Runtime {
            context: format!("unmount {}", target.display()),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Unmounts everything mounted at or below `dir` (deepest first), reading
/// `/proc/self/mountinfo`; failures are logged, never fatal: this is the
/// clean-up of scratch folders.
pub fn unmount_all_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        if let Err(e) = unmount(Path::new(&p)) {
            tracing::warn!("unmount {p}: {}", e.full_message());
        }
    }
}

/// Whether something is mounted at `target`: `statx`'s mount-root
/// attribute where the kernel reports it (5.8 and later), else a search of
/// `/proc/self/mountinfo` (which grows with every mount on the host).
pub fn is_mounted(target: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    match rustix::fs::statx(
        rustix::fs::CWD,
        target,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        }
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return false,
        // No attribute, or a mount that cannot be looked at (stale): ask
        // the mount table.
        _ => {}
    }
    mounted_per_mountinfo(target)
}

fn mounted_per_mountinfo(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = target.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_root(rootfs: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn open_in(root: &OwnedFd, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Reads `path` inside `rootfs`, resolving symlinks as if `rootfs` were
/// `/`; `None` when it is missing or unreadable.
pub fn read_in_root(rootfs: &Path, path: &str) -> Option<Vec<u8>> {
    let root = open_root(rootfs).ok()?;
    let fd = open_in(&root, path, OFlags::RDONLY).ok()?;
    let mut f = std::fs::File::from(fd);
    let mut out = Vec::new();
    f.read_to_end(&mut out).ok()?;
    Some(out)
}

/// Creates `path` (and its parents) inside `rootfs`, never outside it (a
/// symlink on the way resolves as if `rootfs` were `/`), and gives the
/// folders it makes to `uid:gid`. Existing folders are left as they are.
pub fn ensure_dir_in_root(rootfs: &Path, path: &str, uid: u32, gid: u32) -> Result<()> {
    let fail = |e: std::io::Error| Error::Runtime {
        context: format!("create the folder {path} in {}", rootfs.display()),
        message: e.to_string(),
    };
    let root = open_root(rootfs).map_err(fail)?;
    let mut parent = String::from("/");
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let here = format!("{}/{part}", parent.trim_end_matches('/'));
        if open_in(&root, &here, OFlags::PATH | OFlags::DIRECTORY).is_err() {
            let dir = open_in(&root, &parent, OFlags::RDONLY | OFlags::DIRECTORY).map_err(fail)?;
            match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
                Ok(()) => rustix::fs::chownat(
                    &dir,
                    part,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| fail(e.into()))?,
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(fail(e.into())),
            }
            // What is there now must be a folder (or a link to one inside).
            open_in(&root, &here, OFlags::PATH | OFlags::DIRECTORY).map_err(fail)?;
        }
        parent = here;
    }
    Ok(())
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn is_executable_file(root: &OwnedFd, path: &str) -> bool {
    open_in(root, path, OFlags::PATH)
        .ok()
        .and_then(|fd| rustix::fs::fstat(&fd).ok())
        .is_some_and(|st| {
            let mode = st.st_mode;
            (mode & 0o170_000) == 0o100_000 && (mode & 0o111) != 0
        })
}

/// Docker's check before a start: the command must exist in the image.
/// A name with a `/` must be there; a bare name is searched in `PATH` (from
/// `env`, else the default). Missing gives Docker's message.
pub fn lookup_command(rootfs: &Path, argv0: &str, env: &[String]) -> Result<()> {
    let root = open_root(rootfs).map_err(Error::io("open", rootfs))?;
    if argv0.contains('/') {
        if !argv0.starts_with('/') || is_executable_file(&root, argv0) {
            return Ok(());
        }
        let found = open_in(&root, argv0, OFlags::PATH)
            .ok()
            .and_then(|fd| rustix::fs::fstat(&fd).ok());
        return Err(Error::CommandNotFound(match found {
            Some(st) if (st.st_mode & 0o170_000) == 0o040_000 => {
                format!("exec: \"{argv0}\": is a directory")
            }
            Some(_) => format!("exec: \"{argv0}\": permission denied"),
            None => format!("exec: \"{argv0}\": stat {argv0}: no such file or directory"),
        }));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|dir| is_executable_file(&root, &format!("{}/{argv0}", dir.trim_end_matches('/'))));
    if found {
        Ok(())
    } else {
        Err(Error::CommandNotFound(format!(
            "exec: \"{argv0}\": executable file not found in $PATH"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::fs::write(r.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            r.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(r.join("usr/bin/data"), "x").unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", r.join("etc/escape")).unwrap();
        std::fs::write(r.join("etc/hostname"), "inside\n").unwrap();
        d
    }

    #[test]
    fn finds_commands_like_docker() {
        let d = fake_root();
        let env = vec!["PATH=/bin".to_string()];
        lookup_command(d.path(), "tool", &env).unwrap();
        lookup_command(d.path(), "/bin/tool", &env).unwrap();
        lookup_command(d.path(), "./relative", &env).unwrap();
        let e = lookup_command(d.path(), "nosuch", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        let e = lookup_command(d.path(), "/nosuch", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"/nosuch\": stat /nosuch: no such file or directory"
        );
        assert!(
            lookup_command(d.path(), "data", &env).is_err(),
            "not executable"
        );
        assert_eq!(
            lookup_command(d.path(), "/usr/bin/data", &env)
                .unwrap_err()
                .to_string(),
            "exec: \"/usr/bin/data\": permission denied"
        );
        assert_eq!(
            lookup_command(d.path(), "/usr/bin", &env)
                .unwrap_err()
                .to_string(),
            "exec: \"/usr/bin\": is a directory"
        );
        // No PATH in the environment: the default one, through the /bin link.
        lookup_command(d.path(), "tool", &[]).unwrap();
        let e = lookup_command(d.path(), "tool", &["PATH=/nowhere".to_string()]).unwrap_err();
        assert!(matches!(e, Error::CommandNotFound(_)));
        // A link pointing out of the root is resolved inside it.
        std::os::unix::fs::symlink("/usr/bin/tool", d.path().join("usr/bin/via-abs")).unwrap();
        lookup_command(d.path(), "via-abs", &env).unwrap();
        std::os::unix::fs::symlink("/bin/sh", d.path().join("usr/bin/host-sh")).unwrap();
        assert!(
            lookup_command(d.path(), "host-sh", &env).is_err(),
            "the host's /bin/sh does not count"
        );
    }

    #[test]
    fn reads_stay_inside_the_root() {
        let d = fake_root();
        // /etc/escape -> /etc/hostname resolves to the root's own file.
        assert_eq!(read_in_root(d.path(), "/etc/escape").unwrap(), b"inside\n");
        assert!(
            read_in_root(d.path(), "/../../etc/passwd")
                .is_none_or(|b| b.is_empty() || b != std::fs::read("/etc/passwd").unwrap())
        );
    }

    #[test]
    fn creates_working_folders_inside_the_root() {
        let d = fake_root();
        std::os::unix::fs::symlink("/", d.path().join("up")).unwrap();
        ensure_dir_in_root(d.path(), "/up/work/dir", 1000, 1000).unwrap();
        assert!(
            d.path().join("work/dir").is_dir(),
            "created under the root, not the host's /"
        );
        let meta = std::fs::metadata(d.path().join("work/dir")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
        ensure_dir_in_root(d.path(), "/usr/bin", 0, 0).unwrap();
        let meta = std::fs::metadata(d.path().join("usr/bin")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(d.path()).unwrap()),
            "existing folders keep their owner"
        );
        let e = ensure_dir_in_root(d.path(), "/usr/bin/data/x", 0, 0).unwrap_err();
        assert!(e.to_string().contains("/usr/bin/data/x"), "{e}");
        ensure_dir_in_root(d.path(), "/bin/made", 0, 0).unwrap();
        assert!(
            d.path().join("usr/bin/made").is_dir(),
            "through the /bin link"
        );
    }

    /// Unmounts its path when dropped, pass or fail.
    struct Unmount(PathBuf);

    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = unmount(&self.0);
        }
    }

    #[test]
    fn volatile_overlay_mounts_again_after_unmount() {
        let d = tempfile::tempdir().unwrap();
        let low = d.path().join("low");
        std::fs::create_dir_all(&low).unwrap();
        std::fs::write(low.join("a"), "a").unwrap();
        let target = d.path().join("merged");
        let _guard = Unmount(target.clone());
        let (upper, work) = (d.path().join("upper"), d.path().join("work"));
        for round in 0..2 {
            mount_overlay_with(std::slice::from_ref(&low), &upper, &work, &target, true).unwrap();
            assert!(is_mounted(&target), "round {round}");
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            let line = info
                .lines()
                .find(|l| l.contains(&*target.to_string_lossy()))
                .unwrap();
            assert!(line.contains("volatile"), "{line}");
            std::fs::write(target.join("b"), round.to_string()).unwrap();
            unmount(&target).unwrap();
        }
        assert_eq!(std::fs::read_to_string(upper.join("b")).unwrap(), "1");
    }

    #[test]
    fn overlay_mounts_and_unmounts() {
        let d = tempfile::tempdir().unwrap();
        let (low1, low2) = (d.path().join("l1"), d.path().join("l2"));
        for (dir, file, text) in [
            (&low1, "a", "top"),
            (&low2, "a", "bottom"),
            (&low2, "b", "b"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(file), text).unwrap();
        }
        let target = d.path().join("merged");
        let _guard = Unmount(target.clone());
        assert!(!is_mounted(&target));
        mount_overlay(
            &[low1.clone(), low2.clone()],
            &d.path().join("upper"),
            &d.path().join("work"),
            &target,
        )
        .unwrap();
        assert!(is_mounted(&target));
        assert!(mounted_per_mountinfo(&target), "both ways agree");
        assert!(!is_mounted(&target.join("a")), "a file in the mount");
        assert!(!is_mounted(&d.path().join("none")), "a missing path");
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "top");
        assert_eq!(std::fs::read_to_string(target.join("b")).unwrap(), "b");
        std::fs::write(target.join("new"), "x").unwrap();
        assert!(
            d.path().join("upper/new").is_file(),
            "writes go to the upper folder"
        );
        unmount(&target).unwrap();
        assert!(!is_mounted(&target));
        assert!(!mounted_per_mountinfo(&target));
        unmount(&target).unwrap();

        let empty = d.path().join("e");
        mount_overlay(
            &[],
            &empty.join("upper"),
            &empty.join("work"),
            &empty.join("root"),
        )
        .unwrap();
        let _guard2 = Unmount(empty.join("root"));
        assert!(is_mounted(&empty.join("root")));
        unmount(&empty.join("root")).unwrap();
        let bad = d.path().join("with,comma");
        assert!(
            mount_overlay(
                &[bad],
                &d.path().join("u2"),
                &d.path().join("w2"),
                &d.path().join("t2")
            )
            .is_err()
        );
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
