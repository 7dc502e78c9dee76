//! Builds: the context indexed here (its stat cache kept between runs), only
//! the contents the engine lacks sent, then the build's events streamed
//! back (see `servin_proto::build`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use servin_buildctx::{ContextIndex, Delta, IndexStats};
use servin_proto::build::{
    BLOBS_PATH, BUILD_PATH, BuildEvent, BuildRequest, DELTA_CONTENT_TYPE, INDEX_CONTENT_TYPE,
    Missing, context_delta_path, context_path, missing_path,
};

use super::{Engine, Error};

/// What was sent before the build started.
#[derive(Debug, Default)]
pub struct Sent {
    /// How indexing went (files, how many were hashed).
    pub index: IndexStats,
    /// Whether the index itself had to be sent.
    pub index_sent: bool,
    /// Whether it went as a delta from the index the engine accepted last.
    pub index_delta: bool,
    /// Contents sent.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The records for the next build (the stat cache, the index sent),
    /// written while this one runs.
    pub saving: Saving,
}

/// Files written on threads of their own while the build runs, so the
/// build request does not wait for them; waited for when dropped (the
/// CLI never exits with one half-written; each is a temporary file
/// renamed into place anyway).
#[derive(Default)]
pub struct Saving(Vec<Write>);

/// One of [`Saving`]'s writes: on its thread, or done already (no thread
/// could be made).
enum Write {
    Thread(std::thread::JoinHandle<Result<(), String>>),
    Done(Result<(), String>),
}

impl std::fmt::Debug for Saving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Saving({} writes)", self.0.len())
    }
}

