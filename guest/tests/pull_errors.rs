//! Bad input: unknown images, wrong credentials, a registry that is down,
//! corrupt and truncated blobs, malformed and oversized manifests, and layer
//! entries that try to escape their snapshot. Each fails clearly, leaves no
//! partial image and leaves the store usable.
#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::files::find_named;
use servin_testkit::image::{self, Entry, Layer};
use servin_testkit::registry::{FakeRegistry, RegistryGuard, write_auths};
use support::EngineGuard;

fn assert_clean(engine: &EngineGuard) {
    assert_eq!(engine.image_count(), 0, "no partial image is visible");
    assert_eq!(engine.tmp_entries(), 0, "no temporary files are left");
}

#[test]
fn unknown_image_or_tag_is_a_clear_error() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::build(&[image::base_layer()], "amd64", false);
    registry.push("test/known", "v1", &img);
    let err = engine.docker_err(&["pull", &format!("{}/test/unknown:v1", registry.addr())]);
    assert!(
        err.contains("unknown") || err.contains("not found"),
        "{err}"
    );
    let err = engine.docker_err(&["pull", &format!("{}/test/known:nope", registry.addr())]);
    assert!(err.contains("manifest unknown"), "{err}");
    assert_clean(&engine);
    let r = engine.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/test/known&tag=nope",
            registry.addr()
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    engine.docker_ok(&["pull", &format!("{}/test/known:v1", registry.addr())]);
}

#[test]
fn registry_down_is_a_clear_error() {
    let mut registry = RegistryGuard::start();
    let addr = registry.addr();
    registry.stop();
    let engine = EngineGuard::start();
    let err = engine.docker_err(&["pull", &format!("{addr}/test/any:v1")]);
    assert!(err.contains("registry unreachable"), "{err}");
    assert_clean(&engine);
}

#[test]
fn wrong_credentials_fail_and_right_ones_pull() {
    let registry = RegistryGuard::start_with_auth("alice", "s3cret");
    let engine = EngineGuard::start();
    let img = image::layered_image(true);
    registry.push("private/img", "v1", &img);
    let name = format!("{}/private/img:v1", registry.addr());

    let err = engine.docker_err(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert_clean(&engine);

    // The docker CLI sends what its config holds as X-Registry-Auth.
    let cfg = engine.dir.path().join("docker-config/config.json");
    let write_cfg = |user: &str, pass: &str| write_auths(&cfg, &registry.addr(), user, pass);
    write_cfg("alice", "wrong");
    let err = engine.docker_err(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert_clean(&engine);
    write_cfg("alice", "s3cret");
    engine.docker_ok(&["pull", &name]);
    let pushed = format!("{}/private/copy:v1", registry.addr());
    engine.docker_ok(&["tag", &name, &pushed]);
    engine.docker_ok(&["push", &pushed]);
    engine.docker_ok(&["rmi", &name, &pushed]);

    // Without a header the engine reads ~/.servin/auth.json.
    std::fs::remove_file(&cfg).unwrap();
    let file = engine.home().join(".servin/auth.json");
    write_auths(&file, &registry.addr(), "alice", "s3cret");
    let r = engine.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/private/img&tag=v1",
            registry.addr()
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Downloaded newer image"), "{}", r.text());
}

#[test]
fn corrupt_and_truncated_blobs_are_refused_and_the_store_stays_usable() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::layered_image(false);
    registry.push("test/corrupt", "v1", &img);
    let name = format!("{}/test/corrupt:v1", registry.addr());
    let layer = &img.layers[0];
    let data_path = registry.blob_data(&layer.digest);

    // Same length, different bytes: the digest does not match.
    let mut bad = layer.data.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&data_path, &bad).unwrap();
    let err = engine.docker_err(&["pull", &name]);
    assert!(err.contains(&layer.digest), "{err}");
    assert!(err.contains("digest"), "{err}");
    assert_clean(&engine);

    // Truncated.
    std::fs::write(&data_path, &layer.data[..layer.data.len() / 2]).unwrap();
    let err = engine.docker_err(&["pull", &name]);
    assert!(err.contains(&layer.digest), "{err}");
    assert_clean(&engine);

    // Repaired, the same store pulls it.
    std::fs::write(&data_path, &layer.data).unwrap();
    engine.docker_ok(&["pull", &name]);
    assert_eq!(engine.image_count(), 1);
}

