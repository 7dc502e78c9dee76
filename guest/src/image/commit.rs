//! New images on top of a parent: a layer (or none) and a configuration,
//! written as an OCI image config and manifest, as `docker commit`,
//! `docker import` and each step of a build make them.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::image::pull::{OCI_MANIFEST, Platform};
use crate::image::store::{ImageRecord, LayerRecord, Store};

/// The media type of the image configs written here.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The history entry a new image adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The command that made it (`docker history`'s CREATED BY).
    pub created_by: String,
    /// Its comment (`docker commit -m`).
    pub comment: Option<String>,
    /// Its author (`docker commit -a`).
    pub author: Option<String>,
    /// Whether it made no layer (a metadata-only build step).
    pub empty_layer: bool,
}

/// The OCI image config of `image` (its config blob) as JSON.
pub fn image_config(store: &Store, image: &ImageRecord) -> Result<Value> {
    let bytes = store.read_blob(&image.id)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Content {
        subject: format!("config {}", image.id),
        message: format!("malformed image config: {e}"),
    })
}

/// Makes and records (untagged) the image `parent` (or scratch) plus
/// `layer` (or none), with `config` as the config's `config` object (Env,
/// Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels...)
/// and `history` appended to the parent's. The platform is the parent's,
/// or this machine's for scratch. Blocking (it writes blobs): hold a read
/// guard of [`Store::gc_lock`] from before the layer was written until
/// this returns, so garbage collection cannot take what the new image
/// needs before it is recorded.
pub fn new_image(
    store: &Store,
    parent: Option<&ImageRecord>,
    layer: Option<LayerRecord>,
    config: Value,
    history: History,
    gc: &tokio::sync::RwLockReadGuard<'_, ()>,
) -> Result<ImageRecord> {
    make_image(store, parent, layer, config, history, Keep::Durable, gc)
}

/// As [`new_image`], for a build step: the image is recorded as build
/// cache, its config and manifest written without an fsync and its record
/// saved with the store's next save (see [`Store::add_build_cache`]). The
/// build makes its result durable when it ends ([`Store::flush`], or the
/// save that tags it).
pub fn new_cache_image(
    store: &Store,
    parent: Option<&ImageRecord>,
    layer: Option<LayerRecord>,
    config: Value,
    history: History,
    gc: &tokio::sync::RwLockReadGuard<'_, ()>,
) -> Result<ImageRecord> {
    make_image(store, parent, layer, config, history, Keep::BuildCache, gc)
}

/// How a new image is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Blobs and record synced before this returns.
    Durable,
    /// Build cache: synced with the store's next save.
    BuildCache,
}

