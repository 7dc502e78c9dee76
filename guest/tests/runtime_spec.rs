//! The runtime module against the real runc: a busybox root filesystem as
//! the single lower layer of an overlay mounted with `mount_overlay`, the
//! spec made by `spec::build` from a Docker create body, and
//! `runc run --bundle` running it. Each test has its own folders, runc root
//! and container IDs; a guard deletes the containers and unmounts the root
//! even when an assertion fails.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bollard_stubs::models::{ContainerCreateBody, ExecConfig, HostConfig};
use servin_guest::runtime::etc::{self, EtcFiles};
use servin_guest::runtime::host::HostFacts;
use servin_guest::runtime::spec::{self, SpecInput};
use servin_guest::runtime::{OciRuntime, Runtime, rootfs};

const RUNC: &str = "/usr/bin/runc";
const BUSYBOX: &str = "/bin/busybox";
const TINI: &str = "/usr/bin/tini-static";
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "id", "sleep", "grep", "touch", "pwd", "seq", "hostname", "ls", "head",
    "wc", "mknod",
];
/// Long enough for any step on a loaded machine; a process that ignores
/// a signal would run an hour.
const PATIENCE: Duration = Duration::from_secs(60);

/// A 64-hex container ID no other test (or test run) uses.
fn unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:08x}{:08x}{:048x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A busybox root mounted as an overlay, with its generated `/etc` files
/// and a runc root. Dropping it force-deletes every container it started
/// and unmounts the root before the folders go.
struct Fixture {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
    etc: EtcFiles,
    runtime: Runtime,
    /// This host, devices included (privileged containers get them).
    host: HostFacts,
    ids: Mutex<Vec<String>>,
}

/// How a run ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("layer");
        let bin = lower.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("tmp")).unwrap();
        std::fs::write(
            lower.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(lower.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        let rootfs = tmp.path().join("rootfs");
        let etc = EtcFiles {
            hosts: tmp.path().join("hosts"),
            hostname: tmp.path().join("hostname"),
            resolv_conf: tmp.path().join("resolv.conf"),
        };
        let fixture = Self {
            runtime: Runtime {
                name: "runc".to_string(),
                binary: PathBuf::from(RUNC),
                root: tmp.path().join("runc"),
            },
            tmp,
            rootfs,
            etc,
            host: HostFacts::read(20_000, true),
            ids: Mutex::new(Vec::new()),
        };
        // Mounted only once the guard exists, so a failure below unmounts.
        rootfs::mount_overlay(
            &[lower],
            &fixture.tmp.path().join("upper"),
            &fixture.tmp.path().join("work"),
            &fixture.rootfs,
        )
        .unwrap();
        std::fs::write(
            &fixture.etc.hosts,
            etc::hosts_file("box", &[], &[]).unwrap(),
        )
        .unwrap();
        std::fs::write(&fixture.etc.hostname, "box\n").unwrap();
        std::fs::write(&fixture.etc.resolv_conf, "nameserver 10.0.0.1\n").unwrap();
        fixture
    }

    /// A host folder for bind mounts.
    fn host_dir(&self, name: &str) -> PathBuf {
        let d = self.tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn image() -> oci_spec::image::Config {
        let mut c = oci_spec::image::Config::default();
        c.set_env(Some(vec!["PATH=/bin".to_string()]));
        c.set_cmd(Some(vec!["sh".to_string()]));
        c
    }

    fn input<'a>(
        &'a self,
        id: &'a str,
        config: &'a ContainerCreateBody,
        image: &'a oci_spec::image::Config,
        init: bool,
        volumes: &'a dyn Fn(&str) -> servin_guest::error::Result<PathBuf>,
    ) -> SpecInput<'a> {
        SpecInput {
            id,
            name: "box",
            config,
            image: Some(image),
            rootfs: &self.rootfs,
            etc: &self.etc,
            init: init.then_some(Path::new(TINI)),
            netns: None,
            volume_path: volumes,
            anonymous_volumes: &[],
            host: &self.host,
            links_env: &[],
        }
    }

    /// Writes the bundle of a new container; returns its ID and bundle.
    fn bundle(&self, config: &ContainerCreateBody, init: bool) -> (String, PathBuf) {
        let id = unique_id();
        let image = Self::image();
        let no_volumes = |n: &str| -> servin_guest::error::Result<PathBuf> {
            Err(servin_guest::error::Error::NoSuchVolume(n.to_string()))
        };
        let spec = spec::build(&self.input(&id, config, &image, init, &no_volumes)).unwrap();
        let bundle = self.tmp.path().join(format!("bundle-{id}"));
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        self.ids.lock().unwrap().push(id.clone());
        (id, bundle)
    }

    fn runc(&self) -> Command {
        let mut c = self.runtime.command();
        c.stdin(Stdio::null());
        c
    }

    /// Starts `runc run` in the foreground of a thread; the receiver gets
    /// its output when the container ends.
    fn start(&self, id: &str, bundle: &Path) -> std::sync::mpsc::Receiver<Output> {
        let child = self
            .runc()
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(out) = child.wait_with_output() {
                let _ = tx.send(out);
            }
        });
        rx
    }

    /// Waits for a run to end; kills the container if it outlives
    /// [`PATIENCE`] and fails.
    fn finish(&self, id: &str, rx: &std::sync::mpsc::Receiver<Output>) -> Ran {
        let out = match rx.recv_timeout(PATIENCE) {
            Ok(out) => out,
            Err(_) => {
                let _ = self.runc().args(["kill", "--all", id, "KILL"]).output();
                panic!("container {id} still runs after {PATIENCE:?}");
            }
        };
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `argv` in a container made from `config` and waits for it.
    fn run(&self, mut config: ContainerCreateBody, argv: &[&str]) -> Ran {
        config.cmd = Some(argv.iter().map(|s| (*s).to_string()).collect());
        let (id, bundle) = self.bundle(&config, false);
        let rx = self.start(&id, &bundle);
        self.finish(&id, &rx)
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            let _ = self
                .runc()
                .args(["delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = rootfs::unmount(&self.rootfs);
    }
}

fn with_host(hc: HostConfig) -> ContainerCreateBody {
    ContainerCreateBody {
        host_config: Some(hc),
        ..Default::default()
    }
}

#[test]
fn the_command_runs_and_prints() {
    let f = Fixture::new();
    assert!(rootfs::is_mounted(&f.rootfs));
    rootfs::lookup_command(&f.rootfs, "sh", &["PATH=/bin".to_string()]).unwrap();
    let e = rootfs::lookup_command(&f.rootfs, "nosuch", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "exec: \"nosuch\": executable file not found in $PATH"
    );
    let r = f.run(
        ContainerCreateBody {
            env: Some(vec!["GREETING=hello from servin".to_string()]),
            ..Default::default()
        },
        &[
            "sh",
            "-c",
            "echo \"$GREETING\"; hostname; cat /etc/hostname; id -u",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "hello from servin");
    assert_eq!(
        lines[1].len(),
        12,
        "the hostname is the ID's start: {lines:?}"
    );
    assert_eq!(lines[2], "box", "the generated /etc/hostname is mounted");
    assert_eq!(lines[3], "0");
    let r = f.run(ContainerCreateBody::default(), &["sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "the exit status comes through");
}

#[test]
fn user_and_working_folder() {
    let f = Fixture::new();
    let r = f.run(
        ContainerCreateBody {
            user: Some("1000:1000".to_string()),
            working_dir: Some("/work/dir".to_string()),
            ..Default::default()
        },
        &["sh", "-c", "id; pwd; touch mine && echo wrote; echo $HOME"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("uid=1000") && r.stdout.contains("gid=1000"),
        "{}",
        r.stdout
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[1..], ["/work/dir", "wrote", "/home/app"]);
    let made = std::fs::metadata(f.rootfs.join("work/dir/mine")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&made), 1000);
}

#[test]
fn read_only_binds_and_root_refuse_writes() {
    let f = Fixture::new();
    let ro = f.host_dir("ro");
    std::fs::write(ro.join("seed"), "seeded\n").unwrap();
    let rw = f.host_dir("rw");
    let config = with_host(HostConfig {
        binds: Some(vec![
            format!("{}:/data:ro", ro.display()),
            format!("{}:/rw", rw.display()),
        ]),
        readonly_rootfs: Some(true),
        ..Default::default()
    });
    let r = f.run(
        config,
        &[
            "sh",
            "-c",
            "cat /data/seed; \
             echo x > /data/new && echo data-writable; \
             echo y > /rw/new && echo rw-ok; \
             echo z > /rootfile && echo root-writable; \
             echo done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "seeded\nrw-ok\ndone\n", "stderr: {}", r.stderr);
    assert_eq!(
        r.stderr.matches("Read-only file system").count(),
        2,
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(rw.join("new")).unwrap(), "y\n");
    assert!(!ro.join("new").exists());
    assert!(!f.tmp.path().join("upper/rootfile").exists());
}

#[test]
fn the_memory_limit_is_the_cgroups() {
    let f = Fixture::new();
    let file = if servin_guest::runtime::cgroup_v2_only() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let r = f.run(
        with_host(HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        }),
        &["cat", file],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), (64u64 << 20).to_string());
}

#[test]
fn the_pids_limit_refuses_forks() {
    let f = Fixture::new();
    let script = "for i in $(seq 1 20); do sleep 30 & done; echo all-started";
    let r = f.run(ContainerCreateBody::default(), &["sh", "-c", script]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "all-started\n"),
        "without a limit: {}",
        r.stderr
    );
    let r = f.run(
        with_host(HostConfig {
            pids_limit: Some(8),
            ..Default::default()
        }),
        &["sh", "-c", script],
    );
    assert_ne!(r.code, 0);
    assert!(!r.stdout.contains("all-started"), "{}", r.stdout);
    assert!(r.stderr.contains("fork"), "{}", r.stderr);
}

/// The `Cap*:` lines of /proc/self/status, by name.
fn caps(status: &str) -> std::collections::HashMap<String, String> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn capabilities_are_dockers_and_drop_all_removes_them() {
    let f = Fixture::new();
    let r = f.run(
        ContainerCreateBody::default(),
        &["grep", "Cap", "/proc/self/status"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = caps(&r.stdout);
    assert_eq!(c["CapBnd"], "00000000a80425fb", "Docker's default set");
    assert_eq!(c["CapEff"], "00000000a80425fb");
    let r = f.run(
        with_host(HostConfig {
            cap_drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        &["grep", "Cap", "/proc/self/status"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = caps(&r.stdout);
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(c[k], "0000000000000000", "{k}: {}", r.stdout);
    }
}

#[test]
fn device_rules_hold_and_privileged_lifts_them() {
    let f = Fixture::new();
    // Nodes may be made (`m`), but only the allowed ones opened.
    let script = "head -c 4 /dev/myzero | wc -c; \
                  mknod /tmp/fuse c 10 229 && echo made; \
                  (exec 3</tmp/fuse) && echo fuse-opened; \
                  grep CapEff /proc/self/status";
    let r = f.run(
        with_host(HostConfig {
            devices: Some(vec![bollard_stubs::models::DeviceMapping {
                path_on_host: Some("/dev/zero".into()),
                path_in_container: Some("/dev/myzero".into()),
                cgroup_permissions: Some("r".into()),
            }]),
            ..Default::default()
        }),
        &["sh", "-c", script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..2], ["4", "made"], "{}", r.stderr);
    assert!(
        !r.stdout.contains("fuse-opened"),
        "fuse is denied: {}",
        r.stdout
    );
    assert!(r.stderr.contains("not permitted"), "{}", r.stderr);

    let r = f.run(
        with_host(HostConfig {
            privileged: Some(true),
            ..Default::default()
        }),
        &[
            "sh",
            "-c",
            "ls /dev/null /dev/loop-control >/dev/null && echo host-devices; \
             mknod /tmp/fuse2 c 10 229 && (exec 3</tmp/fuse2) && echo fuse-opened; \
             grep CapEff /proc/self/status",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    if Path::new("/dev/loop-control").exists() {
        assert!(
            r.stdout.contains("host-devices"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
    if Path::new("/dev/fuse").exists() {
        assert!(r.stdout.contains("fuse-opened"), "{}{}", r.stdout, r.stderr);
    }
    // Every capability the engine (here: this test) holds.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = caps(&status)["CapBnd"].clone();
    assert_eq!(caps(&r.stdout)["CapEff"], ours, "{}", r.stdout);
}

#[test]
fn the_init_forwards_sigterm_and_exec_joins() {
    let f = Fixture::new();
    let config = ContainerCreateBody {
        cmd: Some(vec!["sleep".to_string(), "3600".to_string()]),
        ..Default::default()
    };
    let (id, bundle) = f.bundle(&config, true);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec["process"]["args"],
        serde_json::json!(["/sbin/servin-init", "--", "sleep", "3600"])
    );
    let rx = f.start(&id, &bundle);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = Fixture::block_on(f.runtime.state(&id)).unwrap();
        if state.as_ref().is_some_and(|s| s.status == "running") {
            assert!(state.unwrap().pid.is_some_and(|p| p > 1));
            break;
        }
        if let Ok(out) = rx.try_recv() {
            panic!(
                "{id} ended before it ran: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "{id} never ran: {state:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An exec made by exec_process joins the running container.
    let image = Fixture::image();
    let no_volumes = |n: &str| -> servin_guest::error::Result<PathBuf> {
        Err(servin_guest::error::Error::NoSuchVolume(n.to_string()))
    };
    let process = spec::exec_process(
        &f.input(&id, &config, &image, true, &no_volumes),
        &ExecConfig {
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                "id -u; cat /proc/1/cmdline".into(),
            ]),
            user: Some("app".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let process_file = f.tmp.path().join("process.json");
    std::fs::write(&process_file, serde_json::to_vec(&process).unwrap()).unwrap();
    let out = f
        .runc()
        .arg("exec")
        .arg("--process")
        .arg(&process_file)
        .arg(&id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("1000"));
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("/sbin/servin-init\0--\0sleep"),
        "the init is PID 1: {stdout:?}"
    );

    Fixture::block_on(f.runtime.kill(&id, "TERM", false)).unwrap();
    let r = f.finish(&id, &rx);
    assert_eq!(
        r.code,
        128 + 15,
        "the init passes on SIGTERM's end: {}",
        r.stderr
    );
    // `runc run` removes its container when it ends.
    assert_eq!(Fixture::block_on(f.runtime.state(&id)).unwrap(), None);
    Fixture::block_on(f.runtime.delete(&id, true)).unwrap();
    let e = Fixture::block_on(f.runtime.kill(&id, "KILL", false)).unwrap_err();
    assert!(e.to_string().contains(&id), "{e}");
}
