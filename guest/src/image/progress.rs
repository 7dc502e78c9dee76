//! Docker-style JSON progress messages, one JSON object per line.
//!
//! The engine emits events as it works; the API streams them to the client,
//! which renders bars (the `docker` CLI, or servin's indicatif renderer).

use bollard_stubs::models::{CreateImageInfo, ErrorDetail, ProgressDetail};
use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

/// Where progress goes. A closed or absent receiver is ignored: the work goes
/// on even when the client has left.
#[derive(Clone, Default)]
pub struct Progress {
    tx: Option<UnboundedSender<Bytes>>,
}

impl Progress {
    /// Progress sent to `tx`.
    pub fn new(tx: UnboundedSender<Bytes>) -> Self {
        Self { tx: Some(tx) }
    }

    /// Progress that goes nowhere.
    pub fn silent() -> Self {
        Self::default()
    }

    /// Resolves once the receiver is gone (the client left); never for
    /// progress that goes nowhere.
    pub async fn closed(&self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }

    /// Sends one raw JSON value.
    pub fn send_json(&self, value: &impl serde::Serialize) {
        if let Some(tx) = &self.tx
            && let Ok(mut line) = serde_json::to_vec(value)
        {
            line.push(b'\n');
            let _ = tx.send(Bytes::from(line));
        }
    }

    /// A status line, optionally about one item (a short layer ID).
    pub fn status(&self, id: Option<&str>, status: &str) {
        self.send_json(&CreateImageInfo {
            id: id.map(String::from),
            status: Some(status.to_string()),
            ..Default::default()
        });
    }

    /// A progress line with byte counts.
    pub fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send_json(&CreateImageInfo {
            id: Some(id.to_string()),
            status: Some(status.to_string()),
            progress_detail: Some(ProgressDetail {
                current: i64::try_from(current).ok(),
                total: i64::try_from(total).ok(),
            }),
            ..Default::default()
        });
    }

    /// A `{"stream": ...}` line, as `load` writes.
    pub fn stream(&self, text: &str) {
        self.send_json(&serde_json::json!({ "stream": text }));
    }

    /// The final error of a stream.
    pub fn error(&self, message: &str) {
        self.send_json(&serde_json::json!({
            "errorDetail": ErrorDetail { code: None, message: Some(message.to_string()) },
            "error": message,
        }));
    }
}
