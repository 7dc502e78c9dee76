//! `COPY`/`ADD` sources against a real indexed context, and the digest of
//! what they select.

#![allow(clippy::unwrap_used)]

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path};

use servin_buildctx::{ContextIndex, Matcher, SelectError, Selection};

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn context(ignore: &str) -> (tempfile::TempDir, ContextIndex) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "go.mod", "module x\n");
    write(root, "main.go", "package main\n");
    write(root, "cmd/tool/tool.go", "package tool\n");
    write(root, "cmd/tool/README.md", "tool\n");
    write(root, "web/index.html", "<p>\n");
    write(root, "web/app.js", "run()\n");
    write(root, "web-extra/x.js", "x\n");
    write(root, "build/out.bin", "bin\n");
    write(root, "build/keep.txt", "keep\n");
    let (index, _) = ContextIndex::build(root, &Matcher::parse(ignore).unwrap(), None).unwrap();
    (dir, index)
}

/// Each selection as `root: path, path...`.
fn show(selections: &[Selection<'_>]) -> Vec<String> {
    selections
        .iter()
        .map(|s| {
            let paths: Vec<&str> = s.entries.iter().map(|e| e.path.as_str()).collect();
            format!("{}: {}", s.root, paths.join(" "))
        })
        .collect()
}

#[test]
fn files_and_folders() {
    let (_dir, index) = context("");
    assert_eq!(show(&index.select("go.mod").unwrap()), ["go.mod: go.mod"]);
    assert_eq!(show(&index.select("/go.mod").unwrap()), ["go.mod: go.mod"]);
    assert_eq!(
        show(&index.select("./x/../go.mod").unwrap()),
        ["go.mod: go.mod"]
    );
    assert_eq!(
        show(&index.select("web").unwrap()),
        ["web: web web/app.js web/index.html"],
        "a folder brings what is below it, and not web-extra"
    );
    assert_eq!(
        show(&index.select("web/").unwrap()),
        show(&index.select("web").unwrap())
    );
    let all = index.select(".").unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].root, "");
    assert_eq!(all[0].entries.len(), index.entries().len());
}

#[test]
fn wildcards_group_by_matched_path() {
    let (_dir, index) = context("");
    assert_eq!(
        show(&index.select("*.go").unwrap()),
        ["main.go: main.go"],
        "`*` stays in its folder"
    );
    assert_eq!(
        show(&index.select("**/*.go").unwrap()),
        ["cmd/tool/tool.go: cmd/tool/tool.go", "main.go: main.go"]
    );
    assert_eq!(
        show(&index.select("web*").unwrap()),
        [
            "web: web web/app.js web/index.html",
            "web-extra: web-extra web-extra/x.js"
        ]
    );
    assert_eq!(
        show(&index.select("cmd/*/[R]EADME.??").unwrap()),
        ["cmd/tool/README.md: cmd/tool/README.md"]
    );
    assert_eq!(show(&index.select("go.mo?").unwrap()), ["go.mod: go.mod"]);
}

#[test]
fn errors_as_docker_words_them() {
    let (_dir, index) = context("");
    for src in ["../x", "..", "a/../../x"] {
        let err = index.select(src).unwrap_err();
        assert!(
            matches!(err, SelectError::OutsideContext { .. }),
            "{src}: {err}"
        );
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
    }
    let err = index.select("missing.txt").unwrap_err();
    assert_eq!(
        err.to_string(),
        "file not found in build context or excluded by .dockerignore: missing.txt"
    );
    let err = index.select("*.rs").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no source files were specified"),
        "{err}"
    );
    let err = index.select("[x").unwrap_err();
    assert!(matches!(err, SelectError::BadPattern { .. }), "{err}");
}

#[test]
fn ignored_paths_are_not_found_and_reincluded_ones_are() {
    let (_dir, index) = context("build\n!build/keep.txt\n**/*.md");
    let err = index.select("cmd/tool/README.md").unwrap_err();
    assert!(matches!(err, SelectError::NotFound { .. }), "{err}");
    assert!(index.select("build/out.bin").is_err());
    assert_eq!(
        show(&index.select("build").unwrap()),
        ["build: build/keep.txt"],
        "the excluded folder has no entry of its own"
    );
    assert_eq!(
        show(&index.select("bui*").unwrap()),
        ["build: build/keep.txt"]
    );
}

