//! `servin dashboard` against a real engine: the refusals of its guard as
//! plain HTTP, then the page itself in headless Chromium
//! (`/usr/bin/chromium`) driven by Playwright (`dashboard/tests/page.mjs`),
//! with real containers started, stopped and killed from the page and from
//! the CLI.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/dashboard:1";

/// A running `servin dashboard --no-open`, killed when dropped.
struct Served {
    child: Child,
    login: String,
    port: u16,
}

impl Served {
    fn start(s: &Sandbox) -> Self {
        let mut child = s
            .command(&["dashboard", "--no-open"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The first line on stdout is the address, printed once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let login = line.trim().to_string();
        assert!(
            login.starts_with("http://127.0.0.1:") && login.contains("/?secret="),
            "the dashboard printed {login:?}"
        );
        let port = login["http://127.0.0.1:".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Served { child, login, port }
    }

    fn secret(&self) -> &str {
        self.login.split("secret=").nth(1).unwrap()
    }

    fn cookie(&self) -> String {
        format!("servin_dashboard_{}={}", self.port, self.secret())
    }

    /// One raw HTTP/1.1 request: `path` with the given headers (`Host` is
    /// the dashboard's unless given); the answer's status and whole text.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.request("GET", path, headers)
    }

    /// As [`Served::get`], with `method`.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        c.write_all(req.as_bytes()).unwrap();
        let mut answer = Vec::new();
        // A websocket that was let in stays open: its headers are enough.
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if answer.starts_with(b"HTTP/1.1 101") && answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_dashboard_refuses_every_stranger() {
    let s = Env::new();
    let d = Served::start(&s);
    let cookie = d.cookie();
    let own = format!("http://127.0.0.1:{}", d.port);
    let with_cookie = |extra: &[(&'static str, &str)]| -> (u16, String) {
        let mut h: Vec<(&str, &str)> = vec![("Cookie", cookie.as_str())];
        h.extend_from_slice(extra);
        d.get("/api/containers", &h)
    };

    // No secret: nothing, not even the page.
    let (status, text) = d.get("/", &[]);
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("open the address `servin dashboard` printed"),
        "{text}"
    );
    assert_eq!(d.get("/api/containers", &[]).0, 401);
    assert_eq!(d.get("/?secret=0123", &[]).0, 403);

    // The secret, once: a cookie and the clean address.
    let (status, text) = d.get(&format!("/?secret={}", d.secret()), &[]);
    assert_eq!(status, 303, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("\r\nlocation: /\r\n"), "{text}");
    assert!(
        text.contains(&format!("{cookie}; HttpOnly; SameSite=Strict; Path=/")),
        "{text}"
    );
    assert!(lower.contains("referrer-policy: no-referrer"), "{text}");

    // The cookie lets in, the page and the calls.
    let (status, page) = d.get("/", &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<script"), "{page}");
    let (status, list) = with_cookie(&[("Origin", &own)]);
    assert_eq!(status, 200, "{list}");
    assert!(list.trim_end().ends_with(']'), "{list}");

    // DNS rebinding: another name for 127.0.0.1, even with the cookie.
    let host = format!("rebind.example:{}", d.port);
    let (status, text) = with_cookie(&[("Host", &host)]);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("the Host header `rebind.example"), "{text}");

    // A foreign page's request, with the cookie (as a lax browser would send it).
    let (status, text) = with_cookie(&[("Origin", "http://evil.example")]);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("the Origin `http://evil.example`"), "{text}");
    // A page on another port of 127.0.0.1 is the same site, not the same origin.
    for site in ["cross-site", "same-site"] {
        let (status, text) = with_cookie(&[("Sec-Fetch-Site", site)]);
        assert_eq!(status, 403, "{text}");
    }
    let (status, text) = with_cookie(&[("Sec-Fetch-Site", "same-origin"), ("Origin", &own)]);
    assert_eq!(status, 200, "{text}");

    // Websockets: from another origin or from none, refused before the
    // upgrade; from the dashboard's own, let through to the engine (which
    // answers for the container that does not exist).
    let ws = |origin: Option<&str>| {
        let mut h = vec![
            ("Cookie", cookie.as_str()),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        d.get("/api/containers/nothere/terminal", &h)
    };
    let (status, text) = ws(Some("http://evil.example"));
    assert_eq!(status, 403, "{text}");
    let (status, text) = ws(None);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("websocket upgrade without an Origin"),
        "{text}"
    );
    let (status, text) = ws(Some(&own));
    assert_eq!(status, 404, "{text}");

    // The raw engine API stays closed.
    let (status, text) = d.get("/api/containers/nothere/exec", &[("Cookie", &cookie)]);
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("the dashboard has no call GET"), "{text}");
}

#[test]
fn project_calls_refuse_unknown_and_unrecorded_projects() {
    let s = Env::with_image(IMAGE);
    // Containers labelled with a project but no project file: as made by
    // a servin before the label, or by hand.
    s.ok(&[
        "create",
        "--name",
        "legacy-web-1",
        "--label",
        "servin.project=legacy",
        IMAGE,
        "true",
    ]);
    let gone = s.write_project(
        "gone",
        &format!("[project]\nname = \"gone\"\n[containers.app]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n"),
    );
    s.ok_in(gone.parent().unwrap(), &["up", "-d"]);
    let app = s.inspect("gone-app-1");
    assert_eq!(
        app["Config"]["Labels"]["servin.project-file"],
        gone.to_str().unwrap(),
        "{app}"
    );
    std::fs::remove_file(&gone).unwrap();

    let d = Served::start(&s);
    let cookie = d.cookie();
    let own = format!("http://127.0.0.1:{}", d.port);
    let call = |method: &str, path: &str| {
        d.request(
            method,
            path,
            &[("Cookie", cookie.as_str()), ("Origin", own.as_str())],
        )
    };
    for (method, op) in [("GET", "plan"), ("POST", "up"), ("POST", "down")] {
        let (status, text) = call(method, &format!("/api/projects/nothere/{op}"));
        assert_eq!(status, 404, "{op}: {text}");
        assert!(text.contains("no project nothere"), "{op}: {text}");
    }
    for (method, op) in [("GET", "plan"), ("POST", "up")] {
        let (status, text) = call(method, &format!("/api/projects/legacy/{op}"));
        assert_eq!(status, 409, "{op}: {text}");
        assert!(
            text.contains("project legacy has no recorded project file"),
            "{op}: {text}"
        );
        let (status, text) = call(method, &format!("/api/projects/gone/{op}"));
        assert_eq!(status, 422, "{op}: {text}");
        assert!(text.contains(gone.to_str().unwrap()), "{op}: {text}");
    }
    // Nothing was touched by the refusals.
    assert_eq!(s.inspect("gone-app-1")["State"]["Status"], "running");
    // A path is never a project name.
    let (status, text) = call("GET", "/api/projects/..%2F..%2Fetc/plan");
    assert_eq!(status, 400, "{text}");
    // Down needs no file: the labels say what to remove, as `servin down -p`.
    let (status, text) = call("POST", "/api/projects/gone/down");
    assert_eq!(status, 200, "{text}");
    assert!(!s.ok(&["ps", "-a"]).contains("gone-app-1"));
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

#[test]
fn the_dashboard_in_a_browser() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.is_file(),
        "/usr/bin/chromium is missing: run .ci/install-packages"
    );
    let modules = dashboard_dir().join("node_modules/playwright-core");
    assert!(
        modules.is_dir(),
        "{} is missing: run `npm ci` in dashboard/",
        modules.display()
    );

