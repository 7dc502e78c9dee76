//! Pulling images from registries into the store.
//!
//! [`resolve`] fetches the manifest (choosing the host's platform from an
//! index) so that unknown images and bad credentials fail before any
//! progress is streamed; [`fetch`] then downloads what is missing, verifying
//! each blob while it streams, and unpacks each layer once.

use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, ImageError, Result};
use crate::image::digest::{self, Hasher};
use crate::image::progress::Progress;
use crate::image::reference::{ImageRef, familiar};
use crate::image::registry::{Registries, auth_error, registry_error};
use crate::image::store::{ImageRecord, LayerRecord, Store, short_id};
use crate::image::unpack;

/// Largest manifest or index accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const ACCEPTED: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// An OS/architecture pair an image is chosen for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Self {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Self {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Self {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(ImageError::InvalidPlatform(s.to_string()).into()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest chosen for pulling.
pub struct Resolved {
    /// The client that fetched it.
    pub client: Arc<Client>,
    /// The reference asked for.
    pub reference: ImageRef,
    /// The manifest's bytes.
    pub manifest_bytes: Vec<u8>,
    /// Their digest.
    pub manifest_digest: String,
    /// Their media type.
    pub media_type: String,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The digest users pull by (the index's when there is one).
    pub repo_digest: String,
}

fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    if p.schema_version != Some(2) {
        return None;
    }
    Some(match p.media_type {
        Some(m) => m,
        None if p.manifests.is_some() => OCI_INDEX.to_string(),
        None => OCI_MANIFEST.to_string(),
    })
}

async fn fetch_manifest(
    client: &Client,
    r: &ImageRef,
    auth: &RegistryAuth,
) -> Result<(Vec<u8>, String, String)> {
    let context = format!("pull {r}");
    let (bytes, _) = client
        .pull_manifest_raw(&r.to_oci(), auth, ACCEPTED)
        .await
        .map_err(|e| registry_error(&context, e))?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(Error::Content {
            subject: format!("manifest of {r}"),
            message: format!(
                "{} bytes is over the {MAX_MANIFEST_BYTES} byte limit",
                bytes.len()
            ),
        });
    }
    let actual = digest::of(&bytes);
    if let Some(want) = &r.digest
        && *want != actual
    {
        return Err(Error::Content {
            subject: format!("manifest of {r}"),
            message: format!("content has digest {actual}"),
        });
    }
    let media_type = media_type_of(&bytes).ok_or_else(|| Error::Content {
        subject: format!("manifest of {r}"),
        message: "malformed manifest: not a schema version 2 JSON document".to_string(),
    })?;
    Ok((bytes.to_vec(), actual, media_type))
}

/// Chooses the manifest for `platform` from an index.
pub fn choose_from_index(index_bytes: &[u8], platform: &Platform, subject: &str) -> Result<String> {
    let index: ImageIndex = serde_json::from_slice(index_bytes).map_err(|e| Error::Content {
        subject: subject.to_string(),
        message: format!("malformed image index: {e}"),
    })?;
    let found = index.manifests().iter().find(|m| {
        m.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == platform.os
                && p.architecture().to_string() == platform.architecture
                && (platform.variant.is_none() || p.variant() == &platform.variant)
        })
    });
    found
        .map(|m| m.digest().to_string())
        .ok_or_else(|| Error::Registry {
            context: subject.to_string(),
            message: format!("no matching manifest for {platform} in the manifest list entries"),
            status: 404,
        })
}

/// Parses an image manifest, refusing anything malformed.
pub fn parse_manifest(bytes: &[u8], subject: &str) -> Result<ImageManifest> {
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| Error::Content {
        subject: subject.to_string(),
        message: format!("malformed manifest: {e}"),
    })?;
    for d in std::iter::once(m.config()).chain(m.layers().iter()) {
        digest::hex_of(d.digest().as_ref()).map_err(|e| Error::Content {
            subject: subject.to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(m)
}

/// How long a registry may take to hand over a manifest.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Fetches and checks the manifest of `r` for `platform`, within
/// [`RESOLVE_TIMEOUT`] (oci-client can wait forever on some registry
/// answers).
pub async fn resolve(
    registries: &Registries,
    r: &ImageRef,
    platform: &Platform,
    auth: &RegistryAuth,
) -> Result<Resolved> {
    tokio::time::timeout(
        RESOLVE_TIMEOUT,
        resolve_unbounded(registries, r, platform, auth),
    )
    .await
    .map_err(|_| Error::Registry {
        context: format!("pull {r}"),
        message: format!(
            "the registry did not answer within {} seconds",
            RESOLVE_TIMEOUT.as_secs()
        ),
        status: 504,
    })?
}

async fn resolve_unbounded(
    registries: &Registries,
    r: &ImageRef,
    platform: &Platform,
    auth: &RegistryAuth,
) -> Result<Resolved> {
    let client = registries.client(r, auth)?;
    let first = fetch_manifest(&client, r, auth).await;
    if let Err(Error::Registry { status: 403, .. }) = &first
        && matches!(auth, RegistryAuth::Basic(..))
        && let Err(e) = client
            .auth(&r.to_oci(), auth, RegistryOperation::Pull)
            .await
    {
        // oci-client goes on anonymously when a token server refuses the
        // credentials; asking again tells that apart from missing access.
        return Err(auth_error(&format!("pull {r}"), auth, e));
    }
    let (mut bytes, mut digest, mut media_type) = first?;
    let repo_digest = digest.clone();
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        let chosen = choose_from_index(&bytes, platform, &format!("pull {r}"))?;
        (bytes, digest, media_type) =
            fetch_manifest(&client, &r.with_digest(&chosen), auth).await?;
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            return Err(Error::Content {
                subject: format!("manifest {chosen} of {r}"),
                message: "an index inside an index is not supported".to_string(),
            });
        }
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(Error::Content {
            subject: format!("manifest of {r}"),
            message: format!("unsupported media type {media_type:?}"),
        });
    }
    let manifest = parse_manifest(&bytes, &format!("manifest of {r}"))?;
    Ok(Resolved {
        client,
        reference: r.clone(),
        manifest_bytes: bytes,
        manifest_digest: digest,
        media_type,
        manifest,
        repo_digest,
    })
}

