//! The engine's error type: one enum that gathers each module's own error
//! ([`ImageError`], [`ContainerError`], [`NetworkError`], [`VolumeError`],
//! [`SpecError`], [`ProjectError`], [`RequestError`]) beside the failures
//! every module shares (a file or process call, a JSON document, a lookup,
//! the OCI runtime, a registry). Nothing here knows HTTP: the API maps an
//! error to its status in `api::status`, at the edge.
//!
//! The message convention: a message names its subject, starts lower-case,
//! ends without a period, and never repeats its cause: a wrapped error
//! (`Io`, `Json`) is the `source`, and [`Error::full_message`] prints the
//! chain once, joined by `: `.

use std::path::{Path, PathBuf};

pub use crate::api::request::RequestError;
pub use crate::container::error::ContainerError;
pub use crate::filters::FilterError;
pub use crate::image::error::ImageError;
pub use crate::network::error::NetworkError;
pub use crate::reconcile::error::ProjectError;
pub use crate::runtime::error::SpecError;
pub use crate::volume::error::VolumeError;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or process call failed on `path`.
    #[error("{action} {}", path.display())]
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
    /// Another engine already serves the socket.
    #[error("an engine is already listening on {}", .0.display())]
    AlreadyListening(PathBuf),
    /// The registry refused or failed the operation.
    #[error("{context}: {message}")]
    Registry {
        /// Which image and step.
        context: String,
        /// What the registry said.
        message: String,
        /// The registry's HTTP status (the API answers with it, see
        /// `api::status`).
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
    #[error("{subject}")]
    Json {
        /// What was being read or written.
        subject: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// An image was refused.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A container or exec operation was refused.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A network, address or port operation was refused.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A volume operation was refused.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// A container's configuration cannot become a runtime spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A project's desired state was refused.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The request itself was refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A `filters` argument was refused.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A build was refused or failed.
    #[error(transparent)]
    Build(#[from] crate::build::error::BuildError),
    /// A report of an image an apply waits for was refused.
    #[error(transparent)]
    Pending(#[from] crate::reconcile::pending::PendingError),
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

    /// The full message with its source chain, as users see it.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}
