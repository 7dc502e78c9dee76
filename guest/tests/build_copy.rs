//! A `COPY` of a context of a few thousand files, built again after a few
//! of them changed (content, mode, one deleted, one added, one only
//! touched): only those are written onto the step's previous result, and
//! the image holds exactly what a full copy gives. Built through Docker's
//! classic `POST /build`, with a tar context, as `docker build` sends it.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{EngineGuard, IMAGE};

const FILES: usize = 3000;

fn write_context(dir: &Path) {
    for i in 0..FILES {
        let p = dir.join(format!("src/d{}/f{i}.txt", i % 30));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("file {i}\n")).unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM test/box:1\nWORKDIR /app\nCOPY src/ ./src/\nRUN ls -R src | wc -l > /count\n",
    )
    .unwrap();
}

fn tar_of(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Builds `dir` as `tag` through the classic API; returns the stream.
fn build(e: &EngineGuard, dir: &Path, tag: &str, no_cache: bool) -> String {
    let r = e.api(
        "POST",
        &format!("/v1.47/build?t={tag}&nocache={no_cache}"),
        &[("Content-Type", "application/x-tar")],
        &tar_of(dir),
    );
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert!(
        text.contains(&format!("Successfully tagged {tag}")),
        "{text}\nengine log:\n{}",
        e.log()
    );
    text
}

/// Every path under /app with its size, mode, owner, time and content.
fn tree(e: &EngineGuard, tag: &str) -> String {
    e.docker_ok(&[
        "run",
        "--rm",
        tag,
        "sh",
        "-c",
        "cd /app && find . -mindepth 1 | sort | while read p; do \
         stat -c '%n %s %a %u:%g %Y' \"$p\"; \
         if [ -f \"$p\" ]; then cat \"$p\"; fi; done",
    ])
}

#[test]
fn a_large_copy_rebuilt_after_a_few_changes_writes_only_them() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let ctx = tempfile::tempdir().unwrap();
    write_context(ctx.path());
    let first = build(&e, ctx.path(), "many:1", false);
    assert!(!first.contains("previous result"), "{first}");
    // Nothing changed but the times: every step comes from the cache.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    let touched = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("src/d1/f1.txt"))
        .unwrap();
    touched.set_modified(later).unwrap();
    let again = build(&e, ctx.path(), "many:1", false);
    assert!(!again.contains("Running in"), "{again}");
    assert!(!again.contains("previous result"), "{again}");

    // Content, mode, a deletion and an addition, in three folders.
    std::fs::write(ctx.path().join("src/d7/f7.txt"), "edited\n").unwrap();
    std::fs::set_permissions(
        ctx.path().join("src/d8/f8.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::remove_file(ctx.path().join("src/d9/f9.txt")).unwrap();
    std::fs::write(ctx.path().join("src/d9/new.txt"), "new\n").unwrap();
    let edited = build(&e, ctx.path(), "many:1", false);
    // f7, f8, new.txt, f1 (its time, which the image keeps, changed
    // before), and the folders d1, d7, d8, d9 above them.
    assert!(
        edited
            .contains("wrote 8 changed entries, deleted 1 entry, onto this step's previous result"),
        "{edited}"
    );
    let full = build(&e, ctx.path(), "many-full:1", true);
    assert!(!full.contains("previous result"), "{full}");
    let delta_tree = tree(&e, "many:1");
    assert_eq!(delta_tree, tree(&e, "many-full:1"));
    assert!(
        delta_tree.contains("./src/d7/f7.txt 7 644 0:0"),
        "{delta_tree}"
    );
    assert!(
        delta_tree.contains("./src/d8/f8.txt 7 600 0:0"),
        "{delta_tree}"
    );
    assert!(!delta_tree.contains("f9.txt"), "{delta_tree}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "many:1", "cat", "/count"]),
        e.docker_ok(&["run", "--rm", "many-full:1", "cat", "/count"]),
    );

    // A second round of changes goes onto the first one's result (kept
    // in memory by the engine): only the one file again.
    std::fs::write(ctx.path().join("src/d7/f7.txt"), "edited twice\n").unwrap();
    let twice = build(&e, ctx.path(), "many:1", false);
    assert!(
        twice.contains(
            "wrote 2 changed entries, deleted 0 entries, onto this step's previous result"
        ),
        "{twice}"
    );
    let full = build(&e, ctx.path(), "many-full:1", true);
    assert!(!full.contains("previous result"), "{full}");
    assert_eq!(tree(&e, "many:1"), tree(&e, "many-full:1"));
}
