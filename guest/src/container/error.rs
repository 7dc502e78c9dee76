//! What can go wrong with containers and exec instances, apart from the
//! runtime's own failures (`Error::Runtime`) and lookups (`NoSuchContainer`).

/// A container operation refused.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A create or exec request with a value the engine refuses; the
    /// message names the value.
    #[error("{0}")]
    InvalidConfig(String),
    /// The name is taken.
    #[error(
        "the container name \"/{name}\" is already in use by container \"{id}\": remove (or rename) that container to be able to reuse that name"
    )]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// A name outside Docker's rule.
    #[error("invalid container name ({0:?}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// No random name was free.
    #[error("could not find a free random container name; give one with --name")]
    NoFreeName,
    /// An ID prefix that names more than one container.
    #[error("multiple containers found with ID prefix {0:?}")]
    AmbiguousId(String),
    /// The operation needs a running container; the message is Docker's
    /// for that operation.
    #[error("{0}")]
    NotRunning(String),
    /// The container's state does not allow the operation.
    #[error("{0}")]
    WrongState(String),
    /// A legacy link's child cannot be linked to at start.
    #[error("{0}")]
    LinkTarget(String),
    /// The container is paused; the message is Docker's for the operation.
    #[error("{0}")]
    Paused(String),
    /// An `update` field the engine cannot apply, named.
    #[error("{0}")]
    CannotUpdate(String),
    /// A network operation the container's network mode or attachments do
    /// not allow.
    #[error("{0}")]
    Networking(String),
    /// An exec instance that cannot do what is asked.
    #[error("exec {id} {why}")]
    Exec {
        /// The exec instance.
        id: String,
        /// What is wrong, in Docker's words.
        why: String,
    },
    /// A path that is not in the container (`docker cp`), in Docker's words.
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath {
        /// The container.
        container: String,
        /// The path asked for.
        path: String,
    },
    /// A copy into a path that is not a folder.
    #[error("extraction point is not a directory: {0}")]
    NotAFolder(String),
    /// A copy onto the container's read-only root or a read-only mount.
    #[error("container {container}: copy into {path}: container rootfs is marked read-only")]
    ReadOnlyPath {
        /// The container.
        container: String,
        /// The path written to.
        path: String,
    },
    /// An upload that is not a tar servin can extract, or has an entry
    /// outside its folder; the message names the entry.
    #[error("{0}")]
    BadArchive(String),
    /// An upload entry that would replace a folder by a file or the other
    /// way round (`noOverwriteDirNonDir`).
    #[error("{0}")]
    WouldReplace(String),
}
