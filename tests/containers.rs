//! The container commands against a real engine started by servin itself:
//! runc, overlayfs, the monitor, the init.

#![allow(clippy::unwrap_used)]

#[path = "support/registry.rs"]
mod registry;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use registry::{Sandbox, seed_image};

const IMAGE: &str = "test/cli:1";

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let tar = seed_image(s.dir.path(), IMAGE);
    s.ok(&["image", "import", tar.to_str().unwrap()]);
    s
}

fn finish(s: Sandbox) {
    let root = s.root();
    drop(s);
    let left = registry::mounts_below(&root);
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn run_prints_output_and_returns_the_exit_code() {
    let s = sandbox();
    let r = s.run(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hi\n"), "{}", r.stderr);
    let r = s.run(&["run", "--rm", IMAGE, "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, "oops\n");
    let r = s.run(&["run", "--rm", IMAGE, "nosuchcommand"]);
    assert_eq!(r.code, 127);
    assert!(
        r.stderr.contains("executable file not found in $PATH"),
        "{}",
        r.stderr
    );
    let mut child = s
        .command(&["run", "--rm", "-i", IMAGE, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped in\n");
    eventually("auto-removal", || s.ok(&["ps", "-aq"]).trim().is_empty());
    finish(s);
}

#[test]
fn a_background_container_through_its_life() {
    let s = sandbox();
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "echo started; while true; do echo tick; sleep 0.2; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    let json: serde_json::Value = serde_json::from_str(&s.ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Names"][0], "/ticker");
    eventually("output", || {
        s.ok(&["logs", "ticker"]).starts_with("started\ntick\n")
    });
    let r = s.run(&["exec", "ticker", "sh", "-c", "exit 6"]);
    assert_eq!(r.code, 6);
    assert_eq!(
        s.ok(&["exec", "-e", "X=y", "ticker", "sh", "-c", "echo $X"]),
        "y\n"
    );
    let info: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "ticker"])).unwrap();
    assert_eq!(info[0]["State"]["Status"], "running");
    // logs -f follows until the container stops.
    let follower = s
        .command(&["logs", "-f", "--tail", "1", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    s.ok(&["stop", "-t", "5", "ticker"]);
    let out = follower.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.lines().count() >= 2 && text.lines().all(|l| l == "tick"),
        "{text}"
    );
    assert_eq!(s.ok(&["wait", "ticker"]).trim(), "143");
    let r = s.run(&["exec", "ticker", "true"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
    s.ok(&["start", "ticker"]);
    s.ok(&["restart", "-t", "1", "ticker"]);
    s.ok(&["kill", "-s", "KILL", "ticker"]);
    eventually("the kill", || s.ok(&["wait", "ticker"]).trim() == "137");
    s.ok(&["rm", "ticker"]);
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    finish(s);
}

#[test]
fn create_start_attach_and_rm_force() {
    let s = sandbox();
    let id = s.ok(&[
        "create",
        "--name",
        "later",
        IMAGE,
        "sh",
        "-c",
        "echo from later; exit 4",
    ]);
    assert_eq!(id.trim().len(), 64);
    let r = s.run(&["start", "-a", "later"]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "from later\n"));
    s.ok(&["run", "-d", "--name", "busy", IMAGE, "sleep", "3600"]);
    let r = s.run(&["rm", "busy"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("container is running"), "{}", r.stderr);
    s.ok(&["rm", "-f", "busy"]);
    s.ok(&["rm", "--all"]);
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    finish(s);
}

#[test]
fn a_terminal_under_a_pty() {
    let s = sandbox();
    let servin = env!("CARGO_BIN_EXE_servin");
    let run = |args: &str| {
        let line = format!(
            "SERVIN_ROOT={} SERVIN_HOST=unix://{} SERVIN_ENGINE={} {servin} {args}",
            s.root().display(),
            s.dir.path().join("engine.sock").display(),
            registry::engine_binary().display(),
        );
        std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&format!("run --rm -t {IMAGE} tty"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{out:?}"
    );
    s.ok(&["run", "-d", "--name", "sh1", IMAGE, "sleep", "3600"]);
    let out = run("exec -it sh1 sh -c 'tty; exit 9'");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(9));
    s.ok(&["rm", "-f", "sh1"]);
    finish(s);
}

#[test]
fn bad_input() {
    let s = sandbox();
    let r = s.run(&["run", "--rm", "-m", "lots", IMAGE, "true"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("invalid --memory \"lots\""),
        "{}",
        r.stderr
    );
    let r = s.run(&["run", "--rm", "--cpus", "zero", IMAGE, "true"]);
    assert_eq!(r.code, 2);
    let r = s.run(&["run", "--rm", "-m", "1k", IMAGE, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("6MB"), "{}", r.stderr);
    let r = s.run(&["run", "--rm", "-v", "/no/such/dir:/x", IMAGE, "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("bind source path does not exist: /no/such/dir"),
        "{}",
        r.stderr
    );
    s.ok(&["create", "--name", "taken", IMAGE, "true"]);
    let r = s.run(&["create", "--name", "taken", IMAGE, "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("already in use by container"),
        "{}",
        r.stderr
    );
    let r = s.run(&["rmi", IMAGE]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is using its referenced image"),
        "{}",
        r.stderr
    );
    let r = s.run(&["logs", "nobody"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no such container: nobody"),
        "{}",
        r.stderr
    );
    let r = s.run(&["run", "--rm", "127.0.0.1:1/missing:1", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("Unable to find image"), "{}", r.stderr);
    assert_eq!(
        s.ok(&["ps", "-aq"]).lines().count(),
        1,
        "only the first create remains"
    );
    s.ok(&["rm", "taken"]);
    finish(s);
}
