//! Workspace batches for real: `POST /servin/v1/workspaces/{volume}/batch`
//! writing into a volume that a running container mounts.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use servin_testkit::cleanup::OwnsRoot;
use support::{EngineGuard, IMAGE};

/// One entry of a test batch.
enum Put<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
}

/// The batch's bytes: header length, JSON header, tar.
fn batch(header: serde_json::Value, puts: &[Put]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for p in puts {
        let mut h = tar::Header::new_gnu();
        match p {
            Put::Dir(path, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Put::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                h.set_mtime(1_700_000_000);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Put::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    let tar = b.into_inner().unwrap();
    let head = serde_json::to_vec(&header).unwrap();
    let mut out = (head.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&tar);
    out
}

fn send(e: &EngineGuard, volume: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let r = e.api(
        "POST",
        &format!("/servin/v1/workspaces/{volume}/batch"),
        &[("Content-Type", "application/vnd.servin.batch")],
        body,
    );
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

fn labels() -> serde_json::Value {
    serde_json::json!({"servin.workspace": "web", "servin.project": "demo"})
}

fn data(e: &EngineGuard, volume: &str) -> PathBuf {
    e.root().join("volumes").join(volume).join("_data")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_batch_makes_the_volume_and_writes_files_folders_and_links() {
    let e = EngineGuard::start();
    let body = batch(
        serde_json::json!({"uid": 1000, "gid": 1001, "labels": labels()}),
        &[
            Put::Dir("src", 0o750),
            Put::File("src/main.py", b"print('hi')\n", 0o644),
            Put::File("run.sh", b"#!/bin/sh\necho run\n", 0o755),
            Put::File("deep/er/file.txt", b"deep\n", 0o600),
            Put::Link("latest", "src/main.py"),
            Put::Link("outside", "/etc/passwd"),
        ],
    );
    let (status, out) = send(&e, "demo_web-workspace", &body);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["written"], 6, "{out}");
    assert_eq!(out["failed"], serde_json::json!([]));
    let generation = out["generation"].as_str().unwrap().to_string();

    let d = data(&e, "demo_web-workspace");
    assert_eq!(
        std::fs::read(d.join("src/main.py")).unwrap(),
        b"print('hi')\n"
    );
    assert_eq!(mode(&d.join("src")), 0o750);
    assert_eq!(mode(&d.join("run.sh")), 0o755);
    assert_eq!(mode(&d.join("deep/er/file.txt")), 0o600);
    for p in [
        "",
        "src",
        "src/main.py",
        "run.sh",
        "deep",
        "deep/er",
        "latest",
    ] {
        let m = std::fs::symlink_metadata(d.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001), "owner of {p:?}");
    }
    assert_eq!(
        std::fs::symlink_metadata(d.join("run.sh")).unwrap().mtime(),
        1_700_000_000
    );
    // Links are links, never followed.
    assert_eq!(
        std::fs::read_link(d.join("outside")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(
        std::fs::symlink_metadata(d.join("latest"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The volume carries its labels; inspect and the manifest agree.
    let v = e.docker_ok(&["volume", "inspect", "demo_web-workspace"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v[0]["Labels"]["servin.workspace"], "web");
    let r = e.api(
        "GET",
        "/servin/v1/workspaces/demo_web-workspace/manifest",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let m: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(m["generation"], generation.as_str());
    let run = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == "run.sh")
        .unwrap();
    assert_eq!(run["kind"], "file");
    assert_eq!(run["mode"], 0o755);
    assert!(run["digest"].as_str().unwrap().starts_with("sha256:"));

    // A second batch: deletions first (a folder with its content, a
    // file), then a folder where a file was, and new content.
    let body = batch(
        serde_json::json!({"uid": 1000, "gid": 1001, "delete": ["deep", "latest", "nothing/there"]}),
        &[
            Put::Dir("run.sh", 0o755),
            Put::File("src/main.py", b"print('bye')\n", 0o644),
        ],
    );
    let (status, out) = send(&e, "demo_web-workspace", &body);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["failed"], serde_json::json!([]), "{out}");
    assert_eq!(out["generation"], generation.as_str());
    assert!(!d.join("deep").exists());
    assert!(std::fs::symlink_metadata(d.join("latest")).is_err());
    assert!(d.join("run.sh").is_dir());
    assert_eq!(
        std::fs::read(d.join("src/main.py")).unwrap(),
        b"print('bye')\n"
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(d.join("src"))
        .unwrap()
        .map(|x| x.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["main.py"]);
    e.finish();
}

#[test]
fn paths_that_leave_the_volume_are_refused_by_name() {
    let e = EngineGuard::start();
    let outside = e.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let vol = "demo_esc-workspace";
    let (status, out) = send(
        &e,
        vol,
        &batch(
            serde_json::json!({"labels": labels()}),
            &[Put::Link("escape", outside.to_str().unwrap())],
        ),
    );
    assert_eq!(status, 200, "{out}");
    // Writing through the link, a `..` path, an absolute path: each
    // refused by name, the good entry written.
    let mut b = batch(
        serde_json::json!({"delete": ["../x", "escape/victim"]}),
        &[
            Put::File("escape/planted", b"x", 0o644),
            Put::File("ok.txt", b"ok", 0o644),
        ],
    );
    // The tar crate refuses to write `..` and absolute names itself, so
    // those go in as deletions above; the link parent as a write here.
    let _ = &mut b;
    let (status, out) = send(&e, vol, &b);
    assert_eq!(status, 200, "{out}");
    let failed: Vec<String> = out["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}: {}", f["path"].as_str().unwrap(), f["message"]))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed[0].starts_with("../x: "), "{failed:?}");
    assert!(failed[1].starts_with("escape/victim: "), "{failed:?}");
    assert!(failed[2].starts_with("escape/planted: "), "{failed:?}");
    assert!(failed[2].contains("not a folder"), "{failed:?}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(std::fs::read(data(&e, vol).join("ok.txt")).unwrap(), b"ok");

    // A volume that is not a workspace copy is not written.
    e.docker_ok(&["volume", "create", "plain"]);
    let (status, out) = send(&e, "plain", &batch(serde_json::json!({}), &[]));
    assert_eq!(status, 409, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("volume plain is not a workspace copy")
    );
    // A batch without the label does not make a volume.
    let (status, out) = send(&e, "fresh", &batch(serde_json::json!({}), &[]));
    assert_eq!(status, 400, "{out}");
    assert!(std::fs::symlink_metadata(e.root().join("volumes/fresh")).is_err());
    e.finish();
}

/// A static inotify watcher (`fixtures/inotify-watch.c`, built here with
/// `cc -static`: Debian's static busybox has no `inotifyd`), to run inside
/// a container.
fn inotify_watcher(dir: &Path) -> PathBuf {
    let out = dir.join("inotify-watch");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inotify-watch.c");
    let status = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "cc -static {}", src.display());
    out
}

/// The events the watcher inside `container` wrote so far, as (kind, name).
fn events(e: &EngineGuard, container: &str) -> Vec<(String, String)> {
    let out = e.docker(&["exec", container, "cat", "/tmp/events"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

/// Waits until the watcher in `container` has written all of `want`.
fn wait_for_events(e: &EngineGuard, container: &str, want: &[(&str, &str)]) {
    servin_testkit::wait::eventually(
        &format!("the watcher in {container} to see {want:?}"),
        || {
            let seen = events(e, container);
            want.iter()
                .all(|w| seen.iter().any(|(k, n)| k == w.0 && n == w.1))
        },
    );
}

#[test]
fn a_running_container_sees_each_change_and_inotify_events() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let vol = "demo_app-workspace";
    let (status, out) = send(
        &e,
        vol,
        &batch(
            serde_json::json!({"uid": 1000, "gid": 1000, "labels": labels()}),
            &[Put::File("app.txt", b"one\n", 0o644)],
        ),
    );
    assert_eq!(status, 200, "{out}");
    e.run_detached(
        "app",
        &["-v", &format!("{vol}:/app"), "--user", "1000:1000"],
        &["sleep", "600"],
    );
    let cat = |path: &str| {
        e.docker(&["exec", "app", "cat", path])
            .stdout
            .into_iter()
            .map(char::from)
            .collect::<String>()
    };
    assert_eq!(cat("/app/app.txt"), "one\n");
    // An inotify watcher inside the container, on the synced folder.
    let tmp = tempfile::tempdir().unwrap();
    let watcher = inotify_watcher(tmp.path());
    e.docker_ok(&["cp", watcher.to_str().unwrap(), "app:/inotify-watch"]);
    e.docker_ok(&[
        "exec",
        "-d",
        "-u",
        "0",
        "app",
        "sh",
        "-c",
        "/inotify-watch /app > /tmp/events 2>&1",
    ]);
    wait_for_events(&e, "app", &[("watching", "")]);
    let (status, out) = send(
        &e,
        vol,
        &batch(
            serde_json::json!({"uid": 1000, "gid": 1000}),
            &[
                Put::File("app.txt", b"two\n", 0o644),
                Put::File("new.txt", b"new\n", 0o644),
            ],
        ),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(cat("/app/app.txt"), "two\n");
    assert_eq!(cat("/app/new.txt"), "new\n");
    let (status, _) = send(
        &e,
        vol,
        &batch(
            serde_json::json!({"uid": 1000, "gid": 1000, "delete": ["new.txt"]}),
            &[],
        ),
    );
    assert_eq!(status, 200);
    wait_for_events(
        &e,
        "app",
        &[
            // A changed file is renamed over the old one; a new one is
            // linked in whole.
            ("moved_to", "app.txt"),
            ("create", "new.txt"),
            ("delete", "new.txt"),
        ],
    );
    // The non-root container owns its synced files: it can edit them.
    let out = e.docker(&[
        "exec",
        "app",
        "sh",
        "-c",
        "echo edit >> /app/app.txt && cat /app/app.txt",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two\nedit\n");
    e.docker_ok(&["rm", "-f", "app"]);
    e.finish();
}

#[test]
fn a_sweep_removes_what_an_interrupted_batch_left() {
    let e = EngineGuard::start();
    let vol = "demo_sweep-workspace";
    let (status, _) = send(
        &e,
        vol,
        &batch(
            serde_json::json!({"labels": labels()}),
            &[Put::File("a/keep.txt", b"k", 0o644)],
        ),
    );
    assert_eq!(status, 200);
    let d = data(&e, vol);
    std::fs::write(d.join("a/.servin-sync-0123456789abcdef.tmp"), b"half").unwrap();
    // The manifest never lists a temporary file.
    let r = e.api(
        "GET",
        &format!("/servin/v1/workspaces/{vol}/manifest"),
        &[],
        b"",
    );
    assert!(!r.text().contains(".servin-sync-"), "{}", r.text());
    let (status, out) = send(&e, vol, &batch(serde_json::json!({"sweep": true}), &[]));
    assert_eq!(status, 200, "{out}");
    let names: Vec<String> = std::fs::read_dir(d.join("a"))
        .unwrap()
        .map(|x| x.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    e.finish();
}
