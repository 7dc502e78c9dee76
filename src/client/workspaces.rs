//! The workspace sync calls: a workspace volume's generation and manifest,
//! and batches streamed to the engine as they are made (see
//! [`servin_proto::workspace`]).

use std::io::Write;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use servin_proto::workspace::{
    BATCH_CONTENT_TYPE, BatchOutcome, Manifest, WorkspaceInfo, batch_path, manifest_path,
    workspace_path,
};
use tokio::sync::mpsc;

use super::{Engine, Error, encode};

/// The size of the pieces a batch is sent in.
const PIECE: usize = 256 * 1024;

/// Writes into the request body: pieces of [`PIECE`] bytes, each handed
/// to the connection as soon as it is full.
struct BodyWriter {
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    buf: Vec<u8>,
}

impl BodyWriter {
    fn push(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx
            .blocking_send(Ok(Frame::data(Bytes::from(piece))))
            .map_err(|_| std::io::Error::other("the engine stopped reading the batch"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.push()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.push()
    }
}

impl Engine {
    /// The generation of workspace volume `volume`, `None` when it does
    /// not exist.
    pub fn workspace_generation(&self, volume: &str) -> Result<Option<String>, Error> {
        let step = format!("workspace volume {volume}");
        let resp = self.send(
            Method::GET,
            &workspace_path(&encode(volume)),
            &[],
            Bytes::new(),
            &step,
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            let _ = self.body(resp, &step);
            return Ok(None);
        }
        let resp = self.check(resp, &step)?;
        let body = self.body(resp, &step)?;
        let info: WorkspaceInfo =
            serde_json::from_slice(&body).map_err(|source| Error::Decode { step, source })?;
        Ok(Some(info.generation))
    }

    /// What workspace volume `volume` holds.
    pub fn workspace_manifest(&self, volume: &str) -> Result<Manifest, Error> {
        self.json(
            Method::GET,
            &manifest_path(&encode(volume)),
            &format!("manifest of workspace volume {volume}"),
        )
    }

    /// Sends one batch to workspace volume `volume`: `produce` writes its
    /// bytes (on a thread of its own, while they are sent) and returns
    /// what it learnt on the way. A batch that `produce` fails is not
    /// completed: the engine refuses the truncated stream, having written
    /// whole files only.
    pub fn workspace_batch<T: Send + 'static>(
        &self,
        volume: &str,
        produce: impl FnOnce(&mut dyn Write) -> std::io::Result<T> + Send + 'static,
    ) -> Result<(BatchOutcome, T), Error> {
        let step = format!("sync workspace volume {volume}");
        let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let producer = std::thread::spawn(move || {
            let mut w = BodyWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(PIECE),
            };
            let made = produce(&mut w).and_then(|t| w.flush().map(|()| t));
            if let Err(e) = &made {
                // The body ends in an error: the request fails rather than
                // sending a truncated batch as if it were whole.
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
            }
            made
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let body = http_body_util::StreamBody::new(stream);
        let req = Request::builder()
            .method(Method::POST)
            .uri(batch_path(&encode(volume)))
            .header("Host", "servin")
            .header("Content-Type", BATCH_CONTENT_TYPE)
            .body(body)
            .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let answer = self.rt.block_on(async {
            let resp = self.request_async(req, &step).await?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|source| Error::Http {
                    addr: self.addr.to_string(),
                    step: step.clone(),
                    source,
                })?;
            Ok::<_, Error>((status, body))
        });
        let made = producer
            .join()
            .map_err(|_| Error::Invalid(format!("{step}: the batch writer panicked")))?;
        let made = made.map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        let (status, body) = answer?;
        if !status.is_success() {
            return Err(super::engine_error(&step, status, &body));
        }
        let outcome: BatchOutcome =
            serde_json::from_slice(&body).map_err(|source| Error::Decode { step, source })?;
        Ok((outcome, made))
    }
}
