//! Image archives: what `docker save` writes and `docker load` reads, and OCI
//! image layouts.
//!
//! `save` writes one tar that is both: an OCI layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`) plus Docker's `manifest.json`, as Docker
//! 25 and later do. `load` reads either form, and older `docker save` tars
//! (`<id>/layer.tar`).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, ImageError, Result};
use crate::image::digest::{self, Hasher};
use crate::image::progress::Progress;
use crate::image::pull::{self, OCI_INDEX, OCI_MANIFEST, Platform};
use crate::image::reference::{ImageRef, familiar};
use crate::image::store::{ImageRecord, LayerRecord, Store};
use crate::image::unpack::Compression;

/// Writes `images` (each with the full tagged names to record) as one tar at `out`.
pub fn save(store: &Store, images: &[(ImageRecord, Vec<String>)], out: &Path) -> Result<()> {
    let file = fs::File::create(out).map_err(Error::io("create", out))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let w = |e: std::io::Error| Error::io("write", out)(e);
    let mut seen = std::collections::HashSet::new();
    append_dir(&mut tar, "blobs/").map_err(w)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(w)?;
    let mut index_entries = Vec::new();
    let mut docker_manifest = Vec::new();
    for (image, tags) in images {
        let mut blobs = vec![image.manifest_digest.clone(), image.id.clone()];
        blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
        for d in blobs {
            if !seen.insert(d.clone()) {
                continue;
            }
            let path = store.blob_path(&d)?;
            let mut f = fs::File::open(&path).map_err(Error::io("open", &path))?;
            let len = f.metadata().map_err(Error::io("inspect", &path))?.len();
            let mut header = file_header(len);
            tar.append_data(
                &mut header,
                format!("blobs/sha256/{}", digest::hex_of(&d)?),
                &mut f,
            )
            .map_err(w)?;
        }
        let manifest_len = store.read_blob(&image.manifest_digest)?.len();
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = serde_json::json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest,
                "size": manifest_len,
            });
            if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
                obj.insert("annotations".to_string(), a);
            }
            d
        };
        if tags.is_empty() {
            index_entries.push(descriptor(None));
        }
        for t in tags {
            let short_tag = t.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
            index_entries.push(descriptor(Some(serde_json::json!({
                "io.containerd.image.name": t,
                "org.opencontainers.image.ref.name": short_tag,
            }))));
        }
        docker_manifest.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", digest::hex_of(&image.id)?),
            "RepoTags": tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
            "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.trim_start_matches("sha256:"))).collect::<Vec<_>>(),
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": index_entries,
    });
    let files: [(&str, Vec<u8>); 3] = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        (
            "index.json",
            serde_json::to_vec(&index).map_err(Error::json("index.json"))?,
        ),
        (
            "manifest.json",
            serde_json::to_vec(&docker_manifest).map_err(Error::json("manifest.json"))?,
        ),
    ];
    for (name, data) in files {
        let mut header = file_header(data.len() as u64);
        tar.append_data(&mut header, name, data.as_slice())
            .map_err(w)?;
    }
    let mut inner = tar.into_inner().map_err(w)?;
    inner.flush().map_err(w)?;
    for (image, _) in images {
        store.image_event("save", &image.id, &image.id, Some(&image.id));
    }
    Ok(())
}

fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mtime(0);
    tar.append_data(&mut h, name, std::io::empty())
}

