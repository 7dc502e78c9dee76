//! Removing what an engine leaves under its state root: the containers'
//! monitors, the runtime's containers and every mount below the root. The
//! guards of both packages' tests call it when dropped, so a failing test
//! leaves nothing mounted and nothing running.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Kills and removes every container under `root` (their monitors, the
/// runtime's containers) and unmounts everything mounted below it.
pub fn cleanup_containers(root: &Path) {
    let root_s = root.display().to_string();
    // Monitors: `servin-guest monitor <root>/containers/<id>`.
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "monitor") && args.iter().any(|a| a.starts_with(&root_s)) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
    let runtime_root = root.join("runtime");
    if runtime_root.exists() {
        let out = Command::new("runc")
            .arg("--root")
            .arg(&runtime_root)
            .args(["list", "-q"])
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runtime_root)
                    .args(["kill", "--all", id, "KILL"])
                    .stderr(Stdio::null())
                    .status();
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runtime_root)
                    .args(["delete", "-f", id])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    for m in mounts_below(root).into_iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// Mount points at or below `dir`, in mount order.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// Fails the test unless nothing is mounted at or below `root`, naming
/// what is.
pub fn assert_no_mounts_below(root: &Path) {
    let left = mounts_below(root);
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

/// Waits (as [`eventually`](crate::wait::eventually) does) until nothing is
/// mounted at or below `root`: the engine unmounts a container's root and
/// volumes once the container is gone, in the background.
pub fn await_no_mounts_below(root: &Path) {
    crate::wait::eventually("the engine to unmount everything", || {
        mounts_below(root).is_empty()
    });
}

/// A guard that owns an engine's state root and cleans it up when dropped
/// (the engine's own tests' engine, the host tests' sandbox). Ending a test
/// through it checks that the clean-up left nothing mounted.
pub trait OwnsRoot: Sized {
    /// The engine's state root (`SERVIN_ROOT`).
    fn state_root(&self) -> PathBuf;

    /// Ends a test: drops the guard (its clean-up runs) and fails the test
    /// if anything is still mounted below its root.
    fn finish(self) {
        let root = self.state_root();
        drop(self);
        assert_no_mounts_below(&root);
    }

    /// As [`Self::finish`], after waiting for the engine itself to have
    /// unmounted everything (container roots, volume devices) once the
    /// test's containers are gone: the clean-up must not be what unmounts.
    fn finish_once_unmounted(self) {
        await_no_mounts_below(&self.state_root());
        self.finish();
    }
}
