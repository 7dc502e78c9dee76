//! Registries for the image tests: a real `docker-registry serve` on a free
//! loopback port (open, with htpasswd, or with bearer tokens from
//! [`token`](crate::token)) that the tests push built images to, and a fake
//! one serving canned manifests for what a real registry refuses to store.
//! Both stop when dropped.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::probe::free_port;
use crate::{http, image, token};

/// A running `docker-registry serve` on a free loopback port.
pub struct RegistryGuard {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub port: u16,
    pub auth: Option<(String, String)>,
    /// The bearer-token server, for a registry with token authentication.
    pub token: Option<token::TokenServer>,
}

impl RegistryGuard {
    /// A registry anyone may pull from and push to.
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

/// Writes a credentials file in the docker CLI's form (`~/.docker/config.json`,
/// also what `servin login` keeps): `user`/`password` for `registry`, base64
/// as Docker stores them.
pub fn write_auths(path: &Path, registry: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    crate::files::write(path, config.to_string().as_bytes());
}
