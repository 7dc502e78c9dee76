//! The engine's own test support: a real `servin-guest` started from this
//! package's binary, with its own state root and socket, driven through its
//! API and the docker CLI. What the host's tests share (registries, images,
//! clean-up, network objects) is in `servin-testkit`.
//!
//! The engine is owned by a guard that kills it and removes what it made on
//! drop, so a failing test leaves nothing behind.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use servin_testkit::cleanup::{OwnsRoot, cleanup_containers, mounts_below};
use servin_testkit::{http, image, net, probe};
use tempfile::TempDir;

/// The busybox container image most engine tests load and run.
pub const IMAGE: &str = "test/box:1";

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
    #[allow(
        clippy::disallowed_methods,
        reason = "a test is a synchronous program of its own: it may sleep on its thread"
    )]
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("engine.log"))
            .unwrap();
        // `SERVIN_TEST_ENGINE` runs a copy of the engine (a target folder
        // shared by several checkouts may hold another one's build).
        let exe = std::env::var_os("SERVIN_TEST_ENGINE")
            .map_or_else(|| env!("CARGO_BIN_EXE_servin-guest").into(), PathBuf::from);
        let child = Command::new(exe)
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

    /// Starts an engine with extra environment variables and the busybox
    /// container image loaded as `image`.
    pub fn with_image(image: &str, env: &[(&str, &str)]) -> Self {
        let e = Self::start_with_env(env);
        e.load_container_image(image);
        e
    }

    /// Starts an engine with [`IMAGE`] loaded and the firewall backend
    /// `firewall` (`nft` or `iptables`).
    pub fn with_firewall(firewall: &str) -> Self {
        Self::with_image(IMAGE, &[("SERVIN_FIREWALL", firewall)])
    }

    /// `docker run -d --name NAME OPTIONS... IMAGE COMMAND...` with
    /// [`IMAGE`]; fails the test unless it succeeds; returns stdout (the ID).
    pub fn run_detached(&self, name: &str, options: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(options);
        args.push(IMAGE);
        args.extend_from_slice(command);
        self.docker_ok(&args)
    }

    /// `docker inspect` of container `name`.
    pub fn inspect_container(&self, name: &str) -> serde_json::Value {
        let out = self.docker_ok(&["inspect", "--type", "container", name]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// Runs `script` under `sh` in a fresh container of `image` on
    /// `network`; its stdout when it succeeded with some output.
    pub fn run_on(&self, network: &str, image: &str, script: &str) -> Option<String> {
        let out = self.docker(&[
            "run",
            "--rm",
            "--network",
            network,
            image,
            "sh",
            "-c",
            script,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// An HTTP GET to `host_port` (`web:80`, `10.0.0.2:8080`) from a fresh
    /// container on `network` (busybox `nc`), tried up to `tries` times
    /// while a server starts: the raw response, or `None` when nothing
    /// answered.
    pub fn http_get(&self, network: &str, host_port: &str, tries: usize) -> Option<String> {
        let (host, port) = host_port.rsplit_once(':').unwrap();
        let script = probe::get_with_nc(host, port);
        (0..tries).find_map(|_| self.run_on(network, IMAGE, &script))
    }

    /// The address of `container` on `network`.
    pub fn ip_on(&self, container: &str, network: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        self.docker_ok(&["inspect", "-f", &f, container])
            .trim()
            .to_string()
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

/// A busybox httpd serving `text` at `/` on port 80 (a shell line).
pub fn httpd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
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

/// Ends a network test that leaves the default network (the engine's
/// own, which stays with it): checks that the engine made `bridges`
/// bridges, stops it, and checks that the clean-up its state says to do
/// (the guard's drop) leaves no network objects and no mounts behind.
pub fn finish_with_the_default_network(mut e: EngineGuard, bridges: usize) {
    let objects = e.net_objects();
    assert_eq!(objects.bridges.len(), bridges, "{objects:?}");
    e.kill();
    let root = e.root();
    drop(e);
    let left = objects.leftovers_settled();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(mounts_below(&root).is_empty());
}

impl OwnsRoot for EngineGuard {
    fn state_root(&self) -> PathBuf {
        self.root()
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        self.kill();
        let objects = self.net_objects();
        cleanup_containers(&self.root());
        objects.cleanup();
    }
}
