//! Real components for the image tests: a `docker-registry` on a free
//! loopback port, a seed image built from busybox-static as an OCI layout
//! tar, and a sandbox running the real `servin` with its own engine root
//! and socket. Every guard kills what it started and removes its folders.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The engine's bridges, veths, tables and chains, shared with the engine's
/// own tests.
#[path = "../../guest/tests/support/net.rs"]
pub mod net;

use tempfile::TempDir;

/// The bearer-token server the engine's tests use.
#[path = "../../guest/tests/support/token.rs"]
pub mod token;

/// Waiting for what the engine does in the background.
#[path = "../../guest/tests/support/wait.rs"]
pub mod wait;

/// A running `docker-registry serve`.
pub struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
    /// The token server of a registry with bearer-token authentication.
    _token: Option<token::TokenServer>,
}

impl Registry {
    /// A registry anyone may pull from and push to.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry with bearer-token authentication: a token server hands
    /// out tokens for repositories under `private/` to `user`/`password`.
    pub fn start_with_token(user: &str, password: &str) -> Self {
        Self::start_with(Some(token::TokenServer::start(user, password)))
    }

    fn start_with(token: Option<token::TokenServer>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            );
            if let Some(t) = &token {
                let bundle = dir.path().join("token.pem");
                std::fs::write(&bundle, &t.cert_pem).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm(),
                    token::SERVICE,
                    token::ISSUER,
                    bundle.display()
                ));
            }
            let path = dir.path().join("config.yml");
            std::fs::write(&path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry is installed");
            let began = Instant::now();
            while began.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                        _token: token,
                    };
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes an OCI layout tar holding one image named `name` (busybox-static
/// as `/bin/busybox` and `/bin/sh`) into `dir`; returns the tar's path.
pub fn seed_image(dir: &Path, name: &str) -> PathBuf {
    seed_image_marked(dir, name, None)
}

/// As [`seed_image`], with `SEED=marker` in the image's environment when
/// given, which makes a different image (another ID and digest).
pub fn seed_image_marked(dir: &Path, name: &str, marker: Option<&str>) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "sleep", "tty", "id", "true", "ls", "hostname", "stty",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer = dir.join("layer.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
        .arg(&layer)
        .arg("-C")
        .arg(&rootfs)
        .arg("bin"));
    let diff_id = sha256(&layer);
    run(Command::new("gzip").args(["-n", "-k"]).arg(&layer));
    let gz = dir.join("layer.tar.gz");
    let layer_digest = sha256(&gz);
    let layer_size = std::fs::metadata(&gz).unwrap().len();
    std::fs::rename(&gz, blobs.join(&layer_digest)).unwrap();
    let blob = |bytes: Vec<u8>| {
        let tmp = dir.join("blob");
        std::fs::write(&tmp, &bytes).unwrap();
        let d = sha256(&tmp);
        std::fs::rename(&tmp, blobs.join(&d)).unwrap();
        (d, bytes.len())
    };
    let mut env = vec!["PATH=/bin".to_string()];
    if let Some(m) = marker {
        env.push(format!("SEED={m}"));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": { "Cmd": ["/bin/sh"], "Env": env },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
    });
    let (config_digest, config_size) = blob(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_size,
        }],
    });
    let (m_digest, m_size) = blob(serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{m_digest}"),
            "size": m_size,
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name.rsplit_once(':').map_or("latest", |(_, t)| t),
            },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let tar = dir.join("seed.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .args(["oci-layout", "index.json", "blobs"]));
    tar
}

/// The engine binary, built once when missing.
pub fn engine_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
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

/// One command's result.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_servin"));
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
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Self::output(self.command(args).output().unwrap())
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "servin {args:?} failed\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r.stdout
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

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The engine and the containers' monitors (they share its
        // environment), then the containers and their mounts.
        for pid in self.engine_pids() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let runtime = self.root().join("runtime");
        if let Ok(out) = Command::new("runc")
            .arg("--root")
            .arg(&runtime)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runtime)
                    .args(["delete", "-f", id])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for m in mounts_below(&self.root()).into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        // Last: the network devices and rules its networks' state names.
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
        let tar = seed_image(s.dir.path(), image);
        s.ok(&["image", "import", tar.to_str().unwrap()]);
        s
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

/// Mount points at or below `dir`.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}
