//! `servin system reset` against real engines started by servin itself:
//! everything of its engine goes (containers, monitors, images, volumes,
//! networks with their bridges and firewall rules, mounts, the engine, its
//! root and socket); another engine beside it keeps all of its own.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use servin_testkit::cleanup::mounts_below;
use servin_testkit::wait::eventually;
use support::sandbox::Env;

const IMAGE: &str = "test/reset:1";

/// PIDs of the container monitors under `root`.
fn monitors(root: &Path) -> Vec<i32> {
    let root = root.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "monitor") && args.iter().any(|a| a.starts_with(&root)) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn system_reset_removes_everything_of_its_engine_and_nothing_else() {
    let s = Env::with_image(IMAGE);
    let other = Env::with_image(IMAGE);
    other.ok(&["network", "create", "other-net"]);
    other.ok(&[
        "run",
        "-d",
        "--name",
        "other-run",
        "--network",
        "other-net",
        IMAGE,
        "sleep",
        "300",
    ]);

    s.ok(&["network", "create", "user-net"]);
    s.ok(&["volume", "create", "named-vol"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "on-user-net",
        "--network",
        "user-net",
        "-v",
        "named-vol:/data",
        IMAGE,
        "sleep",
        "300",
    ]);
    s.ok(&["run", "-d", "--name", "on-bridge", IMAGE, "sleep", "300"]);
    s.ok(&["create", "--name", "never-started", IMAGE, "true"]);
    s.ok(&["run", "--name", "exited", IMAGE, "true"]);

    let root = s.root();
    let socket = s.dir.path().join("engine.sock");
    let nets = s.net_objects();
    assert_eq!(nets.bridges.len(), 2, "user-net and bridge: {nets:?}");
    assert!(nets.leftovers().len() >= 2, "{:?}", nets.leftovers());
    assert!(!monitors(&root).is_empty());
    assert!(!mounts_below(&root).is_empty());
    let other_nets = other.net_objects();
    let other_objects = other_nets.leftovers();
    assert!(!other_objects.is_empty());

    let out = s.ok(&["system", "reset", "--force"]);
    for name in [
        "on-user-net",
        "on-bridge",
        "never-started",
        "exited",
        IMAGE,
        "named-vol",
        "user-net",
        "bridge",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    for bridge in &nets.bridges {
        assert!(
            out.contains(bridge.as_str()),
            "{bridge} missing from:\n{out}"
        );
        let tag = bridge.trim_start_matches("sv-");
        assert!(
            out.contains(&format!("servin-{tag}")) || out.contains(&format!("SERVIN-{tag}-")),
            "firewall of {bridge} missing from:\n{out}"
        );
    }
    assert!(out.contains("Stopped the engine"), "{out}");

    assert!(!root.exists(), "{} is still there", root.display());
    assert!(!socket.exists());
    assert_eq!(nets.leftovers_settled(), Vec::<String>::new());
    assert_eq!(mounts_below(&root), Vec::<String>::new());
    assert_eq!(s.engine_pids(), Vec::<i32>::new());
    eventually("the monitors to be gone", || monitors(&root).is_empty());

    // The other engine keeps its container, network and host objects.
    assert_eq!(other.inspect("other-run")["State"]["Running"], true);
    assert!(other.ok(&["network", "ls"]).contains("other-net"));
    assert_eq!(other_nets.leftovers(), other_objects);
    assert!(!monitors(&other.root()).is_empty());
    other.ok(&["rm", "-f", "other-run"]);
    other.ok(&["network", "rm", "other-net"]);

    // Nothing left to reset: it says so and makes nothing.
    let again = s.ok(&["system", "reset", "-f", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["engine"], serde_json::Value::Null, "{again}");
    assert!(!root.exists());
    assert_eq!(s.engine_pids(), Vec::<i32>::new());
}

#[test]
fn system_reset_wants_force_without_a_terminal_and_starts_a_stopped_engine() {
    let s = Env::new();
    s.ok(&["volume", "create", "kept"]);
    let r = s.run(&["system", "reset"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("reset asks for confirmation and there is no terminal: pass -f");
    assert!(s.ok(&["volume", "ls"]).contains("kept"), "nothing removed");

    // With the engine stopped, the reset starts it to find its objects.
    for pid in s.engine_pids() {
        Command::new("kill").arg(pid.to_string()).status().unwrap();
    }
    eventually("the engine to stop", || s.engine_pids().is_empty());
    let out = s.ok(&["system", "reset", "-f", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["engine"]["volumes"], serde_json::json!(["kept"]), "{out}");
    assert!(!s.root().exists());
    assert_eq!(s.engine_pids(), Vec::<i32>::new());
}