#[test]
fn malformed_and_oversized_manifests_are_refused() {
    let huge = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{{"x":"{}"}}}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let fake = FakeRegistry::start(
        "bad/img",
        vec![
            ("malformed".to_string(), br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"oops","layers":7}"#.to_vec()),
            ("notjson".to_string(), b"<html>hello</html>".to_vec()),
            ("huge".to_string(), huge.into_bytes()),
        ],
    );
    let engine = EngineGuard::start();
    let err = engine.docker_err(&["pull", &format!("{}/bad/img:malformed", fake.addr())]);
    assert!(err.contains("malformed manifest"), "{err}");
    let err = engine.docker_err(&["pull", &format!("{}/bad/img:notjson", fake.addr())]);
    assert!(err.to_lowercase().contains("manifest"), "{err}");
    let err = engine.docker_err(&["pull", &format!("{}/bad/img:huge", fake.addr())]);
    assert!(err.contains("byte limit"), "{err}");
    assert_clean(&engine);
}

#[test]
fn escaping_layer_entries_are_refused_without_writing_outside() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let outside = tempfile::Builder::new()
        .prefix("servin-outside-")
        .tempdir()
        .unwrap();
    let outside_path: &'static str = Box::leak(
        outside
            .path()
            .to_str()
            .unwrap()
            .to_string()
            .into_boxed_str(),
    );
    let abs_target: &'static str = Box::leak(format!("{outside_path}/abs-escape").into_boxed_str());
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "dotdot",
            vec![Entry::RawFile("../../../dotdot-escape", b"x".to_vec())],
            "../../../dotdot-escape",
        ),
        (
            "symlink",
            vec![
                Entry::RawSymlink("link", outside_path),
                Entry::RawFile("link/through-symlink", b"x".to_vec()),
            ],
            "link/through-symlink",
        ),
        (
            "hardlink",
            vec![
                Entry::File("ok", b"x".to_vec(), 0o644),
                Entry::RawHardlink("hl", "../../../../../../etc/passwd"),
            ],
            "hl",
        ),
        (
            "hardlink-via-symlink",
            vec![
                Entry::RawSymlink("etc-link", "/etc"),
                Entry::RawHardlink("hl2", "etc-link/passwd"),
            ],
            "hl2",
        ),
    ];
    for (tag, entries, entry_name) in cases {
        let img = image::build(&[image::base_layer(), Layer::gzip(entries)], "amd64", false);
        registry.push("test/escape", tag, &img);
        let err = engine.docker_err(&["pull", &format!("{}/test/escape:{tag}", registry.addr())]);
        assert!(err.contains(&img.layers[1].digest), "{tag}: {err}");
        assert!(err.contains(entry_name), "{tag}: {err}");
        assert!(
            err.contains("refus") || err.contains("symlink"),
            "{tag}: {err}"
        );
        assert_clean(&engine);
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert!(find_named(engine.dir.path(), "dotdot-escape").is_empty());
    // Names that stay inside the root once cleaned are extracted where
    // Docker extracts them: a leading `/` is the image's root, `a/../b` is
    // `b`; nothing lands outside.
    let img = image::build(
        &[
            image::base_layer(),
            Layer::gzip(vec![
                Entry::RawFile(abs_target, b"x".to_vec()),
                Entry::RawFile("./inside/../cleaned", b"y".to_vec()),
            ]),
        ],
        "amd64",
        false,
    );
    registry.push("test/escape", "cleaned", &img);
    engine.docker_ok(&["pull", &format!("{}/test/escape:cleaned", registry.addr())]);
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert_eq!(find_named(engine.dir.path(), "abs-escape").len(), 1);
    assert_eq!(find_named(engine.dir.path(), "cleaned").len(), 1);
    assert!(find_named(std::path::Path::new("/tmp"), "dotdot-escape").is_empty());
    // The store still pulls a good image afterwards.
    let good = image::layered_image(false);
    registry.push("test/escape", "good", &good);
    engine.docker_ok(&["pull", &format!("{}/test/escape:good", registry.addr())]);
}