    let s = Env::with_image(IMAGE);
    let port = free_port();
    let file = s.write_project(
        "shop",
        &format!(
            r#"[project]
name = "shop"

[volumes.data]

[containers.web]
image = "{IMAGE}"
command = ["sh", "-c", "echo web up; sleep 300"]
ports = ["{port}:80"]
volumes = ["data:/data"]
stop_timeout = "1s"

[containers.worker]
image = "{IMAGE}"
command = ["sleep", "300"]
healthcheck = {{ cmd = "true", interval = "1s" }}
stop_timeout = "1s"
"#
        ),
    );
    s.ok_in(file.parent().unwrap(), &["up", "-d"]);
    s.ok(&["create", "--name", "loner", IMAGE, "sleep", "300"]);
    s.ok(&["volume", "create", "spare"]);

    let d = Served::start(&s);
    let shots = s.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // The same environment as the sandbox's own servin runs, for the
    // script's CLI calls.
    let cli = s.command(&[]);
    let mut node = Command::new("node");
    for (k, v) in cli.get_envs() {
        match v {
            Some(v) => node.env(k, v),
            None => node.env_remove(k),
        };
    }
    node.arg("tests/page.mjs")
        .current_dir(dashboard_dir())
        .env("SERVIN_BIN", cli.get_program())
        .env("DASHBOARD_URL", &d.login)
        .env("IMAGE", IMAGE)
        .env("WEB_PORT", port.to_string())
        .env("PROJECT_FILE", &file)
        .env(
            "SCREENSHOTS",
            std::env::var_os("SERVIN_DASHBOARD_SCREENSHOTS").unwrap_or(shots.clone().into()),
        );
    let out = node.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the page's checks failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");

    // What the page did, seen from the CLI: the project taken down at the
    // end, its volume kept.
    let all = s.ok(&["ps", "-a"]);
    assert!(!all.contains("shop-"), "{all}");
    let volumes = s.ok(&["volume", "ls"]);
    assert!(!volumes.contains("spare"), "{volumes}");
    assert!(volumes.contains("shop_data"), "{volumes}");
}
