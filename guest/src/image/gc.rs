//! Garbage collection of the blob store after images are removed: under
//! the store's GC lock (a pull in progress holds it for reading, so its
//! blobs are not taken from under it), off the async threads, as deleting
//! files may take a while.

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{ImageError, Result};

/// Deletes the blobs and snapshots no image needs any more; the bytes freed.
pub async fn collect_garbage(engine: &Arc<Engine>) -> Result<u64> {
    let _gc = engine.store.gc_lock.write().await;
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || engine.store.collect_garbage())
        .await
        .map_err(|e| ImageError::Task("garbage collection", e.to_string()))?
}
