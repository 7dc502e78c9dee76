//! Named and anonymous volumes for real: the docker CLI against the engine's
//! socket, runc, overlayfs, bind mounts of volume folders.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::MetadataExt;

use servin_testkit::cleanup::OwnsRoot;
use servin_testkit::image::{self, Entry, Layer};
use servin_testkit::wait::eventually;
use support::{EngineGuard, IMAGE};

const SEEDED: &str = "test/seeded:1";

fn engine() -> EngineGuard {
    EngineGuard::with_image(IMAGE, &[])
}

fn volume_names(e: &EngineGuard, args: &[&str]) -> Vec<String> {
    let mut all = vec!["volume", "ls", "--format", "{{.Name}}"];
    all.extend_from_slice(args);
    let mut names: Vec<String> = e
        .docker_ok(&all)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    names.sort();
    names
}

#[test]
fn docker_volume_create_ls_inspect_rm() {
    let e = engine();
    assert_eq!(
        e.docker_ok(&["volume", "create", "--label", "app=web", "data1"])
            .trim(),
        "data1"
    );
    // Creating it again is no error, as with Docker.
    e.docker_ok(&["volume", "create", "data1"]);
    e.docker_ok(&["volume", "create", "other"]);
    assert_eq!(volume_names(&e, &[]), ["data1", "other"]);
    assert_eq!(volume_names(&e, &["--filter", "label=app=web"]), ["data1"]);
    assert_eq!(volume_names(&e, &["--filter", "name=oth"]), ["other"]);
    assert_eq!(
        volume_names(&e, &["--filter", "dangling=true"]),
        ["data1", "other"]
    );
    assert!(volume_names(&e, &["--filter", "dangling=false"]).is_empty());

    let out = e.docker_ok(&["volume", "inspect", "data1"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mountpoint = e.root().join("volumes/data1/_data");
    assert_eq!(v[0]["Name"], "data1");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["app"], "web");
    assert_eq!(v[0]["Mountpoint"], mountpoint.display().to_string());
    assert!(mountpoint.is_dir());
    assert!(v[0]["CreatedAt"].as_str().unwrap().starts_with("20"));

    // Bad input: an invalid name, unknown volumes.
    let err = e.docker_err(&["volume", "create", "--", "-bad"]);
    assert!(err.contains("invalid volume name"), "{err}");
    let err = e.docker_err(&["volume", "create", "--driver", "nfs", "remote"]);
    assert!(err.contains("local driver only"), "{err}");
    let err = e.docker_err(&["volume", "inspect", "ghost"]);
    assert!(err.contains("no such volume: ghost"), "{err}");
    let err = e.docker_err(&["volume", "rm", "ghost"]);
    assert!(err.contains("no such volume: ghost"), "{err}");
    e.docker_ok(&["volume", "rm", "-f", "ghost"]);
    let r = e.api("GET", "/v1.47/volumes/ghost", &[], b"");
    assert_eq!(r.status, 404);

    assert_eq!(
        e.docker_ok(&["volume", "rm", "data1", "other"])
            .lines()
            .collect::<Vec<_>>(),
        ["data1", "other"]
    );
    assert!(volume_names(&e, &[]).is_empty());
    assert!(!e.root().join("volumes/data1").exists());
    e.finish_once_unmounted();
}

#[test]
fn volume_data_survives_recreation_and_a_used_volume_stays() {
    let e = engine();
    e.docker_ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "keep:/data",
        IMAGE,
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    // `-v NAME:/path` made the volume.
    assert_eq!(volume_names(&e, &[]), ["keep"]);
    assert_eq!(
        std::fs::read_to_string(e.root().join("volumes/keep/_data/f")).unwrap(),
        "hello\n"
    );
    let v = e.inspect_container("writer");
    let m = &v["Mounts"][0];
    assert_eq!(m["Type"], "volume", "{v}");
    assert_eq!(m["Name"], "keep");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    assert_eq!(
        m["Source"],
        e.root().join("volumes/keep/_data").display().to_string()
    );
    assert_eq!(volume_names(&e, &["--filter", "dangling=false"]), ["keep"]);

    // A stopped container still holds its volume.
    let err = e.docker_err(&["volume", "rm", "keep"]);
    assert!(err.contains("in use") && err.contains("writer"), "{err}");
    let err = e.docker_err(&["volume", "rm", "-f", "keep"]);
    assert!(err.contains("in use"), "{err}");
    let out = e.docker_ok(&["volume", "prune", "-af"]);
    assert!(!out.contains("keep"), "{out}");

    // Removed and made again, the data is there.
    e.docker_ok(&["rm", "-v", "writer"]);
    assert_eq!(volume_names(&e, &[]), ["keep"], "rm -v keeps named volumes");
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--name",
        "reader",
        "-v",
        "keep:/data",
        IMAGE,
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "hello\n");

    // Read-only, in both forms.
    let err = e.docker_err(&[
        "run",
        "--rm",
        "-v",
        "keep:/data:ro",
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=keep,target=/m,readonly",
        IMAGE,
        "sh",
        "-c",
        "cat /m/f && echo x > /m/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!e.root().join("volumes/keep/_data/g").exists());

    eventually("auto-removal", || {
        e.docker_ok(&["ps", "-aq"]).trim().is_empty()
    });
    e.docker_ok(&["volume", "rm", "keep"]);
    assert!(volume_names(&e, &[]).is_empty());
    e.finish_once_unmounted();
}

fn load_seeded(e: &EngineGuard) {
    let seed = Layer::gzip(vec![
        Entry::Dir("srv", 0o755),
        Entry::Dir("srv/seed", 0o750),
        Entry::FileOwned(
            "srv/seed/hello",
            b"from the image\n".to_vec(),
            0o640,
            1000,
            50,
        ),
        Entry::Symlink("srv/seed/link", "hello"),
        Entry::Dir("srv/seed/sub", 0o700),
        Entry::File("srv/seed/sub/deep", b"deep\n".to_vec(), 0o600),
    ]);
    let (tar, _) = image::docker_save_tar(&[image::container_layer(), seed], SEEDED);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seeded.tar");
    std::fs::write(&file, tar).unwrap();
    e.docker_ok(&["load", "-i", file.to_str().unwrap()]);
}

/// Loads an image whose config declares `Volumes` (`/cache` holding a
/// file, and `/empty`), as a `docker save` tar.
fn load_with_volumes(e: &EngineGuard, tag: &str) {
    let cache = Layer {
        entries: vec![
            Entry::Dir("cache", 0o755),
            Entry::File("cache/seed", b"seed\n".to_vec(), 0o644),
        ],
        comp: image::Comp::None,
    };
    let base = Layer {
        entries: image::container_layer().entries,
        comp: image::Comp::None,
    };
    let built = image::build(&[base, cache], "amd64", true);
    let mut config: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
    config["config"]["Volumes"] = serde_json::json!({"/cache": {}, "/empty": {}});
    let config = serde_json::to_vec(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("volumes.tar");
    std::fs::write(
        &file,
        image::docker_save_archive(&config, &built.layers, tag),
    )
    .unwrap();
    e.docker_ok(&["load", "-i", file.to_str().unwrap()]);
}

#[test]
fn the_image_volumes_are_anonymous_volumes() {
    let e = engine();
    load_with_volumes(&e, "test/vols:1");
    e.docker_ok(&[
        "run",
        "--name",
        "imgvol",
        "test/vols:1",
        "sh",
        "-c",
        "cat /cache/seed && touch /empty/x",
    ]);
    let v = e.inspect_container("imgvol");
    let mut dests: Vec<&str> = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    dests.sort_unstable();
    assert_eq!(dests, ["/cache", "/empty"], "{v}");
    let names = volume_names(&e, &[]);
    assert_eq!(names.len(), 2);
    let cache = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/cache")
        .unwrap();
    let source = std::path::PathBuf::from(cache["Source"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(source.join("seed")).unwrap(),
        "seed\n",
        "copied from the image"
    );
    e.docker_ok(&["rm", "-v", "imgvol"]);
    assert!(volume_names(&e, &[]).is_empty());
    // A named volume at the same place replaces the image's.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "mine:/cache",
        "test/vols:1",
        "cat",
        "/cache/seed",
    ]);
    assert_eq!(out, "seed\n");
    eventually("the anonymous /empty volume to go", || {
        volume_names(&e, &[]) == ["mine"]
    });
    e.docker_ok(&["volume", "rm", "mine"]);
    e.finish_once_unmounted();
}

#[test]
fn an_empty_volume_gets_the_image_content_once() {
    let e = engine();
    load_seeded(&e);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/srv/seed",
        SEEDED,
        "sh",
        "-c",
        "cat /srv/seed/link /srv/seed/sub/deep && echo changed > /srv/seed/hello",
    ]);
    assert_eq!(out, "from the image\ndeep\n");
    let data = e.root().join("volumes/seeded/_data");
    let top = std::fs::metadata(&data).unwrap();
    assert_eq!(top.mode() & 0o7777, 0o750, "the folder's mode came along");
    let hello = std::fs::metadata(data.join("hello")).unwrap();
    assert_eq!(
        (hello.uid(), hello.gid(), hello.mode() & 0o7777),
        (1000, 50, 0o640)
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap().to_str(),
        Some("hello")
    );
    assert_eq!(
        std::fs::metadata(data.join("sub")).unwrap().mode() & 0o7777,
        0o700
    );
    // A volume that is not empty is left as it is.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/srv/seed",
        SEEDED,
        "cat",
        "/srv/seed/hello",
    ]);
    assert_eq!(out, "changed\n");
    // nocopy, in both forms: the volume stays empty.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=bare,target=/srv/seed,volume-nocopy",
        "-v",
        "bare2:/srv/seed/sub:nocopy",
        SEEDED,
        "ls",
        "-A",
        "/srv/seed/sub",
    ]);
    assert_eq!(out, "");
    let entries = |v: &str| -> Vec<String> {
        std::fs::read_dir(e.root().join("volumes").join(v).join("_data"))
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(entries("bare"), ["sub"], "only the nested mount point");
    assert!(entries("bare2").is_empty());
    eventually("auto-removal", || {
        e.docker_ok(&["ps", "-aq"]).trim().is_empty()
    });
    e.docker_ok(&["volume", "rm", "seeded", "bare", "bare2"]);
    e.finish_once_unmounted();
}

