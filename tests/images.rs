//! The image commands against a real engine (`servin-guest`, started by
//! servin itself) and a real `docker-registry`.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;

use servin_testkit::image::seed_image;
use servin_testkit::process::with_stdin;
use servin_testkit::registry::{RegistryGuard, write_auths};
use servin_testkit::terminal::on_a_terminal;
use support::sandbox::Sandbox;

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
    let reg = RegistryGuard::start();
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
    bad.assert_stderr_has("error: pull Not//A:Name");
    bad.assert_stderr_has("invalid reference");

    // Nothing listens on port 1.
    let gone = s.run(&["pull", "127.0.0.1:1/nobody/here:1"]);
    assert_eq!(gone.code, 1);
    gone.assert_stderr_has("127.0.0.1:1");
    gone.assert_stderr_has("unreachable");

    let missing = s.run(&["rmi", "no-such-image"]);
    assert_eq!(missing.code, 1);
    missing.assert_stderr_has("no-such-image");
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
    r.assert_stderr_has("/nonexistent/servin-guest");
}

#[test]
fn login_stores_credentials_privately_and_logout_forgets_them() {
    let s = Sandbox::new();
    let r = login(
        &s,
        &["-u", "alice", "--no-verify", "registry.test:5000"],
        "s3cret",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("not verified");

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

/// Runs `servin login ARGS --password-stdin` with `password` on stdin.
fn login(s: &Sandbox, args: &[&str], password: &str) -> support::Run {
    let mut all = vec!["login", "--password-stdin"];
    all.extend_from_slice(args);
    let input = format!("{password}\n");
    Sandbox::output(with_stdin(&mut s.command(&all), input.as_bytes()))
}

/// What `~/.servin/auth.json` holds (empty when it does not exist).
fn stored(s: &Sandbox) -> String {
    std::fs::read_to_string(s.home().join(".servin/auth.json")).unwrap_or_default()
}

#[test]
fn login_checks_credentials_with_the_registry() {
    let s = Sandbox::new();
    let registry = RegistryGuard::start();
    let r = login(&s, &["-u", "alice", &registry.addr()], "s3cret");
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("Login Succeeded");
    // An unreachable registry: an error, a way out, and nothing stored.
    let r = login(&s, &["-u", "alice", "127.0.0.1:1"], "s3cret");
    assert_eq!(r.code, 1);
    r.assert_stderr_has("log in to 127.0.0.1:1");
    r.assert_stderr_has("unreachable");
    r.assert_stderr_has("--no-verify");
    assert!(!stored(&s).contains("127.0.0.1:1"), "{}", stored(&s));
}

#[test]
fn token_registry_with_login_or_docker_credentials() {
    let s = Sandbox::new();
    let reg = RegistryGuard::start_with_token("bob", "t0ken");
    let seed = seed_image(s.dir.path(), "docker.io/library/seed:1");
    s.ok(&["image", "import", seed.to_str().unwrap()]);
    let remote = format!("{}/private/seed:1", reg.addr());
    s.ok(&["tag", "seed:1", &remote]);

    // No credentials: the push is refused.
    let r = s.run(&["push", &remote]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.assert_stderr_has("unauthorized: authentication required");

    // A wrong password is refused and not stored.
    let r = login(&s, &["-u", "bob", &reg.addr()], "wrong");
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.assert_stderr_has("unauthorized: incorrect username or password");
    r.assert_stderr_has(&reg.addr());
    assert!(!r.stderr.contains("--no-verify"), "{}", r.stderr);
    assert!(!stored(&s).contains(&reg.addr()), "{}", stored(&s));

    // `servin login`'s credentials: push, remove, pull back.
    let r = login(&s, &["-u", "bob", &reg.addr()], "t0ken");
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("Login Succeeded");
    assert!(stored(&s).contains(&reg.addr()), "{}", stored(&s));
    s.ok(&["push", &remote]);
    s.ok(&["rmi", &remote, "seed:1"]);
    s.ok(&["pull", &remote]);
    assert!(s.ok(&["images"]).contains("private/seed"));

    // `~/.docker/config.json`'s credentials, when servin has none.
    s.ok(&["logout", &reg.addr()]);
    s.ok(&["rmi", &remote]);
    let docker_config = |password: &str| {
        write_auths(
            &s.home().join(".docker/config.json"),
            &reg.addr(),
            "bob",
            password,
        );
    };
    docker_config("t0ken");
    s.ok(&["pull", &remote]);
    s.ok(&["rmi", &remote]);

    // Wrong credentials there: the pull fails naming the registry and
    // leaves no image behind.
    docker_config("wrong");
    let r = s.run(&["pull", &remote]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.assert_stderr_has("unauthorized: incorrect username or password");
    r.assert_stderr_has(&reg.addr());
    assert_eq!(s.ok(&["images", "--format", "json"]).trim(), "[]");
}

/// `text` without its terminal escape sequences (`ESC [ ... letter`).
fn without_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn pull_on_a_terminal_draws_bars_and_a_summary() {
    let s = Sandbox::new();
    let reg = RegistryGuard::start();
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
        support::sandbox::engine_binary().display(),
        s.home().display(),
        env!("CARGO_BIN_EXE_servin"),
    );
    let out = on_a_terminal(&line).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The layer's short ID, from the image's manifest.
    let layout = s.dir.path().join("layout");
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let short = &layer[7..19];
    // Drawn with terminal escapes: the tag's line, then the layer's line
    // with a bar of bytes while it downloads, left as `Pull complete`.
    assert!(text.contains("\u{1b}["), "{text}");
    let text = without_escapes(&text);
    assert!(text.contains("1: Pulling from team/tty"), "{text}");
    let bar = format!("{short}: Downloading");
    let downloading = text.find(&bar).unwrap_or_else(|| panic!("{bar}: {text}"));
    let after = &text[downloading..];
    assert!(after.contains(" [=") && after.contains("KiB/"), "{text}");
    assert!(text.contains(&format!("{short}: Pull complete")), "{text}");
    // Then the summary, below the bars (none drawn after it).
    let digest = text
        .find("Digest: sha256:")
        .unwrap_or_else(|| panic!("{text}"));
    let summary = &text[digest..];
    assert!(
        summary.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{text}"
    );
    assert!(!summary.contains(" [="), "{text}");
    assert!(!summary.contains(&format!("{short}:")), "{text}");
}

#[test]
fn docker_credential_helpers_and_a_login_into_the_docker_config() {
    let s = Sandbox::new();
    let reg = RegistryGuard::start_with_token("carol", "pa55");
    let seed = seed_image(s.dir.path(), "docker.io/library/seed:1");
    s.ok(&["image", "import", seed.to_str().unwrap()]);
    let remote = format!("{}/private/team-seed:1", reg.addr());
    s.ok(&["tag", "seed:1", &remote]);

    // A credential helper named by `credsStore`, as Docker Desktop sets it:
    // it is asked about the registry on stdin and answers the protocol's
    // JSON; the question it got is kept to check.
    let bin = s.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = s.dir.path().join("asked");
    let helper = bin.join("docker-credential-servintest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" > {}\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"carol\",\"Secret\":\"pa55\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_dir = s.home().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        r#"{"credsStore":"servintest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_helper = |args: &[&str]| {
        let mut cmd = s.command(args);
        cmd.env("PATH", &path);
        Sandbox::output(cmd.output().unwrap())
    };
    let r = with_helper(&["push", &remote]);
    assert_eq!(
        r.code,
        0,
        "{}\nasked: {:?}",
        r.stderr,
        std::fs::read_to_string(&asked)
    );
    assert_eq!(std::fs::read_to_string(&asked).unwrap().trim(), reg.addr());

    // A helper that is not installed is a clear error naming it.
    std::fs::write(
        docker_dir.join("config.json"),
        r#"{"credHelpers":{"REG":"servin-missing"}}"#.replace("REG", &reg.addr()),
    )
    .unwrap();
    let r = s.run(&["pull", &remote]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.assert_stderr_has("docker-credential-servin-missing");

    // `servin login --docker-config` writes an `auths` entry there, keeping
    // the rest of the file, and a pull uses it.
    std::fs::write(docker_dir.join("config.json"), r#"{"psFormat":"table"}"#).unwrap();
    let r = login(&s, &["--docker-config", "-u", "carol", &reg.addr()], "pa55");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written = std::fs::read_to_string(docker_dir.join("config.json")).unwrap();
    assert!(
        written.contains("psFormat") && written.contains(&reg.addr()),
        "{written}"
    );
    assert!(stored(&s).is_empty(), "servin's own file is left alone");
    s.ok(&["rmi", &remote]);
    s.ok(&["pull", &remote]);
}
