//! The engine's error type. Messages name their subject and leave the cause
//! to the source chain; they start lower-case and end without a period.

use std::path::{Path, PathBuf};

use hyper::StatusCode;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or process call failed on `path`.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What the engine was doing, e.g. "write".
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No image matches the name or ID.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// No container matches the name or ID.
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    /// No network matches the name or ID.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// The operation is not allowed on this object (Docker answers 403).
    #[error("{0}")]
    Forbidden(String),
    /// No volume has this name.
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    /// No exec instance has this ID.
    #[error("no such exec instance: {0}")]
    NoSuchExec(String),
    /// The OCI runtime (or the monitor driving it) failed a step.
    #[error("{context}: {message}")]
    Runtime {
        /// The container and the step, e.g. "container web: start".
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The container's command cannot be run; the message is Docker's
    /// (`exec: "x": executable file not found in $PATH`).
    #[error("{0}")]
    CommandNotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over its limit (see `api::body`).
    #[error("{0}")]
    TooLarge(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The API call is not served by this engine.
    #[error("{0} is not served by the servin engine")]
    NotImplemented(String),
    /// The registry refused or failed the operation.
    #[error("{context}: {message}")]
    Registry {
        /// Which image and step.
        context: String,
        /// What the registry said.
        message: String,
        /// The status to answer with.
        status: u16,
    },
    /// Content did not match its digest or size.
    #[error("{subject}: {message}")]
    Content {
        /// The blob or manifest concerned.
        subject: String,
        /// What is wrong with it.
        message: String,
    },
    /// A layer could not be unpacked.
    #[error("layer {layer}: entry {entry:?}: {message}")]
    Unpack {
        /// The layer digest.
        layer: String,
        /// The tar entry path.
        entry: String,
        /// Why it was refused or failed.
        message: String,
    },
    /// State or a document could not be (de)serialised.
    #[error("{subject}: {source}")]
    Json {
        /// What was being read or written.
        subject: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// An archive given to `load` is not a docker-save tar or an OCI layout.
    #[error("archive: {0}")]
    Archive(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// Builds an [`Error::Json`] for `subject`.
    pub fn json(subject: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let subject = subject.into();
        move |source| Self::Json { subject, source }
    }

    /// The HTTP status the API answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NoSuchImage(_)
            | Self::NoSuchContainer(_)
            | Self::NoSuchExec(_)
            | Self::NoSuchNetwork(_)
            | Self::NoSuchVolume(_) => StatusCode::NOT_FOUND,
            Self::CommandNotFound(_) => StatusCode::BAD_REQUEST,
            Self::BadRequest(_) | Self::Archive(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Registry { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Io { .. }
            | Self::Content { .. }
            | Self::Unpack { .. }
            | Self::Json { .. }
            | Self::Runtime { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The full message with its source chain, as users see it.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        message
    }
}