#[test]
fn content_digest_follows_content_mode_and_names_only() {
    let (dir, index) = context("");
    let root = dir.path();
    let digest_of =
        |index: &ContextIndex, src: &str| index.content_digest(&index.select(src).unwrap());
    let web = digest_of(&index, "web");
    let go = digest_of(&index, "*.go");
    assert_ne!(web, go);

    // A change outside the selection changes nothing.
    write(root, "main.go", "package main // changed\n");
    let (after, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_eq!(digest_of(&after, "web"), web);
    assert_ne!(digest_of(&after, "*.go"), go);

    // Content, mode and a rename inside the selection do.
    write(root, "web/app.js", "run(1)\n");
    let (content, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_ne!(digest_of(&content, "web"), web);
    write(root, "web/app.js", "run()\n");
    let mode = fs::metadata(root.join("web/app.js"))
        .unwrap()
        .permissions()
        .mode();
    fs::set_permissions(root.join("web/app.js"), fs::Permissions::from_mode(0o4755)).unwrap();
    let (moded, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_ne!(digest_of(&moded, "web"), web);
    fs::set_permissions(root.join("web/app.js"), fs::Permissions::from_mode(mode)).unwrap();
    let (restored, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_eq!(
        digest_of(&restored, "web"),
        web,
        "same content, mode and names again"
    );
    fs::rename(root.join("web/app.js"), root.join("web/main.js")).unwrap();
    let (renamed, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_ne!(digest_of(&renamed, "web"), web);
}

#[test]
fn sources_follow_symlinks_inside_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real/app.js", "run()\n");
    write(root, "real/sub/x", "x\n");
    write(root, "top.txt", "top\n");
    let link =
        |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    link("real/app.js", "file-link");
    link("real", "dir-link");
    link("/top.txt", "abs-link");
    link("../../../top.txt", "escaping-link");
    link("loop-b", "loop-a");
    link("loop-a", "loop-b");
    link("nowhere", "dangling");
    std::os::unix::fs::symlink("../top.txt", root.join("real/up")).unwrap();
    let (index, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();

    let file = index.select("file-link").unwrap();
    assert_eq!(
        (file[0].root.as_str(), file[0].target.as_str()),
        ("file-link", "real/app.js")
    );
    assert_eq!(show(&file), ["file-link: real/app.js"]);
    assert_eq!(
        show(&index.select("dir-link").unwrap()),
        ["dir-link: real real/app.js real/sub real/sub/x real/up"],
        "a link below the copied folder stays a link"
    );
    assert_eq!(
        show(&index.select("dir-link/sub/x").unwrap()),
        ["dir-link/sub/x: real/sub/x"]
    );
    assert_eq!(
        show(&index.select("dir-link/up").unwrap()),
        ["dir-link/up: top.txt"]
    );
    assert_eq!(
        show(&index.select("abs-link").unwrap()),
        ["abs-link: top.txt"]
    );
    assert_eq!(
        show(&index.select("escaping-link").unwrap()),
        ["escaping-link: top.txt"],
        "`..` stops at the context root"
    );
    for src in ["loop-a", "dangling", "dir-link/missing"] {
        let err = index.select(src).unwrap_err();
        assert!(matches!(err, SelectError::NotFound { .. }), "{src}: {err}");
    }
    assert_eq!(
        show(&index.select("file-l*").unwrap()),
        ["file-link: real/app.js"]
    );
    // The digest names what is copied, not how the link got there.
    let via_link = index.content_digest(&index.select("dir-link").unwrap());
    let direct = index.content_digest(&index.select("real").unwrap());
    assert_ne!(via_link, direct, "the source's name takes part");
    assert_eq!(
        index.resolve("dir-link/sub/../app.js").as_deref(),
        Some("real/app.js")
    );
}