impl Saving {
    /// Runs `write` on a thread (here, when no thread can be made).
    fn spawn(&mut self, write: impl FnOnce() -> Result<(), String> + Send + 'static) {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(write)));
        let take = |slot: &std::sync::Mutex<Option<_>>| {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        let theirs = std::sync::Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("save".into())
            .spawn(move || take(&theirs).map_or(Ok(()), |w| w()));
        self.0.push(match spawned {
            Ok(handle) => Write::Thread(handle),
            Err(_) => Write::Done(take(&slot).map_or(Ok(()), |w| w())),
        });
    }

    /// Waits for the writes; what each failed one says.
    pub fn finish(mut self) -> Vec<String> {
        self.0
            .drain(..)
            .filter_map(|w| {
                let done = match w {
                    Write::Thread(h) => h.join().unwrap_or_else(|_| {
                        Err("a thread writing the build's records panicked".to_string())
                    }),
                    Write::Done(r) => r,
                };
                done.err()
            })
            .collect()
    }
}

impl Drop for Saving {
    fn drop(&mut self) {
        for w in self.0.drain(..) {
            if let Write::Thread(h) = w {
                let _ = h.join();
            }
        }
    }
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

/// Where the index the engine accepted last for a context is kept, beside
/// its stat cache: the index's 32 digest bytes, then its binary form. A
/// rebuild sends its index as the change from that one.
fn sent_file(cache: &Path) -> PathBuf {
    cache.with_extension("sent")
}

/// The digest of the index in a sent file, read without the index.
fn sent_digest(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0u8; 32];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    Some(servin_buildctx::format_digest(&head))
}

/// The index in a sent file and its digest; none when the file is
/// missing or damaged (the index is then sent whole).
fn load_sent(path: &Path) -> Option<(String, ContextIndex)> {
    let bytes = std::fs::read(path).ok()?;
    let (digest, encoded) = bytes.split_at_checked(32)?;
    let index = ContextIndex::decode(encoded).ok()?;
    Some((servin_buildctx::format_digest(digest), index))
}

/// Keeps `index` as the one the engine accepted last: a temporary file
/// renamed over the old one. Best effort: without it the next rebuild
/// sends its index whole.
fn save_sent(path: &Path, digest: &str, index: &ContextIndex) {
    let Some(head) = servin_buildctx::parse_digest(digest) else {
        return;
    };
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(&index.encode());
    let tmp = path.with_extension(format!("sent.tmp-{}", std::process::id()));
    if std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl Engine {
    /// Sends the context at `context` (honouring the `.dockerignore` that
    /// applies to `dockerfile`) and returns its digest.
    pub fn send_context(&self, context: &Path, dockerfile: &Path) -> Result<(String, Sent), Error> {
        self.send_context_with(context, dockerfile, true)
    }

    /// [`Engine::send_context`]; without `contents`, only the index (what
    /// a dry run needs: cache keys are computed from content digests).
    pub fn send_context_with(
        &self,
        context: &Path,
        dockerfile: &Path,
        contents: bool,
    ) -> Result<(String, Sent), Error> {
        let step = format!("send the build context {}", context.display());
        let matcher = servin_buildctx::load_for(context, dockerfile)
            .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let cache = cache_file(context);
        let (index, stats, pending) =
            ContextIndex::build_deferred(context, &matcher, cache.as_deref())
                .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let mut sent = Sent {
            index: stats,
            ..Sent::default()
        };
        if let Some(pending) = pending {
            let step = step.clone();
            sent.saving
                .spawn(move || pending.save().map_err(|e| format!("{step}: {e}")));
        }
        let index = std::sync::Arc::new(index);
        let digest = index.digest();
        let missing = self.send_index(&index, &digest, cache.as_deref(), &mut sent, &step)?;
        if contents && !missing.missing.is_empty() {
            let mut tar = Vec::new();
            servin_buildctx::pack(context, &index, &missing.missing, &mut tar)
                .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
            sent.files = missing.missing.len();
            let wanted: std::collections::HashSet<&String> = missing.missing.iter().collect();
            sent.bytes = index
                .entries()
                .iter()
                .filter(|e| e.digest.as_ref().is_some_and(|d| wanted.contains(d)))
                .map(|e| e.size)
                .sum();
            let headers = [("Content-Type", "application/x-tar".to_string())];
            let resp = self.send(Method::POST, BLOBS_PATH, &headers, Bytes::from(tar), &step)?;
            let resp = self.check(resp, &step)?;
            let _ = self.body(resp, &step)?;
        }
        Ok((digest, sent))
    }

    /// Makes sure the engine holds `index` (digest `digest`) and returns
    /// the contents it lacks. With a record of the index the engine
    /// accepted last for this context (beside the stat cache `cache`),
    /// a changed index goes as its change from that one, in one request;
    /// otherwise the engine is asked whether it holds the index, and sent
    /// it whole when it does not.
    fn send_index(
        &self,
        index: &std::sync::Arc<ContextIndex>,
        digest: &str,
        cache: Option<&Path>,
        sent: &mut Sent,
        step: &str,
    ) -> Result<Missing, Error> {
        let sent_path = cache.map(sent_file);
        let last = sent_path.as_deref().and_then(sent_digest);
        let mut missing = None;
        if last.as_deref().is_some_and(|last| last != digest)
            && let Some((base, base_index)) = sent_path.as_deref().and_then(load_sent)
        {
            missing = self.put_delta(digest, &base, &base_index, index, step)?;
            sent.index_sent = missing.is_some();
            sent.index_delta = missing.is_some();
        }
        if missing.is_none() {
            let resp = self.send(Method::GET, &missing_path(digest), &[], Bytes::new(), step)?;
            missing = if matches!(
                resp.status(),
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            ) {
                let _ = self.body(resp, step);
                None
            } else {
                let resp = self.check(resp, step)?;
                Some(self.missing_of(resp, step)?)
            };
        }
        let missing = match missing {
            Some(missing) => missing,
            None => {
                sent.index_sent = true;
                let headers = [("Content-Type", INDEX_CONTENT_TYPE.to_string())];
                let resp = self.send(
                    Method::PUT,
                    &context_path(digest),
                    &headers,
                    Bytes::from(index.encode()),
                    step,
                )?;
                let resp = self.check(resp, step)?;
                self.missing_of(resp, step)?
            }
        };
        if let Some(path) = sent_path
            && last.as_deref() != Some(digest)
        {
            let (digest, index) = (digest.to_string(), std::sync::Arc::clone(index));
            sent.saving.spawn(move || {
                save_sent(&path, &digest, &index);
                Ok(())
            });
        }
        Ok(missing)
    }

    /// Sends `index` as its change from `base_index` (digest `base`), which
    /// the engine accepted before. `None` when the engine refuses it: it
    /// no longer holds the base (`404`), or the delta does not give the
    /// index (`400`, a damaged record of the base): the index is then
    /// sent whole, and any real fault in it reported from that.
    fn put_delta(
        &self,
        digest: &str,
        base: &str,
        base_index: &ContextIndex,
        index: &ContextIndex,
        step: &str,
    ) -> Result<Option<Missing>, Error> {
        let delta = Delta::between(base_index, index);
        let headers = [("Content-Type", DELTA_CONTENT_TYPE.to_string())];
        let resp = self.send(
            Method::PUT,
            &context_delta_path(digest, base),
            &headers,
            Bytes::from(delta.encode()),
            step,
        )?;
        if resp.status().is_client_error() {
            let _ = self.body(resp, step);
            return Ok(None);
        }
        let resp = self.check(resp, step)?;
        self.missing_of(resp, step).map(Some)
    }

    /// The [`Missing`] an index call answered.
    fn missing_of(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
        step: &str,
    ) -> Result<Missing, Error> {
        let body = self.body(resp, step)?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })
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
            if matches!(
                event,
                BuildEvent::Built { .. }
                    | BuildEvent::Failed { .. }
                    | BuildEvent::WouldBuild { .. }
            ) {
                last = Some(event);
            }
            Ok(())
        })?;
        last.ok_or_else(|| {
            Error::Invalid("build: the engine ended the build without a result".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_index_accepted_last_is_kept_and_a_damaged_record_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("a"), "a").unwrap();
        let matcher = servin_buildctx::Matcher::parse("").unwrap();
        let (index, _) = ContextIndex::build(&ctx, &matcher, None).unwrap();
        let path = sent_file(&dir.path().join("0123abcd"));
        assert_eq!(path.file_name().unwrap(), "0123abcd.sent");
        assert!(load_sent(&path).is_none());
        assert!(sent_digest(&path).is_none());

        save_sent(&path, &index.digest(), &index);
        assert_eq!(sent_digest(&path), Some(index.digest()));
        let (digest, back) = load_sent(&path).unwrap();
        assert_eq!((digest, &back), (index.digest(), &index));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary file left");

        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&path, &bytes).unwrap();
        assert!(load_sent(&path).is_none());
        std::fs::write(&path, b"short").unwrap();
        assert!(load_sent(&path).is_none());
        assert!(sent_digest(&path).is_none());
    }
}