fn make_image(
    store: &Store,
    parent: Option<&ImageRecord>,
    layer: Option<LayerRecord>,
    config: Value,
    history: History,
    keep: Keep,
    _gc: &tokio::sync::RwLockReadGuard<'_, ()>,
) -> Result<ImageRecord> {
    let put = |bytes: &[u8]| match keep {
        Keep::Durable => store.put_blob(bytes, None),
        Keep::BuildCache => store.put_blob_unsynced(bytes),
    };
    if !(config.is_object() || config.is_null()) {
        return Err(Error::Content {
            subject: "new image config".to_string(),
            message: format!("the config must be a JSON object, not {config}"),
        });
    }
    let parent_config = parent.map(|p| image_config(store, p)).transpose()?;
    let text = |k: &str| {
        parent_config
            .as_ref()
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let host = Platform::host();
    let mut layers: Vec<LayerRecord> = parent.map(|p| p.layers.clone()).unwrap_or_default();
    let mut diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let mut entries: Vec<Value> = parent_config
        .as_ref()
        .and_then(|c| c.get("history"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // A parent whose config tells fewer layer steps than it has layers
    // (an image written without history) gets blank steps for them, so
    // each layer keeps a history entry as `docker history` pairs them.
    let told = entries
        .iter()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .count();
    if told < layers.len() {
        let blank = std::iter::repeat_n(json!({"created_by": ""}), layers.len() - told);
        entries.splice(0..0, blank);
    }
    let created = crate::timefmt::format_nanos(std::time::SystemTime::now());
    let mut entry = json!({"created": created, "created_by": history.created_by});
    if let Some(a) = history.author.as_ref().filter(|a| !a.is_empty()) {
        entry["author"] = json!(a);
    }
    if let Some(c) = history.comment.as_ref().filter(|c| !c.is_empty()) {
        entry["comment"] = json!(c);
    }
    let empty_layer = history.empty_layer || layer.is_none();
    if empty_layer {
        entry["empty_layer"] = json!(true);
    }
    entries.push(entry);
    if let Some(l) = layer {
        diff_ids.push(l.diff_id.clone());
        layers.push(l);
    }
    let mut image = json!({
        "architecture": text("architecture").unwrap_or(host.architecture),
        "os": text("os").unwrap_or(host.os),
        "created": created,
        "config": if config.is_null() { json!({}) } else { config },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": entries,
    });
    if let Some(v) = text("variant") {
        image["variant"] = json!(v);
    }
    if let Some(a) = history.author.as_ref().filter(|a| !a.is_empty()) {
        image["author"] = json!(a);
    }
    if let Some(c) = history.comment.as_ref().filter(|c| !c.is_empty()) {
        image["comment"] = json!(c);
    }
    let config_bytes = serde_json::to_vec(&image).map_err(Error::json("image config"))?;
    let config_digest = put(&config_bytes)?;
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(Error::json("image manifest"))?;
    let manifest_digest = put(&manifest_bytes)?;
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest_digest,
        manifest_media_type: OCI_MANIFEST.to_string(),
        size: layers.iter().map(|l| l.size).sum(),
        layers,
        repo_tags: vec![],
        repo_digests: vec![],
        added: crate::timefmt::now(),
        build_cache: false,
    };
    match keep {
        Keep::Durable => {
            store.add_image(record, None, None)?;
        }
        Keep::BuildCache => store.add_build_cache(record),
    }
    store
        .image(&config_digest)
        .ok_or(Error::NoSuchImage(config_digest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::image::digest;

    fn layer(data: &[u8]) -> LayerRecord {
        let d = digest::of(data);
        LayerRecord {
            digest: d.clone(),
            media_type: crate::image::layer::LAYER_MEDIA_TYPE.to_string(),
            size: data.len() as u64,
            diff_id: d,
        }
    }

    #[test]
    fn a_child_keeps_its_parents_layers_history_and_platform() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let gc = store.gc_lock.blocking_read();
        let base = new_image(
            &store,
            None,
            Some(layer(b"one")),
            json!({"Cmd": ["sh"]}),
            History {
                created_by: String::new(),
                comment: Some("Imported from -".to_string()),
                ..History::default()
            },
            &gc,
        )
        .unwrap();
        let host = Platform::host();
        let c = image_config(&store, &base).unwrap();
        assert_eq!(c["os"], json!(host.os));
        assert_eq!(c["architecture"], json!(host.architecture));
        assert_eq!(c["comment"], "Imported from -");
        assert_eq!(c["history"][0]["created_by"], "");
        assert!(c["history"][0].get("empty_layer").is_none());

        let meta = new_image(
            &store,
            Some(&base),
            None,
            json!({"Env": ["A=1"]}),
            History {
                created_by: "ENV A=1".to_string(),
                ..History::default()
            },
            &gc,
        )
        .unwrap();
        let child = new_image(
            &store,
            Some(&meta),
            Some(layer(b"two")),
            json!({"Cmd": ["x"]}),
            History {
                created_by: "commit".to_string(),
                comment: Some("made".to_string()),
                author: Some("me".to_string()),
                empty_layer: false,
            },
            &gc,
        )
        .unwrap();
        assert_eq!(child.layers.len(), 2);
        assert!(child.repo_tags.is_empty());
        let c = image_config(&store, &child).unwrap();
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!([digest::of(b"one"), digest::of(b"two")])
        );
        let h = c["history"].as_array().unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[1]["empty_layer"], true);
        assert_eq!(h[2]["author"], "me");
        assert_eq!(h[2]["comment"], "made");
        assert_eq!(c["author"], "me");
        assert_eq!(c["config"]["Cmd"], json!(["x"]));
        let m: Value =
            serde_json::from_slice(&store.read_blob(&child.manifest_digest).unwrap()).unwrap();
        assert_eq!(m["config"]["digest"], json!(child.id));
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        assert_eq!(store.resolve(&child.id).unwrap(), child);
    }
}
