//! The image commands against a real engine (`servin-guest`, started by
//! servin itself) and a real `docker-registry`.

#![allow(clippy::unwrap_used)]

#[path = "support/registry.rs"]
mod registry;

use std::os::unix::fs::PermissionsExt;

use registry::{Registry, Sandbox, seed_image};

fn engine_pid(s: &Sandbox) -> u64 {
    let out = s.ok(&["info", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["servin"]["pid"].as_u64().unwrap()
}

#[test]
fn first_command_starts_the_engine_and_the_next_reuses_it() {
    let s = Sandbox::new();
    let before = s.ok(&["version"]);
    assert!(before.contains("engine not running"), "{before}");
    assert!(s.engine_pids().is_empty());

    let first = engine_pid(&s);
    let second = engine_pid(&s);
    assert_eq!(first, second);
    assert_eq!(s.engine_pids().len(), 1);
    assert!(s.root().join("engine.log").is_file());

    let text = s.ok(&["info"]);
    assert!(text.contains("Mode:          native"), "{text}");
    assert!(text.contains(&s.root().display().to_string()), "{text}");

    let after = s.ok(&["version"]);
    assert!(after.contains("engine 0.1.0 (native, unix://"), "{after}");
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(json["engine"]["mode"], "native");
}

#[test]
fn two_clis_racing_end_with_one_engine() {
    let s = Sandbox::new();
    let spawn = || {
        s.command(&["images"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    let b = spawn();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_eq!(s.engine_pids().len(), 1);
}

#[test]
fn images_go_through_tag_push_pull_export_import_and_prune() {
    let s = Sandbox::new();
    let reg = Registry::start();
    let seed = seed_image(s.dir.path(), "docker.io/library/seed:1");

    // Import an OCI layout tar.
    let loaded = s.ok(&["image", "import", seed.to_str().unwrap()]);
    assert!(loaded.contains("seed"), "{loaded}");

    // Listing, as a table and as JSON.
    let table = s.ok(&["images"]);
    let header = table.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("seed") && l.contains(" 1 ")),
        "{table}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&s.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["Id"].as_str().unwrap().to_string();

    // Inspect.
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", "seed:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Os"], "linux");

    // Tag, push under a new name, remove, pull it back.
    let remote = format!("{}/team/box:2", reg.addr());
    s.ok(&["tag", "seed:1", &remote]);
    let tagged = s.ok(&["images"]);
    assert!(
        tagged.contains(&format!("{}/team/box", reg.addr())),
        "{tagged}"
    );
    let push = s.run(&["push", &remote]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    let rmi = s.ok(&["rmi", &remote]);
    assert!(rmi.contains("Untagged:"), "{rmi}");
    let rmi = s.ok(&["rmi", "seed:1"]);
    assert!(rmi.contains("Deleted:"), "{rmi}");
    assert_eq!(s.ok(&["images", "--format", "json"]).trim(), "[]");

    let pull = s.run(&["pull", &remote]);
    assert_eq!(pull.code, 0, "{}", pull.stderr);
    // stderr is not a terminal here: plain progress lines.
    assert!(pull.stderr.lines().count() >= 2, "{}", pull.stderr);
    assert!(
        pull.stderr.contains("Status:") || pull.stderr.contains("Digest:"),
        "{}",
        pull.stderr
    );
    assert!(pull.stdout.is_empty());
    let quiet = s.run(&["pull", "--quiet", &remote]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stdout.trim(), remote);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    let list: serde_json::Value =
        serde_json::from_str(&s.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(list[0]["Id"], id.as_str());

    // Export, remove, import: the same image comes back.
    let out = s.dir.path().join("out/box.tar");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    s.ok(&["image", "export", &remote, "-o", out.to_str().unwrap()]);
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left");
    s.ok(&["rmi", &remote]);
    s.ok(&["image", "import", out.to_str().unwrap()]);
    let list: serde_json::Value =
        serde_json::from_str(&s.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(list[0]["Id"], id.as_str());

    // Prune: -a removes the unused image.
    let pruned = s.ok(&["image", "prune", "-a"]);
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(s.ok(&["images", "--format", "json"]).trim(), "[]");
}

#[test]
fn bad_names_and_unreachable_registries_fail_clearly() {
    let s = Sandbox::new();
    let bad = s.run(&["pull", "Not//A:Name"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("error: pull Not//A:Name"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("invalid reference"), "{}", bad.stderr);

    // Nothing listens on port 1.
    let gone = s.run(&["pull", "127.0.0.1:1/nobody/here:1"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("127.0.0.1:1"), "{}", gone.stderr);
    assert!(gone.stderr.contains("unreachable"), "{}", gone.stderr);

    let missing = s.run(&["rmi", "no-such-image"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no-such-image"),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_engine_that_cannot_start_is_reported_with_its_address() {
    let s = Sandbox::new();
    let out = s
        .command(&["images"])
        .env("SERVIN_ENGINE", "/nonexistent/servin-guest")
        .output()
        .unwrap();
    let r = Sandbox::output(out);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("/nonexistent/servin-guest"),
        "{}",
        r.stderr
    );
}

#[test]
fn login_stores_credentials_privately_and_logout_forgets_them() {
    let s = Sandbox::new();
    let mut child = s
        .command(&[
            "login",
            "-u",
            "alice",
            "--password-stdin",
            "--no-verify",
            "registry.test:5000",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"s3cret\n").unwrap();
    }
    let r = Sandbox::output(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("not verified"), "{}", r.stderr);

    let path = s.home().join(".servin/auth.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // base64("alice:s3cret")
    assert_eq!(v["auths"]["registry.test:5000"]["auth"], "YWxpY2U6czNjcmV0");

    s.ok(&["logout", "registry.test:5000"]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["auths"].as_object().unwrap().is_empty());
    assert!(
        s.engine_pids().is_empty(),
        "login --no-verify and logout need no engine"
    );
}

#[test]
fn login_checks_credentials_with_the_registry() {
    let s = Sandbox::new();
    let registry = Registry::start();
    let login = |host: &str| {
        let mut child = s
            .command(&["login", "-u", "alice", "--password-stdin", host])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
        }
        Sandbox::output(child.wait_with_output().unwrap())
    };
    let r = login(&registry.addr());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Login Succeeded"), "{}", r.stderr);
    // An unreachable registry: an error, and nothing stored for it.
    let r = login("127.0.0.1:1");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("log in to 127.0.0.1:1"), "{}", r.stderr);
    let stored = std::fs::read_to_string(s.home().join(".servin/auth.json")).unwrap();
    assert!(!stored.contains("127.0.0.1:1"), "{stored}");
}

#[test]
fn pull_on_a_terminal_draws_bars_and_a_summary() {
    let s = Sandbox::new();
    let reg = Registry::start();
    let seed = seed_image(s.dir.path(), "docker.io/library/seed:1");
    s.ok(&["image", "import", seed.to_str().unwrap()]);
    let remote = format!("{}/team/tty:1", reg.addr());
    s.ok(&["tag", "seed:1", &remote]);
    s.ok(&["push", &remote]);
    s.ok(&["rmi", &remote, "seed:1"]);
    // script(1) gives the pull a pseudo-terminal.
    let line = format!(
        "SERVIN_ROOT={} SERVIN_HOST=unix://{} SERVIN_ENGINE={} HOME={} {} pull {remote}",
        s.root().display(),
        s.dir.path().join("engine.sock").display(),
        registry::engine_binary().display(),
        s.home().display(),
        env!("CARGO_BIN_EXE_servin"),
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // A bar: the layer's short ID, `[`, `=` fill, byte counts; then the
    // summary lines.
    assert!(text.contains("[=") && text.contains("B/"), "{text}");
    assert!(
        text.contains("\u{1b}["),
        "drawn with terminal escapes: {text}"
    );
    assert!(text.contains("Digest: sha256:"), "{text}");
    assert!(
        text.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{text}"
    );
}