#[test]
fn bearer_token_auth_with_servin_and_docker_credentials() {
    let registry = RegistryGuard::start_with_token("bob", "t0ken");
    let engine = EngineGuard::start();
    let img = image::layered_image(false);
    registry.push("private/tok", "v1", &img);
    let name = format!("{}/private/tok:v1", registry.addr());

    // Anonymous: the token server refuses, the pull fails cleanly.
    let err = engine.docker_err(&["pull", &name]);
    assert!(
        err.contains("unauthorized") || err.contains("denied"),
        "{err}"
    );
    assert_clean(&engine);

    let cfg = engine.dir.path().join("docker-config/config.json");
    let write_cfg = |user: &str, pass: &str| write_auths(&cfg, &registry.addr(), user, pass);
    write_cfg("bob", "wrong");
    let err = engine.docker_err(&["pull", &name]);
    assert!(
        err.contains("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert!(
        err.contains(&registry.addr()),
        "the error names the registry: {err}"
    );
    assert_clean(&engine);

    // The docker CLI's credentials (~/.docker/config.json, sent as
    // X-Registry-Auth): pull, then push a copy.
    write_cfg("bob", "t0ken");
    engine.docker_ok(&["pull", &name]);
    let copy = format!("{}/private/tok-copy:v1", registry.addr());
    engine.docker_ok(&["tag", &name, &copy]);
    engine.docker_ok(&["push", &copy]);
    // Wrong credentials refuse a push too, naming the registry.
    write_cfg("bob", "wrong");
    let err = engine.docker_err(&["push", &copy]);
    assert!(
        err.contains("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert!(err.contains(&registry.addr()), "{err}");
    engine.docker_ok(&["rmi", &name, &copy]);

    // `servin login`'s file, read by the engine when no header comes.
    std::fs::remove_file(&cfg).unwrap();
    write_auths(
        &engine.home().join(".servin/auth.json"),
        &registry.addr(),
        "bob",
        "t0ken",
    );
    let r = engine.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/private/tok-copy&tag=v1",
            registry.addr()
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("errorDetail"), "{}", r.text());
    assert_eq!(engine.image_count(), 1);
}

#[test]
fn docker_login_checks_credentials_with_basic_and_token_registries() {
    let engine = EngineGuard::start();
    let basic = RegistryGuard::start_with_auth("alice", "s3cret");
    // Its token server grants nothing outside `private/`, as Docker Hub's
    // does: good credentials are still good.
    let token = RegistryGuard::start_with_token("bob", "t0ken");
    for (registry, user, good) in [(&basic, "alice", "s3cret"), (&token, "bob", "t0ken")] {
        let out = engine.docker_ok(&["login", &registry.addr(), "-u", user, "-p", good]);
        assert!(out.contains("Login Succeeded"), "{out}");
        let err = engine.docker_err(&["login", &registry.addr(), "-u", user, "-p", "nope"]);
        assert!(
            err.contains("unauthorized: incorrect username or password"),
            "{err}"
        );
        assert!(err.contains(&registry.addr()), "{err}");
    }
    let r = engine.api(
        "POST",
        "/auth",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("username"), "{}", r.text());

    // The call itself: 200 and Docker's status, 401 for wrong credentials,
    // a 5xx naming an unreachable registry.
    let login = |server: &str, password: &str| {
        let body = serde_json::json!({
            "username": "bob", "password": password, "serveraddress": server,
        });
        engine.api(
            "POST",
            "/auth",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let r = login(&format!("http://{}/v2/", token.addr()), "t0ken");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Status"], "Login Succeeded");
    let r = login(&token.addr(), "nope");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("bad credentials"), "{}", r.text());
    let r = login("127.0.0.1:1", "t0ken");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("log in to 127.0.0.1:1"), "{}", r.text());
    assert!(r.text().contains("unreachable"), "{}", r.text());
}