/// Downloads blob `digest` of `size` bytes unless present, verifying it while
/// it streams. Concurrent calls for the same digest download it once.
#[allow(clippy::too_many_arguments)]
pub async fn download_blob(
    store: &Store,
    client: &Client,
    r: &ImageRef,
    digest: &str,
    size: u64,
    limit: Option<u64>,
    progress: &Progress,
    show: bool,
) -> Result<bool> {
    let lock = store.lock_for(digest);
    // Another pull downloading the same blob holds the lock: wait for it
    // (and then find the blob present) rather than fetching it again.
    let _guard = match lock.try_lock() {
        Ok(guard) => guard,
        Err(_) => {
            if show {
                progress.status(Some(&short_id(digest)), "Waiting");
            }
            lock.lock().await
        }
    };
    if store.has_blob(digest) {
        return Ok(false);
    }
    let subject = format!("blob {digest} of {r}");
    if let Some(max) = limit
        && size > max
    {
        return Err(Error::Content {
            subject,
            message: format!("{size} bytes is over the {max} byte limit"),
        });
    }
    let tmp = store.temp_path("download");
    let result = stream_to(
        store, client, r, digest, size, &tmp, progress, show, &subject,
    )
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result.map(|()| true)
}

#[allow(clippy::too_many_arguments)]
async fn stream_to(
    store: &Store,
    client: &Client,
    r: &ImageRef,
    digest: &str,
    size: u64,
    tmp: &Path,
    progress: &Progress,
    show: bool,
    subject: &str,
) -> Result<()> {
    let id = short_id(digest);
    let mut stream = client
        .pull_blob_stream(&r.to_oci(), digest)
        .await
        .map_err(|e| registry_error(subject, e))?;
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(Error::io("create", tmp))?;
    let mut hasher = Hasher::default();
    let mut last_report = 0u64;
    let content_error = |message: String| Error::Content {
        subject: subject.to_string(),
        message,
    };
    while let Some(chunk) =
        stream.stream.try_next().await.map_err(|e| {
            content_error(format!("download failed after {} bytes: {e}", hasher.len()))
        })?
    {
        hasher.update(&chunk);
        if hasher.len() > size {
            return Err(content_error(format!(
                "registry sent more than the {size} bytes the manifest gives"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(Error::io("write", tmp))?;
        if show && (hasher.len() - last_report >= 512 * 1024 || hasher.len() == size) {
            last_report = hasher.len();
            progress.bytes(&id, "Downloading", hasher.len(), size);
        }
    }
    if hasher.len() != size {
        return Err(content_error(format!(
            "truncated: got {} of {size} bytes",
            hasher.len()
        )));
    }
    let actual = hasher.finish();
    if actual != digest {
        return Err(content_error(format!("content has digest {actual}")));
    }
    file.sync_all().await.map_err(Error::io("sync", tmp))?;
    drop(file);
    store.commit_blob(tmp, digest)?;
    Ok(())
}

/// Unpacks layer `layer` into the snapshot of `chain_id` unless present.
/// Returns whether it unpacked anything.
pub async fn ensure_snapshot(
    store: &Store,
    layer: &str,
    chain_id: &str,
    diff_id: &str,
) -> Result<bool> {
    let lock = store.lock_for(chain_id);
    let _guard = lock.lock().await;
    if store.has_snapshot(chain_id) {
        return Ok(false);
    }
    let blob = store.blob_path(layer)?;
    let dest = store.snapshot_path(chain_id)?;
    let tmp = store.temp_path("snapshot");
    let (layer_s, diff_s) = (layer.to_string(), diff_id.to_string());
    let tmp2 = tmp.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<()> {
        std::fs::create_dir(&tmp2).map_err(Error::io("create", &tmp2))?;
        unpack::unpack_layer(&blob, &layer_s, Some(&diff_s), &tmp2)?;
        crate::state::sync_dir(&tmp2);
        std::fs::rename(&tmp2, &dest).map_err(Error::io("rename", &dest))?;
        if let Some(parent) = dest.parent() {
            crate::state::sync_dir(parent);
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Unpack {
        layer: layer.to_string(),
        entry: String::new(),
        message: format!("unpack task failed: {e}"),
    })
    .and_then(|r| r);
    if result.is_err() {
        let tmp3 = tmp.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(tmp3)).await;
    }
    result.map(|()| true)
}

/// Reads and checks an image config blob; returns it and its diff IDs.
pub fn read_config(
    store: &Store,
    config_digest: &str,
    layers: usize,
) -> Result<(ImageConfiguration, Vec<String>)> {
    let bytes = store.read_blob(config_digest)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|e| Error::Content {
            subject: format!("config {config_digest}"),
            message: format!("malformed image config: {e}"),
        })?;
    let diff_ids: Vec<String> = config.rootfs().diff_ids().clone();
    if diff_ids.len() != layers {
        return Err(Error::Content {
            subject: format!("config {config_digest}"),
            message: format!("lists {} layers, the manifest {layers}", diff_ids.len()),
        });
    }
    for d in &diff_ids {
        digest::hex_of(d)?;
    }
    Ok((config, diff_ids))
}

/// Downloads and unpacks what `resolved` needs, then records the image.
pub async fn fetch(store: &Store, resolved: Resolved, progress: &Progress) -> Result<ImageRecord> {
    let _gc = store.gc_lock.read().await;
    let r = &resolved.reference;
    let m = &resolved.manifest;
    if let Some(t) = &r.tag {
        progress.status(Some(t), &format!("Pulling from {}", r.repository));
    }
    let config_digest = m.config().digest().to_string();
    download_blob(
        store,
        &resolved.client,
        r,
        &config_digest,
        m.config().size(),
        Some(MAX_CONFIG_BYTES),
        progress,
        false,
    )
    .await?;
    let (_config, diff_ids) = read_config(store, &config_digest, m.layers().len())?;
    let chain_ids = digest::chain_ids(&diff_ids);

    let mut work = Vec::new();
    for (i, layer) in m.layers().iter().enumerate() {
        let d = layer.digest().to_string();
        let chain = chain_ids.get(i).cloned().unwrap_or_default();
        let diff = diff_ids.get(i).cloned().unwrap_or_default();
        if store.has_blob(&d) && store.has_snapshot(&chain) {
            progress.status(Some(&short_id(&d)), "Already exists");
        } else {
            progress.status(Some(&short_id(&d)), "Pulling fs layer");
            work.push((d, layer.size(), chain, diff));
        }
    }
    let pulled = futures_util::stream::iter(work.into_iter().map(|(d, size, chain, diff)| {
        let client = Arc::clone(&resolved.client);
        let progress = progress.clone();
        let r = r.clone();
        async move {
            let id = short_id(&d);
            if download_blob(store, &client, &r, &d, size, None, &progress, true).await? {
                progress.status(Some(&id), "Verifying Checksum");
                progress.status(Some(&id), "Download complete");
            }
            progress.bytes(&id, "Extracting", size, size);
            ensure_snapshot(store, &d, &chain, &diff).await?;
            progress.status(Some(&id), "Pull complete");
            Ok::<(), Error>(())
        }
    }))
    .buffer_unordered(3)
    .collect::<Vec<_>>()
    .await;
    for p in pulled {
        p?;
    }

    store.put_blob(&resolved.manifest_bytes, Some(&resolved.manifest_digest))?;
    let layers: Vec<LayerRecord> = m
        .layers()
        .iter()
        .zip(diff_ids.iter())
        .map(|(l, diff)| LayerRecord {
            digest: l.digest().to_string(),
            media_type: l.media_type().to_string(),
            size: l.size(),
            diff_id: diff.clone(),
        })
        .collect();
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest_digest: resolved.manifest_digest.clone(),
        manifest_media_type: resolved.media_type.clone(),
        size: layers.iter().map(|l| l.size).sum(),
        layers,
        repo_tags: vec![],
        repo_digests: vec![],
        added: crate::timefmt::now(),
        build_cache: false,
    };
    let tag = r.tagged();
    let repo_digest = format!("{}@{}", r.name(), resolved.repo_digest);
    let had = store.add_image(record, tag.as_deref(), Some(&repo_digest))?;
    progress.status(None, &format!("Digest: {}", resolved.repo_digest));
    let shown = familiar(&r.to_string());
    if had {
        progress.status(None, &format!("Status: Image is up to date for {shown}"));
    } else {
        progress.status(None, &format!("Status: Downloaded newer image for {shown}"));
    }
    store.image_event("pull", &shown, &shown, Some(&config_digest));
    store
        .image(&config_digest)
        .ok_or_else(|| Error::NoSuchImage(config_digest.clone()))
}
