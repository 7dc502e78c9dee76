//! Measures the context index on a generated context of 50,000 files and
//! 200 MB (or on a folder given as the first argument):
//!
//! ```text
//! cargo run --release -p servin-buildctx --example index_bench [CONTEXT_DIR]
//! ```
//!
//! Prints, one line each: sha256 throughput of one thread on memory (the
//! ceiling), a cold index (no stat cache), a warm re-index (nothing
//! changed), a re-index after one file changed, the index digest, JSON and
//! compact encode/decode, and pack + receive of the one changed file.
//! File content is in the page cache for all runs (the files were just
//! written): the figures are CPU and syscall costs, not disk reads. The
//! warm re-index also shows the CPU time it used, since on a shared
//! machine wall time includes waiting for a core.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use servin_buildctx::{BlobStore, ContextIndex, Matcher, pack};
use sha2::{Digest as _, Sha256};

const FILES: usize = 50_000;
const PER_DIR: usize = 100;
const TOTAL_BYTES: usize = 200 * 1024 * 1024;

fn report(what: &str, took: Duration, extra: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{what:<44} {:>9.1} ms  {extra}",
        took.as_secs_f64() * 1e3
    )
    .unwrap();
}

/// Writes the context: 500 folders of 100 files, sizes spread around
/// 4 KiB so that the total is 200 MB, content from a cheap generator.
fn generate(root: &Path) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let average = TOTAL_BYTES / FILES;
    for d in 0..FILES / PER_DIR {
        let dir = root.join(format!("pkg{d:03}/src"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..PER_DIR {
            let size = (next() as usize % (2 * average)).max(1);
            let mut data = Vec::with_capacity(size + 8);
            while data.len() < size {
                data.extend_from_slice(&next().to_le_bytes());
            }
            data.truncate(size);
            fs::write(dir.join(format!("file{f:03}.rs")), data).unwrap();
        }
    }
}

/// User + system CPU time of this process so far, from `/proc/self/stat`
/// (clock ticks, 10 ms each): the machine is shared, so wall time alone
/// says little about the work done.
fn cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let root = match std::env::args().nth(1) {
        Some(dir) => Path::new(&dir).to_path_buf(),
        None => {
            let root = scratch.path().join("context");
            let start = Instant::now();
            generate(&root);
            report("generate 50,000 files / 200 MB", start.elapsed(), "");
            root
        }
    };
    let cache = scratch.path().join("index.cache");
    let matcher = Matcher::parse("**/*.tmp\n!keep.tmp").unwrap();

    let data = vec![7u8; 64 * 1024 * 1024];
    let start = Instant::now();
    let _ = Sha256::digest(&data);
    let took = start.elapsed();
    report(
        "sha256, one thread, 64 MB in memory",
        took,
        &format!("{:.0} MB/s", 64.0 / took.as_secs_f64()),
    );

    let start = Instant::now();
    let (index, stats) = ContextIndex::build(&root, &matcher, None).unwrap();
    let took = start.elapsed();
    report(
        "index, no stat cache",
        took,
        &format!(
            "{} entries, {} files hashed, {:.0} MB/s",
            index.entries().len(),
            stats.hashed,
            stats.bytes_hashed as f64 / 1e6 / took.as_secs_f64()
        ),
    );
    let start = Instant::now();
    let (_, stats) = ContextIndex::build(&root, &matcher, Some(&cache)).unwrap();
    report(
        "index, cold stat cache (writes it)",
        start.elapsed(),
        &format!("{} hashed", stats.hashed),
    );
    // Let the files written last age past the racy margin.
    std::thread::sleep(Duration::from_millis(200));
    let (_, _) = ContextIndex::build(&root, &matcher, Some(&cache)).unwrap();
    for run in 1..=5 {
        let cpu = cpu_time();
        let start = Instant::now();
        let (_, stats) = ContextIndex::build(&root, &matcher, Some(&cache)).unwrap();
        report(
            &format!("re-index, warm cache, nothing changed ({run})"),
            start.elapsed(),
            &format!(
                "{} hashed, {:.0} ms CPU",
                stats.hashed,
                (cpu_time() - cpu).as_secs_f64() * 1e3
            ),
        );
    }

    let start = Instant::now();
    let digest = index.digest();
    report("index digest", start.elapsed(), &digest[..19]);

    let start = Instant::now();
    let json = serde_json::to_vec(&index).unwrap();
    let encode = start.elapsed();
    let start = Instant::now();
    let back: ContextIndex = serde_json::from_slice(&json).unwrap();
    let decode = start.elapsed();
    assert_eq!(back, index);
    report("JSON encode", encode, &format!("{} bytes", json.len()));
    report("JSON decode (validated)", decode, "");
    let start = Instant::now();
    let bytes = index.encode();
    let encode = start.elapsed();
    let start = Instant::now();
    let back = ContextIndex::decode(&bytes).unwrap();
    let decode = start.elapsed();
    assert_eq!(back, index);
    report("compact encode", encode, &format!("{} bytes", bytes.len()));
    report("compact decode (validated)", decode, "");

    // The engine holds everything; one file changes; only it travels.
    let store = BlobStore::open(&scratch.path().join("store")).unwrap();
    let start = Instant::now();
    let mut stream = Vec::new();
    pack(&root, &index, &index.file_digests(), &mut stream).unwrap();
    let packed = start.elapsed();
    let start = Instant::now();
    let got = store.receive(stream.as_slice()).unwrap();
    report(
        "pack everything (first build)",
        packed,
        &format!("{} bytes of tar", stream.len()),
    );
    report(
        "receive everything",
        start.elapsed(),
        &format!("{} blobs, {} bytes", got.count, got.bytes),
    );
    drop(stream);

    let changed = index
        .entries()
        .iter()
        .find(|e| e.digest.is_some())
        .unwrap()
        .path
        .clone();
    fs::write(root.join(&changed), b"changed content\n").unwrap();
    let start = Instant::now();
    let (index, stats) = ContextIndex::build(&root, &matcher, Some(&cache)).unwrap();
    report(
        "re-index after one file changed",
        start.elapsed(),
        &format!("{} hashed", stats.hashed),
    );
    let start = Instant::now();
    let missing = store.missing(&index.file_digests()).unwrap();
    let mut stream = Vec::new();
    pack(&root, &index, &missing, &mut stream).unwrap();
    let got = store.receive(stream.as_slice()).unwrap();
    report(
        "missing + pack + receive of that file",
        start.elapsed(),
        &format!("{} blob, {} bytes of tar", got.count, stream.len()),
    );
    let start = Instant::now();
    let selections = index.select("**/*.rs").unwrap();
    let digest = index.content_digest(&selections);
    report(
        "select **/*.rs + content digest",
        start.elapsed(),
        &format!("{} matches {}", selections.len(), &digest[..19]),
    );
}