/// Extracts regular files and folders of `tar_path` into `dir`; nothing else
/// is written, so no entry can reach outside `dir`.
fn extract(tar_path: &Path, dir: &Path) -> Result<()> {
    let file = fs::File::open(tar_path).map_err(Error::io("open", tar_path))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let bad =
        |e: std::io::Error| Error::from(ImageError::Archive(format!("not a readable tar: {e}")));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let rel = crate::image::unpack::safe_relative(&path).map_err(|m| {
            Error::from(ImageError::Archive(format!(
                "entry {:?}: {m}",
                path.display().to_string()
            )))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(Error::io("create", &target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
                }
                let mut out = fs::File::create(&target).map_err(Error::io("create", &target))?;
                std::io::copy(&mut entry, &mut out).map_err(Error::io("write", &target))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(Error::io("open", path))?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Moves `path` into the store as a blob after hashing it; `expected` must
/// match when given.
fn adopt(store: &Store, path: &Path, expected: Option<&str>) -> Result<String> {
    let actual = hash_file(path)?;
    if let Some(want) = expected
        && want != actual
    {
        return Err(Error::from(ImageError::Archive(format!(
            "blob {want} has digest {actual}"
        ))));
    }
    if !store.has_blob(&actual) {
        let tmp = store.temp_path("adopt");
        fs::copy(path, &tmp).map_err(Error::io("copy", path))?;
        if let Ok(f) = fs::File::open(&tmp) {
            let _ = f.sync_all();
        }
        store.commit_blob(&tmp, &actual)?;
    }
    Ok(actual)
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An image read from an archive whose blobs are in the store.
struct Pending {
    record: ImageRecord,
    tags: Vec<String>,
}

fn blob_file(dir: &Path, digest: &str) -> Result<PathBuf> {
    let hex =
        digest::hex_of(digest).map_err(|e| Error::from(ImageError::Archive(e.to_string())))?;
    Ok(dir.join("blobs/sha256").join(hex))
}

fn read_layout(store: &Store, dir: &Path) -> Result<Vec<Pending>> {
    let docker_path = dir.join("manifest.json");
    let index_path = dir.join("index.json");
    // OCI manifests present in the layout, by config digest, to keep their
    // exact bytes (and so their digests) when possible.
    let mut oci: Vec<OciImage> = Vec::new();
    if index_path.is_file() {
        let bytes = fs::read(&index_path).map_err(Error::io("read", &index_path))?;
        collect_index(store, dir, &bytes, &HashMap::new(), &mut oci, 0)?;
    }
    let mut out = Vec::new();
    if docker_path.is_file() {
        let bytes = fs::read(&docker_path).map_err(Error::io("read", &docker_path))?;
        let entries: Vec<DockerEntry> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::from(ImageError::Archive(format!("malformed manifest.json: {e}")))
        })?;
        for e in entries {
            let config_path = dir.join(
                crate::image::unpack::safe_relative(Path::new(&e.config))
                    .map_err(ImageError::Archive)?,
            );
            let config_digest = adopt(store, &config_path, None)?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let p = dir.join(
                    crate::image::unpack::safe_relative(Path::new(l))
                        .map_err(ImageError::Archive)?,
                );
                let d = adopt(store, &p, None)?;
                layers.push(d);
            }
            let tags = e.repo_tags.unwrap_or_default();
            let known = oci
                .iter()
                .find(|o| o.config == config_digest && o.layers == layers);
            let (manifest_bytes, media_type) = match known {
                Some(o) => (o.manifest.clone(), o.media_type.clone()),
                None => (
                    synthesize(store, &config_digest, &layers)?,
                    OCI_MANIFEST.to_string(),
                ),
            };
            out.push(finish(store, manifest_bytes, media_type, tags)?);
        }
        return Ok(out);
    }
    if !index_path.is_file() {
        return Err(Error::from(ImageError::Archive(
            "neither manifest.json (docker save) nor index.json (OCI layout) found".to_string(),
        )));
    }
    for o in oci {
        let names = full_names(&o.names);
        out.push(finish(store, o.manifest, o.media_type, names)?);
    }
    Ok(out)
}

/// An image manifest found in an OCI layout.
struct OciImage {
    manifest: Vec<u8>,
    media_type: String,
    config: String,
    layers: Vec<String>,
    names: Vec<String>,
}

/// Collects the image manifests an index names, adopting their config and
/// layer blobs into the store (each checked against its digest).
fn collect_index(
    store: &Store,
    dir: &Path,
    index_bytes: &[u8],
    inherited: &HashMap<String, String>,
    out: &mut Vec<OciImage>,
    depth: usize,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Desc {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        digest: String,
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Desc>,
    }
    if depth > 2 {
        return Err(Error::from(ImageError::Archive(
            "indexes nested too deeply".to_string(),
        )));
    }
    let index: Index = serde_json::from_slice(index_bytes)
        .map_err(|e| Error::from(ImageError::Archive(format!("malformed index.json: {e}"))))?;
    let host = Platform::host();
    for d in index.manifests {
        let mut annotations = inherited.clone();
        annotations.extend(d.annotations);
        let path = blob_file(dir, &d.digest)?;
        let bytes = fs::read(&path).map_err(|e| {
            Error::from(ImageError::Archive(format!(
                "blob {} is missing: {e}",
                d.digest
            )))
        })?;
        if digest::of(&bytes) != d.digest {
            return Err(Error::from(ImageError::Archive(format!(
                "blob {} does not match its digest",
                d.digest
            ))));
        }
        if d.media_type == OCI_INDEX || d.media_type == pull::DOCKER_LIST {
            let chosen = pull::choose_from_index(&bytes, &host, &format!("index {}", d.digest))?;
            let sub =
                serde_json::json!({"manifests": [{"mediaType": OCI_MANIFEST, "digest": chosen}]});
            let sub = serde_json::to_vec(&sub).map_err(Error::json("index"))?;
            collect_index(store, dir, &sub, &annotations, out, depth + 1)?;
            continue;
        }
        let m = pull::parse_manifest(&bytes, &format!("manifest {}", d.digest))?;
        let media_type = m
            .media_type()
            .as_ref()
            .map_or_else(|| OCI_MANIFEST.to_string(), ToString::to_string);
        let config = m.config().digest().to_string();
        adopt(store, &blob_file(dir, &config)?, Some(&config))?;
        let mut layers = Vec::new();
        for l in m.layers() {
            let ld = l.digest().to_string();
            adopt(store, &blob_file(dir, &ld)?, Some(&ld))?;
            layers.push(ld);
        }
        let names = [
            "io.containerd.image.name",
            "org.opencontainers.image.ref.name",
        ]
        .iter()
        .filter_map(|k| annotations.get(*k).cloned())
        .collect();
        out.push(OciImage {
            manifest: bytes,
            media_type,
            config,
            layers,
            names,
        });
    }
    Ok(())
}

/// The first annotation that is a full reference (the OCI ref name may be
/// only a tag, which names no repository).
fn full_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.contains('/') && ImageRef::parse(n).is_ok())
        .take(1)
        .cloned()
        .collect()
}

