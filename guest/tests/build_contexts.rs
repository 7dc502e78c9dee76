//! The builder's context calls against a real engine: an index sent whole
//! in its binary form, then as a delta from it (`PUT ...?base=`), the
//! contents each one lacks, and every way a delta is refused: a base the
//! engine does not hold (`404`, the CLI then sends the index whole), a
//! result that does not have the digest named, a malformed body.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::fs;
use std::path::Path;

use servin_buildctx::{ContextIndex, Delta, Matcher};
use servin_proto::build::{
    BLOBS_PATH, DELTA_CONTENT_TYPE, INDEX_CONTENT_TYPE, Missing, context_delta_path, context_path,
    missing_path,
};
use support::EngineGuard;

fn index_of(dir: &Path) -> ContextIndex {
    ContextIndex::build(dir, &Matcher::parse("").unwrap(), None)
        .unwrap()
        .0
}

fn missing_of(r: &servin_testkit::http::Response) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    let mut m: Missing = serde_json::from_slice(&r.body).unwrap();
    m.missing.sort();
    m.missing
}

fn digest_of(index: &ContextIndex, path: &str) -> String {
    index.get(path).unwrap().digest.clone().unwrap()
}

fn put_whole(e: &EngineGuard, index: &ContextIndex) -> servin_testkit::http::Response {
    e.api(
        "PUT",
        &context_path(&index.digest()),
        &[("Content-Type", INDEX_CONTENT_TYPE)],
        &index.encode(),
    )
}

fn put_delta(
    e: &EngineGuard,
    digest: &str,
    base: &str,
    body: &[u8],
) -> servin_testkit::http::Response {
    e.api(
        "PUT",
        &context_delta_path(digest, base),
        &[("Content-Type", DELTA_CONTENT_TYPE)],
        body,
    )
}

