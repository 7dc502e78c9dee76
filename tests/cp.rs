//! `servin cp` against a real engine started by servin itself: both ways,
//! files and folders, `/.`, `-` for a tar on stdin and stdout, a stopped
//! container, and the refusals.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use servin_testkit::process::with_stdin;
use support::sandbox::Env;

const IMAGE: &str = "test/cp:1";

#[test]
fn servin_cp_copies_both_ways() {
    let s = Env::with_image(IMAGE);
    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p).display().to_string();
    std::fs::create_dir_all(h("src/sub")).unwrap();
    std::fs::write(h("src/a.txt"), "alpha\n").unwrap();
    std::fs::write(h("src/sub/b.txt"), "beta\n").unwrap();
    std::fs::write(h("one.txt"), "one\n").unwrap();
    s.ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "3600"]);
    s.ok(&["exec", "box", "busybox", "mkdir", "-p", "/into", "/tmp"]);

    // Into the container: a file into a folder (with Docker's report), a
    // folder to a new name, a folder's content.
    let r = s.run(&["cp", &h("one.txt"), "box:/tmp/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "Successfully copied 4B to box:/tmp/\n");
    s.ok(&["cp", "-q", &h("src"), "box:/srv"]);
    s.ok(&["cp", "-q", &format!("{}/.", h("src")), "box:/into"]);
    let seen = s.ok(&[
        "exec",
        "box",
        "cat",
        "/tmp/one.txt",
        "/srv/sub/b.txt",
        "/into/a.txt",
    ]);
    assert_eq!(seen, "one\nbeta\nalpha\n");

    // Out of it: a file to a new name, a folder, a folder's content.
    s.ok(&["cp", "-q", "box:/srv/a.txt", &h("a-copy")]);
    assert_eq!(std::fs::read_to_string(h("a-copy")).unwrap(), "alpha\n");
    s.ok(&["cp", "-q", "box:/srv", &h("srv-copy")]);
    assert_eq!(
        std::fs::read_to_string(h("srv-copy/sub/b.txt")).unwrap(),
        "beta\n"
    );
    std::fs::create_dir_all(h("content")).unwrap();
    s.ok(&["cp", "-q", "box:/srv/.", &h("content")]);
    assert!(Path::new(&h("content/sub/b.txt")).is_file());
    assert!(!Path::new(&h("content/srv")).exists());

    // `-`: a tar on stdout, and one on stdin.
    let out = s.command(&["cp", "box:/srv/sub", "-"]).output().unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(out.stdout.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["sub/", "sub/b.txt"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut hdr = tar::Header::new_gnu();
    hdr.set_size(3);
    hdr.set_mode(0o644);
    b.append_data(&mut hdr, "from-stdin", &b"in\n"[..]).unwrap();
    let tar_bytes = b.into_inner().unwrap();
    let r = with_stdin(&mut s.command(&["cp", "-", "box:/tmp"]), &tar_bytes);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(s.ok(&["exec", "box", "cat", "/tmp/from-stdin"]), "in\n");

    // Refusals, with what went wrong.
    let r = s.run(&["cp", "box:/nope", &h("x")]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("Could not find the file /nope in container box");
    let r = s.run(&["cp", &h("src"), "box:/tmp/one.txt"]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("cannot copy a directory to a file");
    let r = s.run(&["cp", &h("one.txt"), "box:/missing/"]);
    assert_ne!(r.code, 0);
    let r = s.run(&["cp", &h("one.txt"), &h("two.txt")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("one of SRC and DEST must be CONTAINER:PATH");
    let r = s.run(&["cp", "box:/a", "other:/b"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // A stopped container: the copy is there when it starts.
    s.ok(&["create", "--name", "later", IMAGE, "cat", "/one.txt"]);
    let r = s.run(&["cp", &h("one.txt"), "later:/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = s.run(&["start", "-a", "later"]);
    assert_eq!(r.stdout, "one\n", "{}", r.stderr);
}
