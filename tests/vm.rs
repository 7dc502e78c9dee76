//! VM mode for real: the `servin` CLI run as an ordinary user (no root,
//! its own HOME) starts QEMU under emulation with the engine inside, and
//! every command goes through the VM's channel. One VM serves the whole
//! test, whose steps run in order; a guard kills what is left on failure.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use servin_testkit::image::{self, Comp, Entry, Layer};
use support::Run;

/// An unprivileged uid and gid for the CLI (no passwd entry is needed).
const USER: u32 = 47_311;

struct VmUser {
    _tmp: tempfile::TempDir,
    home: PathBuf,
}

impl VmUser {
    fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("servin-vm-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(USER), Some(USER)).unwrap();
        Self { _tmp: tmp, home }
    }

    fn vm_dir(&self) -> PathBuf {
        self.home.join(".servin/vm")
    }

    fn state(&self, file: &str) -> PathBuf {
        self.vm_dir().join("vm-state").join(file)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--clear-groups",
            "--",
            program,
        ])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &self.home)
        .env("SERVIN_MODE", "vm")
        .env("SERVIN_VM_ACCEL", "tcg")
        .env("SERVIN_ENGINE", support::sandbox::engine_binary())
        .env("NO_COLOR", "1")
        .current_dir(&self.home)
        .stdin(Stdio::null());
        cmd
    }

    fn servin(&self, args: &[&str]) -> Run {
        let exe = env!("CARGO_BIN_EXE_servin");
        Run::of(self.command(exe, args).output().unwrap())
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.ok_in(&self.home, args)
    }

    /// `servin args` run in the folder `dir`, which must succeed.
    fn ok_in(&self, dir: &Path, args: &[&str]) -> Run {
        let exe = env!("CARGO_BIN_EXE_servin");
        let r = Run::of(self.command(exe, args).current_dir(dir).output().unwrap());
        assert_eq!(
            r.code,
            0,
            "servin {args:?} failed:\n{}\n{}\nconsole:\n{}",
            r.stdout,
            r.stderr,
            std::fs::read_to_string(self.state("console.log")).unwrap_or_default()
        );
        r
    }

    fn pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.state(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for VmUser {
    fn drop(&mut self) {
        for f in ["supervisor.pid", "qemu.pid"] {
            if let Some(pid) = self.pid(f) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn vm_mode_as_an_ordinary_user() {
    let u = VmUser::new();

    // Native mode as this user: the need for root, and the ways on.
    let mut native = u.command(env!("CARGO_BIN_EXE_servin"), &["ps"]);
    native.env("SERVIN_MODE", "native");
    let r = Run::of(native.output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("the native engine needs root"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("SERVIN_MODE=vm"), "{}", r.stderr);

    // Start; a second start says it runs.
    let r = u.ok(&["vm", "start"]);
    assert!(r.stderr.contains("VM ready in"), "{}", r.stderr);
    for sock in ["engine.sock", "channel.sock", "control.sock"] {
        let m = std::fs::metadata(u.state(sock)).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600, "{sock}");
        assert_eq!(m.uid(), USER, "{sock}");
    }
    let r = u.ok(&["vm", "start"]);
    assert!(
        r.stderr.contains("the VM is already running"),
        "{}",
        r.stderr
    );
    assert_eq!(u.ok(&["vm", "status"]).stdout.trim(), "running");
    let info = u.ok(&["vm", "info", "--format", "json"]).stdout;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["accelerator"], "tcg (emulation)");
    assert!(info["kernel"].as_str().unwrap().contains('.'), "{info}");
    assert_eq!(info["engine_version"], env!("CARGO_PKG_VERSION"));
    let version = u.ok(&["version"]).stdout;
    assert!(version.contains("(vm, unix://"), "{version}");

    // An image loaded through the VM, a container run with --rm.
    let (tar, _) = image::docker_save_tar(&[image::container_layer()], "test/box:1");
    let tar_path = u.home.join("box.tar");
    std::fs::write(&tar_path, tar).unwrap();
    u.ok(&["image", "import", tar_path.to_str().unwrap()]);
    let r = u.ok(&["run", "--rm", "test/box:1", "echo", "hello from the VM"]);
    assert_eq!(r.stdout.trim(), "hello from the VM");

    host_folders_through_the_vm(&u);

    // A published port answers on the host, and stops answering with its
    // container gone.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let script = "mkdir -p /www && echo vm-page > /www/index.html && exec httpd -f -p 80 -h /www";
    u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "test/box:1",
        "sh",
        "-c",
        script,
    ]);
    let began = Instant::now();
    let page = loop {
        if let Some(p) = http_get(port) {
            break p;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "port {port} never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(page.contains("vm-page"), "{page}");
    u.ok(&["rm", "-f", "web"]);
    let began = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "port {port} still open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    udp_port_through_the_vm(&u);

    // The docker CLI through the forwarded socket.
    let host = format!("unix://{}", u.state("engine.sock").display());
    let mut docker = u.command(
        "docker",
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    docker.env("DOCKER_HOST", &host);
    let r = Run::of(docker.output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("test/box:1"), "{}", r.stdout);

    project_through_the_vm(&u);

    // Stop and start: images, volumes and containers are kept; a running
    // container is stopped through the engine first.
    u.ok(&["volume", "create", "kept"]);
    u.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "test/box:1",
        "sleep",
        "1000",
    ]);
    let supervisor = u.pid("supervisor.pid").unwrap();
    let r = u.ok(&["vm", "stop"]);
    assert!(r.stderr.contains("stopping 1 container(s)"), "{}", r.stderr);
    assert!(r.stderr.contains("VM stopped"), "{}", r.stderr);
    assert!(!alive(supervisor));
    assert_eq!(u.ok(&["vm", "status"]).stdout.trim(), "stopped");
    assert!(!u.state("engine.sock").exists());
    u.ok(&["vm", "start"]);
    assert!(u.ok(&["images"]).stdout.contains("test/box"));
    assert!(u.ok(&["volume", "ls"]).stdout.contains("kept"));
    let ps = u.ok(&["ps", "-a", "--format", "json"]).stdout;
    assert!(ps.contains("sleeper"), "{ps}");
    assert!(
        !u.ok(&["ps"]).stdout.contains("sleeper"),
        "still running after vm stop"
    );

    // QEMU killed: the supervisor goes too, and the next command starts
    // the VM again on first use, with nothing lost.
    let qemu = u.pid("qemu.pid").unwrap();
    let supervisor = u.pid("supervisor.pid").unwrap();
    Command::new("kill")
        .args(["-9", &qemu.to_string()])
        .status()
        .unwrap();
    let began = Instant::now();
    while alive(supervisor) {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the supervisor outlived QEMU"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = u.ok(&["images"]);
    assert!(r.stderr.contains("starting the VM"), "{}", r.stderr);
    assert!(r.stdout.contains("test/box"), "{}", r.stdout);
    assert!(u.ok(&["volume", "ls"]).stdout.contains("kept"));
    assert!(u.ok(&["ps", "-a"]).stdout.contains("sleeper"));

    // Reset wipes the disk; it asks unless --force.
    let r = u.servin(&["vm", "reset"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    u.ok(&["vm", "reset", "--force"]);
    assert_eq!(u.ok(&["vm", "status"]).stdout.trim(), "stopped");
    assert!(!u.vm_dir().join("vm-disk.img").exists());
}

/// A host folder under a share (`/tmp`, which holds the test's home) bound
/// into a container: it reads a host file and writes one the host sees,
/// owned by the user QEMU runs as. A bind from outside every share is
/// refused, naming the path and `shares`.
fn host_folders_through_the_vm(u: &VmUser) {
    let info = u.ok(&["vm", "info", "--format", "json"]).stdout;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["shares"], serde_json::json!(["/tmp"]), "{info}");
    assert_eq!(info["shares_changed"], false, "{info}");
    let text = u.ok(&["vm", "info"]).stdout;
    assert!(
        text.contains("Shares:        /tmp (9p, same path in the VM)"),
        "{text}"
    );

    // A change of `shares` is for the next start, and `vm info` says so.
    let config = u.vm_dir().join("vm-config.json");
    let original = std::fs::read_to_string(&config).unwrap();
    let mut changed: serde_json::Value = serde_json::from_str(&original).unwrap();
    changed["shares"] = serde_json::json!(["/tmp", "/srv/servin-test"]);
    std::fs::write(&config, changed.to_string()).unwrap();
    let text = u.ok(&["vm", "info"]).stdout;
    assert!(
        text.contains(&format!(
            "{} now shares /tmp, /srv/servin-test: takes effect at the next `servin vm start`",
            config.display()
        )),
        "{text}"
    );
    std::fs::write(&config, &original).unwrap();

    let dir = u.home.join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in.txt"), "from the host\n").unwrap();
    chown_tree(&dir);
    let bind = format!("{}:/data", dir.display());
    // Root in the container writes as the user QEMU runs as; chown fails.
    let script = "cat /data/in.txt && echo from the container > /data/out.txt && busybox chown 123:123 /data/out.txt; echo chown=$? && stat -c %u:%g /data/out.txt";
    let r = u.ok(&["run", "--rm", "-v", &bind, "test/box:1", "sh", "-c", script]);
    assert_eq!(
        r.stdout,
        format!("from the host\nchown=1\n{USER}:{USER}\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    let out = dir.join("out.txt");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "from the container\n"
    );
    let m = std::fs::metadata(&out).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (USER, USER),
        "owner of {}",
        out.display()
    );
    // Another uid in the container is held to the host folder's modes
    // (0755, the user's).
    let r = u.servin(&[
        "run",
        "--rm",
        "--user",
        "1000",
        "-v",
        &bind,
        "test/box:1",
        "sh",
        "-c",
        "echo x > /data/other.txt",
    ]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    assert!(!dir.join("other.txt").exists());

    // Outside every share: refused by the engine, through servin and docker.
    let r = u.servin(&["run", "--rm", "-v", "/usr/share:/x", "test/box:1", "true"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("bind source path /usr/share is not shared with servin's VM (shared: /tmp)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("to \"shares\" in "), "{}", r.stderr);
    let mut docker = u.command(
        "docker",
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/usr/share,target=/x",
            "test/box:1",
            "true",
        ],
    );
    let host = format!("unix://{}", u.state("engine.sock").display());
    docker.env("DOCKER_HOST", &host);
    let r = Run::of(docker.output().unwrap());
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("bind source path /usr/share is not shared with servin's VM"),
        "{}",
        r.stderr
    );
    // A local volume binding a host folder: the same rule.
    let mut docker = u.command(
        "docker",
        &[
            "volume",
            "create",
            "--opt",
            "type=none",
            "--opt",
            "o=bind",
            "--opt",
            "device=/usr/share",
            "hostdocs",
        ],
    );
    docker.env("DOCKER_HOST", &host);
    let r = Run::of(docker.output().unwrap());
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "volume hostdocs: bind device /usr/share is not shared with servin's VM (shared: /tmp)"
        ),
        "{}",
        r.stderr
    );
}

/// A published UDP port answers on the host: a static echo server in the
/// container, a datagram sent to the host's port comes back through the
/// VM, from two peers at once; with the container gone the host's port is
/// free again.
fn udp_port_through_the_vm(u: &VmUser) {
    import_fixture_image(u, "udp-echo", "bin/udp-echo", "test/udp:1");
    let port = free_udp_port();
    let publish = format!("127.0.0.1:{port}:7/udp");
    u.ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &publish,
        "test/udp:1",
        "/bin/udp-echo",
        "7",
    ]);
    let ps = u.ok(&["ps"]).stdout;
    assert!(ps.contains(&format!("127.0.0.1:{port}->7/udp")), "{ps}");
    let ask = |socket: &std::net::UdpSocket, text: &str| -> Option<String> {
        socket.send_to(text.as_bytes(), ("127.0.0.1", port)).ok()?;
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let answer = wait_for(30, "the published UDP port answers", || ask(&a, "ping a"));
    assert_eq!(answer, "echo: ping a");
    // A second peer gets its own answers.
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(ask(&b, "ping b").as_deref(), Some("echo: ping b"));
    assert_eq!(ask(&a, "again").as_deref(), Some("echo: again"));
    u.ok(&["rm", "-f", "echo"]);
    wait_for(10, "the host's UDP port is free again", || {
        std::net::UdpSocket::bind(("127.0.0.1", port)).ok()
    });
}

/// A UDP port free on the host's loopback.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `guest/tests/fixtures/NAME.c` built with `cc -static`.
fn static_fixture(dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("guest/tests/fixtures/{name}.c"));
    let status = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "cc -static {}", src.display());
    std::fs::read(&out).unwrap()
}

