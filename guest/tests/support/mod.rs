//! Test support: a real engine, a real registry, images built here.
//!
//! Every process and folder is owned by a guard that kills and removes it on
//! drop, so a failing test leaves nothing behind.
#![allow(clippy::unwrap_used, dead_code)]

pub mod gate;
pub mod http;
pub mod image;
pub mod net;
pub mod token;
pub mod wait;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running `servin-guest` with its own state root and socket.
pub struct EngineGuard {
    pub dir: TempDir,
    pub child: Option<Child>,
    /// Extra environment for the engine.
    pub env: Vec<(String, String)>,
}

impl EngineGuard {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts an engine with extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servin-engine-")
            .tempdir()
            .unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut g = Self {
            dir,
            child: None,
            env,
        };
        g.spawn();
        g
    }

    /// The host network objects this engine made so far.
    pub fn net_objects(&self) -> net::NetObjects {
        net::NetObjects::of_engine(&self.log(), &self.root())
    }

    /// Starts the engine (again) on the same root.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("engine.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_servin-guest"))
            .env("SERVIN_ROOT", self.root())
            .env("SERVIN_HOST", format!("unix://{}", self.socket().display()))
            .env("HOME", self.home())
            .env("SERVIN_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("engine did not answer: {}", self.log());
    }

    /// Kills the engine at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("engine.sock")
    }

    pub fn home(&self) -> PathBuf {
        let h = self.dir.path().join("home");
        std::fs::create_dir_all(&h).unwrap();
        h
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
    }

    /// The docker CLI pointed at this engine, with its own config folder.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let cfg = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", &cfg)
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs the docker CLI and returns its output.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().unwrap()
    }

    /// Runs the docker CLI and fails the test unless it succeeds; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed\nstdout: {}\nstderr: {}\nengine log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the docker CLI expecting failure; returns stderr.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} should have failed\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// An HTTP request to the engine's API.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> http::Response {
        let stream = std::os::unix::net::UnixStream::connect(self.socket()).unwrap();
        http::request(stream, "engine", method, path, headers, body).unwrap()
    }

    /// Image IDs the engine lists.
    pub fn image_count(&self) -> usize {
        let r = self.api("GET", "/images/json", &[], b"");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array().unwrap().len()
    }

    /// Files below the store's tmp folder (should be empty between operations).
    pub fn tmp_entries(&self) -> usize {
        std::fs::read_dir(self.root().join("images/tmp")).map_or(0, |d| d.count())
    }
}

impl EngineGuard {
    /// Loads the busybox container image as `tag` (through `docker load`).
    pub fn load_container_image(&self, tag: &str) {
        let (tar, _) = image::docker_save_tar(&[image::container_layer()], tag);
        let file = self
            .dir
            .path()
            .join(format!("{}.tar", tag.replace(['/', ':'], "_")));
        std::fs::write(&file, tar).unwrap();
        self.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    }

    /// The engine's `SERVIN_ROOT` for the host CLI.
    pub fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("SERVIN_ROOT".into(), self.root().display().to_string()),
            (
                "SERVIN_HOST".into(),
                format!("unix://{}", self.socket().display()),
            ),
        ]
    }
}

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

/// Ends a network test: stops the engine and checks that nothing it made on
/// the host is left: mounts (namespaces included), bridges, veths, tables
/// and chains. The test removed its containers and networks before.
pub fn finish_network_test(mut e: EngineGuard) {
    let root = e.root();
    e.kill();
    let objects = e.net_objects();
    assert!(!objects.bridges.is_empty(), "the test made no bridge");
    let left = objects.leftovers_settled();
    let mounts = mounts_below(&root);
    drop(e);
    assert!(left.is_empty(), "network objects left behind: {left:?}");
    assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        self.kill();
        let objects = self.net_objects();
        cleanup_containers(&self.root());
        objects.cleanup();
    }
}

