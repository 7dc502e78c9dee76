//! The context index on real folders: what it records, what it leaves out,
//! what its digests ignore, and the stat cache.

#![allow(clippy::unwrap_used)]

use std::{
    ffi::OsStr,
    fs,
    os::unix::{ffi::OsStrExt as _, fs::PermissionsExt as _},
    path::Path,
    time::{Duration, SystemTime},
};

use servin_buildctx::{ContextIndex, Entry, EntryKind, IndexError, Matcher, RACY_MARGIN_NS};

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Waits until files just written are older than the stat cache's racy
/// margin, so that the next index may trust them.
fn settle() {
    std::thread::sleep(Duration::from_nanos(RACY_MARGIN_NS as u64 + 50_000_000));
}

fn paths(index: &ContextIndex) -> Vec<&str> {
    index.entries().iter().map(|e| e.path.as_str()).collect()
}

fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "src/main.rs", "fn main() {}\n");
    write(root, "src/lib.rs", "pub fn f() {}\n");
    write(root, "a-b.txt", "hello");
    std::os::unix::fs::symlink("src/main.rs", root.join("link")).unwrap();
    fs::set_permissions(root.join("a-b.txt"), fs::Permissions::from_mode(0o4755)).unwrap();
    dir
}

#[test]
fn records_kinds_modes_links_and_content_in_path_order() {
    let dir = sample();
    let (index, stats) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    assert_eq!(
        paths(&index),
        [
            "Dockerfile",
            "a-b.txt",
            "link",
            "src",
            "src/lib.rs",
            "src/main.rs"
        ]
    );
    let file = index.get("a-b.txt").unwrap();
    assert_eq!(file.kind, EntryKind::File);
    assert_eq!(file.mode, 0o4755, "setuid kept");
    assert_eq!(file.size, 5);
    assert_eq!(
        file.digest.as_deref(),
        Some("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    let link = index.get("link").unwrap();
    assert_eq!(
        link.kind,
        EntryKind::Symlink {
            target: "src/main.rs".into()
        }
    );
    assert_eq!(link.digest, None, "a symlink is not followed");
    let src = index.get("src").unwrap();
    assert_eq!(
        (&src.kind, src.size, &src.digest),
        (&EntryKind::Dir, 0, &None)
    );
    assert_eq!(stats.files, 4);
    assert_eq!(stats.hashed, 4);
    assert_eq!(stats.bytes_hashed, 13 + 13 + 14 + 5);
    assert_eq!(index.file_digests().len(), 4);
}

#[test]
fn skips_ignored_paths_prunes_folders_and_descends_for_exceptions() {
    let dir = sample();
    let root = dir.path();
    write(root, "build/keep.txt", "keep");
    write(root, "build/drop.txt", "drop");
    write(root, "build/sub/keep.txt", "deep");
    write(root, "node_modules/x/index.js", "x");
    // A name that is not UTF-8 fails indexing if the walk ever reads it:
    // it proves `node_modules` is not entered.
    fs::write(
        root.join("node_modules")
            .join(OsStr::from_bytes(b"bad\xff")),
        "",
    )
    .unwrap();
    let matcher = Matcher::parse("build\n!build/keep.txt\nnode_modules\n*.txt\n!a-b.txt").unwrap();
    let (index, _) = ContextIndex::build(root, &matcher, None).unwrap();
    assert_eq!(
        paths(&index),
        [
            "Dockerfile",
            "a-b.txt",
            "build/keep.txt",
            "link",
            "src",
            "src/lib.rs",
            "src/main.rs"
        ]
    );

    // Without the pattern, the walk does read the bad name.
    let err = ContextIndex::build(root, &Matcher::parse("build").unwrap(), None).unwrap_err();
    assert!(matches!(err, IndexError::NotUtf8 { .. }), "{err}");
    assert!(err.to_string().contains("node_modules/bad"), "{err}");
}

#[test]
fn touching_files_changes_no_digest() {
    let dir = sample();
    let root = dir.path();
    let (before, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    for rel in ["Dockerfile", "a-b.txt", "src/main.rs", "src/lib.rs"] {
        fs::File::options()
            .write(true)
            .open(root.join(rel))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    let (after, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_ne!(
        before.get("src/main.rs").unwrap().mtime_ns,
        after.get("src/main.rs").unwrap().mtime_ns
    );
    assert_eq!(before.digest(), after.digest());
    let all = |i: &ContextIndex| i.content_digest(&i.select(".").unwrap());
    assert_eq!(all(&before), all(&after));
}

#[test]
fn one_changed_byte_changes_that_entry_and_the_index_digest() {
    let dir = sample();
    let root = dir.path();
    let (before, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    write(root, "src/lib.rs", "pub fn g() {}\n");
    let (after, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    let changed: Vec<&str> = before
        .entries()
        .iter()
        .zip(after.entries())
        .filter(|(a, b)| a.digest != b.digest)
        .map(|(a, _)| a.path.as_str())
        .collect();
    assert_eq!(changed, ["src/lib.rs"]);
    assert_ne!(before.digest(), after.digest());

    // The mode and the owner take part too.
    fs::set_permissions(root.join("Dockerfile"), fs::Permissions::from_mode(0o600)).unwrap();
    let (moded, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_ne!(moded.digest(), after.digest());
    std::os::unix::fs::lchown(root.join("Dockerfile"), Some(1234), Some(5678)).unwrap();
    let (owned, _) = ContextIndex::build(root, &Matcher::default(), None).unwrap();
    assert_eq!(
        owned.get("Dockerfile").map(|e| (e.uid, e.gid)),
        Some((1234, 5678))
    );
    assert_ne!(owned.digest(), moded.digest());
}

#[test]
fn a_warm_cache_hashes_only_changed_files() {
    let dir = sample();
    let root = dir.path();
    let state = tempfile::tempdir().unwrap();
    let cache = state.path().join("index.cache");
    settle();
    let (cold, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!((stats.files, stats.hashed), (4, 4));
    assert!(cache.is_file());

    let written = fs::metadata(&cache).unwrap().modified().unwrap();
    let (warm, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!((stats.files, stats.hashed, stats.bytes_hashed), (4, 0, 0));
    assert_eq!(warm, cold);
    assert_eq!(
        fs::metadata(&cache).unwrap().modified().unwrap(),
        written,
        "nothing changed: the cache is not rewritten"
    );

    write(root, "src/main.rs", "fn main() { run() }\n");
    settle();
    let (changed, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!((stats.hashed, stats.bytes_hashed), (1, 20));
    assert_ne!(
        changed.get("src/main.rs").unwrap().digest,
        cold.get("src/main.rs").unwrap().digest
    );
    let (_, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!(stats.hashed, 0);

    // A file removed and one added: the others still come from the cache.
    fs::remove_file(root.join("Dockerfile")).unwrap();
    write(root, "src/new.rs", "// new\n");
    settle();
    let (_, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!((stats.files, stats.hashed), (4, 1));
    let (_, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!(stats.hashed, 0);
    let leftovers: Vec<_> = fs::read_dir(state.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the cache, no temporary file");

    // A file changed just before a run is not trusted on the next one.
    write(root, "Dockerfile", "FROM busybox\n");
    let (_, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!(stats.hashed, 1);
    let (again, stats) = ContextIndex::build(root, &Matcher::default(), Some(&cache)).unwrap();
    assert_eq!(stats.hashed, 1, "racily clean: hashed again");
    assert_eq!(
        again.get("Dockerfile").unwrap().digest,
        ContextIndex::build(root, &Matcher::default(), None)
            .unwrap()
            .0
            .get("Dockerfile")
            .unwrap()
            .digest
    );
}

#[test]
fn hard_links_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", "same inode");
    fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
    let (index, stats) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    assert_eq!((stats.files, stats.hashed), (2, 1));
    assert_eq!(
        index.get("a").unwrap().digest,
        index.get("b").unwrap().digest
    );
}

#[test]
fn bad_contexts_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap_err();
    assert!(matches!(err, IndexError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("pipe"), "{err}");
    // Ignored, it is no problem.
    let (index, _) =
        ContextIndex::build(dir.path(), &Matcher::parse("pipe").unwrap(), None).unwrap();
    assert!(index.entries().is_empty());

    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = ContextIndex::build(&file, &Matcher::default(), None).unwrap_err();
    assert!(matches!(err, IndexError::NotAFolder { .. }), "{err}");
    let err = ContextIndex::build(&dir.path().join("none"), &Matcher::default(), None).unwrap_err();
    assert!(err.to_string().contains("none"), "{err}");
}

#[test]
fn serde_and_the_compact_form_round_trip_and_validate() {
    let dir = sample();
    let (index, _) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    let json = serde_json::to_string(&index).unwrap();
    let back: ContextIndex = serde_json::from_str(&json).unwrap();
    assert_eq!(back, index);
    let bytes = index.encode();
    assert_eq!(ContextIndex::decode(&bytes).unwrap(), index);
    for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(ContextIndex::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }

    let entry = Entry::plain_dir;
    for (entries, what) in [
        (vec![entry("../x")], "leaves"),
        (vec![entry("/x")], "relative"),
        (vec![entry("a/./b")], "relative"),
        (vec![entry("b"), entry("a")], "sorted"),
        (vec![entry("a"), entry("a")], "sorted"),
        (
            vec![Entry {
                kind: EntryKind::File,
                ..entry("f")
            }],
            "digest",
        ),
    ] {
        let err = ContextIndex::from_entries(entries).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
    let hostile = r#"{"entries":[{"path":"../etc/passwd","kind":{"type":"dir"},"mode":0,"uid":0,"gid":0,"size":0,"mtime_ns":0}]}"#;
    assert!(serde_json::from_str::<ContextIndex>(hostile).is_err());
}

#[test]
fn the_context_root_may_be_a_symlink_but_nothing_below_is_followed() {
    let dir = sample();
    let outside = tempfile::tempdir().unwrap();
    let root_link = outside.path().join("ctx");
    std::os::unix::fs::symlink(dir.path(), &root_link).unwrap();
    write(outside.path(), "secret/key", "do not send");
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("escape")).unwrap();
    let (via_link, _) = ContextIndex::build(&root_link, &Matcher::default(), None).unwrap();
    let (direct, _) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    assert_eq!(via_link, direct);
    assert!(matches!(
        via_link.get("escape").unwrap().kind,
        EntryKind::Symlink { .. }
    ));
    assert!(
        via_link
            .entries()
            .iter()
            .all(|e| !e.path.starts_with("escape/"))
    );
}