/// A static inotify watcher (`guest/tests/fixtures/inotify-watch.c`,
/// built with `cc -static`: the test image's busybox has no `inotifyd`).
/// Imports `tag` into the VM's engine: the test container layer and the
/// static fixture `name`, built here, at `path`.
fn import_fixture_image(u: &VmUser, name: &str, path: &'static str, tag: &str) {
    let build = tempfile::tempdir().unwrap();
    let bin = Layer {
        entries: vec![Entry::File(path, static_fixture(build.path(), name), 0o755)],
        comp: Comp::None,
    };
    let (tar, _) = image::docker_save_tar(&[image::container_layer(), bin], tag);
    let tar_path = u.home.join(format!("{name}.tar"));
    std::fs::write(&tar_path, tar).unwrap();
    u.ok(&["image", "import", tar_path.to_str().unwrap()]);
}

/// Gives the test's unprivileged user the tree at `path`.
fn chown_tree(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `f` every 50 ms until it answers, for up to `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let began = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            began.elapsed() < Duration::from_secs(secs),
            "{what} within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A project `up` through the VM: its published port answers on the host,
/// and its `mode = "sync"` workspace, copied by `up` onto the VM's disk, is
/// served by the container; a change made on the host and sent by a
/// second `up` is seen inside the container, by its HTTP server and by an
/// inotify watcher on the workspace.
fn project_through_the_vm(u: &VmUser) {
    import_fixture_image(u, "inotify-watch", "bin/inotify-watch", "test/watch:1");

    let port = free_port();
    let dir = u.home.join("demo");
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(
        dir.join("servin.toml"),
        format!(
            r#"[project]
name = "demo"

[containers.web]
image = "test/watch:1"
command = ["sh", "-c", "/bin/inotify-watch /app > /tmp/events 2>&1 & exec httpd -f -p 80 -h /app"]
stop_timeout = "1s"
ports = ["127.0.0.1:{port}:80"]
workspace = {{ source = "./site", target = "/app", mode = "sync" }}
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("site/index.html"), "first page\n").unwrap();
    chown_tree(&dir);

    u.ok_in(&dir, &["up", "-d"]);
    let page = wait_for(30, "the published port answers", || {
        http_get(port).filter(|p| p.contains("first page"))
    });
    assert!(page.starts_with("HTTP/1."), "{page}");
    wait_for(30, "the watcher in the container starts", || {
        let r = u.ok_in(&dir, &["exec", "web", "cat", "/tmp/events"]);
        r.stdout.contains("watching").then_some(())
    });

    // A change on the host, sent by a second `up`; the container is kept.
    let id = u.ok_in(&dir, &["ps", "-q"]).stdout;
    std::fs::write(dir.join("site/index.html"), "second page\n").unwrap();
    std::fs::write(dir.join("site/new.txt"), "new file\n").unwrap();
    chown_tree(&dir);
    u.ok_in(&dir, &["up", "-d"]);
    assert_eq!(u.ok_in(&dir, &["ps", "-q"]).stdout, id, "up recreated web");
    let page = wait_for(30, "the changed page is served", || {
        http_get(port).filter(|p| p.contains("second page"))
    });
    assert!(!page.contains("first page"), "{page}");
    let r = u.ok_in(&dir, &["exec", "web", "cat", "/app/new.txt"]);
    assert_eq!(r.stdout, "new file\n");
    let events = wait_for(30, "the watcher sees the change", || {
        let r = u.ok_in(&dir, &["exec", "web", "cat", "/tmp/events"]);
        (r.stdout.contains(" index.html") && r.stdout.contains(" new.txt")).then_some(r.stdout)
    });
    assert!(events.starts_with("watching\n"), "{events}");

    // Down: the port stops answering.
    u.ok_in(&dir, &["down"]);
    wait_for(10, "the port closes after down", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
}
