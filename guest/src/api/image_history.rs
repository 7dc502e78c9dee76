//! `GET /images/{name}/history` (`docker history`): the image's history
//! from its config, newest first, each step that made a layer with that
//! layer's unpacked size. As in Docker, the newest step carries the image
//! ID and its tags; earlier ones are `<missing>` (no image of their own
//! here).

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::routes::{Body, json as json_response};
use crate::engine::Engine;
use crate::error::Result;
use crate::image::reference::familiar;

/// One step of an image's history as its config has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Seconds since the epoch (0 when not given).
    pub created: i64,
    /// The command that made it.
    pub created_by: String,
    /// Its comment.
    pub comment: String,
    /// Whether it made no layer.
    pub empty_layer: bool,
}

/// The steps of an image config (`history`); one step per layer when the
/// config has none.
pub fn steps(config: &Value, layers: usize) -> Vec<Step> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match config.get("history").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|h| Step {
                created: h
                    .get("created")
                    .and_then(Value::as_str)
                    .and_then(crate::timefmt::parse_rfc3339)
                    .unwrap_or(0),
                created_by: text(h, "created_by"),
                comment: text(h, "comment"),
                empty_layer: h.get("empty_layer").and_then(Value::as_bool) == Some(true),
            })
            .collect(),
        _ => (0..layers)
            .map(|_| Step {
                created: 0,
                created_by: String::new(),
                comment: String::new(),
                empty_layer: false,
            })
            .collect(),
    }
}

/// Docker's history rows, newest first: `sizes` are the layers' unpacked
/// sizes bottom first, given in order to the steps that made a layer.
pub fn rows(id: &str, tags: &[String], steps: &[Step], sizes: &[u64]) -> Vec<Value> {
    let mut sizes = sizes.iter();
    let mut out: Vec<Value> = steps
        .iter()
        .map(|s| {
            let size = if s.empty_layer {
                0
            } else {
                sizes.next().copied().unwrap_or(0)
            };
            json!({
                "Id": "<missing>",
                "Created": s.created,
                "CreatedBy": s.created_by,
                "Tags": null,
                "Size": size,
                "Comment": s.comment,
            })
        })
        .collect();
    out.reverse();
    if let Some(top) = out.first_mut() {
        top["Id"] = json!(id);
        if !tags.is_empty() {
            top["Tags"] = json!(tags);
        }
    }
    out
}

/// `GET /images/{name}/history`.
pub async fn history(engine: &Arc<Engine>, name: &str) -> Result<Response<Body>> {
    let img = engine.store.resolve(name)?;
    let config: Value = serde_json::from_slice(&engine.store.read_blob(&img.id)?)
        .map_err(crate::error::Error::json("image config"))?;
    let snapshots: Vec<std::path::PathBuf> = img
        .chain_ids()
        .iter()
        .map(|c| engine.store.snapshot_path(c))
        .collect::<Result<_>>()?;
    // Walking the layers' files is blocking work.
    let sizes = tokio::task::spawn_blocking(move || {
        snapshots
            .iter()
            .map(|p| crate::volume::dir_size(p))
            .collect::<Vec<u64>>()
    })
    .await
    .unwrap_or_default();
    let tags: Vec<String> = img.repo_tags.iter().map(|t| familiar(t)).collect();
    let out = rows(&img.id, &tags, &steps(&config, img.layers.len()), &sizes);
    Ok(json_response(StatusCode::OK, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_go_to_the_steps_that_made_them_newest_first() {
        let config = json!({"history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"},
            {"created": "2024-01-02T00:00:00Z", "created_by": "ENV A=1", "empty_layer": true},
            {"created": "2024-01-03T00:00:00Z", "created_by": "RUN make", "comment": "c"},
        ]});
        let rows = rows(
            "sha256:abc",
            &["box:1".to_string()],
            &steps(&config, 2),
            &[100, 7],
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["Id"], "sha256:abc");
        assert_eq!(rows[0]["Tags"], json!(["box:1"]));
        assert_eq!(rows[0]["CreatedBy"], "RUN make");
        assert_eq!(rows[0]["Size"], 7);
        assert_eq!(rows[0]["Comment"], "c");
        assert_eq!(rows[1]["Id"], "<missing>");
        assert_eq!(rows[1]["Size"], 0);
        assert_eq!(rows[1]["Tags"], Value::Null);
        assert_eq!(rows[2]["Size"], 100);
        assert_eq!(rows[2]["Created"], 1_704_067_200);
    }

    #[test]
    fn a_config_without_history_has_a_step_per_layer() {
        let rows = rows("sha256:x", &[], &steps(&json!({}), 2), &[5, 6]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Size"], 6);
        assert_eq!(rows[0]["Tags"], Value::Null);
        assert_eq!(rows[1]["Size"], 5);
    }
}