/// A running `docker-registry serve` on a free loopback port.
pub struct RegistryGuard {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub port: u16,
    pub auth: Option<(String, String)>,
    /// The bearer-token server, for a registry with token authentication.
    pub token: Option<token::TokenServer>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RegistryGuard {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry with bearer-token authentication: a token server (see
    /// [`token`]) hands out tokens to `user`/`password`.
    pub fn start_with_token(user: &str, password: &str) -> Self {
        let server = token::TokenServer::start(user, password);
        let mut g = Self::start_with_config(None, Some(&server));
        g.token = Some(server);
        g
    }

    /// A registry requiring `user`/`password` (htpasswd with bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user.to_string(), password.to_string())))
    }

    fn start_with(auth: Option<(String, String)>) -> Self {
        Self::start_with_config(auth, None)
    }

    fn start_with_config(
        auth: Option<(String, String)>,
        token: Option<&token::TokenServer>,
    ) -> Self {
        let mut last_err = String::new();
        // A free port can be taken between probing and binding: retry.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("servin-registry-")
                .tempdir()
                .unwrap();
            let port = free_port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            );
            if let Some((user, password)) = &auth {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apache2-utils) is installed");
                assert!(out.status.success());
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: servin-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            if let Some(t) = token {
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
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry is installed");
            let mut g = Self {
                dir,
                child: Some(child),
                port,
                auth: auth.clone(),
                token: None,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return g;
                }
                if let Some(Ok(Some(_))) = g.child.as_mut().map(|c| c.try_wait()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last_err = g.log();
        }
        panic!("registry did not start: {last_err}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the bytes of blob `digest`.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How many GETs of `digest`'s blob the registry served.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let needle = format!("/blobs/{digest}");
        self.log()
            .lines()
            .filter(|l| l.contains("GET") && l.contains(&needle) && !l.contains("HEAD"))
            .filter(|l| l.contains("\"GET "))
            .count()
    }

    /// Pushes a built image as `repo:tag` over plain HTTP.
    pub fn push(&self, repo: &str, tag: &str, img: &image::Built) {
        for (digest, data) in img.blobs() {
            self.put_blob(repo, &digest, &data);
        }
        self.put_manifest(repo, tag, &img.manifest, &img.manifest_media_type);
    }

    fn auth_headers(&self, path: &str) -> Vec<(String, String)> {
        if let Some(t) = &self.token {
            let repo = path
                .strip_prefix("/v2/")
                .and_then(|p| p.split("/blobs/").next())
                .and_then(|p| p.split("/manifests/").next())
                .unwrap_or_default();
            let token = t.token(&[format!("repository:{repo}:pull,push")]);
            return vec![("Authorization".to_string(), format!("Bearer {token}"))];
        }
        match &self.auth {
            Some((u, p)) => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                vec![("Authorization".to_string(), format!("Basic {token}"))]
            }
            None => vec![],
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> http::Response {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let auth = self.auth_headers(path);
        let mut headers: Vec<(&str, &str)> =
            auth.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        headers.extend_from_slice(extra);
        http::request(stream, &self.addr(), method, path, &headers, body).unwrap()
    }

    pub fn put_blob(&self, repo: &str, digest: &str, data: &[u8]) {
        let head = self.call("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
        if head.status == 200 {
            return;
        }
        let start = self.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(
            start.status,
            202,
            "start upload: {}",
            String::from_utf8_lossy(&start.body)
        );
        let location = start.header("location").unwrap();
        let path = match location.find("/v2/") {
            Some(i) => location[i..].to_string(),
            None => location.clone(),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = self.call(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        assert_eq!(
            put.status,
            201,
            "put blob: {}",
            String::from_utf8_lossy(&put.body)
        );
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, manifest: &[u8], media_type: &str) {
        let r = self.call(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            manifest,
        );
        assert_eq!(
            r.status,
            201,
            "put manifest: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `data` to `path`, creating parents.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
}

/// A fake registry serving canned manifests, for what a real registry
/// refuses to store (malformed or oversized manifests).
pub struct FakeRegistry {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistry {
    /// Serves `manifests` (tag → body) under repository `repo`.
    pub fn start(repo: &str, manifests: Vec<(String, Vec<u8>)>) -> Self {
        use std::io::{BufRead, BufReader};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let repo = repo.to_string();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body: Option<Vec<u8>> = if path == "/v2/" {
                    Some(b"{}".to_vec())
                } else {
                    manifests
                        .iter()
                        .find(|(tag, _)| path == format!("/v2/{repo}/manifests/{tag}"))
                        .map(|(_, b)| b.clone())
                };
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => (
                        "404 Not Found",
                        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                            .to_vec(),
                    ),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Deterministic incompressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every path below `dir` whose file name is `name`.
pub fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_name().to_str() == Some(name) {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(find_named(&p, name));
        }
    }
    out
}
