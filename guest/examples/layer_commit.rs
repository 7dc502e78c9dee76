//! Times a layer commit of an upper folder holding 1 GB in 100,000 files
//! (the image builder's benchmark step): `cargo run --release -p
//! servin-guest --example layer_commit [FOLDER]`. The folder (default: a
//! temporary one under /var/tmp) must be on the filesystem of the store
//! for the move to be a rename. Prints the times of writing the files,
//! of `commit_upper` with `Take::Move`, and of `Take::Copy`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use servin_guest::image::layer::{self, Exclusions, Take};
use servin_guest::image::store::Store;

const FILES: usize = 100_000;
const FILE_SIZE: usize = 10_000;

fn fill(upper: &std::path::Path) {
    let mut data = vec![0u8; FILE_SIZE];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    for d in 0..100 {
        let dir = upper.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES / 100 {
            data[0] = (d % 256) as u8;
            data[1] = (f % 256) as u8;
            let mut file = std::fs::File::create(dir.join(format!("f{f:04}"))).unwrap();
            file.write_all(&data).unwrap();
        }
    }
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let dir = tempfile::tempdir_in(&base).unwrap();
    let store = Store::open(&dir.path().join("root"), Default::default()).unwrap();
    for how in [Take::Move, Take::Copy] {
        let upper = dir.path().join(format!("upper-{how:?}"));
        let t = Instant::now();
        fill(&upper);
        // What the benchmark's step leaves on disk, as after a RUN.
        rustix::fs::sync();
        println!("write {FILES} files: {:?}", t.elapsed());
        let t = Instant::now();
        let gc = store.gc_lock.blocking_read();
        let l = layer::commit_upper(&store, &upper, &[], None, &Exclusions::none(), how, &gc)
            .unwrap()
            .unwrap();
        println!(
            "commit_upper {how:?}: {:?} ({} bytes of tar, {})",
            t.elapsed(),
            l.size,
            l.diff_id
        );
        drop(gc);
        std::fs::remove_dir_all(store.dir().join("snapshots")).unwrap();
        std::fs::create_dir(store.dir().join("snapshots")).unwrap();
        std::fs::remove_dir_all(store.dir().join("blobs")).unwrap();
        std::fs::create_dir_all(store.dir().join("blobs/sha256")).unwrap();
        let _ = std::fs::remove_dir_all(&upper);
    }
}
