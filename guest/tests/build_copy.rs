//! A `COPY` of a context of a few thousand files, built again after a few
//! of them changed (content, mode, one deleted, one added): only those
//! are written onto the step's previous result, and the image holds exactly what a full copy gives. Built through Docker's
//! classic `POST /build`, with a tar context, as `docker build` sends it.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
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

/// How many entries a build's copy step wrote and deleted onto its
/// previous result (it must have done so).
fn delta_of(stream: &str) -> (usize, usize) {
    let line = stream
        .split("wrote ")
        .nth(1)
        .unwrap_or_else(|| panic!("no copy onto the previous result in:\n{stream}"));
    let number = |s: &str| -> usize { s.split(' ').next().unwrap().parse().unwrap() };
    let deleted = line.split("deleted ").nth(1).unwrap();
    (number(line), number(deleted))
}

/// The lines of `a` and `b` that differ, for a short failure message.
fn differing(a: &str, b: &str) -> Vec<String> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out: Vec<String> = la
        .iter()
        .filter(|l| !lb.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        lb.iter()
            .filter(|l| !la.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}

/// Every path under /app with its size, mode, owner, time and content (a
/// folder's time left out: each classic build unpacks its context anew,
/// which gives its folders the time of that build).
fn tree(e: &EngineGuard, tag: &str) -> String {
    e.docker_ok(&[
        "run",
        "--rm",
        tag,
        "sh",
        "-c",
        "cd /app && find . -mindepth 1 | sort | while read p; do \
         if [ -d \"$p\" ]; then stat -c '%n %a %u:%g' \"$p\"; \
         else stat -c '%n %s %a %u:%g %Y' \"$p\"; fi; \
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
    // The same context again: every step comes from the cache.
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
    // f7, f8, new.txt, and folders: those above them, and those whose
    // time the context's extraction gave (the classic API's tar is
    // unpacked, which sets a folder's time), a few dozen of the 3,000
    // entries.
    let (written, deleted) = delta_of(&edited);
    assert!((4..=40).contains(&written), "{edited}");
    assert_eq!(deleted, 1, "{edited}");
    // A second round of changes goes onto the first one's result, which
    // the engine kept in memory: a few entries again.
    std::fs::write(ctx.path().join("src/d7/f7.txt"), "edited twice\n").unwrap();
    let twice = build(&e, ctx.path(), "many:1", false);
    let (written, deleted) = delta_of(&twice);
    assert!((1..=40).contains(&written), "{twice}");
    assert_eq!(deleted, 0, "{twice}");
    // The two layers of changes give what one full copy gives. (A full
    // build of its own tag: `--no-cache` remakes the steps before the
    // copy too, whose new images the cache then names, so a later delta
    // on `many:1` would find its parent changed and copy in full.)
    let full = build(&e, ctx.path(), "many-full:1", true);
    assert!(!full.contains("previous result"), "{full}");
    let delta_tree = tree(&e, "many:1");
    assert_eq!(
        differing(&delta_tree, &tree(&e, "many-full:1")),
        Vec::<String>::new()
    );
    assert!(
        delta_tree.contains("./src/d7/f7.txt 13 644 0:0"),
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
}

/// How many layers `tag` has.
fn layers(e: &EngineGuard, tag: &str) -> usize {
    e.docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", tag])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn changes_piled_up_on_a_copy_go_onto_its_full_copy_again_as_one_layer() {
    let mut e = EngineGuard::with_image(IMAGE, &[]);
    let ctx = tempfile::tempdir().unwrap();
    write_context(ctx.path());
    build(&e, ctx.path(), "pile:1", false);
    // Twelve edits, more than the eight layers of changes a copy keeps on
    // its full copy: none copies in full, and the image does not grow a
    // layer per edit.
    let mut after_two = 0;
    for round in 1..=12 {
        let file = ctx
            .path()
            .join(format!("src/d{}/f{}.txt", round % 5, round % 5));
        std::fs::write(&file, format!("edit {round}\n")).unwrap();
        if round == 5 {
            // An engine started again has kept no copy's result: it works
            // out the last one from that run's context.
            e.kill();
            e.spawn();
        }
        let text = build(&e, ctx.path(), "pile:1", false);
        delta_of(&text);
        if round == 2 {
            after_two = layers(&e, "pile:1");
        }
    }
    // Edits 1-8 stack eight layers; the ninth writes all the changes
    // since the full copy as one layer on it, the next ones stack again:
    // after twelve, as many layers as after four.
    assert_eq!(layers(&e, "pile:1"), after_two + 2);
    let full = build(&e, ctx.path(), "pile-full:1", true);
    assert!(!full.contains("previous result"), "{full}");
    assert_eq!(
        differing(&tree(&e, "pile:1"), &tree(&e, "pile-full:1")),
        Vec::<String>::new()
    );
    assert_eq!(
        e.docker_ok(&["run", "--rm", "pile:1", "cat", "/app/src/d2/f2.txt"]),
        "edit 12\n"
    );
}
