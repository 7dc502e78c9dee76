//! What can go wrong while turning a container's configuration into an OCI
//! spec: values Docker refuses, users and groups the image lacks.

/// A container configuration the runtime spec cannot be built from.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A value Docker refuses; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A user name the image's `/etc/passwd` lacks.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// A group name the image's `/etc/group` lacks.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
}
