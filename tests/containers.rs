//! The container commands against a real engine started by servin itself:
//! runc, overlayfs, the monitor, the init.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use servin_testkit::cleanup::OwnsRoot;
use servin_testkit::process::with_stdin;
use servin_testkit::terminal::on_a_terminal;
use servin_testkit::wait::eventually;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/cli:1";

fn sandbox() -> Env {
    Env::with_image(IMAGE)
}

/// Waits for a child with a bound, killing it (and failing) past it.
fn wait_bounded(mut child: std::process::Child, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not end");
}

/// Reads the child's stdout up to a line equal to `line`.
fn read_until(child: &mut std::process::Child, line: &str) -> String {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            panic!("output ended before {line:?}: {seen}");
        }
        seen.push_str(&l);
        if l.trim_end() == line {
            return seen;
        }
    }
}

fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, sig).unwrap();
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
    r.assert_stderr_has("executable file not found in $PATH");
    let out = with_stdin(
        &mut s.command(&["run", "--rm", "-i", IMAGE, "cat"]),
        b"piped in\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped in\n");
    eventually("auto-removal", || s.ok(&["ps", "-aq"]).trim().is_empty());
    s.finish();
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
    r.assert_stderr_has("is not running");
    s.ok(&["start", "ticker"]);
    s.ok(&["restart", "-t", "1", "ticker"]);
    s.ok(&["kill", "-s", "KILL", "ticker"]);
    eventually("the kill", || s.ok(&["wait", "ticker"]).trim() == "137");
    s.ok(&["rm", "ticker"]);
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    s.finish();
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
    // `start -a -i` attaches to a container that already runs, as Docker's.
    s.ok(&[
        "create",
        "-i",
        "--name",
        "reader",
        IMAGE,
        "sh",
        "-c",
        "read line; echo got $line; exit 5",
    ]);
    s.ok(&["start", "reader"]);
    let mut child = s
        .command(&["start", "-a", "-i", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = wait_bounded(child, "start -a -i");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    assert_eq!(out.status.code(), Some(5));
    s.ok(&["run", "-d", "--name", "busy", IMAGE, "sleep", "3600"]);
    let r = s.run(&["rm", "busy"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("container is running");
    s.ok(&["rm", "-f", "busy"]);
    s.ok(&["rm", "--all"]);
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    s.finish();
}

#[test]
fn a_terminal_under_a_pty() {
    let s = sandbox();
    // A shell line run on a terminal of its own (`script`), with `servin`
    // meaning this sandbox's.
    let shell = |line: &str| {
        let plain = s.command(&[]);
        let mut cmd = on_a_terminal(line);
        cmd.env("servin", env!("CARGO_BIN_EXE_servin"));
        for (k, v) in plain.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        (out.status.code(), text)
    };
    let (_, text) = shell(&format!("$servin run --rm -t {IMAGE} tty"));
    assert!(text.contains("/dev/pts/"), "{text}");
    // The container's terminal takes this one's size (sent once it runs,
    // so the command waits for it, up to 30 s).
    let (_, text) = shell(&format!(
        "stty rows 33 cols 101; $servin run --rm -it {IMAGE} sh -c 'n=0; while [ \"$(stty size 2>/dev/null)\" != \"33 101\" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; stty size'"
    ));
    assert!(text.contains("33 101"), "{text}");
    s.ok(&["run", "-d", "--name", "sh1", IMAGE, "sleep", "3600"]);
    let (code, text) = shell("$servin exec -it sh1 sh -c 'tty; exit 9'");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(code, Some(9));
    // A resize of this terminal (SIGWINCH) reaches the container's: the
    // container says (through a bind mount) when it has seen the first
    // size, then waits for the second.
    let marks = tempfile::tempdir().unwrap();
    let (code, text) = shell(&format!(
        r#"stty rows 33 cols 101
$servin run --rm -it -v {marks}:/marks {IMAGE} sh -c '
  n=0; while [ "$(stty size 2>/dev/null)" != "33 101" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
  echo > /marks/first
  n=0; while [ "$(stty size 2>/dev/null)" != "40 120" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
  echo "size $(stty size)"' </dev/tty &
pid=$!
n=0
while [ ! -e {marks}/first ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
stty rows 40 cols 120
wait $pid
"#,
        marks = marks.path().display()
    ));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("size 40 120"), "{text}");
    // Raw mode is undone when the container exits, and when a signal ends
    // servin while the terminal is raw (the container goes on).
    let (code, text) = shell(&format!(
        r#"before=$(stty -g)
$servin run --rm -it {IMAGE} sh -c 'exit 3'
echo "code=$?"
[ "$(stty -g)" = "$before" ] && echo restored
$servin run -it --name raw {IMAGE} sleep 3600 </dev/tty &
pid=$!
n=0
while [ "$(stty -g)" = "$before" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
[ $n -lt 600 ] && echo raw
kill -TERM $pid
wait $pid
echo "code=$?"
[ "$(stty -g)" = "$before" ] && echo restored again
"#
    ));
    assert_eq!(code, Some(0), "{text}");
    // `script` may type an end-of-input byte into the terminal when its own
    // input ends, which the terminal echoes as `^@` or `^D`.
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.replace("^@", "")
                .replace("^D", "")
                .trim_matches(|c: char| c.is_control())
                .to_string()
        })
        .collect();
    assert_eq!(
        lines,
        ["code=3", "restored", "raw", "code=143", "restored again"],
        "{text}"
    );
    let info: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "raw"])).unwrap();
    assert_eq!(info[0]["State"]["Status"], "running");
    s.ok(&["rm", "-f", "sh1", "raw"]);
    s.finish();
}

#[test]
fn bad_input() {
    let s = sandbox();
    let r = s.run(&["run", "--rm", "-m", "lots", IMAGE, "true"]);
    assert_eq!(r.code, 2);
    r.assert_stderr_has("invalid --memory \"lots\"");
    let r = s.run(&["run", "--rm", "--cpus", "zero", IMAGE, "true"]);
    assert_eq!(r.code, 2);
    let r = s.run(&["run", "--rm", "-m", "1k", IMAGE, "true"]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("6MB");
    // As with Docker, `-v` makes a missing host folder; `--mount` refuses it.
    let made = s.root().join("made/by/run");
    let spec = format!("{}:/x", made.display());
    s.ok(&["run", "--rm", "-v", &spec, IMAGE, "true"]);
    assert!(made.is_dir(), "{}", made.display());
    let r = s.run(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        IMAGE,
        "true",
    ]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("bind source path does not exist: /no/such/dir");
    s.ok(&["create", "--name", "taken", IMAGE, "true"]);
    let r = s.run(&["create", "--name", "taken", IMAGE, "true"]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("already in use by container");
    let r = s.run(&["rmi", IMAGE]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("is using its referenced image");
    let r = s.run(&["logs", "nobody"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("no such container: nobody");
    let r = s.run(&["run", "--rm", "127.0.0.1:1/missing:1", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    r.assert_stderr_has("Unable to find image");
    assert_eq!(
        s.ok(&["ps", "-aq"]).lines().count(),
        1,
        "only the first create remains"
    );
    s.ok(&["rm", "taken"]);
    s.finish();
}

#[test]
fn flags_reach_the_container() {
    let s = sandbox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let env_file = s.dir.path().join("vars.env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/data,readonly",
        host.path().display()
    );
    let out = s
        .command(&[
            "run",
            "--rm",
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,target=/cache,tmpfs-size=1m",
            "-e",
            "FROM_SHELL",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/work",
            "-u",
            "1000:1000",
            "--hostname",
            "box",
            "--entrypoint",
            "sh",
            IMAGE,
            "-c",
            "cat /data/f; echo $FROM_SHELL $FROM_FILE; pwd; id -u; hostname; cat /proc/mounts; touch /data/g || echo read-only",
        ])
        .env("FROM_SHELL", "passed")
        .output()
        .unwrap();
    let r = Sandbox::output(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        ["from the host", "passed yes", "/work", "1000", "box"],
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("tmpfs /cache tmpfs") && l.contains("size=1024k")),
        "{}",
        r.stdout
    );
    assert_eq!(lines.last(), Some(&"read-only"), "{}", r.stdout);
    assert!(!host.path().join("g").exists());

    let r = s.run(&["run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /x"]);
    assert_ne!(r.code, 0, "a read-only root refuses writes");
    s.ok(&[
        "create",
        "--name",
        "limited",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "-l",
        "tier=test",
        IMAGE,
    ]);
    let info: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "limited"])).unwrap();
    assert_eq!(info[0]["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(info[0]["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(info[0]["HostConfig"]["Init"], true);
    assert_eq!(info[0]["Config"]["Labels"]["tier"], "test");
    s.ok(&["rm", "-v", "limited"]);
    s.finish();
}

#[test]
fn health_shows_in_ps_and_logs_take_times() {
    let s = sandbox();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "checked",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 3600",
    ]);
    eventually("healthy", || s.ok(&["ps"]).contains("(healthy)"));
    eventually("output", || s.ok(&["logs", "checked"]) == "one\n");
    let r = s.run(&["logs", "checked"]);
    assert_eq!(r.stderr, "two\n");
    let r = s.run(&["logs", "--since", "1h", "checked"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("one\n", "two\n"));
    let r = s.run(&["logs", "--until", "2000-01-01T00:00:00Z", "checked"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let stamped = s.ok(&["logs", "-t", "checked"]);
    let (time, line) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "one");
    assert!(time.ends_with('Z') && time.contains('T'), "{stamped}");
    let r = s.run(&["logs", "--since", "yesterday", "checked"]);
    assert_eq!(r.code, 2);
    s.ok(&["rm", "-f", "checked"]);
    s.finish();
}

#[test]
fn signals_go_to_the_container_and_exec_can_be_interrupted() {
    let s = sandbox();
    let mut run = s
        .command(&[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(&mut run, "ready");
    signal(&run, rustix::process::Signal::TERM);
    let out = wait_bounded(run, "run after SIGTERM");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got TERM\n");

    s.ok(&["run", "-d", "--name", "idle", IMAGE, "sleep", "3600"]);
    let mut exec = s
        .command(&["exec", "idle", "sh", "-c", "echo ready; sleep 3600"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(&mut exec, "ready");
    signal(&exec, rustix::process::Signal::INT);
    let out = wait_bounded(exec, "exec after SIGINT");
    assert!(!out.status.success());
    let r = s.run(&["run", "--rm", "-it", IMAGE, "true"]);
    assert_eq!(r.code, 2);
    r.assert_stderr_has("not a TTY");
    s.ok(&["rm", "-f", "idle"]);
    s.finish();
}
