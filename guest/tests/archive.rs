//! `docker cp` both ways against the engine (`GET`, `HEAD` and `PUT
//! /containers/{id}/archive`), with the real docker CLI: files, folders,
//! `/.`, running and stopped containers, volumes, symlinks that must stay
//! inside the container, and the refusals Docker answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use base64::Engine as _;
use support::{EngineGuard, IMAGE};

fn stat_header(r: &servin_testkit::http::Response) -> serde_json::Value {
    let raw = r
        .header("X-Docker-Container-Path-Stat")
        .unwrap_or_else(|| panic!("no stat header: {:?}", r.headers));
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Written raw: the tar crate refuses to write `..` itself.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn host_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/sub")).unwrap();
    std::fs::write(dir.join("src/a.txt"), "alpha\n").unwrap();
    std::fs::write(dir.join("src/sub/b.txt"), "beta\n").unwrap();
    std::fs::write(dir.join("one.txt"), "one\n").unwrap();
}

fn exec(e: &EngineGuard, ctr: &str, script: &str) -> String {
    e.docker_ok(&["exec", ctr, "sh", "-c", script])
}

#[test]
fn docker_cp_both_ways_with_a_running_container() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let host = tempfile::tempdir().unwrap();
    host_tree(host.path());
    let h = |p: &str| host.path().join(p).display().to_string();
    e.run_detached("web", &[], &["sleep", "1000"]);

    // A file into an existing folder, a folder to a new name, a folder's
    // content into an existing folder.
    e.docker_ok(&["cp", &h("one.txt"), "web:/tmp/"]);
    e.docker_ok(&["cp", &h("src"), "web:/srv"]);
    exec(&e, "web", "mkdir -p /into");
    e.docker_ok(&["cp", &format!("{}/.", h("src")), "web:/into"]);
    let seen = exec(
        &e,
        "web",
        "cat /tmp/one.txt /srv/a.txt /srv/sub/b.txt /into/a.txt /into/sub/b.txt",
    );
    assert_eq!(seen, "one\nalpha\nbeta\nalpha\nbeta\n");
    // A file to a new name, and over an existing file.
    e.docker_ok(&["cp", &h("one.txt"), "web:/tmp/renamed"]);
    e.docker_ok(&["cp", &h("src/a.txt"), "web:/tmp/renamed"]);
    assert_eq!(exec(&e, "web", "cat /tmp/renamed"), "alpha\n");

    // Out of the container: a file, a folder, a folder's content.
    exec(
        &e,
        "web",
        "mkdir -p /data/deep && echo x > /data/x && echo y > /data/deep/y",
    );
    e.docker_ok(&["cp", "web:/data/x", &h("x-out")]);
    assert_eq!(std::fs::read_to_string(h("x-out")).unwrap(), "x\n");
    e.docker_ok(&["cp", "web:/data", &h("data-out")]);
    assert_eq!(
        std::fs::read_to_string(h("data-out/deep/y")).unwrap(),
        "y\n"
    );
    std::fs::create_dir_all(h("content-out")).unwrap();
    e.docker_ok(&["cp", "web:/data/.", &h("content-out")]);
    assert_eq!(std::fs::read_to_string(h("content-out/x")).unwrap(), "x\n");
    assert!(!Path::new(&h("content-out/data")).exists());

    // The stat header, as HEAD and GET send it.
    let r = e.api("HEAD", "/v1.47/containers/web/archive?path=/data", &[], b"");
    assert_eq!(r.status, 200);
    let st = stat_header(&r);
    assert_eq!(st["name"], "data");
    assert_eq!(st["linkTarget"], "");
    let mode = st["mode"].as_u64().unwrap();
    assert_eq!(mode & (1 << 31), 1 << 31, "Go's ModeDir: {st}");
    assert_eq!(mode & 0o777, 0o755);
    assert!(st["mtime"].as_str().unwrap().starts_with("20"), "{st}");
    let r = e.api(
        "GET",
        "/v1.47/containers/web/archive?path=/data/x",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/x-tar")
    );
    let st = stat_header(&r);
    assert_eq!(
        (st["name"].as_str(), st["size"].as_u64()),
        (Some("x"), Some(2))
    );
    assert_eq!(st["mode"].as_u64().unwrap(), 0o644);
    let mut a = tar::Archive::new(r.body.as_slice());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["x"]);

    // Symlinks resolve inside the container, never on the host.
    exec(
        &e,
        "web",
        "busybox ln -s / /tmp/up && busybox ln -s /etc /etc-link",
    );
    e.docker_ok(&["cp", &h("one.txt"), "web:/tmp/up/tmp/landed"]);
    assert_eq!(exec(&e, "web", "cat /tmp/landed"), "one\n");
    assert!(!Path::new("/tmp/landed").exists(), "written on the host");
    e.docker_ok(&["cp", "web:/tmp/up/etc/passwd", &h("passwd")]);
    assert!(
        std::fs::read_to_string(h("passwd"))
            .unwrap()
            .contains("app:x:1000"),
        "the container's passwd"
    );
    let r = e.api(
        "HEAD",
        "/v1.47/containers/web/archive?path=/etc-link",
        &[],
        b"",
    );
    let st = stat_header(&r);
    assert_eq!(st["linkTarget"], "/etc", "{st}");
    assert_eq!(st["mode"].as_u64().unwrap() & (1 << 27), 1 << 27);
    // -L follows the link to the folder.
    e.docker_ok(&["cp", "-L", "web:/etc-link", &h("etc-copy")]);
    assert!(Path::new(&h("etc-copy/passwd")).is_file());

    // Refusals, with Docker's statuses.
    let r = e.api("GET", "/v1.47/containers/web/archive?path=/nope", &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.text().contains("Could not find the file /nope"),
        "{}",
        r.text()
    );
    let r = e.api("HEAD", "/v1.47/containers/nosuch/archive?path=/", &[], b"");
    assert_eq!(r.status, 404);
    // A large upload to a missing container is read before the 404, so
    // the client gets the answer rather than a broken pipe.
    let big = vec![0u8; 8 * 1024 * 1024];
    let r = e.api(
        "PUT",
        "/v1.47/containers/nosuch/archive?path=/tmp",
        &[],
        &big,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let err = e.docker_err(&["cp", "web:/nope", &h("nope")]);
    assert!(err.contains("Could not find the file /nope"), "{err}");
    let r = e.api("GET", "/v1.47/containers/web/archive", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let body = tar_with(&[("f", b"f")]);
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/tmp/one.txt",
        &[],
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/nope",
        &[],
        &body,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // A `../` entry is refused (Docker's extractor error, a 500) and
    // nothing lands outside the folder.
    exec(&e, "web", "mkdir -p /jail");
    let evil = tar_with(&[("../escaped", b"!"), ("ok", b"ok")]);
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/jail",
        &[],
        &evil,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("../escaped"), "{}", r.text());
    assert_eq!(
        exec(&e, "web", "ls -a /jail; test -e /escaped || echo none"),
        ".\n..\nnone\n"
    );
    // Cleaned names that stay inside land where Docker puts them.
    let tidy = tar_with(&[("./a/../b", b"b"), ("/c", b"c")]);
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/jail",
        &[],
        &tidy,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(exec(&e, "web", "cat /jail/b /jail/c"), "bc");
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/jail",
        &[],
        b"garbage that is no tar",
    );
    assert!(r.status == 500 || r.status == 200, "{}", r.text());
    // File capabilities travel both ways, as Docker's archives carry them
    // (`SCHILY.xattr.security.capability`): cap_net_raw, effective.
    let cap: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("capped").unwrap();
    h.set_size(2);
    h.set_mode(0o755);
    h.set_cksum();
    b.append(&h, &b"#!"[..]).unwrap();
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/jail",
        &[],
        &b.into_inner().unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.api(
        "GET",
        "/v1.47/containers/web/archive?path=/jail/capped",
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut archive = tar::Archive::new(r.body.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let found: Vec<(String, Vec<u8>)> = entry
        .pax_extensions()
        .unwrap()
        .map(|exts| {
            exts.map(|x| {
                let x = x.unwrap();
                (x.key().unwrap().to_string(), x.value_bytes().to_vec())
            })
            .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        found,
        [("SCHILY.xattr.security.capability".to_string(), cap.to_vec())]
    );
    // A file that would replace a folder, which the docker CLI forbids
    // (noOverwriteDirNonDir): Docker's extractor error, a 500.
    let clash = tar_with(&[("jail", b"not a folder")]);
    let r = e.api(
        "PUT",
        "/v1.47/containers/web/archive?path=/&noOverwriteDirNonDir=true",
        &[],
        &clash,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("jail"), "{}", r.text());
    assert_eq!(exec(&e, "web", "cat /jail/b"), "b");
    e.docker_ok(&["rm", "-f", "web"]);
}

#[test]
fn docker_cp_into_a_stopped_container_and_its_volume() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let host = tempfile::tempdir().unwrap();
    host_tree(host.path());
    let h = |p: &str| host.path().join(p).display().to_string();
    std::fs::write(h("app.conf"), "old\n").unwrap();
    let file_bind = format!("{}:/etc/app.conf", h("app.conf"));
    let id = e.docker_ok(&[
        "create",
        "--name",
        "later",
        "-v",
        "keep:/data",
        "-v",
        &file_bind,
        IMAGE,
        "cat",
        "/home/src/a.txt",
        "/data/one.txt",
        "/etc/app.conf",
    ]);
    let id = id.trim();
    e.docker_ok(&["cp", &h("src"), "later:/home/src"]);
    e.docker_ok(&["cp", &h("one.txt"), "later:/data/"]);
    // A single-file bind is mounted for the copy, as Docker mounts it: the
    // copy reads and writes the host's file.
    e.docker_ok(&["cp", "later:/etc/app.conf", &h("conf-out")]);
    assert_eq!(std::fs::read_to_string(h("conf-out")).unwrap(), "old\n");
    std::fs::write(h("new.conf"), "new\n").unwrap();
    e.docker_ok(&["cp", &h("new.conf"), "later:/etc/app.conf"]);
    assert_eq!(std::fs::read_to_string(h("app.conf")).unwrap(), "new\n");
    // Out of a container that never ran.
    e.docker_ok(&["cp", "later:/etc/passwd", &h("passwd")]);
    assert!(Path::new(&h("passwd")).is_file());
    // Nothing stays mounted for the copy.
    let rootfs = e.root().join("containers").join(id).join("rootfs");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = info
        .lines()
        .filter(|l| l.contains(&*rootfs.to_string_lossy()))
        .collect();
    assert!(
        left.is_empty(),
        "still mounted for the copy: {left:#?}\n{}",
        e.log()
    );
    let out = e.docker_ok(&["start", "-a", "later"]);
    assert_eq!(out, "alpha\none\nnew\n");
    // The copy went into the volume: another container sees it.
    let out = e.docker_ok(&["run", "--rm", "-v", "keep:/v", IMAGE, "cat", "/v/one.txt"]);
    assert_eq!(out, "one\n");
    // And out of the stopped container, its volume too.
    e.docker_ok(&["cp", "later:/data/one.txt", &h("back")]);
    assert_eq!(std::fs::read_to_string(h("back")).unwrap(), "one\n");

    // A read-only root is refused (403), its volume is not.
    e.run_detached("ro", &["--read-only", "-v", "rw:/rw"], &["sleep", "1000"]);
    let body = tar_with(&[("f", b"f")]);
    let r = e.api("PUT", "/v1.47/containers/ro/archive?path=/tmp", &[], &body);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = e.api("PUT", "/v1.47/containers/ro/archive?path=/rw", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(exec(&e, "ro", "cat /rw/f"), "f");
    // copyUIDGID: the container user's owner instead of the tar's.
    e.run_detached("app", &["--user", "app"], &["sleep", "1000"]);
    let r = e.api(
        "PUT",
        "/v1.47/containers/app/archive?path=/tmp&copyUIDGID=1",
        &[],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(exec(&e, "app", "stat -c %u:%g /tmp/f"), "1000:1000\n");
    // A file bound into a running container is written in place (it
    // cannot be renamed over), and the container sees the new content.
    e.run_detached("bound", &["-v", &file_bind], &["sleep", "1000"]);
    std::fs::write(h("newer.conf"), "newer\n").unwrap();
    e.docker_ok(&["cp", &h("newer.conf"), "bound:/etc/app.conf"]);
    assert_eq!(std::fs::read_to_string(h("app.conf")).unwrap(), "newer\n");
    assert_eq!(exec(&e, "bound", "cat /etc/app.conf"), "newer\n");
    e.docker_ok(&["rm", "-f", "later", "ro", "app", "bound"]);
}
