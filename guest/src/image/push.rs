//! Pushing images from the store to a registry.

use futures_util::StreamExt;
use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;
use tokio::io::AsyncReadExt;

use crate::error::{Error, ImageError, Result};
use crate::image::progress::Progress;
use crate::image::reference::{ImageRef, familiar};
use crate::image::registry::{Registries, auth_error, registry_error};
use crate::image::store::{ImageRecord, Store, short_id};

const CHUNK: usize = 4 * 1024 * 1024;

/// Pushes `image` as `target` (a tagged reference); returns the manifest
/// digest the registry now holds.
pub async fn push(
    store: &Store,
    registries: &Registries,
    image: &ImageRecord,
    target: &ImageRef,
    auth: &RegistryAuth,
    progress: &Progress,
) -> Result<String> {
    let _gc = store.gc_lock.read().await;
    let client = registries.client(target, auth)?;
    let oci_ref = target.to_oci();
    let context = format!("push {target}");
    progress.status(
        None,
        &format!("The push refers to repository [{}]", target.name()),
    );
    client
        .auth(&oci_ref, auth, RegistryOperation::Push)
        .await
        .map_err(|e| auth_error(&context, auth, e))?;
    for layer in &image.layers {
        progress.status(Some(&short_id(&layer.digest)), "Preparing");
    }
    let mut blobs: Vec<(String, u64, bool)> = image
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size, true))
        .collect();
    let config_len = store.read_blob(&image.id)?.len() as u64;
    blobs.push((image.id.clone(), config_len, false));
    for (digest, size, is_layer) in blobs {
        let id = short_id(&digest);
        let exists = client
            .blob_exists(&oci_ref, &digest)
            .await
            .map_err(|e| registry_error(&context, e))?;
        if exists {
            if is_layer {
                progress.status(Some(&id), "Layer already exists");
            }
            continue;
        }
        let path = store.blob_path(&digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::io("open", &path))?;
        let stream = futures_util::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => {
                        return Some((
                            Err(oci_client::errors::OciDistributionError::IoError(e)),
                            None,
                        ));
                    }
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            Some((Ok(bytes::Bytes::from(buf)), Some(file)))
        })
        .boxed();
        if is_layer {
            progress.bytes(&id, "Pushing", 0, size);
        }
        client
            .push_blob_stream(&oci_ref, stream, &digest, Some(size))
            .await
            .map_err(|e| registry_error(&format!("{context}: blob {digest}"), e))?;
        if is_layer {
            progress.status(Some(&id), "Pushed");
        }
    }
    let manifest = store.read_blob(&image.manifest_digest)?;
    let content_type = image
        .manifest_media_type
        .parse()
        .map_err(|_| Error::from(ImageError::BadMediaType(image.manifest_media_type.clone())))?;
    client
        .push_manifest_raw(&oci_ref, manifest.clone(), content_type)
        .await
        .map_err(|e| registry_error(&format!("{context}: manifest"), e))?;
    // As a pull would, the image now knows its digest in this repository
    // (what `servin.lock` records).
    store.add_image(
        image.clone(),
        None,
        Some(&format!("{}@{}", target.name(), image.manifest_digest)),
    )?;
    let tag = target.tag.clone().unwrap_or_else(|| "latest".to_string());
    progress.status(
        None,
        &format!(
            "{tag}: digest: {} size: {}",
            image.manifest_digest,
            manifest.len()
        ),
    );
    progress.send_json(&serde_json::json!({
        "progressDetail": {},
        "aux": { "Tag": tag, "Digest": image.manifest_digest, "Size": manifest.len() }
    }));
    let pushed = familiar(&target.to_string());
    store.image_event("push", &pushed, &pushed, Some(&image.id));
    Ok(image.manifest_digest.clone())
}
