//! A sandbox running the real `servin` with its own HOME, engine root and
//! socket; the engine is the one `servin` starts itself. Dropping the
//! sandbox kills that engine and removes what it left (containers, mounts,
//! network devices and rules), pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use servin_testkit::cleanup::{OwnsRoot, cleanup_containers};
use servin_testkit::{image, net};
use tempfile::TempDir;

use super::Run;

/// The engine binary, built once when missing.
pub fn engine_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // `SERVIN_TEST_ENGINE` runs a copy (a target folder shared by
        // several checkouts may hold another one's build).
        if let Some(p) = std::env::var_os("SERVIN_TEST_ENGINE") {
            return PathBuf::from(p);
        }
        // target/debug/deps/images-<hash> -> target/debug/servin-guest
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let bin = dir.join("servin-guest");
        if !bin.is_file() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "servin-guest"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "cargo build -p servin-guest failed");
        }
        assert!(bin.is_file(), "{} is missing", bin.display());
        bin
    })
    .clone()
}

/// A sandbox: its own HOME, engine root and socket. Dropping it kills the
/// engine started under its root.
pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let exe = std::env::var_os("SERVIN_TEST_CLI").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_servin")),
            PathBuf::from,
        );
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env("SERVIN_ROOT", self.root())
            .env(
                "SERVIN_HOST",
                format!("unix://{}", self.dir.path().join("engine.sock").display()),
            )
            .env("SERVIN_ENGINE", engine_binary())
            .env("HOME", self.home())
            .env("NO_COLOR", "1")
            .env_remove("SERVIN_INSECURE_REGISTRIES")
            .stdin(Stdio::null());
        cmd
    }

    pub fn output(out: Output) -> Run {
        Run::of(out)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Self::output(self.command(args).output().unwrap())
    }

    /// Runs servin in folder `dir`.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        Self::output(self.command(args).current_dir(dir).output().unwrap())
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Runs in folder `dir` and asserts success; returns stdout.
    pub fn ok_in(&self, dir: &Path, args: &[&str]) -> String {
        succeeded(args, self.run_in(dir, args))
    }

    /// Writes `text` as the project file `servin.toml` of folder `folder`
    /// inside the sandbox (made when missing); returns the file's path.
    pub fn write_project(&self, folder: &str, text: &str) -> PathBuf {
        let dir = self.dir.path().join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("servin.toml");
        std::fs::write(&file, text).unwrap();
        file
    }

    /// `servin inspect name`: the container's object (the first, when the
    /// answer is a list).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v.as_array().map_or(v.clone(), |a| a[0].clone())
    }

    /// Engines whose environment names this sandbox's root.
    pub fn engine_pids(&self) -> Vec<i32> {
        let needle = format!("SERVIN_ROOT={}", self.root().display());
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(env) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains("servin-guest")
                && env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }
}

/// Fails the test unless `servin ARGS`, which did `r`, succeeded; its
/// stdout.
#[track_caller]
fn succeeded(args: &[&str], r: Run) -> String {
    assert_eq!(
        r.code, 0,
        "servin {args:?} failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r.stdout
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The engine first, so that it starts nothing more; then its
        // containers' monitors, the containers and their mounts; last the
        // network devices and rules its networks' state names.
        for pid in self.engine_pids() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        cleanup_containers(&self.root());
        self.net_objects().cleanup();
    }
}

impl Sandbox {
    /// The host network objects named in the engine's network state.
    pub fn net_objects(&self) -> net::NetObjects {
        net::NetObjects::of_engine("", &self.root())
    }
}

/// A sandbox whose containers and volumes are removed (`rm -f --all`,
/// `volume prune -af`) when it goes, pass or fail, before the sandbox kills
/// its engine and unmounts what is left.
pub struct Env(Option<Sandbox>);

impl Env {
    /// A fresh sandbox.
    pub fn new() -> Self {
        Self(Some(Sandbox::new()))
    }

    /// A fresh sandbox with the seed image imported as `image`.
    pub fn with_image(image: &str) -> Self {
        let s = Self::new();
        let tar = image::seed_image(s.dir.path(), image);
        s.ok(&["image", "import", tar.to_str().unwrap()]);
        s
    }
}

impl OwnsRoot for Env {
    fn state_root(&self) -> PathBuf {
        self.root()
    }
}

impl std::ops::Deref for Env {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        self.0.as_ref().unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.0.take()
            && s.dir.path().join("engine.sock").exists()
        {
            let _ = s.run(&["rm", "-f", "--all"]);
            let _ = s.run(&["volume", "prune", "-af"]);
        }
    }
}
