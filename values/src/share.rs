//! Host folders shared into servin's VM: which folders may be shared, the
//! path-under-share check, and how the list travels to the guest on the
//! kernel command line.
//!
//! A share is mounted in the guest at the same absolute path as on the
//! host, so a bind source written for the host (`-v /home/u/proj:/app`)
//! names the same files inside the VM. The host side (`vm-config.json`'s
//! `shares`) checks and normalises the list; the guest's init reads it
//! back from the command line, mounts each share, and the engine refuses
//! a bind whose source lies outside every mounted share.
//!
//! On the command line each share is one `servin.share=PATH` word, in the
//! order of the QEMU devices, so the `n`-th is the device whose mount tag
//! is [`mount_tag`]`(n)`; a share missing on the host is a
//! `servin.unshared=PATH` word (the guest says so on its console), and
//! `servin.config=PATH` names the host's `vm-config.json` for the engine's
//! help text. Paths are [`escape`]d: the kernel splits its command line at
//! spaces and reads quotes.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// The command-line word of a mounted share.
pub const SHARE_PARAM: &str = "servin.share";
/// The command-line word of a share that does not exist on the host.
pub const UNSHARED_PARAM: &str = "servin.unshared";
/// The command-line word naming the host's `vm-config.json`.
pub const CONFIG_PARAM: &str = "servin.config";
/// The command-line word choosing the 9p cache mode (for measuring; the
/// guest's default is `mmap`).
pub const CACHE_PARAM: &str = "servin.share_cache";
/// The 9p cache modes of the guest's kernel.
pub const CACHE_MODES: &[&str] = &["none", "mmap", "loose", "fscache"];

/// The VM's own folders: a share may be none of them, inside none of them,
/// and hold none of them (it would hide the guest's system or its data
/// disk). `/tmp` is not among them: the host's replaces the guest's.
pub const GUEST_FOLDERS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/lib/servin",
];

/// The mount tag of the `index`-th share (QEMU allows 31 bytes).
pub fn mount_tag(index: usize) -> String {
    format!("servin{index}")
}

/// A share as written in `vm-config.json`, absolute and normalised
/// (`.`, `..`, doubled and trailing slashes gone); refused when relative,
/// the root, or on one of the [`GUEST_FOLDERS`].
pub fn normalize_share(path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} is not an absolute path: write the host folder in full, as /home/me/src"
        ));
    }
    let clean = normalize(Path::new(path));
    if clean == Path::new("/") {
        return Err(format!(
            "{path:?} is the root: share the folders that hold your work, as /home/me"
        ));
    }
    for guest in GUEST_FOLDERS {
        let guest = Path::new(guest);
        if clean.starts_with(guest) || guest.starts_with(&clean) {
            return Err(format!(
                "{path:?} is on the VM's own {}: share a folder outside {}",
                guest.display(),
                GUEST_FOLDERS.join(", ")
            ));
        }
    }
    Ok(clean)
}

/// `path` with `.` and `..` resolved by name (no file system access; `..`
/// of the root is the root).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The shares to mount: each once, in the order given, without one that
/// lies inside another (the outer one already shows it).
pub fn outermost(shares: &[PathBuf]) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = Vec::new();
    for s in shares {
        let inside_other = shares
            .iter()
            .any(|o| o != s && s.starts_with(o) && o.components().count() < s.components().count());
        if !inside_other && !kept.contains(s) {
            kept.push(s.clone());
        }
    }
    kept
}

/// The share that holds the absolute `path` (normalised first), if any.
pub fn covering<'a>(path: &Path, shares: &'a [PathBuf]) -> Option<&'a Path> {
    let path = normalize(path);
    shares
        .iter()
        .find(|s| path.starts_with(s))
        .map(PathBuf::as_path)
}

/// `path` for the kernel command line: bytes other than letters, digits
/// and `/._-+,:@~` as `%XX`.
pub fn escape(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-+,:@~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path an [`escape`]d word stands for.
pub fn unescape(word: &str) -> Result<PathBuf, String> {
    let bytes = word.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = word
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("{word:?}: a % must be followed by two hex digits, as %20")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// The shares of a VM, as its kernel command line carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    /// Mounted in the guest; the `n`-th has the tag [`mount_tag`]`(n)`.
    pub shared: Vec<PathBuf>,
    /// In `vm-config.json` but missing on the host: not shared.
    pub unshared: Vec<PathBuf>,
    /// The host's `vm-config.json`.
    pub config: Option<PathBuf>,
    /// The 9p cache mode, one of [`CACHE_MODES`], when not the default.
    pub cache: Option<String>,
}

impl Shares {
    /// The command-line words, each with a leading space.
    pub fn to_cmdline(&self) -> String {
        let mut line = String::new();
        for p in &self.shared {
            line.push_str(&format!(" {SHARE_PARAM}={}", escape(p)));
        }
        for p in &self.unshared {
            line.push_str(&format!(" {UNSHARED_PARAM}={}", escape(p)));
        }
        if let Some(c) = &self.config {
            line.push_str(&format!(" {CONFIG_PARAM}={}", escape(c)));
        }
        if let Some(c) = &self.cache {
            line.push_str(&format!(" {CACHE_PARAM}={c}"));
        }
        line
    }

    /// The shares named on a kernel command line (none when it names
    /// none); a badly escaped or relative path is an error naming it.
    pub fn from_cmdline(cmdline: &str) -> Result<Self, String> {
        let mut s = Self::default();
        for word in cmdline.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let list = match key {
                SHARE_PARAM => &mut s.shared,
                UNSHARED_PARAM => &mut s.unshared,
                CONFIG_PARAM => {
                    s.config = Some(unescape(value)?);
                    continue;
                }
                CACHE_PARAM => {
                    s.cache = Some(check_cache(value)?.to_string());
                    continue;
                }
                _ => continue,
            };
            let path = unescape(value)?;
            if !path.is_absolute() {
                return Err(format!(
                    "{key}={value}: the shared folder must be an absolute path"
                ));
            }
            list.push(path);
        }
        Ok(s)
    }
}

