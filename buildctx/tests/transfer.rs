//! Packing what the engine lacks and receiving it into a blob store.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, fs, io::Read as _, path::Path};

use servin_buildctx::{BlobStore, ContextIndex, Matcher, TransferError, pack};

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn context() -> (tempfile::TempDir, ContextIndex) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "alpha\n");
    write(dir.path(), "same/a-copy.txt", "alpha\n");
    write(dir.path(), "b.bin", &"b".repeat(100_000));
    write(dir.path(), "empty", "");
    let (index, _) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    (dir, index)
}

/// A tar stream of regular-file entries, as `pack` writes them.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["sha256", "tmp"] {
        for e in fs::read_dir(dir.join(sub)).unwrap() {
            out.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn pack_and_receive_round_trip_only_what_is_missing() {
    let (ctx, index) = context();
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let all = index.file_digests();
    assert_eq!(all.len(), 3, "two files share one content");
    let missing = store.missing(&all).unwrap();
    assert_eq!(missing, all);

    let mut stream = Vec::new();
    let sent = pack(ctx.path(), &index, &missing, &mut stream).unwrap();
    assert_eq!((sent.count, sent.bytes), (3, 6 + 100_000));
    let got = store.receive(stream.as_slice()).unwrap();
    assert_eq!((got.count, got.bytes), (3, 6 + 100_000));
    assert!(store.missing(&all).unwrap().is_empty());
    assert!(
        files_under(state.path())
            .iter()
            .all(|f| f.starts_with("sha256/"))
    );

    let digest = index.get("a.txt").unwrap().digest.clone().unwrap();
    let mut content = String::new();
    store
        .open_blob(&digest)
        .unwrap()
        .read_to_string(&mut content)
        .unwrap();
    assert_eq!(content, "alpha\n");

    // One file changes: only it is missing, only it travels.
    write(ctx.path(), "b.bin", &"c".repeat(100_000));
    let (index, _) = ContextIndex::build(ctx.path(), &Matcher::default(), None).unwrap();
    let missing = store.missing(&index.file_digests()).unwrap();
    assert_eq!(
        missing,
        [index.get("b.bin").unwrap().digest.clone().unwrap()]
    );
    let mut stream = Vec::new();
    pack(ctx.path(), &index, &missing, &mut stream).unwrap();
    assert_eq!(store.receive(stream.as_slice()).unwrap().count, 1);
    // Receiving it again stores nothing new.
    assert_eq!(store.receive(stream.as_slice()).unwrap().count, 0);

    // gc keeps what the new index uses.
    let keep: HashSet<String> = index.file_digests().into_iter().collect();
    let removed = store.gc(&keep).unwrap();
    assert_eq!((removed.count, removed.bytes), (1, 100_000));
    assert!(store.missing(&index.file_digests()).unwrap().is_empty());
}

#[test]
fn pack_refuses_a_file_changed_since_indexing() {
    let (ctx, index) = context();
    let wanted = index.file_digests();
    // Same size, other content.
    write(ctx.path(), "b.bin", &format!("{}x", "b".repeat(99_999)));
    let err = pack(ctx.path(), &index, &wanted, Vec::new()).unwrap_err();
    assert!(matches!(err, TransferError::Changed { .. }), "{err}");
    assert!(err.to_string().contains("b.bin"), "{err}");
    // Other size.
    write(ctx.path(), "b.bin", "short");
    let err = pack(ctx.path(), &index, &wanted, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("b.bin changed"), "{err}");
    fs::remove_file(ctx.path().join("b.bin")).unwrap();
    let err = pack(ctx.path(), &index, &wanted, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("b.bin"), "{err}");
}

#[test]
fn pack_refuses_digests_it_does_not_have() {
    let (ctx, index) = context();
    let unknown = format!("sha256:{}", "0".repeat(64));
    let err = pack(ctx.path(), &index, &[unknown], Vec::new()).unwrap_err();
    assert!(matches!(err, TransferError::UnknownDigest { .. }), "{err}");
    let err = pack(ctx.path(), &index, &["md5:x".into()], Vec::new()).unwrap_err();
    assert!(matches!(err, TransferError::BadDigest { .. }), "{err}");
}

#[test]
fn receive_refuses_a_corrupted_blob_and_keeps_nothing_of_its_stream() {
    let (ctx, index) = context();
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let a = index.get("a.txt").unwrap().digest.clone().unwrap();
    let b = index.get("b.bin").unwrap().digest.clone().unwrap();
    let a_hex = a.trim_start_matches("sha256:");
    let b_hex = b.trim_start_matches("sha256:");

    // A good blob, then one whose content is not its name's digest.
    let stream = tar_of(&[(a_hex, b"alpha\n"), (b_hex, b"not b")]);
    let err = store.receive(stream.as_slice()).unwrap_err();
    assert!(matches!(err, TransferError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains(&b), "{err}");
    assert!(
        files_under(state.path()).is_empty(),
        "{:?}",
        files_under(state.path())
    );
    assert_eq!(
        store.missing(&[a.clone(), b.clone()]).unwrap(),
        [a.clone(), b.clone()]
    );

    // Names that are not digests, and other entry kinds.
    for stream in [tar_of(&[("not-a-digest", b"x")]), tar_of(&[("abc", b"x")])] {
        let err = store.receive(stream.as_slice()).unwrap_err();
        assert!(matches!(err, TransferError::BadEntry { .. }), "{err}");
    }
    // A folder named like a blob.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_path(a_hex).unwrap();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_cksum();
    builder.append(&header, std::io::empty()).unwrap();
    let stream = builder.into_inner().unwrap();
    let err = store.receive(stream.as_slice()).unwrap_err();
    assert!(matches!(err, TransferError::BadEntry { .. }), "{err}");
    // A stream cut short.
    let mut stream = Vec::new();
    pack(ctx.path(), &index, std::slice::from_ref(&b), &mut stream).unwrap();
    let err = store.receive(&stream[..5_000]).unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::Stream(_) | TransferError::Mismatch { .. }
        ),
        "{err}"
    );
    assert!(files_under(state.path()).is_empty());
    assert!(matches!(
        store.open_blob(&b),
        Err(TransferError::NotInStore { .. })
    ));
}

#[test]
fn open_clears_what_dead_receivers_left() {
    let state = tempfile::tempdir().unwrap();
    let stale = state.path().join("tmp/recv-999999999-0");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("x"), "half").unwrap();
    BlobStore::open(state.path()).unwrap();
    assert!(!stale.exists());
    assert!(matches!(
        BlobStore::open(state.path()).unwrap().path("sha256:xyz"),
        Err(TransferError::BadDigest { .. })
    ));
}

#[test]
fn missing_lists_the_store_for_many_digests() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..300 {
        write(dir.path(), &format!("f/{i}"), &format!("content {i}"));
    }
    let (index, _) = ContextIndex::build(dir.path(), &Matcher::default(), None).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let all = index.file_digests();
    assert_eq!(store.missing(&all).unwrap().len(), 300);
    let mut stream = Vec::new();
    pack(dir.path(), &index, &all[..299], &mut stream).unwrap();
    assert_eq!(store.receive(stream.as_slice()).unwrap().count, 299);
    assert_eq!(store.missing(&all).unwrap(), [all[299].clone()]);
    let mut bad = all.clone();
    bad.push("sha256:nothex".into());
    assert!(matches!(
        store.missing(&bad),
        Err(TransferError::BadDigest { .. })
    ));
}
