//! The real `docker` CLI against the engine: version, info, pull, images,
//! image inspect, tag, rmi, push, save, load, image prune, and the volume
//! and image events `docker events` reads.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use servin_testkit::image;
use servin_testkit::registry::RegistryGuard;
use support::EngineGuard;

fn snapshot(engine: &EngineGuard, img: &image::Built, layer: usize) -> std::path::PathBuf {
    let diffs: Vec<String> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chain = servin_guest::image::digest::chain_ids(&diffs);
    engine
        .root()
        .join("images/snapshots")
        .join(&chain[layer][7..])
}

#[test]
fn docker_version_and_info_talk_to_the_engine() {
    let engine = EngineGuard::start();
    let version = engine.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ]);
    assert_eq!(version.trim(), format!("{} 1.47", servin_guest::VERSION));
    let info = engine.docker_ok(&[
        "info",
        "--format",
        "{{.DockerRootDir}}|{{.Images}}|{{.Driver}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("{}|0|overlayfs", engine.root().display())
    );
    let r = engine.api("GET", "/servin/v1/info", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["mode"], "native");
    assert!(v["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["runtime"]["name"], "runc", "{v}");
    // A Docker in no swarm answers Swarm calls with 503.
    let r = engine.api("GET", "/v1.47/swarm", &[], b"");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("not part of a swarm"), "{}", r.text());
    let r = engine.api("POST", "/v1.47/session", &[], b"");
    assert_eq!(r.status, 501);
    assert!(r.text().contains("POST /session"), "{}", r.text());
}

#[test]
fn docker_pull_images_inspect_tag_rmi() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::layered_image(true);
    registry.push("test/layered", "v1", &img);
    let name = format!("{}/test/layered:v1", registry.addr());

    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {}", img.manifest_digest)),
        "{out}"
    );

    // Snapshots hold each layer in overlayfs form.
    let base = snapshot(&engine, &img, 0);
    assert!(base.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(base.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        std::fs::metadata(base.join("data/old")).unwrap().mode() & 0o7777,
        0o600
    );
    let whiteout = std::fs::symlink_metadata(snapshot(&engine, &img, 1).join("data/old")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    let top = snapshot(&engine, &img, 2);
    let opaque =
        rustix::fs::getxattr(top.join("cache"), "trusted.overlay.opaque", &mut [0u8; 8]).unwrap();
    assert_eq!(opaque, 1);
    assert!(!top.join("cache/.wh..wh..opq").exists());
    let owned = std::fs::metadata(top.join("etc/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o4750)
    );

    let images = engine.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let repo = format!("{}/test/layered", registry.addr());
    assert_eq!(
        images.trim(),
        format!("{repo}:v1 {}", &img.config_digest[7..19])
    );

    let inspect = engine.docker_ok(&["image", "inspect", &name]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], img.config_digest.as_str());
    assert_eq!(v[0]["Architecture"], "amd64");
    assert_eq!(v[0]["Config"]["Cmd"][0], "/bin/sh");
    let layers: Vec<String> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(v[0]["RootFS"]["Layers"], serde_json::json!(layers));
    // Docker's other fields: the overlay folders, no parent, metadata.
    assert_eq!(v[0]["GraphDriver"]["Name"], "overlay");
    let upper = v[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(Path::new(upper).is_dir(), "{upper}");
    assert_eq!(v[0]["Parent"], "");
    assert!(v[0]["Metadata"].is_object(), "{}", v[0]);
    // docker history: a row per layer (the config has no history), the
    // newest with the image's ID, each with its layer's unpacked size.
    let history = engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Size}}",
        &name,
    ]);
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), img.layers.len(), "{history}");
    assert!(
        rows[0].starts_with(&format!("{}|", img.config_digest)),
        "{history}"
    );
    assert!(
        rows[1..].iter().all(|r| r.starts_with("<missing>|")),
        "{history}"
    );
    assert!(
        !rows[rows.len() - 1].ends_with("|0B"),
        "the base layer has files: {history}"
    );

    engine.docker_ok(&["tag", &name, "local/copy:1"]);
    let images = engine.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("local/copy:1"), "{images}");
    // An ID with two names is not removed without -f.
    let err = engine.docker_err(&["rmi", &img.config_digest[7..19]]);
    assert!(err.contains("must be forced"), "{err}");
    let out = engine.docker_ok(&["rmi", "local/copy:1"]);
    assert!(out.contains("Untagged: local/copy:1"), "{out}");
    let out = engine.docker_ok(&["rmi", &name]);
    assert!(
        out.contains(&format!("Deleted: {}", img.config_digest)),
        "{out}"
    );
    assert_eq!(engine.image_count(), 0);
    // Nothing is left behind: blobs and snapshots went with the image.
    assert_eq!(
        std::fs::read_dir(engine.root().join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(engine.root().join("images/snapshots"))
            .unwrap()
            .count(),
        0
    );
    let err = engine.docker_err(&["image", "inspect", &name]);
    assert!(err.to_lowercase().contains("no such image"), "{err}");
}