/// Sends the contents `index` lacks, as the CLI does.
fn send_contents(e: &EngineGuard, dir: &Path, index: &ContextIndex, missing: &[String]) {
    let mut tar = Vec::new();
    servin_buildctx::pack(dir, index, missing, &mut tar).unwrap();
    let r = e.api(
        "POST",
        BLOBS_PATH,
        &[("Content-Type", "application/x-tar")],
        &tar,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn an_index_sent_whole_then_as_a_delta_asks_only_for_new_content() {
    let mut e = EngineGuard::start();
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path();
    fs::create_dir(dir.join("src")).unwrap();
    fs::write(dir.join("src/a.txt"), "a").unwrap();
    fs::write(dir.join("src/b.txt"), "b").unwrap();
    fs::write(dir.join("gone.txt"), "gone").unwrap();
    let first = index_of(dir);

    let r = put_whole(&e, &first);
    let mut all = vec![
        digest_of(&first, "gone.txt"),
        digest_of(&first, "src/a.txt"),
        digest_of(&first, "src/b.txt"),
    ];
    all.sort();
    assert_eq!(missing_of(&r), all);
    send_contents(&e, dir, &first, &all);
    let r = e.api("GET", &missing_path(&first.digest()), &[], b"");
    assert!(missing_of(&r).is_empty());
    // Written to disk on a thread of its own, while the build goes on.
    let stored = |digest: &str| {
        let path = e
            .root()
            .join("build/contexts")
            .join(format!("{}.idx", &digest["sha256:".len()..]));
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !path.is_file() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        path.is_file()
    };
    assert!(stored(&first.digest()), "{} is not stored", first.digest());

    // One file changed, one added, one removed, one folder added.
    fs::write(dir.join("src/a.txt"), "a, changed").unwrap();
    fs::create_dir(dir.join("new")).unwrap();
    fs::write(dir.join("new/c.txt"), "b").unwrap();
    fs::remove_file(dir.join("gone.txt")).unwrap();
    let second = index_of(dir);
    let delta = Delta::between(&first, &second);
    assert_eq!(delta.removed, ["gone.txt"]);
    let r = put_delta(&e, &second.digest(), &first.digest(), &delta.encode());
    // `new/c.txt` has `src/b.txt`'s content: only the changed file.
    assert_eq!(missing_of(&r), [digest_of(&second, "src/a.txt")]);

    // Kept, and read back from disk by an engine started again.
    assert!(
        stored(&second.digest()),
        "{} is not stored",
        second.digest()
    );
    e.kill();
    e.spawn();
    let r = e.api("GET", &missing_path(&second.digest()), &[], b"");
    assert_eq!(missing_of(&r), [digest_of(&second, "src/a.txt")]);

    // A base whose contents were pruned: the engine no longer holds it,
    // and the CLI sends the index whole, which asks for everything.
    let r = e.api("POST", "/build/prune", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    fs::write(dir.join("src/b.txt"), "b, changed").unwrap();
    let third = index_of(dir);
    let delta = Delta::between(&second, &third);
    let r = put_delta(&e, &third.digest(), &second.digest(), &delta.encode());
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains(&second.digest()), "{}", r.text());
    let r = put_whole(&e, &third);
    assert_eq!(missing_of(&r).len(), 3);
}

#[test]
fn bad_deltas_are_refused_naming_what_is_wrong() {
    let e = EngineGuard::start();
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path();
    fs::write(dir.join("a"), "a").unwrap();
    fs::write(dir.join("b"), "b").unwrap();
    let base = index_of(dir);
    assert_eq!(put_whole(&e, &base).status, 200);
    fs::write(dir.join("b"), "b2").unwrap();
    let next = index_of(dir);
    let delta = Delta::between(&base, &next).encode();

    // A base the engine never saw.
    let unknown = format!("sha256:{}", "ab".repeat(32));
    let r = put_delta(&e, &next.digest(), &unknown, &delta);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains(&unknown), "{}", r.text());

    // A result that does not have the digest named: nothing is stored.
    let wrong = format!("sha256:{}", "cd".repeat(32));
    let r = put_delta(&e, &wrong, &base.digest(), &delta);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains(&next.digest()) && r.text().contains(&wrong),
        "{}",
        r.text()
    );
    let r = e.api("GET", &missing_path(&wrong), &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());

    // A delta applied to a base it was not made from.
    let other = Delta::between(&next, &base).encode();
    let r = put_delta(&e, &next.digest(), &base.digest(), &other);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("delta"), "{}", r.text());

    // Malformed bodies, and a delta without its base or the other way.
    let r = put_delta(&e, &next.digest(), &base.digest(), b"SVBCXD01\x05");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("malformed context index delta"),
        "{}",
        r.text()
    );
    let r = e.api(
        "PUT",
        &context_path(&next.digest()),
        &[("Content-Type", DELTA_CONTENT_TYPE)],
        &delta,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("?base="), "{}", r.text());
    let r = e.api(
        "PUT",
        &context_delta_path(&next.digest(), &base.digest()),
        &[("Content-Type", INDEX_CONTENT_TYPE)],
        &next.encode(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e.api(
        "PUT",
        &context_path(&next.digest()),
        &[("Content-Type", INDEX_CONTENT_TYPE)],
        b"SVBCXI01\xff",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("malformed context index"), "{}", r.text());

    // The good delta is still taken after all that.
    let r = put_delta(&e, &next.digest(), &base.digest(), &delta);
    assert_eq!(missing_of(&r).len(), 2);

    // An index an older engine stored as JSON counts as not held.
    let hex = &base.digest()["sha256:".len()..];
    let contexts = e.root().join("build/contexts");
    fs::remove_file(contexts.join(format!("{hex}.idx"))).unwrap();
    fs::write(
        contexts.join(format!("{hex}.json")),
        serde_json::to_vec(&base).unwrap(),
    )
    .unwrap();
    let e2 = {
        let mut e = e;
        e.kill();
        e.spawn();
        e
    };
    let r = e2.api("GET", &missing_path(&base.digest()), &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
}