/// `mode` when it is one of [`CACHE_MODES`].
pub fn check_cache(mode: &str) -> Result<&str, String> {
    if CACHE_MODES.contains(&mode) {
        Ok(mode)
    } else {
        Err(format!(
            "9p cache mode {mode:?}: want one of {}",
            CACHE_MODES.join(", ")
        ))
    }
}

/// Whether `path` is under one of the VM's kernel folders (`/proc`,
/// `/sys`, `/dev`), which a bind may name in the VM as on a Linux host
/// (monitoring tools read them).
pub fn is_kernel_folder(path: &Path) -> bool {
    let path = normalize(path);
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|k| path.starts_with(OsStr::new(k)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shares_are_absolute_normalised_and_off_the_guests_folders() {
        assert_eq!(
            normalize_share("/home/u/./src//x/../").unwrap(),
            PathBuf::from("/home/u/src")
        );
        assert_eq!(normalize_share("/tmp").unwrap(), PathBuf::from("/tmp"));
        let e = normalize_share("src").unwrap_err();
        assert!(e.contains("\"src\" is not an absolute path"), "{e}");
        let e = normalize_share("/").unwrap_err();
        assert!(e.contains("is the root"), "{e}");
        let e = normalize_share("/home/../usr/local").unwrap_err();
        assert!(e.contains("on the VM's own /usr"), "{e}");
        // Holding the data disk's folder hides it.
        let e = normalize_share("/var/lib").unwrap_err();
        assert!(e.contains("/var/lib/servin"), "{e}");
        assert!(normalize_share("/var/tmp").is_ok());
        assert!(normalize_share("/lib2").is_ok());
    }

    #[test]
    fn a_share_inside_another_is_dropped() {
        let shares: Vec<PathBuf> = ["/tmp/x/home", "/tmp", "/home/u", "/tmp", "/home/u2"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            outermost(&shares),
            ["/tmp", "/home/u", "/home/u2"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_path_is_covered_by_whole_components() {
        let shares = vec![PathBuf::from("/home/u"), PathBuf::from("/tmp")];
        assert_eq!(
            covering(Path::new("/home/u/src/app"), &shares),
            Some(Path::new("/home/u"))
        );
        assert_eq!(
            covering(Path::new("/home/u"), &shares),
            Some(Path::new("/home/u"))
        );
        assert_eq!(covering(Path::new("/home/u2/app"), &shares), None);
        assert_eq!(covering(Path::new("/home/u/../other"), &shares), None);
        assert_eq!(covering(Path::new("/opt/data"), &shares), None);
        assert!(is_kernel_folder(Path::new("/proc/1")));
        assert!(!is_kernel_folder(Path::new("/devices")));
    }

    #[test]
    fn the_command_line_carries_any_path() {
        let shares = Shares {
            shared: vec![PathBuf::from("/home/a b/c%d\"e"), PathBuf::from("/tmp")],
            unshared: vec![PathBuf::from("/media/disk")],
            config: Some(PathBuf::from("/home/a b/.servin/vm/vm-config.json")),
            cache: None,
        };
        let line = shares.to_cmdline();
        assert_eq!(
            line,
            " servin.share=/home/a%20b/c%25d%22e servin.share=/tmp servin.unshared=/media/disk servin.config=/home/a%20b/.servin/vm/vm-config.json"
        );
        let back = Shares::from_cmdline(&format!("console=ttyS0 quiet{line} panic=-1")).unwrap();
        assert_eq!(back, shares);
        assert_eq!(
            Shares::from_cmdline("console=ttyS0").unwrap(),
            Shares::default()
        );
        let e = Shares::from_cmdline("servin.share=/a%2").unwrap_err();
        assert!(e.contains("two hex digits"), "{e}");
        let loose = Shares::from_cmdline("servin.share_cache=loose").unwrap();
        assert_eq!(loose.cache.as_deref(), Some("loose"));
        assert_eq!(loose.to_cmdline(), " servin.share_cache=loose");
        let e = Shares::from_cmdline("servin.share_cache=fast").unwrap_err();
        assert!(e.contains("want one of none, mmap, loose, fscache"), "{e}");
        let e = Shares::from_cmdline("servin.share=rel").unwrap_err();
        assert!(e.contains("absolute"), "{e}");
        assert_eq!(mount_tag(3), "servin3");
    }
}
