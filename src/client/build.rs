//! Builds: the context indexed here (its stat cache kept between runs), only
//! the contents the engine lacks sent, then the build's events streamed
//! back (see `servin_proto::build`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use servin_buildctx::{ContextIndex, IndexStats};
use servin_proto::build::{
    BLOBS_PATH, BUILD_PATH, BuildEvent, BuildRequest, Missing, context_path, missing_path,
};

use super::{Engine, Error};

/// What was sent before the build started.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// How indexing went (files, how many were hashed).
    pub index: IndexStats,
    /// Whether the index itself had to be sent.
    pub index_sent: bool,
    /// Contents sent.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Where the stat cache of a context's index lives: one file per context
/// folder under `$XDG_CACHE_HOME/servin/contexts` (else `~/.cache/...`).
fn cache_file(context: &Path) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let abs = std::fs::canonicalize(context).ok()?;
    let hex: String = Sha256::digest(abs.as_os_str().as_encoded_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = base.join("servin").join("contexts");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join(hex))
}

impl Engine {
    /// Sends the context at `context` (honouring the `.dockerignore` that
    /// applies to `dockerfile`) and returns its digest.
    pub fn send_context(&self, context: &Path, dockerfile: &Path) -> Result<(String, Sent), Error> {
        let step = format!("send the build context {}", context.display());
        let matcher = servin_buildctx::load_for(context, dockerfile)
            .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let cache = cache_file(context);
        let (index, stats) = ContextIndex::build(context, &matcher, cache.as_deref())
            .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let digest = index.digest();
        let mut sent = Sent {
            index: stats,
            ..Sent::default()
        };
        let resp = self.send(Method::GET, &missing_path(&digest), &[], Bytes::new(), &step)?;
        let missing: Missing = if resp.status() == StatusCode::BAD_REQUEST
            || resp.status() == StatusCode::NOT_FOUND
        {
            // The engine does not hold this index: send it.
            let _ = self.body(resp, &step);
            let body = serde_json::to_vec(&index)
                .map_err(|e| Error::Invalid(format!("{step}: encode the index: {e}")))?;
            sent.index_sent = true;
            let headers = [("Content-Type", "application/json".to_string())];
            let resp = self.send(Method::PUT, &context_path(&digest), &headers, Bytes::from(body), &step)?;
            let resp = self.check(resp, &step)?;
            let body = self.body(resp, &step)?;
            serde_json::from_slice(&body).map_err(|source| Error::Decode {
                step: step.clone(),
                source,
            })?
        } else {
            let resp = self.check(resp, &step)?;
            let body = self.body(resp, &step)?;
            serde_json::from_slice(&body).map_err(|source| Error::Decode {
                step: step.clone(),
                source,
            })?
        };
        if !missing.missing.is_empty() {
            let mut tar = Vec::new();
            servin_buildctx::pack(context, &index, &missing.missing, &mut tar)
                .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
            sent.files = missing.missing.len();
            sent.bytes = index
                .entries()
                .iter()
                .filter(|e| e.digest.as_ref().is_some_and(|d| missing.missing.contains(d)))
                .map(|e| e.size)
                .sum();
            let headers = [("Content-Type", "application/x-tar".to_string())];
            let resp = self.send(Method::POST, BLOBS_PATH, &headers, Bytes::from(tar), &step)?;
            let resp = self.check(resp, &step)?;
            let _ = self.body(resp, &step)?;
        }
        Ok((digest, sent))
    }

    /// Runs `request` (its `context` already sent); `each` sees every
    /// event. Returns the last event ([`BuildEvent::Built`] or
    /// [`BuildEvent::Failed`]).
    pub fn build(
        &self,
        request: &BuildRequest,
        mut each: impl FnMut(&BuildEvent),
    ) -> Result<BuildEvent, Error> {
        let step = "build".to_string();
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Invalid(format!("{step}: encode the request: {e}")))?;
        let headers = [("Content-Type", "application/json".to_string())];
        let resp = self.send(Method::POST, BUILD_PATH, &headers, Bytes::from(body), &step)?;
        let resp = self.check(resp, &step)?;
        let mut last = None;
        self.json_lines(resp, &step, |v| {
            let event: BuildEvent = serde_json::from_value(v).map_err(|source| Error::Decode {
                step: step.clone(),
                source,
            })?;
            each(&event);
            if matches!(event, BuildEvent::Built { .. } | BuildEvent::Failed { .. }) {
                last = Some(event);
            }
            Ok(())
        })?;
        last.ok_or_else(|| Error::Invalid("build: the engine ended the build without a result".to_string()))
    }
}