#[test]
fn anonymous_volumes_go_with_their_container() {
    let e = engine();
    // `--rm` removes the anonymous volume of `-v /path`.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "echo x > /scratch/f && cat /scratch/f",
    ]);
    assert_eq!(out, "x\n");
    eventually("the anonymous volume to go", || {
        volume_names(&e, &[]).is_empty()
    });

    // `rm -v` removes them; prune leaves the ones in use.
    e.docker_ok(&[
        "run",
        "--name",
        "anon1",
        "-v",
        "/scratch",
        "--mount",
        "type=volume,target=/other",
        IMAGE,
        "sh",
        "-c",
        "touch /scratch/f /other/g",
    ]);
    let names = volume_names(&e, &[]);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.len() == 64), "{names:?}");
    let v = e.inspect_container("anon1");
    let mut mounted: Vec<String> = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["Type"], "volume");
            m["Name"].as_str().unwrap().to_string()
        })
        .collect();
    mounted.sort();
    assert_eq!(mounted, names);
    assert_eq!(
        volume_names(&e, &["--filter", "label=com.docker.volume.anonymous"]).len(),
        2
    );
    e.docker_ok(&["volume", "prune", "-f"]);
    assert_eq!(volume_names(&e, &[]).len(), 2, "in use: kept");
    e.docker_ok(&["rm", "-v", "anon1"]);
    assert!(volume_names(&e, &[]).is_empty());

    // Without -v they stay; prune removes unused anonymous volumes only
    // unless --all.
    e.docker_ok(&["run", "--name", "anon2", "-v", "/scratch", IMAGE, "true"]);
    e.docker_ok(&["rm", "anon2"]);
    e.docker_ok(&["volume", "create", "named"]);
    assert_eq!(volume_names(&e, &[]).len(), 2);
    let out = e.docker_ok(&["volume", "prune", "-f"]);
    assert!(!out.contains("named"), "{out}");
    assert_eq!(volume_names(&e, &[]), ["named"]);
    let out = e.docker_ok(&["volume", "prune", "-af"]);
    assert!(out.contains("named"), "{out}");
    assert!(volume_names(&e, &[]).is_empty());
    // Clients of API versions before 1.42 prune named volumes too.
    e.docker_ok(&["volume", "create", "old-style"]);
    let r = e.api("POST", "/v1.41/volumes/prune", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["old-style"]));
    e.finish_once_unmounted();
}

/// A volume create body over the one JSON limit is refused with 413 before
/// it is read (its declared length says so), and the message names the
/// limit; a `+` in a path is a plus, not a space.
#[test]
fn an_oversized_body_is_413_and_paths_keep_their_plus() {
    use std::io::{Read, Write};

    let e = EngineGuard::start();
    let mut s = std::os::unix::net::UnixStream::connect(e.socket()).unwrap();
    let over = servin_guest::api::body::MAX_JSON_BODY + 1;
    write!(
        s,
        "POST /volumes/create HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {over}\r\n\r\n{{"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("the volume create body is over the engine's limit of 16 MiB"),
        "{answer}"
    );
    assert!(volume_names(&e, &[]).is_empty());

    let r = e.api("GET", "/volumes/a+b%2Bc", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no such volume: a+b+c"), "{}", r.text());
}
