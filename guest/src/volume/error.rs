//! What can go wrong with named volumes.

/// A volume operation refused.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A name outside Docker's rule.
    #[error(
        "invalid volume name {0:?}: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least)"
    )]
    InvalidName(String),
    /// A driver other than local.
    #[error("volume {0}: driver {1:?} is not available: servin has the local driver only")]
    UnsupportedDriver(String, String),
    /// A driver option that is unknown, missing or malformed.
    #[error("volume {volume}: {why}")]
    InvalidOption {
        /// The volume's name.
        volume: String,
        /// What is wrong, naming the option.
        why: String,
    },
    /// The volume exists with other options.
    #[error("volume {0} already exists with other driver options")]
    OtherOptions(String),
    /// Removing a volume that containers use.
    #[error("remove volume {0}: volume is in use by container {1}")]
    InUse(String, String),
    /// A workspace batch aimed at a volume that is not a workspace copy.
    #[error(
        "volume {0} is not a workspace copy (it has no servin.workspace label): batches only write into workspace volumes"
    )]
    NotWorkspace(String),
    /// A filter of a list or prune that is not taken.
    #[error("invalid filter {0}")]
    InvalidFilter(String),
}
