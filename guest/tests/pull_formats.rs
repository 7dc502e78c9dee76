//! Multi-platform indexes, zstd layers, hardlinks and device nodes, and two
//! pulls of the same image at once.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use servin_testkit::files::noise;
use servin_testkit::gate::Gate;
use servin_testkit::image::{self, Comp, Entry, Layer};
use servin_testkit::registry::RegistryGuard;
use support::EngineGuard;

#[test]
fn index_resolves_to_the_host_or_asked_platform_with_zstd_hardlinks_and_devices() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let amd64 = image::build(
        &[
            image::base_layer(),
            Layer {
                entries: vec![
                    Entry::Dir("dev", 0o755),
                    Entry::CharDev("dev/null", 1, 3),
                    Entry::File("bin/tool", b"tool".to_vec(), 0o755),
                    Entry::Hardlink("bin/tool-link", "bin/tool"),
                ],
                comp: Comp::Zstd,
            },
        ],
        "amd64",
        false,
    );
    let arm64 = image::one_file("arch", b"arm64", "arm64");
    for img in [&amd64, &arm64] {
        for (d, data) in img.blobs() {
            registry.put_blob("test/multi", &d, &data);
        }
        registry.put_manifest(
            "test/multi",
            &img.manifest_digest,
            &img.manifest,
            &img.manifest_media_type,
        );
    }
    let (index, index_digest) = image::index(&[(&amd64, "amd64"), (&arm64, "arm64")]);
    registry.put_manifest("test/multi", "v1", &index, image::OCI_INDEX);
    let name = format!("{}/test/multi:v1", registry.addr());

    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let arch = engine.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Architecture}}",
        &name,
    ]);
    assert_eq!(arch.trim(), format!("{} amd64", amd64.config_digest));
    let diffs: Vec<String> = amd64.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chain = servin_guest::image::digest::chain_ids(&diffs);
    let snap = engine.root().join("images/snapshots").join(&chain[1][7..]);
    let dev = std::fs::symlink_metadata(snap.join("dev/null")).unwrap();
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), rustix::fs::makedev(1, 3));
    let a = std::fs::metadata(snap.join("bin/tool")).unwrap();
    let b = std::fs::metadata(snap.join("bin/tool-link")).unwrap();
    assert_eq!(a.ino(), b.ino());

    engine.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    let arch = engine.docker_ok(&["image", "inspect", "--format", "{{.Architecture}}", &name]);
    assert_eq!(arch.trim(), "arm64");
    let err = engine.docker_err(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed_and_share_layers() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::build(
        &[
            Layer {
                entries: vec![Entry::File("a", noise(4 << 20, 1), 0o644)],
                comp: Comp::None,
            },
            Layer {
                entries: vec![Entry::File("b", noise(4 << 20, 2), 0o644)],
                comp: Comp::None,
            },
        ],
        "amd64",
        false,
    );
    registry.push("test/shared", "v1", &img);
    let name = format!("{}/test/shared:v1", registry.addr());
    let mut first = engine
        .docker_cmd(&["pull", &name])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut second = engine
        .docker_cmd(&["pull", &name])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    assert_eq!(engine.image_count(), 1);
    // Each layer is stored once.
    let blobs = std::fs::read_dir(engine.root().join("images/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 4, "config, manifest and two layers");
    // ... and fetched from the registry once.
    for layer in &img.layers {
        assert_eq!(registry.blob_gets(&layer.digest), 1, "{}", registry.log());
    }
}

/// Waits (up to a minute) for `cond`, failing with `what` and the engine's
/// log.
fn wait_for(engine: &EngineGuard, what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}\n{}",
            engine.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn concurrent_pulls_of_two_images_fetch_their_shared_layer_once() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let shared = || Layer {
        entries: vec![Entry::File("big", noise(4 << 20, 7), 0o644)],
        comp: Comp::None,
    };
    let own = |name: &'static str| Layer::file(name, name.as_bytes());
    let one = image::build(&[shared(), own("one")], "amd64", false);
    let two = image::build(&[shared(), own("two")], "amd64", false);
    let big = one.layers[0].digest.clone();
    assert_eq!(big, two.layers[0].digest);
    registry.push("test/one", "v1", &one);
    registry.push("test/two", "v1", &two);
    // The gate holds every GET of the shared layer until it is opened, so
    // the two pulls overlap for certain.
    let gate = Gate::start(registry.port, &format!("/blobs/{big} "));
    let pull = |repo: &str| {
        let r = engine.api(
            "POST",
            &format!("/images/create?fromImage={}/{repo}&tag=v1", gate.addr()),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains("errorDetail"), "{}", r.text());
        r.text()
    };
    let own_two = engine
        .root()
        .join("images/blobs/sha256")
        .join(&two.layers[1].digest[7..]);
    let second = std::thread::scope(|scope| {
        let first = scope.spawn(|| pull("test/one"));
        wait_for(&engine, "the first pull asks for the shared layer", || {
            gate.seen() == 1
        });
        let second = scope.spawn(|| pull("test/two"));
        // The second pull fetches its own layer while the shared one is held:
        // by then it has either asked for the shared layer too, or is waiting
        // for the first pull's download of it.
        wait_for(&engine, "the second pull stores its own layer", || {
            own_two.is_file()
        });
        gate.open();
        first.join().unwrap();
        second.join().unwrap()
    });
    assert_eq!(engine.image_count(), 2);
    assert_eq!(gate.seen(), 1, "the shared layer was asked for twice");
    assert_eq!(
        registry.blob_gets(&big),
        1,
        "the shared layer was downloaded more than once\n{}",
        registry.log()
    );
    // The second pull told its client it waited for the shared layer.
    let short = &big[7..19];
    let waited = second
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|v| v["id"] == short && v["status"] == "Waiting");
    assert!(waited, "{second}");
}

#[test]
fn killed_mid_pull_resumes_without_refetching_finished_blobs() {
    let registry = RegistryGuard::start();
    let mut engine = EngineGuard::start();
    let mut layers = vec![Layer {
        entries: vec![Entry::File("small", b"small".to_vec(), 0o644)],
        comp: Comp::None,
    }];
    for i in 0..4 {
        layers.push(Layer {
            entries: vec![Entry::File("big", noise(24 << 20, 10 + i), 0o644)],
            comp: Comp::None,
        });
    }
    let img = image::build(&layers, "amd64", false);
    registry.push("test/resume", "v1", &img);
    let name = format!("{}/test/resume:v1", registry.addr());
    let mut pull = engine
        .docker_cmd(&["pull", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let blob_dir = engine.root().join("images/blobs/sha256");
    let blob = |d: &str| blob_dir.join(&d[7..]);
    let small = blob(&img.layers[0].digest);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !small.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let finished: Vec<(String, u64)> = img
        .layers
        .iter()
        .filter_map(|l| {
            std::fs::metadata(blob(&l.digest))
                .ok()
                .map(|m| (l.digest.clone(), m.ino()))
        })
        .collect();
    engine.kill();
    let _ = pull.wait();
    assert!(!finished.is_empty(), "a layer finished before the kill");
    engine.spawn();
    assert_eq!(engine.tmp_entries(), 0, "partial downloads were cleared");
    engine.docker_ok(&["pull", &name]);
    for (d, ino) in finished {
        assert_eq!(
            std::fs::metadata(blob(&d)).unwrap().ino(),
            ino,
            "blob {d} was fetched again"
        );
    }
    assert_eq!(engine.image_count(), 1);
}