#[test]
fn docker_push_then_pull_back() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::layered_image(false);
    registry.push("src/img", "v1", &img);
    let src = format!("{}/src/img:v1", registry.addr());
    let dst = format!("{}/pushed/img:v2", registry.addr());
    engine.docker_ok(&["pull", &src]);
    engine.docker_ok(&["tag", &src, &dst]);
    let out = engine.docker_ok(&["push", &dst]);
    assert!(
        out.contains(&format!("v2: digest: {}", img.manifest_digest)),
        "{out}"
    );
    // The registry holds the same manifest.
    let stream = std::net::TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
    let r = servin_testkit::http::request(
        stream,
        &registry.addr(),
        "GET",
        "/v2/pushed/img/manifests/v2",
        &[("Accept", image::OCI_MANIFEST)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, img.manifest);
    // Pushing again finds every layer there.
    let out = engine.docker_ok(&["push", &dst]);
    assert!(out.contains("Layer already exists"), "{out}");
    engine.docker_ok(&["rmi", "-f", &src, &dst]);
    assert_eq!(engine.image_count(), 0);
    let out = engine.docker_ok(&["pull", &dst]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    let err = engine.docker_err(&["push", "nothing/here:v1"]);
    assert!(
        err.contains("does not exist locally") || err.contains("No such image"),
        "{err}"
    );
}

#[test]
fn docker_save_and_load_round_trip() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let img = image::layered_image(true);
    registry.push("test/saved", "v1", &img);
    let name = format!("{}/test/saved:v1", registry.addr());
    engine.docker_ok(&["pull", &name]);
    let file = engine.dir.path().join("saved.tar");
    engine.docker_ok(&["save", "-o", file.to_str().unwrap(), &name]);
    engine.docker_ok(&["rmi", &name]);
    assert_eq!(engine.image_count(), 0);
    let out = engine.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let id = engine.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(id.trim(), img.config_digest);
    assert!(snapshot(&engine, &img, 2).join("cache/b").is_file());

    // A classic `docker save` tar built here.
    let (tar, config) = image::docker_save_tar(&[image::base_layer()], "classic/img:1");
    let path = engine.dir.path().join("classic.tar");
    std::fs::write(&path, tar).unwrap();
    let out = engine.docker_ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(out.contains("Loaded image: classic/img:1"), "{out}");
    let id = engine.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "classic/img:1"]);
    assert_eq!(id.trim(), config);

    // An OCI layout tar (what `servin image import` takes).
    let oci = image::one_file("hello", b"hi\n", "amd64");
    let path = engine.dir.path().join("oci.tar");
    std::fs::write(
        &path,
        image::oci_layout_tar(&oci, "docker.io/library/ocitest:latest"),
    )
    .unwrap();
    let out = engine.docker_ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(out.contains("Loaded image: ocitest:latest"), "{out}");
    let digests = engine.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "ocitest"]);
    assert_eq!(digests.trim(), oci.config_digest);

    // A broken archive is refused and leaves nothing.
    let before = engine.image_count();
    let path = engine.dir.path().join("junk.tar");
    std::fs::write(&path, b"not a tar at all").unwrap();
    engine.docker_err(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(engine.image_count(), before);
    assert_eq!(engine.tmp_entries(), 0);
}

#[test]
fn docker_image_prune_removes_dangling_then_all() {
    let registry = RegistryGuard::start();
    let engine = EngineGuard::start();
    let first = image::one_file("v", b"1", "amd64");
    let second = image::one_file("v", b"2", "amd64");
    let name = format!("{}/test/prune:v1", registry.addr());
    registry.push("test/prune", "v1", &first);
    engine.docker_ok(&["pull", &name]);
    registry.push("test/prune", "v1", &second);
    engine.docker_ok(&["pull", &name]);
    // The first image lost its tag: it is dangling.
    let dangling =
        engine.docker_ok(&["images", "--filter", "dangling=true", "--format", "{{.ID}}"]);
    assert_eq!(dangling.trim(), &first.config_digest[7..19]);
    let out = engine.docker_ok(&["image", "prune", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", first.config_digest)),
        "{out}"
    );
    assert_eq!(engine.image_count(), 1);
    let out = engine.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", second.config_digest)),
        "{out}"
    );
    assert_eq!(engine.image_count(), 0);
}

#[test]
fn docker_events_show_volume_and_image_events() {
    let engine = EngineGuard::with_image(support::IMAGE, &[]);
    let id = engine
        .docker_ok(&["image", "inspect", "--format", "{{.Id}}", support::IMAGE])
        .trim()
        .to_string();
    engine.docker_ok(&["volume", "create", "evvol"]);
    engine.docker_ok(&["volume", "rm", "evvol"]);
    engine.docker_ok(&["tag", support::IMAGE, "test/other:2"]);
    engine.docker_ok(&["rmi", "test/other:2"]);
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = engine.docker_ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &until.to_string(),
        "--filter",
        "type=volume",
        "--filter",
        "type=image",
        "--filter",
        "event=create",
        "--filter",
        "event=destroy",
        "--filter",
        "event=tag",
        "--filter",
        "event=untag",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "volume create evvol <no value>".to_string(),
            "volume destroy evvol <no value>".to_string(),
            format!("image tag {id} test/other:2"),
            format!("image untag {id} {id}"),
        ],
        "{out}"
    );
}
