//! Containers for real: the docker CLI against the engine's socket, runc,
//! overlayfs, cgroups, the monitor, tini.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use servin_testkit::cleanup::OwnsRoot;
use servin_testkit::process::with_stdin;
use servin_testkit::terminal::on_a_terminal;
use servin_testkit::wait::eventually;
use support::{EngineGuard, IMAGE};

fn engine() -> EngineGuard {
    EngineGuard::with_image(IMAGE, &[])
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn run_rm_prints_and_propagates_the_exit_code() {
    let e = engine();
    let out = e.docker_ok(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(out, "hi\n");
    let out = e.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", e.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    eventually("auto-removal", || {
        e.docker_ok(&["ps", "-aq"]).trim().is_empty()
    });
    e.finish();
}

#[test]
fn detached_container_lifecycle() {
    let e = engine();
    let id = e.run_detached(
        "web",
        &[],
        &[
            "sh",
            "-c",
            "echo started; while true; do echo tick; sleep 0.2; done",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = e.docker_ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up"), "{ps}");
    eventually("the first log line", || {
        e.docker_ok(&["logs", "web"]).contains("started")
    });
    let out = e.docker(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(code(&out), 5);
    let host = e.docker_ok(&["exec", "web", "cat", "/etc/hostname"]);
    assert_eq!(host.trim(), &id[..12]);
    let v = e.inspect_container("web");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Path"], "sh");
    e.docker_ok(&["stop", "web"]);
    let v = e.inspect_container("web");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(
        v["State"]["ExitCode"], 143,
        "SIGTERM reached sh through the init"
    );
    assert_eq!(e.docker_ok(&["wait", "web"]).trim(), "143");
    let err = e.docker_err(&["exec", "web", "true"]);
    assert!(err.contains("is not running"), "{err}");
    e.docker_ok(&["rm", "web"]);
    assert!(e.docker_ok(&["ps", "-aq"]).trim().is_empty());
    e.finish();
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let e = engine();
    e.run_detached(
        "counter",
        &[],
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo line $i; sleep 0.3; done; echo bye >&2",
        ],
    );
    let out = e.docker(&["logs", "-f", "counter"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "line 1\nline 2\nline 3\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "bye\n");
    let tail = e.docker(&["logs", "--tail", "2", "counter"]);
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "line 3\n");
    assert_eq!(String::from_utf8_lossy(&tail.stderr), "bye\n");
    let ts = e.docker_ok(&["logs", "-t", "counter"]);
    assert!(
        ts.lines()
            .all(|l| l.starts_with("20") && l.contains("Z line")),
        "{ts}"
    );
    e.finish();
}

#[test]
fn stop_reaches_a_process_that_ignores_sigterm_through_the_init() {
    let e = engine();
    // With the init, `sleep` is not PID 1 and SIGTERM ends it.
    e.run_detached("with-init", &[], &["sleep", "3600"]);
    e.docker_ok(&["stop", "-t", "20", "with-init"]);
    assert_eq!(e.inspect_container("with-init")["State"]["ExitCode"], 143);
    // Without it, `sleep` is PID 1, ignores SIGTERM, and is killed.
    e.docker_ok(&[
        "run",
        "-d",
        "--init=false",
        "--name",
        "no-init",
        IMAGE,
        "sleep",
        "3600",
    ]);
    e.docker_ok(&["stop", "-t", "1", "no-init"]);
    assert_eq!(e.inspect_container("no-init")["State"]["ExitCode"], 137);
    let top = e.docker_ok(&["run", "--rm", IMAGE, "cat", "/proc/1/cmdline"]);
    assert!(top.starts_with("/sbin/servin-init"), "{top:?}");
    e.finish();
}

#[test]
fn user_workdir_env_and_hostname() {
    let e = engine();
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "-u",
        "app",
        "-w",
        "/work/dir",
        "-e",
        "FOO=bar",
        "--hostname",
        "box",
        IMAGE,
        "sh",
        "-c",
        "id; pwd; echo $FOO; hostname",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("uid=1000(app) gid=1000(app)"), "{out}");
    assert!(lines[0].contains("50(staff)"), "{out}");
    assert_eq!(&lines[1..], ["/work/dir", "bar", "box"]);
    let out = e.docker_ok(&["run", "--rm", "-u", "1234:5678", IMAGE, "id"]);
    assert!(out.starts_with("uid=1234 gid=5678"), "{out}");
    let err = e.docker(&["run", "--rm", "-u", "nosuchuser", IMAGE, "id"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("nosuchuser"));
    e.finish();
}

#[test]
fn mounts_and_security_settings() {
    let e = engine();
    let host = e.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from host\n").unwrap();
    let vol = format!("{}:/data:ro", host.display());
    let out = e.docker(&[
        "run",
        "--rm",
        "-v",
        &vol,
        IMAGE,
        "sh",
        "-c",
        "cat /data/f; touch /data/x",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from host\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert!(!host.join("x").exists());
    let rw = format!("{}:/data", host.display());
    e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        IMAGE,
        "sh",
        "-c",
        "echo hi > /data/y",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("y")).unwrap(), "hi\n");
    let out = e.docker(&["run", "--rm", "--read-only", IMAGE, "touch", "/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    let caps = e.docker_ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        IMAGE,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.contains("0000000000000000"), "{caps}");
    let caps = e.docker_ok(&["run", "--rm", IMAGE, "grep", "CapEff", "/proc/self/status"]);
    assert!(
        !caps.contains("0000000000000000") && !caps.contains("000001ffffffffff"),
        "{caps}"
    );
    let mounts = e.docker_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "cat",
        "/proc/mounts",
    ]);
    assert!(mounts.contains("tmpfs /scratch tmpfs"), "{mounts}");
    assert!(mounts.contains("proc /proc proc"), "{mounts}");
    assert!(mounts.contains("/sys sysfs ro"), "{mounts}");
    let hosts = e.docker_ok(&[
        "run",
        "--rm",
        "--add-host",
        "db.test:10.1.2.3",
        IMAGE,
        "cat",
        "/etc/hosts",
    ]);
    assert!(
        hosts.contains("10.1.2.3") && hosts.contains("db.test"),
        "{hosts}"
    );
    let nnp = e.docker_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        IMAGE,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(nnp.contains('1'), "{nnp}");
    e.finish();
}

#[test]
fn limits_are_enforced_inside_the_container() {
    let e = engine();
    // Memory: a 64 MiB buffer in a 16 MiB container meets the OOM killer.
    let out = e.docker(&[
        "run",
        "--name",
        "oom",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64M count=1",
    ]);
    assert_eq!(code(&out), 137, "{}", String::from_utf8_lossy(&out.stderr));
    let v = e.inspect_container("oom");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    let limit = e.docker_ok(&[
        "run",
        "--rm",
        "-m",
        "16m",
        IMAGE,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(limit.trim(), "16777216");
    // Pids: forks beyond the limit are refused.
    let out = e.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "6",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; wait",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
    // CPUs: the CFS quota.
    let quota = e.docker_ok(&[
        "run",
        "--rm",
        "--cpus",
        "0.5",
        IMAGE,
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ]);
    assert_eq!(quota.trim(), "50000");
    // rlimits never above the host's hard limit.
    let nofile = e.docker_ok(&["run", "--rm", IMAGE, "sh", "-c", "ulimit -n"]);
    let host_hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(String::from))
        .unwrap();
    assert!(nofile.trim().parse::<u64>().unwrap() <= host_hard.parse::<u64>().unwrap_or(u64::MAX));
    e.finish();
}

#[test]
fn stdin_and_terminals() {
    let e = engine();
    let out = with_stdin(
        &mut e.docker_cmd(&["run", "--rm", "-i", IMAGE, "cat"]),
        b"through stdin\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    // A terminal: run -t and exec -it under a pseudo-terminal from script(1).
    let docker = |args: &str| {
        format!(
            "DOCKER_HOST=unix://{} DOCKER_CONFIG={} docker {args}",
            e.socket().display(),
            e.dir.path().join("docker-config").display()
        )
    };
    let out = on_a_terminal(&docker(&format!("run --rm -t {IMAGE} tty")))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{out:?}"
    );
    e.run_detached("sleeper", &[], &["sleep", "3600"]);
    let out = on_a_terminal(&docker("exec -it sleeper sh -c 'tty; exit 4'"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(code(&out), 4, "{text}");
    e.finish();
}

#[test]
fn state_survives_an_engine_crash() {
    let mut e = engine();
    e.run_detached(
        "ticker",
        &[],
        &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
    );
    e.run_detached("short", &[], &["sh", "-c", "sleep 1; exit 7"]);
    e.kill();
    // `short` exits while no engine runs.
    std::thread::sleep(Duration::from_secs(2));
    e.spawn();
    let ps = e.docker_ok(&["ps"]);
    assert!(ps.contains("ticker"), "{ps}");
    let short = e.inspect_container("short");
    assert_eq!(short["State"]["Status"], "exited", "{short}");
    assert_eq!(short["State"]["ExitCode"], 7);
    let before = e.docker_ok(&["logs", "ticker"]).lines().count();
    eventually("new log lines after the restart", || {
        e.docker_ok(&["logs", "ticker"]).lines().count() > before + 2
    });
    assert_eq!(
        e.docker_ok(&["exec", "ticker", "echo", "still here"]),
        "still here\n"
    );
    e.docker_ok(&["stop", "-t", "5", "ticker"]);
    e.docker_ok(&["rm", "ticker", "short"]);
    e.finish();
}

#[test]
fn restart_policy_and_health_checks() {
    let e = engine();
    e.run_detached(
        "flaky",
        &["--restart", "on-failure:2"],
        &["sh", "-c", "exit 1"],
    );
    eventually("two restarts", || {
        let v = e.inspect_container("flaky");
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    });
    e.run_detached(
        "checked",
        &[
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
        ],
        &["sh", "-c", "sleep 1; touch /tmp/ok; sleep 3600"],
    );
    let first = e.inspect_container("checked");
    assert_eq!(first["State"]["Health"]["Status"], "starting", "{first}");
    eventually("healthy", || {
        e.inspect_container("checked")["State"]["Health"]["Status"] == "healthy"
    });
    assert!(e.docker_ok(&["ps"]).contains("(healthy)"));
    e.docker_ok(&["exec", "checked", "rm", "/tmp/ok"]);
    eventually("unhealthy", || {
        e.inspect_container("checked")["State"]["Health"]["Status"] == "unhealthy"
    });
    e.docker_ok(&["rm", "-f", "checked", "flaky"]);
    e.finish();
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() {
    let e = engine();
    let r = e.api(
        "POST",
        "/containers/create",
        &[("Content-Type", "application/json")],
        br#"{"Image":"no/such:image"}"#,
    );
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no such image"), "{}", r.text());
    e.docker_ok(&["create", "--name", "dup", IMAGE, "true"]);
    let err = e.docker_err(&["create", "--name", "dup", IMAGE, "true"]);
    assert!(err.contains("already in use by container"), "{err}");
    let err = e.docker_err(&["run", "--rm", "-m", "1k", IMAGE, "true"]);
    assert!(err.to_lowercase().contains("memory"), "{err}");
    let err = e.docker_err(&["run", "--rm", "--cpus", "64", IMAGE, "true"]);
    assert!(err.contains("CPUs"), "{err}");
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/source,target=/x",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("does not exist"), "{err}");
    let out = e.docker(&["run", "--rm", IMAGE, "nosuchcommand"]);
    assert_eq!(code(&out), 127);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("executable file not found"),
        "{out:?}"
    );
    let err = e.docker_err(&["rmi", IMAGE]);
    assert!(err.contains("is using its referenced image"), "{err}");
    let names = e.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "dup", "only the first create remains");
    assert!(
        std::fs::read_dir(e.root().join("containers"))
            .unwrap()
            .count()
            == 1
    );
    e.docker_ok(&["rm", "dup"]);
    e.finish();
}

#[test]
fn events_report_the_lifecycle() {
    let e = engine();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    e.docker_ok(&["run", "--rm", "--name", "ev", IMAGE, "true"]);
    let until = (since.parse::<u64>().unwrap() + 60).to_string();
    let mut child = e
        .docker_cmd(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=ev",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut buf);
        buf
    });
    while Instant::now() < deadline && !reader.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.push_str(&reader.join().unwrap());
    for action in ["create", "attach", "start", "die", "destroy"] {
        assert!(
            seen.lines().any(|l| l == action),
            "{action} missing from {seen}"
        );
    }
    e.finish();
}