fn synthesize(store: &Store, config_digest: &str, layers: &[String]) -> Result<Vec<u8>> {
    let config_len = store.read_blob(config_digest)?.len();
    let mut descs = Vec::new();
    for l in layers {
        let path = store.blob_path(l)?;
        let mut head = [0u8; 4];
        let mut f = fs::File::open(&path).map_err(Error::io("open", &path))?;
        let n = f.read(&mut head).map_err(Error::io("read", &path))?;
        let media_type = match Compression::sniff(&head[..n]) {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        };
        let size = f.metadata().map_err(Error::io("inspect", &path))?.len();
        descs.push(serde_json::json!({"mediaType": media_type, "digest": l, "size": size}));
    }
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_len},
        "layers": descs,
    }))
    .map_err(Error::json("manifest"))
}

fn finish(
    store: &Store,
    manifest_bytes: Vec<u8>,
    media_type: String,
    tags: Vec<String>,
) -> Result<Pending> {
    let bytes = manifest_bytes;
    let m = pull::parse_manifest(&bytes, "manifest in archive")?;
    let manifest_digest = store.put_blob(&bytes, None)?;
    let config_digest = m.config().digest().to_string();
    let (_, diff_ids) = pull::read_config(store, &config_digest, m.layers().len())?;
    let mut layers = Vec::new();
    for (l, diff) in m.layers().iter().zip(diff_ids) {
        let d = l.digest().to_string();
        if !store.has_blob(&d) {
            return Err(Error::from(ImageError::Archive(format!(
                "layer {d} is missing from the archive"
            ))));
        }
        layers.push(LayerRecord {
            digest: d,
            media_type: l.media_type().to_string(),
            size: l.size(),
            diff_id: diff,
        });
    }
    let mut full_tags = Vec::new();
    for t in tags {
        let r = ImageRef::parse(&t)?;
        if let Some(tagged) = r.tagged() {
            full_tags.push(tagged);
        }
    }
    Ok(Pending {
        record: ImageRecord {
            id: config_digest,
            manifest_digest,
            manifest_media_type: media_type,
            size: layers.iter().map(|l| l.size).sum(),
            layers,
            repo_tags: vec![],
            repo_digests: vec![],
            added: crate::timefmt::now(),
            build_cache: false,
        },
        tags: full_tags,
    })
}

/// Loads the archive at `tar_path` into the store, unpacking its layers, and
/// reports `Loaded image: NAME` lines. Returns the names (or IDs) loaded.
pub async fn load(store: &Arc<Store>, tar_path: &Path, progress: &Progress) -> Result<Vec<String>> {
    let _gc = store.gc_lock.read().await;
    let dir = store.temp_path("load");
    let store2 = Arc::clone(store);
    let (tar2, dir2) = (tar_path.to_path_buf(), dir.clone());
    let pending = tokio::task::spawn_blocking(move || -> Result<Vec<Pending>> {
        fs::create_dir(&dir2).map_err(Error::io("create", &dir2))?;
        extract(&tar2, &dir2)?;
        read_layout(&store2, &dir2)
    })
    .await
    .map_err(|e| Error::from(ImageError::Archive(format!("load task failed: {e}"))))
    .and_then(|r| r);
    let dir3 = dir.clone();
    let _ = tokio::task::spawn_blocking(move || fs::remove_dir_all(dir3)).await;
    let pending = pending?;
    let mut loaded = Vec::new();
    for p in pending {
        let chains = p.record.chain_ids();
        for (layer, chain) in p.record.layers.iter().zip(chains) {
            pull::ensure_snapshot(store, &layer.digest, &chain, &layer.diff_id).await?;
        }
        if p.tags.is_empty() {
            store.add_image(p.record.clone(), None, None)?;
            progress.stream(&format!("Loaded image ID: {}\n", p.record.id));
            loaded.push(p.record.id.clone());
        }
        for t in &p.tags {
            store.add_image(p.record.clone(), Some(t), None)?;
            progress.stream(&format!("Loaded image: {}\n", familiar(t)));
            loaded.push(t.clone());
        }
        let id = &p.record.id;
        store.image_event("load", id, id, Some(id));
    }
    Ok(loaded)
}
