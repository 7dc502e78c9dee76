//! What can go wrong with images before a registry or the disk is involved:
//! bad names and digests, ambiguous IDs, removals that need force, and
//! archives that are not what they claim. Registry and content failures
//! stay typed in [`crate::error::Error`] (`Registry`, `Content`, `Unpack`).

/// An image operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A name that is not an image reference, with the parser's reason.
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    /// A digest of an algorithm the store does not keep.
    #[error("unsupported digest {0:?}")]
    UnsupportedDigest(String),
    /// A sha256 digest that is not 64 lower-case hex digits.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// An ID prefix that names more than one image.
    #[error("image ID prefix {0:?} is ambiguous")]
    AmbiguousId(String),
    /// Removing by ID an image with several names needs force.
    #[error(
        "conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleRepositories(String),
    /// Removing a name whose image a container uses needs force.
    #[error(
        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}"
    )]
    UsedByContainer {
        /// The name being removed.
        reference: String,
        /// The short ID of the container using it.
        container: String,
        /// The short ID of the image.
        image: String,
    },
    /// A stored manifest whose media type is not one.
    #[error("bad media type {0:?}")]
    BadMediaType(String),
    /// A platform that is not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// A tag was asked for with a digest reference.
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    /// The blocking task of a store operation died.
    #[error("{0} failed: {1}")]
    Task(&'static str, String),
    /// A `--change` of `docker commit` or `docker import` that is not one
    /// of the instructions they take, or is malformed.
    #[error("{0}")]
    Change(String),
    /// An archive given to `load` is not a docker-save tar or an OCI layout.
    #[error("archive: {0}")]
    Archive(String),
}
