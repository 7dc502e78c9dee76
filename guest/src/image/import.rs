//! `docker import`: a root filesystem tar (plain, gzip or zstd) becomes a
//! one-layer image with no parent, its configuration made of `--change`
//! instructions only, and Docker's history entry (`Imported from -`, or
//! the message given).

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, ImageError, Result};
use crate::image::changes;
use crate::image::commit::{History, new_image};
use crate::image::digest::HashingReader;
use crate::image::layer::LAYER_MEDIA_TYPE;
use crate::image::reference::familiar;
use crate::image::store::{ImageRecord, LayerRecord, Store};
use crate::image::unpack;

/// What `docker import` asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Where the tar came from, as Docker names it: `-` or the URL.
    pub source: String,
    /// The full tagged name to give the image.
    pub tag: Option<String>,
    /// The commit message (`-m`); `Imported from SOURCE` without one.
    pub message: Option<String>,
    /// `--change` instructions.
    pub changes: Vec<String>,
}

/// Refuses the compressions Docker takes that the engine cannot read,
/// naming them, before anything is written.
fn check_compression(path: &Path) -> Result<()> {
    let mut head = [0u8; 6];
    let mut f = fs::File::open(path).map_err(Error::io("open", path))?;
    let n = f.read(&mut head).map_err(Error::io("read", path))?;
    let head = &head[..n];
    let which = if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    };
    match which {
        Some(w) => Err(ImageError::Archive(format!(
            "the imported archive is {w}-compressed, which the servin engine does not read: give it a plain, gzip or zstd tar"
        ))
        .into()),
        None if n == 0 => Err(ImageError::Archive("the imported archive is empty".to_string()).into()),
        None => Ok(()),
    }
}

/// Imports the tar at `path` as a new image and tags it as asked.
pub async fn import(store: &Arc<Store>, path: &Path, opts: &ImportOptions) -> Result<ImageRecord> {
    let mut config = json!({});
    changes::apply(&mut config, &opts.changes)?;
    let (store2, path2) = (Arc::clone(store), path.to_path_buf());
    let comment = opts
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let image = tokio::task::spawn_blocking(move || -> Result<ImageRecord> {
        check_compression(&path2)?;
        let gc = store2.gc_lock.blocking_read();
        let layer = store_layer(&store2, &path2)?;
        new_image(
            &store2,
            None,
            Some(layer),
            config,
            History {
                created_by: String::new(),
                comment: Some(comment),
                author: None,
                empty_layer: false,
            },
            &gc,
        )
    })
    .await
    .map_err(|e| ImageError::Task("import", e.to_string()))??;
    if let Some(t) = &opts.tag {
        store.tag(&image.id, t)?;
    }
    let name = opts
        .tag
        .as_deref()
        .map(familiar)
        .unwrap_or_else(|| image.id.clone());
    store.image_event("import", &image.id, &name, Some(&image.id));
    Ok(store.image(&image.id).unwrap_or(image))
}

/// Writes the uncompressed tar as a layer blob (hashing it on the way)
/// and unpacks its snapshot, both crash-safely.
fn store_layer(store: &Store, path: &Path) -> Result<LayerRecord> {
    let tmp = store.temp_path("import");
    let copied = (|| {
        let mut reader = HashingReader::new(unpack::decompressed(path)?);
        let mut out = io::BufWriter::with_capacity(
            1 << 20,
            fs::File::create(&tmp).map_err(Error::io("create", &tmp))?,
        );
        io::copy(&mut reader, &mut out).map_err(|e| {
            Error::from(ImageError::Archive(format!(
                "reading the imported archive: {e}"
            )))
        })?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("write", &tmp)(e.into_error()))?;
        file.sync_all().map_err(Error::io("sync", &tmp))?;
        Ok::<_, Error>(reader.into_hasher())
    })();
    let hasher = match copied {
        Ok(h) => h,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let size = hasher.len();
    let diff_id = hasher.finish();
    let lock = store.lock_for(&diff_id);
    let _guard = lock.blocking_lock();
    if store.has_blob(&diff_id) {
        let _ = fs::remove_file(&tmp);
    } else {
        store.commit_blob(&tmp, &diff_id)?;
    }
    if !store.has_snapshot(&diff_id) {
        let snap = store.temp_path("snapshot");
        let made = fs::create_dir(&snap)
            .map_err(Error::io("create", &snap))
            .and_then(|()| {
                let blob = store.blob_path(&diff_id)?;
                unpack::unpack_layer(&blob, &diff_id, Some(&diff_id), &snap)
            });
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&snap);
            return Err(e);
        }
        crate::state::sync_dir(&snap);
        let dest = store.snapshot_path(&diff_id)?;
        fs::rename(&snap, &dest).map_err(Error::io("rename", &dest))?;
    }
    Ok(LayerRecord {
        digest: diff_id.clone(),
        media_type: LAYER_MEDIA_TYPE.to_string(),
        size,
        diff_id,
    })
}
